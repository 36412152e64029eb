//! Structural checks of a loaded trace: a file that parses as JSON can still have lengths,
//! indices or numbers that no decode produces. Every view, diff and re-judgement indexes the
//! trace freely, so a trace is checked once, on load, and refused with one line naming the
//! field and where it is.

use anyhow::{Result, bail};

use super::trace::{PositionRecord, StepTrace, Trace};

/// Block lengths and generation lengths beyond this are not a decode we could have run.
const MAX_LEN: usize = 1 << 24;

fn prob(what: &str, p: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        bail!("{what} is {p}, not a probability in [0, 1]");
    }
    Ok(())
}

impl Trace {
    /// Every length, index and number consistent, so that any trace that loads can be drawn,
    /// stepped, diffed and re-judged without a panic.
    pub fn validate(&self) -> Result<()> {
        let p = &self.params;
        p.validate(u32::MAX as usize).map_err(|e| anyhow::anyhow!("params: {e}"))?;
        let b = p.block_length;
        if b > MAX_LEN || p.gen_length > MAX_LEN {
            bail!("params: block_length {b} or gen_length {} is larger than any decode", p.gen_length);
        }
        if !(self.wall_ms.is_finite() && self.wall_ms >= 0.0) {
            bail!("wall_ms is {}, not a finite duration", self.wall_ms);
        }
        let prompt_len = self.prompt_ids.len();
        if prompt_len == 0 {
            bail!("prompt_ids is empty");
        }
        if prompt_len > MAX_LEN {
            bail!("prompt_ids has {prompt_len} tokens, more than any decode");
        }
        let num_blocks = (prompt_len + p.gen_length).div_ceil(b);
        if self.final_canvas.len() != num_blocks * b {
            bail!(
                "final_canvas has {} tokens; prompt ({prompt_len}) + gen_length ({}) in blocks of {b} make {}",
                self.final_canvas.len(),
                p.gen_length,
                num_blocks * b
            );
        }
        if self.final_canvas[..prompt_len] != self.prompt_ids[..] {
            bail!("final_canvas does not start with prompt_ids");
        }
        if self.output.len() > p.gen_length {
            bail!("output has {} tokens, more than gen_length ({})", self.output.len(), p.gen_length);
        }
        if self.blocks.is_empty() {
            bail!("blocks is empty: the trace records no decoding step");
        }
        let mut prev_block = None;
        for (bi, blk) in self.blocks.iter().enumerate() {
            let at = format!("blocks[{bi}]");
            if blk.block >= num_blocks || prev_block.is_some_and(|pb| blk.block <= pb) {
                bail!(
                    "{at}: block index {} is out of order or past the canvas ({num_blocks} blocks)",
                    blk.block
                );
            }
            prev_block = Some(blk.block);
            if blk.start != blk.block * b || blk.window_end != blk.start + b {
                bail!(
                    "{at}: start {} / window_end {} do not match block {} of length {b}",
                    blk.start,
                    blk.window_end,
                    blk.block
                );
            }
            if blk.steps.is_empty() {
                bail!("{at}: steps is empty");
            }
            for (si, s) in blk.steps.iter().enumerate() {
                self.validate_step(&format!("{at}.steps[{si}]"), si, s, blk.start, b)?;
            }
        }
        Ok(())
    }

    fn validate_step(&self, at: &str, index: usize, s: &StepTrace, start: usize, b: usize) -> Result<()> {
        if s.step != index {
            bail!("{at}: step is {}, expected {index}", s.step);
        }
        if s.forward >= self.forward_calls.max(1) {
            bail!("{at}: forward {} is not below forward_calls ({})", s.forward, self.forward_calls);
        }
        if s.before.len() != b || s.after.len() != b {
            bail!("{at}: before/after have {}/{} tokens, the block has {b}", s.before.len(), s.after.len());
        }
        if !s.positions.is_empty() && s.positions.len() != b {
            bail!("{at}: positions has {} records, the block has {b}", s.positions.len());
        }
        if !(s.forward_ms.is_finite() && s.forward_ms >= 0.0) {
            bail!("{at}: forward_ms is {}", s.forward_ms);
        }
        let in_block = |pos: usize| (start..start + b).contains(&pos);
        for (i, c) in s.commits.iter().enumerate() {
            if !in_block(c.pos) {
                bail!("{at}.commits[{i}]: pos {} is outside the block [{start}, {})", c.pos, start + b);
            }
            prob(&format!("{at}.commits[{i}].p"), c.p)?;
        }
        for (i, e) in s.edits.iter().enumerate() {
            if !in_block(e.pos) {
                bail!("{at}.edits[{i}]: pos {} is outside the block [{start}, {})", e.pos, start + b);
            }
            prob(&format!("{at}.edits[{i}].p"), e.p)?;
        }
        for (i, r) in s.remasks.iter().enumerate() {
            if !in_block(r.pos) {
                bail!("{at}.remasks[{i}]: pos {} is outside the block [{start}, {})", r.pos, start + b);
            }
            prob(&format!("{at}.remasks[{i}].p"), r.p)?;
            prob(&format!("{at}.remasks[{i}].p_current"), r.p_current)?;
            if let Some(pp) = r.p_prev {
                prob(&format!("{at}.remasks[{i}].p_prev"), pp)?;
            }
            if !r.score.is_finite() {
                bail!("{at}.remasks[{i}].score is {}, not finite", r.score);
            }
        }
        for (i, r) in s.positions.iter().enumerate() {
            validate_position(&format!("{at}.positions[{i}]"), r)?;
        }
        Ok(())
    }
}

fn validate_position(at: &str, r: &PositionRecord) -> Result<()> {
    prob(&format!("{at}.p"), r.p)?;
    prob(&format!("{at}.p_current"), r.p_current)?;
    for (k, (_, p)) in r.top.iter().enumerate() {
        prob(&format!("{at}.top[{k}]"), *p)?;
    }
    Ok(())
}
