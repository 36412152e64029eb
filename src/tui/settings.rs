//! The decode settings the workbench runs with (what-if: change one, run again, diff).

use std::path::PathBuf;

use crate::decode::{AttentionMode, DecodeParams, DecodeSpec, EditPolicy, Mode, RemaskStrategy};

/// The rows of the settings panel, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Mode,
    Threshold,
    Editing,
    MaxPost,
    /// T2T, or T2M with one of its strategies.
    Policy,
    RemaskThr,
    Attention,
    BlockLength,
    GenLength,
    /// Sampling temperature (top-k / top-p shown beside it when set).
    Temperature,
    Seed,
    EosStop,
    Chat,
    Adapter,
}

pub const ROWS: [Row; 14] = [
    Row::Mode,
    Row::Threshold,
    Row::Editing,
    Row::MaxPost,
    Row::Policy,
    Row::RemaskThr,
    Row::Attention,
    Row::BlockLength,
    Row::GenLength,
    Row::Temperature,
    Row::Seed,
    Row::EosStop,
    Row::Chat,
    Row::Adapter,
];

const BLOCK_LENGTHS: [usize; 6] = [4, 8, 16, 32, 64, 128];
const GEN_LENGTHS: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// What a run from the workbench uses: the decode spec (edited in place by the settings panel)
/// plus how the prompt and model are prepared.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub spec: DecodeSpec,
    /// Wrap text prompts in the model's chat template.
    pub chat: bool,
    pub adapter: Option<PathBuf>,
    /// Whether the adapter (if any) is applied.
    pub adapter_on: bool,
}

/// The policy row's values, in cycling order.
const POLICIES: [(EditPolicy, RemaskStrategy); 4] = [
    (EditPolicy::T2t, RemaskStrategy::LowProb),
    (EditPolicy::T2m, RemaskStrategy::LowProb),
    (EditPolicy::T2m, RemaskStrategy::T2tRemask),
    (EditPolicy::T2m, RemaskStrategy::LogitDiff),
];

impl Default for Settings {
    fn default() -> Self {
        Self::new(DecodeSpec::default(), None)
    }
}

impl Settings {
    /// The spec from the command line, with the adapter from `--adapter` switched on.
    pub fn new(spec: DecodeSpec, adapter: Option<PathBuf>) -> Self {
        Self { spec, chat: true, adapter_on: adapter.is_some(), adapter }
    }

    /// The parameters of a run on a model with these special ids.
    pub fn params(&self, eos_id: u32, mask_id: u32) -> DecodeParams {
        self.spec.params(eos_id, mask_id)
    }

    /// `t2t`, or `t2m low_prob` and the like.
    pub fn policy_label(&self) -> String {
        self.spec.policy_label()
    }

    /// The adapter a run should use.
    pub fn active_adapter(&self) -> Option<&PathBuf> {
        if self.adapter_on { self.adapter.as_ref() } else { None }
    }

