//! Decoding parameters of the official `generate()` call, with the model card's presets.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Which attention the decoder runs (recorded in every trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionMode {
    /// Hard block-causal mask with a KV cache: each step runs only the current block.
    #[default]
    BlockCausal,
    /// The released `generate()`: additive 0/1 block bias, whole window every step.
    Hf,
    /// Hard block-causal mask recomputing the whole window each step (the baseline the
    /// cache must beat; same results as `block-causal`).
    BlockCausalNoCache,
}

impl AttentionMode {
    pub fn label(self) -> &'static str {
        match self {
            AttentionMode::BlockCausal => "block-causal",
            AttentionMode::Hf => "hf",
            AttentionMode::BlockCausalNoCache => "block-causal-no-cache",
        }
    }
}

/// Threshold presets from the LLaDA2.1 model card (`default` = generate()'s own defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Quality mode: threshold 0.7, editing threshold 0.5.
    #[default]
    Q,
    /// Speed mode: threshold 0.5, editing threshold 0.0 (edit whenever the argmax differs).
    S,
    /// generate()'s defaults: 0.95 / 0.9.
    Default,
}

impl Mode {
    /// `(threshold, editing_threshold, max_post_steps)`.
    pub fn thresholds(self) -> (f32, f32, usize) {
        match self {
            Mode::Q => (0.7, 0.5, 16),
            Mode::S => (0.5, 0.0, 16),
            Mode::Default => (0.95, 0.9, 16),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeParams {
    /// M2T: commit masks whose p(argmax) is strictly above this.
    pub threshold: f32,
    /// T2T: replace a committed token when the new argmax differs and its p is strictly
    /// above this. 0.0 means "edit whenever the argmax differs", not "off".
    pub editing_threshold: f32,
    pub max_post_steps: usize,
    pub block_length: usize,
    pub gen_length: usize,
    /// 0 = argmax. Above 0: seeded sampling with optional top-k / top-p.
    pub temperature: f32,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub seed: u64,
    pub eos_early_stop: bool,
    /// Minimum number of masks committed per step (official `num_to_transfer`).
    pub num_to_transfer: usize,
    pub eos_id: u32,
    pub mask_id: u32,
    /// Alternatives recorded per position and step (0 = none).
    pub record_top_k: usize,
    /// Record per-position numbers (argmax, p, p(current), alternatives). Off only for
    /// overhead measurements.
    #[serde(default = "yes")]
    pub record_positions: bool,
}

fn yes() -> bool {
    true
}

impl DecodeParams {
    pub fn preset(mode: Mode, eos_id: u32, mask_id: u32) -> Self {
        let (threshold, editing_threshold, max_post_steps) = mode.thresholds();
        Self {
            threshold,
            editing_threshold,
            max_post_steps,
            block_length: 32,
            gen_length: 256,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
            eos_early_stop: false,
            num_to_transfer: 1,
            eos_id,
            mask_id,
            record_top_k: 5,
            record_positions: true,
        }
    }

    /// Rejects absurd parameters with the flag's name.
    pub fn validate(&self, vocab_size: usize) -> Result<()> {
        for (name, v) in [("--threshold", self.threshold), ("--editing-threshold", self.editing_threshold)] {
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                bail!("{name} must be in [0, 1], got {v}");
            }
        }
        if self.block_length == 0 {
            bail!("--block-length must be at least 1");
        }
        if self.gen_length == 0 {
            bail!("--gen-length must be at least 1");
        }
        if self.num_to_transfer == 0 {
            bail!("--num-to-transfer must be at least 1");
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            bail!("--temperature must be a finite number >= 0, got {}", self.temperature);
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            bail!("--top-p must be in (0, 1], got {p}");
        }
        if self.top_k == Some(0) {
            bail!("--top-k must be at least 1");
        }
        for (name, id) in [("--eos-id", self.eos_id), ("--mask-id", self.mask_id)] {
            if id as usize >= vocab_size {
                bail!("{name} {id} is outside the vocabulary (size {vocab_size})");
            }
        }
        Ok(())
    }
}
