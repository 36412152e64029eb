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
    /// How the CLI and the results store spell it: `q`, `s`, `default`.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Q => "q",
            Mode::S => "s",
            Mode::Default => "default",
        }
    }

    /// `(threshold, editing_threshold, max_post_steps)`.
    pub fn thresholds(self) -> (f32, f32, usize) {
        match self {
            Mode::Q => (0.7, 0.5, 16),
            Mode::S => (0.5, 0.0, 16),
            Mode::Default => (0.95, 0.9, 16),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.label())
    }
}

/// What happens to a committed token the model no longer backs (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EditPolicy {
    /// The released decoder: T2T overwrites it with the new argmax.
    #[default]
    T2t,
    /// Targeted remasking (arXiv 2604.18738): T2M resets it to the mask and M2T re-predicts it.
    T2m,
}

impl EditPolicy {
    pub fn label(self) -> &'static str {
        match self {
            EditPolicy::T2t => "t2t",
            EditPolicy::T2m => "t2m",
        }
    }
}

/// How T2M chooses the committed positions to reset to the mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum RemaskStrategy {
    /// p(current token) < τ (default 0.5).
    #[default]
    LowProb,
    /// The T2T condition (argmax differs, p(argmax) > τ, default 0.9), but remask.
    T2tRemask,
    /// |p(current) now − p(current) at the previous step| > τ (default 0.3).
    LogitDiff,
}

impl RemaskStrategy {
    /// The reference code's threshold for this strategy (`STRATEGY_DEFAULTS`).
    pub fn default_threshold(self) -> f32 {
        match self {
            RemaskStrategy::LowProb => 0.5,
            RemaskStrategy::T2tRemask => 0.9,
            RemaskStrategy::LogitDiff => 0.3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RemaskStrategy::LowProb => "low_prob",
            RemaskStrategy::T2tRemask => "t2t_remask",
            RemaskStrategy::LogitDiff => "logit_diff",
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
    /// T2T editing (default; traces from before T2M load as t2t) or T2M remasking. The
    /// `remask_*` fields below only matter under t2m.
    #[serde(default)]
    pub edit_policy: EditPolicy,
    #[serde(default)]
    pub remask_strategy: RemaskStrategy,
    /// τ of the strategy (see [`RemaskStrategy`]).
    #[serde(default = "default_remask_threshold")]
    pub remask_threshold: f32,
    /// A position is reset to the mask at most this many times per decode (0 = never).
    #[serde(default = "default_max_remask_per_pos")]
    pub max_remask_per_pos: usize,
    /// At most `max(1, ⌊ratio × editable positions⌋)` remasks per step, lowest scores first.
    #[serde(default = "default_max_remask_ratio")]
    pub max_remask_ratio: f32,
}

fn yes() -> bool {
    true
}

fn default_remask_threshold() -> f32 {
    RemaskStrategy::LowProb.default_threshold()
}

fn default_max_remask_per_pos() -> usize {
    5
}

fn default_max_remask_ratio() -> f32 {
    0.25
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
            edit_policy: EditPolicy::T2t,
            remask_strategy: RemaskStrategy::LowProb,
            remask_threshold: default_remask_threshold(),
            max_remask_per_pos: default_max_remask_per_pos(),
            max_remask_ratio: default_max_remask_ratio(),
        }
    }

    /// `t2t`, or `t2m:low_prob@0.50` (strategy and τ): tells runs of the two policies apart in
    /// headings and the results table.
    pub fn policy_label(&self) -> String {
        match self.edit_policy {
            EditPolicy::T2t => "t2t".into(),
            EditPolicy::T2m => format!("t2m:{}@{:.2}", self.remask_strategy.label(), self.remask_threshold),
        }
    }

    /// Switches to T2M with `strategy` at its reference threshold (the guards keep their values).
    pub fn with_remask(mut self, strategy: RemaskStrategy) -> Self {
        self.edit_policy = EditPolicy::T2m;
        self.remask_strategy = strategy;
        self.remask_threshold = strategy.default_threshold();
        self
    }

    /// Rejects absurd parameters with the flag's name.
    pub fn validate(&self, vocab_size: usize) -> Result<()> {
        for (name, v) in [
            ("--threshold", self.threshold),
            ("--editing-threshold", self.editing_threshold),
            ("--remask-threshold", self.remask_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                bail!("{name} must be in [0, 1], got {v}");
            }
        }
        if !(self.max_remask_ratio > 0.0 && self.max_remask_ratio <= 1.0) {
            bail!("--max-remask-ratio must be in (0, 1], got {}", self.max_remask_ratio);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_without_the_t2m_fields_load_as_t2t_with_the_reference_guards() {
        let mut v = serde_json::to_value(DecodeParams::preset(Mode::Q, 1, 2)).unwrap();
        for k in
            ["edit_policy", "remask_strategy", "remask_threshold", "max_remask_per_pos", "max_remask_ratio"]
        {
            v.as_object_mut().unwrap().remove(k);
        }
        let p: DecodeParams = serde_json::from_value(v).unwrap();
        assert_eq!(p.edit_policy, EditPolicy::T2t);
        assert_eq!((p.remask_threshold, p.max_remask_per_pos, p.max_remask_ratio), (0.5, 5, 0.25));
    }

    #[test]
    fn each_strategy_has_the_reference_default_threshold() {
        let p = DecodeParams::preset(Mode::Q, 1, 2);
        let t = |s| p.clone().with_remask(s).remask_threshold;
        assert_eq!(
            (t(RemaskStrategy::LowProb), t(RemaskStrategy::T2tRemask), t(RemaskStrategy::LogitDiff)),
            (0.5, 0.9, 0.3)
        );
    }

    #[test]
    fn remask_ranges_are_checked_with_the_flag_name() {
        let ok = DecodeParams::preset(Mode::Q, 1, 2).with_remask(RemaskStrategy::LowProb);
        let err = |f: &dyn Fn(&mut DecodeParams)| {
            let mut p = ok.clone();
            f(&mut p);
            p.validate(10).unwrap_err().to_string()
        };
        assert_eq!(err(&|p| p.remask_threshold = 1.5), "--remask-threshold must be in [0, 1], got 1.5");
        assert!(err(&|p| p.remask_threshold = f32::NAN).starts_with("--remask-threshold"));
        assert_eq!(err(&|p| p.max_remask_ratio = 0.0), "--max-remask-ratio must be in (0, 1], got 0");
        assert!(err(&|p| p.max_remask_ratio = f32::INFINITY).starts_with("--max-remask-ratio"));
        assert!(ok.validate(10).is_ok());
    }
}