    pub fn mode_label(&self) -> &'static str {
        self.spec.mode_label()
    }

    /// One-line description, for run labels.
    pub fn short(&self) -> String {
        format!("{}{}", self.spec.short(), if self.active_adapter().is_some() { " +adapter" } else { "" })
    }

    pub fn value(&self, row: Row) -> String {
        let s = &self.spec;
        let (threshold, editing, max_post) = s.thresholds();
        match row {
            Row::Mode => self.mode_label().into(),
            Row::Threshold => format!("{threshold:.2}"),
            Row::Editing => format!("{editing:.2}"),
            Row::MaxPost => max_post.to_string(),
            Row::Policy => self.policy_label(),
            Row::RemaskThr => match s.edit_policy {
                EditPolicy::T2t => format!("{:.2} (t2m only)", s.remask_threshold()),
                EditPolicy::T2m => format!("{:.2}", s.remask_threshold()),
            },
            Row::Attention => s.attention.label().into(),
            Row::BlockLength => s.block_length.to_string(),
            Row::GenLength => s.gen_length.to_string(),
            Row::Temperature if s.temperature == 0.0 => "0.00 (greedy)".into(),
            Row::Temperature => {
                let mut v = format!("{:.2}", s.temperature);
                if let Some(k) = s.top_k {
                    v += &format!(" top-k {k}");
                }
                if let Some(p) = s.top_p {
                    v += &format!(" top-p {p:.2}");
                }
                v
            }
            Row::Seed => s.seed.to_string(),
            Row::EosStop => on_off(s.eos_early_stop).into(),
            Row::Chat => on_off(self.chat).into(),
            Row::Adapter => match &self.adapter {
                None => "none (a: set)".into(),
                Some(p) => format!("{} {}", on_off(self.adapter_on), p.display()),
            },
        }
    }

    pub fn label(row: Row) -> &'static str {
        match row {
            Row::Mode => "mode",
            Row::Threshold => "threshold",
            Row::Editing => "editing thr",
            Row::MaxPost => "max post",
            Row::Policy => "edit policy",
            Row::RemaskThr => "remask thr",
            Row::Attention => "attention",
            Row::BlockLength => "block len",
            Row::GenLength => "gen len",
            Row::Temperature => "temperature",
            Row::Seed => "seed",
            Row::EosStop => "eos stop",
            Row::Chat => "chat tmpl",
            Row::Adapter => "adapter",
        }
    }

    /// Steps a setting up (`+1`) or down (`-1`).
    pub fn adjust(&mut self, row: Row, dir: i32) {
        let step = |v: f32| ((v + 0.05 * dir as f32) * 100.0).round().clamp(0.0, 100.0) / 100.0;
        let s = &mut self.spec;
        let (threshold, editing, max_post) = s.thresholds();
        match row {
            Row::Mode => {
                let modes = [Mode::Q, Mode::S, Mode::Default];
                let i = s.preset().and_then(|m| modes.iter().position(|&x| x == m));
                let n = match i {
                    None => 0,
                    Some(i) => (i as i32 + dir).rem_euclid(modes.len() as i32) as usize,
                };
                s.set_mode(modes[n]);
            }
            Row::Threshold => s.threshold = Some(step(threshold)),
            Row::Editing => s.editing_threshold = Some(step(editing)),
            Row::MaxPost => s.max_post_steps = Some((max_post as i64 + dir as i64).clamp(0, 256) as usize),
            Row::Policy => {
                let i = POLICIES
                    .iter()
                    .position(|&(e, r)| {
                        e == s.edit_policy && (e == EditPolicy::T2t || r == s.remask_strategy)
                    })
                    .unwrap_or(0);
                let (e, r) = POLICIES[(i as i32 + dir).rem_euclid(POLICIES.len() as i32) as usize];
                s.edit_policy = e;
                if e == EditPolicy::T2m {
                    s.remask_strategy = r;
                    s.remask_threshold = None;
                }
            }
            Row::RemaskThr => s.remask_threshold = Some(step(s.remask_threshold())),
            Row::Attention => {
                let modes =
                    [AttentionMode::BlockCausal, AttentionMode::Hf, AttentionMode::BlockCausalNoCache];
                let i = modes.iter().position(|&m| m == s.attention).unwrap_or(0);
                s.attention = modes[(i as i32 + dir).rem_euclid(modes.len() as i32) as usize];
            }
            Row::BlockLength => s.block_length = stepped(&BLOCK_LENGTHS, s.block_length, dir),
            Row::GenLength => s.gen_length = stepped(&GEN_LENGTHS, s.gen_length, dir),
            Row::Temperature => {
                s.temperature = ((s.temperature + 0.1 * dir as f32) * 10.0).round().clamp(0.0, 20.0) / 10.0
            }
            Row::Seed => s.seed = s.seed.saturating_add_signed(dir as i64),
            Row::EosStop => s.eos_early_stop = !s.eos_early_stop,
            Row::Chat => self.chat = !self.chat,
            Row::Adapter => {
                if self.adapter.is_some() {
                    self.adapter_on = !self.adapter_on;
                }
            }
        }
    }

    pub fn set_mode(&mut self, mode: Mode) {
        self.spec.set_mode(mode);
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The next larger (dir > 0) or smaller value of `list` than `v`, staying put at the ends.
fn stepped(list: &[usize], v: usize, dir: i32) -> usize {
    if dir > 0 {
        list.iter().copied().find(|&x| x > v).unwrap_or(v)
    } else {
        list.iter().rev().copied().find(|&x| x < v).unwrap_or(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_cycles_through_the_presets_and_sets_their_thresholds() {
        let mut s = Settings::default();
        s.adjust(Row::Mode, 1);
        let (t, e, _) = s.spec.thresholds();
        assert_eq!((s.spec.preset(), t, e), (Some(Mode::S), 0.5, 0.0));
        s.adjust(Row::Mode, 1);
        assert_eq!((s.spec.preset(), s.spec.thresholds().0), (Some(Mode::Default), 0.95));
        s.adjust(Row::Mode, 1);
        assert_eq!(s.spec.preset(), Some(Mode::Q));
    }

    #[test]
    fn thresholds_step_by_005_within_0_and_1() {
        let mut s = Settings::default();
        s.adjust(Row::Editing, -1);
        assert_eq!(s.spec.thresholds().1, 0.45);
        assert_eq!(s.spec.preset(), None);
        s.spec.editing_threshold = Some(0.0);
        s.adjust(Row::Editing, -1);
        assert_eq!(s.spec.thresholds().1, 0.0);
    }

    #[test]
    fn lengths_step_through_powers_of_two() {
        let mut s = Settings::default();
        s.adjust(Row::BlockLength, -1);
        assert_eq!(s.spec.block_length, 16);
        s.spec.gen_length = 100;
        s.adjust(Row::GenLength, 1);
        assert_eq!(s.spec.gen_length, 128);
    }

    #[test]
    fn params_carry_every_setting() {
        let spec =
            DecodeSpec { threshold: Some(0.6), block_length: 8, eos_early_stop: false, ..Default::default() };
        let s = Settings::new(spec, None);
        let p = s.params(5, 6);
        assert_eq!(
            (p.threshold, p.block_length, p.eos_early_stop, p.eos_id, p.mask_id),
            (0.6, 8, false, 5, 6)
        );
    }

    #[test]
    fn policy_cycles_t2t_then_each_t2m_strategy_at_its_default_threshold() {
        let mut s = Settings::default();
        let mut seen = Vec::new();
        for _ in 0..4 {
            s.adjust(Row::Policy, 1);
            seen.push((s.policy_label(), s.spec.remask_threshold()));
        }
        let want = [("t2m low_prob", 0.5), ("t2m t2t_remask", 0.9), ("t2m logit_diff", 0.3), ("t2t", 0.3)];
        assert_eq!(seen, want.map(|(l, t)| (l.to_string(), t)));
        s.adjust(Row::Policy, -1);
        assert_eq!(s.params(1, 2).edit_policy, EditPolicy::T2m);
        assert_eq!(s.params(1, 2).remask_strategy, RemaskStrategy::LogitDiff);
    }

    #[test]
    fn temperature_and_seed_rows_edit_the_spec_and_show_sampling() {
        let mut s = Settings::default();
        assert_eq!(s.value(Row::Temperature), "0.00 (greedy)");
        s.adjust(Row::Temperature, 1);
        s.adjust(Row::Seed, 1);
        s.spec.top_k = Some(4);
        assert_eq!((s.spec.temperature, s.spec.seed), (0.1, 1));
        assert_eq!(s.value(Row::Temperature), "0.10 top-k 4");
        assert_eq!(s.params(1, 2).temperature, 0.1);
    }

    #[test]
    fn adapter_toggles_only_when_a_path_is_set() {
        let mut s = Settings::default();
        s.adjust(Row::Adapter, 1);
        assert!(s.active_adapter().is_none());
        s.adapter = Some("a".into());
        s.adjust(Row::Adapter, 1);
        assert_eq!(s.active_adapter(), Some(&PathBuf::from("a")));
    }
}
