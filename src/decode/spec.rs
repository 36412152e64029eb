//! [`DecodeSpec`]: everything that decides a decode — the preset, every parameter, the
//! attention mode and the edit policy — in one type. The CLI parses it (clap), the workbench
//! edits it, bench / demo / eval run with it, and a trace gives it back ([`DecodeSpec::of`]),
//! so "run this again" is exact. Its defaults are the clap defaults: one place.

use serde::{Deserialize, Serialize};

use super::params::{AttentionMode, DecodeParams, EditPolicy, Mode, RemaskStrategy};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct DecodeSpec {
    /// Threshold preset: q (0.7/0.5), s (0.5/0.0), default (0.95/0.9); explicit flags override.
    #[arg(long, value_enum, default_value_t = Mode::Q)]
    pub mode: Mode,
    /// M2T threshold (overrides the preset).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// T2T editing threshold (overrides the preset; 0 edits whenever the argmax differs).
    #[arg(long)]
    pub editing_threshold: Option<f32>,
    /// Post-fill steps per block (overrides the preset).
    #[arg(long)]
    pub max_post_steps: Option<usize>,
    #[arg(long, default_value_t = 32)]
    pub block_length: usize,
    #[arg(long, default_value_t = 256)]
    pub gen_length: usize,
    /// 0 = argmax; above 0, seeded sampling (with --seed, --top-k, --top-p).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop after the block where the output is complete and holds EOS (on by default, as in
    /// the model card's examples; `--no-eos-early-stop` keeps decoding the remaining blocks).
    #[arg(long = "no-eos-early-stop", action = clap::ArgAction::SetFalse)]
    pub eos_early_stop: bool,
    /// Minimum number of masks committed per step (official `num_to_transfer`).
    #[arg(long, default_value_t = 1)]
    pub num_to_transfer: usize,
    /// Override the model config's EOS id.
    #[arg(long)]
    pub eos_id: Option<u32>,
    /// Override the model config's mask id.
    #[arg(long)]
    pub mask_id: Option<u32>,
    #[arg(long, value_enum, default_value_t = AttentionMode::BlockCausal)]
    pub attention: AttentionMode,
    /// Alternatives recorded per position and step.
    #[arg(long, default_value_t = 5)]
    pub record_top_k: usize,
    /// t2t: overwrite doubted tokens (the released decoder); t2m: reset them to the mask and
    /// let M2T re-predict them (targeted remasking, arXiv 2604.18738).
    #[arg(long, value_enum, default_value_t = EditPolicy::T2t)]
    pub edit_policy: EditPolicy,
    /// T2M: which committed tokens to remask.
    #[arg(long, value_enum, default_value_t = RemaskStrategy::LowProb)]
    pub remask_strategy: RemaskStrategy,
    /// T2M: the strategy's τ (default low_prob 0.5, t2t_remask 0.9, logit_diff 0.3).
    #[arg(long)]
    pub remask_threshold: Option<f32>,
    /// T2M: remasks allowed per position in one decode.
    #[arg(long, default_value_t = 5)]
    pub max_remask_per_pos: usize,
    /// T2M: remasks allowed per step, as a share of the block's editable positions (at least one).
    #[arg(long, default_value_t = 0.25)]
    pub max_remask_ratio: f32,
}

impl Default for DecodeSpec {
    /// The clap defaults (what `draftscope decode` runs with no flags).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            spec: DecodeSpec,
        }
        <Wrap as clap::Parser>::parse_from(["draftscope"]).spec
    }
}

impl DecodeSpec {
    /// The decoder's parameters on a model whose config has these special ids (the spec's
    /// `eos_id` / `mask_id` override them).
    pub fn params(&self, eos_id: u32, mask_id: u32) -> DecodeParams {
        let (threshold, editing_threshold, max_post_steps) = self.thresholds();
        DecodeParams {
            threshold,
            editing_threshold,
            max_post_steps,
            block_length: self.block_length,
            gen_length: self.gen_length,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            eos_early_stop: self.eos_early_stop,
            num_to_transfer: self.num_to_transfer,
            eos_id: self.eos_id.unwrap_or(eos_id),
            mask_id: self.mask_id.unwrap_or(mask_id),
            record_top_k: self.record_top_k,
            record_positions: true,
            edit_policy: self.edit_policy,
            remask_strategy: self.remask_strategy,
            remask_threshold: self.remask_threshold(),
            max_remask_per_pos: self.max_remask_per_pos,
            max_remask_ratio: self.max_remask_ratio,
        }
    }

