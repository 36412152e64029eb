//! Block-diffusion noise and the two training objectives.
//!
//! - `random` (the released LLaDA2.1 recipe): per block (or per sequence) draw a mask ratio
//!   t ~ U(t_min, t_max) and mask each position with probability t (M2T); replace each still
//!   visible position with a uniform random token with probability `random_frac` (T2T). The
//!   loss recovers the originals at masked and replaced positions.
//! - `self` (the method): the same masking, then pass 1 (no gradient; its result is copied to
//!   the host, so nothing of it can reach the graph) fills a `draft_frac` share of the masked
//!   positions with the model's own argmax, optionally only where p(argmax) > `gate`; a
//!   `random_mix` share of visible positions gets random tokens. Pass 2 trains recovery of the
//!   originals: wrong drafts teach *edit*, right drafts teach *keep*; undrafted masks stay M2T.

use anyhow::Result;
use candle_core::{D, DType, Device, IndexOp, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::data::Specials;
use crate::model::{Collect, Llada2, MaskKind, clean_context_bias};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Mask + uniform random-token replacement (the released recipe).
    Random,
    /// Mask, fill with the model's own drafts (pass 1, no gradient), train recovery.
    #[value(name = "self")]
    #[serde(rename = "self")]
    SelfDraft,
}

/// How pass 1 of the `self` objective drafts masked positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DraftMode {
    /// One forward; a `draft_frac` share of the masks gets the argmax (where p > `gate`).
    #[default]
    Argmax,
    /// `draft_steps` steps of the decoder's own M2T rule on the noised blocks: each step commits
    /// every mask with p > `draft_threshold`, or the block's single most confident mask when
    /// none clears it. The drafts are exactly what decoding would commit.
    Decode,
}

fn one() -> usize {
    1
}

fn q_threshold() -> f64 {
    0.7
}

/// Every knob of the objectives (all CLI flags; defaults documented there).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseConfig {
    pub objective: Objective,
    pub block_length: usize,
    pub t_min: f64,
    pub t_max: f64,
    /// Draw t per block (true) or once per sequence (false).
    pub per_block: bool,
    /// `random`: probability that a visible position gets a random token.
    pub random_frac: f64,
    /// `self`: share of masked positions that receive a draft.
    pub draft_frac: f64,
    /// `self`: only draft where p(argmax) > gate (0 = always).
    pub gate: f64,
    /// `self`: probability that a visible position gets a random token.
    pub random_mix: f64,
    pub w_m2t: f64,
    pub w_t2t: f64,
    /// Weight of the loss on untouched visible positions (0 = not trained).
    pub w_keep: f64,
    /// Denoise every block against a clean copy of the blocks before it (the BD3-LM / LLaDA2
    /// training layout, matching inference). Off: the whole sequence is noised and each block
    /// sees noisy earlier blocks (runs recorded before this option read as off).
    #[serde(default)]
    pub clean_context: bool,
    /// Probability that a sequence's prompt positions (chat documents: up to the assistant
    /// tag) stay clean, as in SFT and as decoding sees a prompt (0 = noise everywhere).
    #[serde(default)]
    pub prompt_clean: f64,
    /// `self`: how pass 1 drafts (runs recorded before this option read as `argmax`).
    #[serde(default)]
    pub draft_mode: DraftMode,
    /// `self`, `decode` mode: decoder steps of pass 1.
    #[serde(default = "one")]
    pub draft_steps: usize,
    /// `self`, `decode` mode: the M2T commit threshold (Q-Mode's 0.7 by default).
    #[serde(default = "q_threshold")]
    pub draft_threshold: f64,
}

/// What a position is in the corrupted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Clean,
    Masked,
    /// Replaced by a random token.
    Random,
    /// Filled with a draft of the model (self objective).
    Draft,
}

/// A corrupted batch: `input` (row-major `[b, n]`), originals in `target`, and each position's kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Noisy {
    pub b: usize,
    pub n: usize,
    pub input: Vec<u32>,
    pub target: Vec<u32>,
    pub kind: Vec<Kind>,
}

