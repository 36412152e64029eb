//! Range and consistency checks of a run's configuration, before anything is created or
//! allocated. Messages name the flag (and, for a loaded run.json, the file adds its path).

use anyhow::{Result, bail};

use super::run::{RunConfig, RunKind};

/// Largest batch, sequence or rank we accept: far above anything that fits in memory here,
/// far below what would overflow an allocation size.
const MAX_SIZE: usize = 1 << 20;

fn unit(flag: &str, v: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&v) {
        bail!("{flag} must be in [0, 1], got {v}");
    }
    Ok(())
}

fn non_negative(flag: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        bail!("{flag} must be a finite number >= 0, got {v}");
    }
    Ok(())
}

fn positive(flag: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{flag} must be a finite number > 0, got {v}");
    }
    Ok(())
}

fn size(flag: &str, v: usize) -> Result<()> {
    if v == 0 || v > MAX_SIZE {
        bail!("{flag} must be in 1..={MAX_SIZE}, got {v}");
    }
    Ok(())
}

impl RunConfig {
    /// Every numeric field finite, in range and consistent with the others.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        positive("--lr", self.lr)?;
        unit("--min-lr-ratio", self.min_lr_ratio)?;
        size("--batch-size", self.batch_size)?;
        size("--grad-accum", self.grad_accum)?;
        size("--seq-len", self.seq_len)?;
        size("--block-length", self.noise.block_length)?;
        if !self.seq_len.is_multiple_of(self.noise.block_length) {
            bail!(
                "--seq-len ({}) must be a multiple of --block-length ({})",
                self.seq_len,
                self.noise.block_length
            );
        }
        non_negative("--clip", self.clip)?;
        non_negative("--weight-decay", self.adamw.weight_decay)?;
        for (flag, b) in [("--beta1", self.adamw.beta1), ("--beta2", self.adamw.beta2)] {
            if !(0.0..1.0).contains(&b) {
                bail!("{flag} must be in [0, 1), got {b}");
            }
        }
        positive("adamw.eps", self.adamw.eps)?;
        if self.keep_checkpoints == 0 {
            bail!("--keep-checkpoints must be at least 1");
        }
        let n = &self.noise;
        unit("--t-min", n.t_min)?;
        unit("--t-max", n.t_max)?;
        if n.t_min > n.t_max {
            bail!("--t-min ({}) must not exceed --t-max ({})", n.t_min, n.t_max);
        }
        for (flag, v) in [
            ("--random-frac", n.random_frac),
            ("--draft-frac", n.draft_frac),
            ("--gate", n.gate),
            ("--random-mix", n.random_mix),
            ("--prompt-clean", n.prompt_clean),
            ("--draft-threshold", n.draft_threshold),
        ] {
            unit(flag, v)?;
        }
        if n.draft_steps == 0 || n.draft_steps > 64 {
            bail!("--draft-steps must be in 1..=64, got {}", n.draft_steps);
        }
        for (flag, v) in [("--w-m2t", n.w_m2t), ("--w-t2t", n.w_t2t), ("--w-keep", n.w_keep)] {
            non_negative(flag, v)?;
        }
        if n.w_m2t + n.w_t2t + n.w_keep == 0.0 {
            bail!("--w-m2t, --w-t2t and --w-keep are all 0: nothing would be trained");
        }
        if self.eval_limit == Some(0) {
            bail!("eval_limit must be at least 1 (or absent for all items)");
        }
        match &self.run {
            RunKind::Lora { adapter, .. } => {
                size("--rank", adapter.r)?;
                positive("--alpha", adapter.lora_alpha)?;
                if !(0.0..1.0).contains(&adapter.lora_dropout) {
                    bail!("--dropout must be in [0, 1), got {}", adapter.lora_dropout);
                }
                if adapter.target_modules.is_empty() {
                    bail!("--targets is empty: name at least one module suffix");
                }
            }
            RunKind::Pretrain { init_std, bias_update_rate, .. } => {
                positive("--init-std", *init_std)?;
                non_negative("--bias-update-rate", *bias_update_rate)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The run files we ship (demo results, the pretraining run) pass the checks a resume applies.
    #[test]
    fn shipped_run_files_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("assets/pretrain-run"), root.join("assets/pretrain-long-run")];
        if let Ok(rd) = std::fs::read_dir(root.join("sessions/results/runs")) {
            dirs.extend(rd.flatten().map(|e| e.path()));
        }
        let mut n = 0;
        for d in dirs.iter().filter(|d| crate::session::RunDir::new(d.as_path()).has_run()) {
            crate::train::run::read_run_file(d).unwrap();
            n += 1;
        }
        assert!(n >= 2, "found {n} run files");
    }
}