    /// The spec that reproduces a decode run with `p` and `attention` (the special ids stay the
    /// model's; the preset is the one whose thresholds match, else Q with overrides).
    pub fn of(p: &DecodeParams, attention: AttentionMode) -> Self {
        let triple = (p.threshold, p.editing_threshold, p.max_post_steps);
        let preset = [Mode::Q, Mode::S, Mode::Default].into_iter().find(|m| m.thresholds() == triple);
        let mode = preset.unwrap_or(Mode::Q);
        let (t, e, m) = mode.thresholds();
        Self {
            mode,
            threshold: (p.threshold != t).then_some(p.threshold),
            editing_threshold: (p.editing_threshold != e).then_some(p.editing_threshold),
            max_post_steps: (p.max_post_steps != m).then_some(p.max_post_steps),
            block_length: p.block_length,
            gen_length: p.gen_length,
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            seed: p.seed,
            eos_early_stop: p.eos_early_stop,
            num_to_transfer: p.num_to_transfer,
            eos_id: None,
            mask_id: None,
            attention,
            record_top_k: p.record_top_k,
            edit_policy: p.edit_policy,
            remask_strategy: p.remask_strategy,
            remask_threshold: (p.remask_threshold != p.remask_strategy.default_threshold())
                .then_some(p.remask_threshold),
            max_remask_per_pos: p.max_remask_per_pos,
            max_remask_ratio: p.max_remask_ratio,
        }
    }

    /// `(threshold, editing_threshold, max_post_steps)`: the preset's, with overrides applied.
    pub fn thresholds(&self) -> (f32, f32, usize) {
        let (t, e, m) = self.mode.thresholds();
        (self.threshold.unwrap_or(t), self.editing_threshold.unwrap_or(e), self.max_post_steps.unwrap_or(m))
    }

    pub fn remask_threshold(&self) -> f32 {
        self.remask_threshold.unwrap_or(self.remask_strategy.default_threshold())
    }

    /// The preset with no threshold overridden, or `None` ("custom").
    pub fn preset(&self) -> Option<Mode> {
        (self.thresholds() == self.mode.thresholds()).then_some(self.mode)
    }

    /// Switches to a preset, dropping threshold overrides.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.threshold = None;
        self.editing_threshold = None;
        self.max_post_steps = None;
    }

    /// `Q`, `S`, `default`, or `custom` once a threshold differs from the preset.
    pub fn mode_label(&self) -> &'static str {
        match self.preset() {
            Some(Mode::Q) => "Q",
            Some(Mode::S) => "S",
            Some(Mode::Default) => "default",
            None => "custom",
        }
    }

    /// `t2t`, or `t2m low_prob` and the like.
    pub fn policy_label(&self) -> String {
        match self.edit_policy {
            EditPolicy::T2t => "t2t".into(),
            EditPolicy::T2m => format!("t2m {}", self.remask_strategy.label()),
        }
    }

    /// `greedy`, or `T 0.80 seed 3` with top-k / top-p when set.
    pub fn sampling_label(&self) -> String {
        if self.temperature == 0.0 {
            return "greedy".into();
        }
        let mut s = format!("T {:.2} seed {}", self.temperature, self.seed);
        if let Some(k) = self.top_k {
            s += &format!(" top-k {k}");
        }
        if let Some(p) = self.top_p {
            s += &format!(" top-p {p:.2}");
        }
        s
    }

    /// One-line description for run labels (under T2M the strategy and τ replace the editing
    /// threshold; sampling shows when on).
    pub fn short(&self) -> String {
        let (t, e, _) = self.thresholds();
        let second = match self.edit_policy {
            EditPolicy::T2t => format!("{e:.2}"),
            EditPolicy::T2m => format!("{} {:.2}", self.policy_label(), self.remask_threshold()),
        };
        let sampling =
            if self.temperature == 0.0 { String::new() } else { format!(" {}", self.sampling_label()) };
        format!("{} {t:.2}/{second} {}{sampling}", self.mode_label(), self.attention.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_q_mode_block_causal_stopping_at_eos() {
        let s = DecodeSpec::default();
        let p = s.params(7, 9);
        assert_eq!((p.threshold, p.editing_threshold, p.max_post_steps), (0.7, 0.5, 16));
        assert_eq!((p.block_length, p.gen_length, p.eos_id, p.mask_id), (32, 256, 7, 9));
        assert!(p.eos_early_stop);
        assert_eq!(s.attention, AttentionMode::BlockCausal);
    }

    #[test]
    fn a_spec_taken_from_params_gives_the_same_params_back() {
        let mut p = DecodeParams::preset(Mode::S, 3, 4).with_remask(RemaskStrategy::LogitDiff);
        p.temperature = 0.8;
        p.seed = 3;
        p.top_k = Some(5);
        p.threshold = 0.55;
        p.remask_threshold = 0.4;
        p.eos_early_stop = false;
        let s = DecodeSpec::of(&p, AttentionMode::Hf);
        assert_eq!(s.params(3, 4), p);
        assert_eq!((s.mode_label(), s.attention), ("custom", AttentionMode::Hf));
    }

    #[test]
    fn a_spec_serialised_without_fields_takes_the_defaults() {
        let s: DecodeSpec = serde_json::from_str(r#"{"mode":"s","temperature":0.5}"#).unwrap();
        assert_eq!((s.mode, s.temperature, s.block_length, s.eos_early_stop), (Mode::S, 0.5, 32, true));
    }
}