impl Noisy {
    /// Positions the loss is averaged over: masked (M2T) and replaced or drafted (T2T).
    pub fn loss_positions(&self) -> usize {
        self.kind.iter().filter(|k| **k != Kind::Clean).count()
    }

    /// The batch's rows in up to `parts` contiguous, near-equal groups (at least one row each),
    /// in order: the data-parallel split of a micro-batch.
    pub fn split_rows(&self, parts: usize) -> Vec<Noisy> {
        let parts = parts.clamp(1, self.b.max(1));
        if parts == 1 {
            return vec![self.clone()];
        }
        let n = self.n;
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for p in 0..parts {
            let rows = self.b / parts + usize::from(p < self.b % parts);
            let r = start * n..(start + rows) * n;
            out.push(Noisy {
                b: rows,
                n,
                input: self.input[r.clone()].to_vec(),
                target: self.target[r.clone()].to_vec(),
                kind: self.kind[r].to_vec(),
            });
            start += rows;
        }
        out
    }
}

fn random_token<R: Rng>(rng: &mut R, sp: &Specials) -> u32 {
    loop {
        let t = rng.random_range(0..sp.vocab_size as u32);
        if t != sp.mask {
            return t;
        }
    }
}

/// Masking plus random-token replacement of visible positions with probability `random_frac`.
pub fn corrupt<R: Rng>(
    batch: &[Vec<u32>],
    cfg: &NoiseConfig,
    random_frac: f64,
    sp: &Specials,
    rng: &mut R,
) -> Noisy {
    corrupt_with_prompts(batch, &[], cfg, random_frac, sp, rng)
}

/// [`corrupt`], leaving a sequence's prompt positions clean with probability `prompt_clean`.
pub fn corrupt_with_prompts<R: Rng>(
    batch: &[Vec<u32>],
    prompts: &[Vec<bool>],
    cfg: &NoiseConfig,
    random_frac: f64,
    sp: &Specials,
    rng: &mut R,
) -> Noisy {
    let b = batch.len();
    let n = batch.first().map_or(0, |s| s.len());
    let mut input = Vec::with_capacity(b * n);
    let mut target = Vec::with_capacity(b * n);
    let mut kind = Vec::with_capacity(b * n);
    let bl = cfg.block_length.max(1);
    for (si, seq) in batch.iter().enumerate() {
        let prompt = prompts.get(si).filter(|p| p.iter().any(|&x| x));
        let keep_prompt =
            prompt.is_some() && cfg.prompt_clean > 0.0 && rng.random_bool(cfg.prompt_clean.min(1.0));
        let mut t = 0.0;
        for (i, &tok) in seq.iter().enumerate() {
            if i == 0 || (cfg.per_block && i.is_multiple_of(bl)) {
                t = rng.random_range(cfg.t_min..=cfg.t_max);
            }
            target.push(tok);
            if keep_prompt && prompt.is_some_and(|p| p[i]) {
                input.push(tok);
                kind.push(Kind::Clean);
            } else if rng.random_bool(t.clamp(0.0, 1.0)) {
                input.push(sp.mask);
                kind.push(Kind::Masked);
            } else if random_frac > 0.0 && rng.random_bool(random_frac.clamp(0.0, 1.0)) {
                input.push(random_token(rng, sp));
                kind.push(Kind::Random);
            } else {
                input.push(tok);
                kind.push(Kind::Clean);
            }
        }
    }
    Noisy { b, n, input, target, kind }
}

/// The hard block-causal bias for a training sequence.
pub fn train_bias(n: usize, block_length: usize, dev: &Device) -> Result<Option<Tensor>> {
    Ok(MaskKind::BlockCausal { block_length }.bias(0, n, n, dev)?)
}

/// The denoising forward of a noisy batch: logits `[b, n, vocab]` and, when asked, the
/// router's choices. With `clean_context` the clean sequence rides along as the context of
/// each block (input `[noisy ; clean]` at positions `0..n` twice, loss rows only noisy).
fn denoise(
    model: &Llada2,
    noisy: &Noisy,
    cfg: &NoiseConfig,
    router: bool,
) -> Result<(Tensor, Vec<Vec<Vec<usize>>>)> {
    let dev = model.device().clone();
    let collect = Collect { hidden_states: false, router };
    let ids = Tensor::from_vec(noisy.input.clone(), (noisy.b, noisy.n), &dev)?;
    let out = if cfg.clean_context {
        let clean = Tensor::from_vec(noisy.target.clone(), (noisy.b, noisy.n), &dev)?;
        let both = Tensor::cat(&[&ids, &clean], 1)?;
        let positions: Vec<usize> = (0..noisy.n).chain(0..noisy.n).collect();
        let bias = clean_context_bias(noisy.n, cfg.block_length, &dev)?;
        let out = model.forward_at(&both, &positions, Some(&bias), None, 0, &collect)?;
        let logits = out.logits.ok_or_else(|| anyhow::anyhow!("no logits"))?.narrow(1, 0, noisy.n)?;
        (logits, out.router)
    } else {
        let bias = train_bias(noisy.n, cfg.block_length, &dev)?;
        let out = model.forward(&ids, 0, bias.as_ref(), None, 0, &collect)?;
        (out.logits.ok_or_else(|| anyhow::anyhow!("no logits"))?, out.router)
    };
    Ok((out.0, out.1.into_iter().map(|(_, c)| c).collect()))
}

/// Pass 1's view of the model: per position the argmax and its probability (host copies, so
/// nothing of pass 1 can reach the graph).
fn draft_predictions(model: &Llada2, noisy: &Noisy, cfg: &NoiseConfig) -> Result<(Vec<u32>, Vec<f32>)> {
    let logits = denoise(model, noisy, cfg, false)?.0.detach().to_dtype(DType::F32)?;
    let argmax: Vec<u32> = logits.argmax(D::Minus1)?.flatten_all()?.to_vec1()?;
    let max = logits.max_keepdim(D::Minus1)?;
    let lse = (logits.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?.log()? + &max)?;
    let pmax: Vec<f32> = (max - lse)?.exp()?.flatten_all()?.to_vec1()?;
    Ok((argmax, pmax))
}

/// `decode` drafts: the decoder's M2T rule for `draft_steps` steps, every block of every row
/// at once (each block sees its clean context, as in decoding).
fn decode_drafts(model: &Llada2, noisy: &mut Noisy, cfg: &NoiseConfig) -> Result<()> {
    let bl = cfg.block_length.max(1);
    for _ in 0..cfg.draft_steps {
        let (argmax, pmax) = draft_predictions(model, noisy, cfg)?;
        let mut any_mask = false;
        for row in 0..noisy.b {
            for start in (0..noisy.n).step_by(bl) {
                let block = row * noisy.n + start..row * noisy.n + (start + bl).min(noisy.n);
                let masks: Vec<usize> = block.filter(|&i| noisy.kind[i] == Kind::Masked).collect();
                let above: Vec<usize> =
                    masks.iter().copied().filter(|&i| pmax[i] as f64 > cfg.draft_threshold).collect();
                let commit = if above.is_empty() {
                    masks.iter().copied().max_by(|&a, &b| pmax[a].total_cmp(&pmax[b])).into_iter().collect()
                } else {
                    above
                };
                for i in commit {
                    noisy.input[i] = argmax[i];
                    noisy.kind[i] = Kind::Draft;
                }
                any_mask |= masks.iter().any(|&i| noisy.kind[i] == Kind::Masked);
            }
        }
        if !any_mask {
            break;
        }
    }
    Ok(())
}

/// Pass 1 of the self objective: drafts for masked positions, on the host.
pub fn self_drafts<R: Rng>(
    model: &Llada2,
    noisy: &mut Noisy,
    cfg: &NoiseConfig,
    sp: &Specials,
    rng: &mut R,
) -> Result<()> {
    if cfg.draft_mode == DraftMode::Decode {
        return decode_drafts(model, noisy, cfg);
    }
    let (argmax, pmax) = draft_predictions(model, noisy, cfg)?;
    for i in 0..noisy.input.len() {
        if noisy.kind[i] != Kind::Masked {
            continue;
        }
        if !rng.random_bool(cfg.draft_frac.clamp(0.0, 1.0)) {
            continue;
        }
        if cfg.gate > 0.0 && (pmax[i] as f64) <= cfg.gate {
            continue;
        }
        noisy.input[i] = argmax[i];
        noisy.kind[i] = Kind::Draft;
    }
    let _ = sp;
    Ok(())
}

/// Builds the corrupted input for one micro-batch under the configured objective.
pub fn make_input<R: Rng>(
    model: &Llada2,
    batch: &[Vec<u32>],
    cfg: &NoiseConfig,
    sp: &Specials,
    rng: &mut R,
) -> Result<Noisy> {
    make_input_with_prompts(model, batch, &[], cfg, sp, rng)
}

/// [`make_input`] with prompt masks (see [`NoiseConfig::prompt_clean`]).
pub fn make_input_with_prompts<R: Rng>(
    model: &Llada2,
    batch: &[Vec<u32>],
    prompts: &[Vec<bool>],
    cfg: &NoiseConfig,
    sp: &Specials,
    rng: &mut R,
) -> Result<Noisy> {
    match cfg.objective {
        Objective::Random => Ok(corrupt_with_prompts(batch, prompts, cfg, cfg.random_frac, sp, rng)),
        Objective::SelfDraft => {
            let mut noisy = corrupt_with_prompts(batch, prompts, cfg, cfg.random_mix, sp, rng);
            self_drafts(model, &mut noisy, cfg, sp, rng)?;
            Ok(noisy)
        }
    }
}

/// Loss of one micro-batch plus the detached per-objective means.
pub struct LossOut {
    pub loss: Tensor,
    pub sum_m2t: f64,
    pub n_m2t: usize,
    pub sum_t2t: f64,
    pub n_t2t: usize,
    /// Per MoE layer, per token: the chosen experts (when asked).
    pub router: Vec<Vec<Vec<usize>>>,
}

/// Pass 2 / the training forward: weighted cross-entropy recovering the originals, averaged
/// over the M2T and T2T positions.
pub fn loss(model: &Llada2, noisy: &Noisy, cfg: &NoiseConfig) -> Result<LossOut> {
    loss_collect(model, noisy, cfg, false)
}

/// [`loss`], also returning each MoE layer's expert choices when `router` is set.
pub fn loss_collect(model: &Llada2, noisy: &Noisy, cfg: &NoiseConfig, router: bool) -> Result<LossOut> {
    let dev = model.device().clone();
    let (logits, router) = denoise(model, noisy, cfg, router)?;
    let v = logits.dim(D::Minus1)?;
    let flat = logits.reshape((noisy.b * noisy.n, v))?;
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut weights = Vec::new();
    let mut is_m2t = Vec::new();
    let (mut n_m2t, mut n_t2t) = (0usize, 0usize);
    for (i, k) in noisy.kind.iter().enumerate() {
        let w = match k {
            Kind::Masked => {
                n_m2t += 1;
                cfg.w_m2t
            }
            Kind::Random | Kind::Draft => {
                n_t2t += 1;
                cfg.w_t2t
            }
            Kind::Clean => cfg.w_keep,
        };
        if w > 0.0 || matches!(k, Kind::Masked | Kind::Random | Kind::Draft) {
            rows.push(i as u32);
            targets.push(noisy.target[i]);
            weights.push(w as f32);
            is_m2t.push(match k {
                Kind::Masked => 1u8,
                Kind::Clean => 2,
                _ => 0,
            });
        }
    }
    if rows.is_empty() {
        let zero = (flat.i((0, 0))? * 0.0)?;
        return Ok(LossOut { loss: zero, sum_m2t: 0.0, n_m2t: 0, sum_t2t: 0.0, n_t2t: 0, router });
    }
    let r = rows.len();
    let sel = flat.index_select(&Tensor::from_vec(rows, r, &dev)?, 0)?.to_dtype(DType::F32)?;
    let max = sel.max_keepdim(D::Minus1)?.detach();
    let diff = sel.broadcast_sub(&max)?;
    let lse = diff.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let tgt = Tensor::from_vec(targets, (r, 1), &dev)?;
    let picked = diff.gather(&tgt, 1)?;
    let ce = (lse - picked)?.squeeze(1)?;
    let w = Tensor::from_vec(weights, r, &dev)?;
    let denom = (n_m2t + n_t2t).max(1) as f64;
    let loss = ((ce.mul(&w)?).sum_all()? / denom)?;
    let ce_host: Vec<f32> = ce.detach().to_vec1()?;
    let (mut sum_m2t, mut sum_t2t) = (0f64, 0f64);
    for (c, m) in ce_host.iter().zip(&is_m2t) {
        match m {
            1 => sum_m2t += *c as f64,
            0 => sum_t2t += *c as f64,
            _ => {}
        }
    }
    Ok(LossOut { loss, sum_m2t, n_m2t, sum_t2t, n_t2t, router })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg() -> NoiseConfig {
        NoiseConfig {
            objective: Objective::Random,
            block_length: 4,
            t_min: 1.0,
            t_max: 1.0,
            per_block: true,
            random_frac: 0.0,
            draft_frac: 1.0,
            gate: 0.0,
            random_mix: 0.0,
            w_m2t: 1.0,
            w_t2t: 1.0,
            w_keep: 0.0,
            clean_context: true,
            prompt_clean: 0.0,
            draft_mode: Default::default(),
            draft_steps: 1,
            draft_threshold: 0.7,
        }
    }

    #[test]
    fn split_rows_partitions_the_batch_in_order() {
        let sp = Specials { eos: 0, mask: 9, vocab_size: 10 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let c = NoiseConfig { t_min: 0.3, t_max: 0.6, ..cfg() };
        let batch: Vec<Vec<u32>> = (0..5).map(|r| (0..8).map(|i| (r * 8 + i) % 9).collect()).collect();
        let n = corrupt(&batch, &c, 0.2, &sp, &mut rng);
        for k in [1, 2, 3, 5, 9] {
            let parts = n.split_rows(k);
            assert_eq!(parts.len(), k.min(5));
            assert!(parts.iter().all(|p| p.b >= 1 && p.n == 8));
            let cat = |f: fn(&Noisy) -> Vec<u32>| parts.iter().flat_map(f).collect::<Vec<u32>>();
            assert_eq!(cat(|p| p.input.clone()), n.input);
            assert_eq!(cat(|p| p.target.clone()), n.target);
            assert_eq!(parts.iter().flat_map(|p| p.kind.clone()).collect::<Vec<_>>(), n.kind);
        }
    }

    #[test]
    fn full_mask_ratio_masks_everything() {
        let sp = Specials { eos: 0, mask: 9, vocab_size: 10 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = corrupt(&[vec![1, 2, 3, 4, 5, 6, 7, 8]], &cfg(), 0.0, &sp, &mut rng);
        assert!(n.input.iter().all(|&t| t == 9));
        assert_eq!(n.target, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn random_tokens_replace_visible_positions_and_never_use_mask() {
        let sp = Specials { eos: 0, mask: 9, vocab_size: 10 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let c = NoiseConfig { t_min: 0.0, t_max: 0.0, ..cfg() };
        let batch = vec![vec![1u32; 400]];
        let n = corrupt(&batch, &c, 0.5, &sp, &mut rng);
        let replaced = n.kind.iter().filter(|k| **k == Kind::Random).count();
        assert!((150..250).contains(&replaced), "{replaced}");
        assert!(!n.input.contains(&9));
    }
}
