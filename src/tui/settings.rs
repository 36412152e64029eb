//! The decode settings the workbench runs with (what-if: change one, run again, diff).

use std::path::PathBuf;

use crate::decode::{AttentionMode, DecodeParams, EditPolicy, Mode, RemaskStrategy};

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
    EosStop,
    Chat,
    Adapter,
}

pub const ROWS: [Row; 12] = [
    Row::Mode,
    Row::Threshold,
    Row::Editing,
    Row::MaxPost,
    Row::Policy,
    Row::RemaskThr,
    Row::Attention,
    Row::BlockLength,
    Row::GenLength,
    Row::EosStop,
    Row::Chat,
    Row::Adapter,
];

const BLOCK_LENGTHS: [usize; 6] = [4, 8, 16, 32, 64, 128];
const GEN_LENGTHS: [usize; 9] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The preset the thresholds came from; `None` once a threshold was changed by hand.
    pub mode: Option<Mode>,
    pub threshold: f32,
    pub editing_threshold: f32,
    pub max_post_steps: usize,
    pub attention: AttentionMode,
    pub block_length: usize,
    pub gen_length: usize,
    pub eos_early_stop: bool,
    /// Wrap text prompts in the model's chat template.
    pub chat: bool,
    pub adapter: Option<PathBuf>,
    /// Whether the adapter (if any) is applied.
    pub adapter_on: bool,
    pub record_top_k: usize,
    pub edit_policy: EditPolicy,
    pub remask_strategy: RemaskStrategy,
    pub remask_threshold: f32,
    pub max_remask_per_pos: usize,
    pub max_remask_ratio: f32,
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
        let (threshold, editing_threshold, max_post_steps) = Mode::Q.thresholds();
        Self {
            mode: Some(Mode::Q),
            threshold,
            editing_threshold,
            max_post_steps,
            attention: AttentionMode::BlockCausal,
            block_length: 32,
            gen_length: 256,
            eos_early_stop: true,
            chat: true,
            adapter: None,
            adapter_on: false,
            record_top_k: 5,
            edit_policy: EditPolicy::T2t,
            remask_strategy: RemaskStrategy::LowProb,
            remask_threshold: RemaskStrategy::LowProb.default_threshold(),
            max_remask_per_pos: 5,
            max_remask_ratio: 0.25,
        }
    }
}

impl Settings {
    pub fn from_flags(f: &crate::cli::decode::DecodeFlags, adapter: Option<PathBuf>) -> Self {
        let p = f.params(0, 0);
        let custom = f.threshold.is_some() || f.editing_threshold.is_some() || f.max_post_steps.is_some();
        Self {
            mode: if custom { None } else { Some(f.mode) },
            threshold: p.threshold,
            editing_threshold: p.editing_threshold,
            max_post_steps: p.max_post_steps,
            attention: f.attention,
            block_length: f.block_length,
            gen_length: f.gen_length,
            eos_early_stop: f.eos_early_stop,
            chat: true,
            adapter_on: adapter.is_some(),
            adapter,
            record_top_k: f.record_top_k,
            edit_policy: p.edit_policy,
            remask_strategy: p.remask_strategy,
            remask_threshold: p.remask_threshold,
            max_remask_per_pos: p.max_remask_per_pos,
            max_remask_ratio: p.max_remask_ratio,
        }
    }

    /// The parameters of a run on a model with these special ids.
    pub fn params(&self, eos_id: u32, mask_id: u32) -> DecodeParams {
        let mut p = DecodeParams::preset(self.mode.unwrap_or(Mode::Q), eos_id, mask_id);
        p.threshold = self.threshold;
        p.editing_threshold = self.editing_threshold;
        p.max_post_steps = self.max_post_steps;
        p.block_length = self.block_length;
        p.gen_length = self.gen_length;
        p.eos_early_stop = self.eos_early_stop;
        p.record_top_k = self.record_top_k;
        p.edit_policy = self.edit_policy;
        p.remask_strategy = self.remask_strategy;
        p.remask_threshold = self.remask_threshold;
        p.max_remask_per_pos = self.max_remask_per_pos;
        p.max_remask_ratio = self.max_remask_ratio;
        p
    }

    /// `t2t`, or `t2m low_prob` and the like.
    pub fn policy_label(&self) -> String {
        match self.edit_policy {
            EditPolicy::T2t => "t2t".into(),
            EditPolicy::T2m => format!("t2m {}", self.remask_strategy.label()),
        }
    }

    /// The adapter a run should use.
    pub fn active_adapter(&self) -> Option<&PathBuf> {
        if self.adapter_on { self.adapter.as_ref() } else { None }
    }

    pub fn mode_label(&self) -> &'static str {
        match self.mode {
            Some(Mode::Q) => "Q",
            Some(Mode::S) => "S",
            Some(Mode::Default) => "default",
            None => "custom",
        }
    }

    /// One-line description, for run labels (under T2M the strategy and τ replace the
    /// editing threshold).
    pub fn short(&self) -> String {
        let second = match self.edit_policy {
            EditPolicy::T2t => format!("{:.2}", self.editing_threshold),
            EditPolicy::T2m => format!("{} {:.2}", self.policy_label(), self.remask_threshold),
        };
        format!(
            "{} {:.2}/{second} {}{}",
            self.mode_label(),
            self.threshold,
            self.attention.label(),
            if self.active_adapter().is_some() { " +adapter" } else { "" }
        )
    }

    pub fn value(&self, row: Row) -> String {
        match row {
            Row::Mode => self.mode_label().into(),
            Row::Threshold => format!("{:.2}", self.threshold),
            Row::Editing => format!("{:.2}", self.editing_threshold),
            Row::MaxPost => self.max_post_steps.to_string(),
            Row::Policy => self.policy_label(),
            Row::RemaskThr => match self.edit_policy {
                EditPolicy::T2t => format!("{:.2} (t2m only)", self.remask_threshold),
                EditPolicy::T2m => format!("{:.2}", self.remask_threshold),
            },
            Row::Attention => self.attention.label().into(),
            Row::BlockLength => self.block_length.to_string(),
            Row::GenLength => self.gen_length.to_string(),
            Row::EosStop => on_off(self.eos_early_stop).into(),
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
            Row::EosStop => "eos stop",
            Row::Chat => "chat tmpl",
            Row::Adapter => "adapter",
        }
    }

    /// Steps a setting up (`+1`) or down (`-1`).
    pub fn adjust(&mut self, row: Row, dir: i32) {
        let step = |v: f32| ((v + 0.05 * dir as f32) * 100.0).round().clamp(0.0, 100.0) / 100.0;
        match row {
            Row::Mode => {
                let modes = [Mode::Q, Mode::S, Mode::Default];
                let i = self.mode.and_then(|m| modes.iter().position(|&x| x == m));
                let n = match i {
                    None => 0,
                    Some(i) => (i as i32 + dir).rem_euclid(modes.len() as i32) as usize,
                };
                self.set_mode(modes[n]);
            }
            Row::Threshold => {
                self.threshold = step(self.threshold);
                self.mode = None;
            }
            Row::Editing => {
                self.editing_threshold = step(self.editing_threshold);
                self.mode = None;
            }
            Row::MaxPost => {
                self.max_post_steps = (self.max_post_steps as i64 + dir as i64).clamp(0, 256) as usize;
                self.mode = None;
            }
            Row::Policy => {
                let i = POLICIES
                    .iter()
                    .position(|&(e, s)| {
                        e == self.edit_policy && (e == EditPolicy::T2t || s == self.remask_strategy)
                    })
                    .unwrap_or(0);
                let (e, s) = POLICIES[(i as i32 + dir).rem_euclid(POLICIES.len() as i32) as usize];
                self.edit_policy = e;
                if e == EditPolicy::T2m {
                    self.remask_strategy = s;
                    self.remask_threshold = s.default_threshold();
                }
            }
            Row::RemaskThr => self.remask_threshold = step(self.remask_threshold),
            Row::Attention => {
                let modes =
                    [AttentionMode::BlockCausal, AttentionMode::Hf, AttentionMode::BlockCausalNoCache];
                let i = modes.iter().position(|&m| m == self.attention).unwrap_or(0);
                self.attention = modes[(i as i32 + dir).rem_euclid(modes.len() as i32) as usize];
            }
            Row::BlockLength => self.block_length = stepped(&BLOCK_LENGTHS, self.block_length, dir),
            Row::GenLength => self.gen_length = stepped(&GEN_LENGTHS, self.gen_length, dir),
            Row::EosStop => self.eos_early_stop = !self.eos_early_stop,
            Row::Chat => self.chat = !self.chat,
            Row::Adapter => {
                if self.adapter.is_some() {
                    self.adapter_on = !self.adapter_on;
                }
            }
        }
    }

    pub fn set_mode(&mut self, mode: Mode) {
        let (t, e, m) = mode.thresholds();
        self.mode = Some(mode);
        self.threshold = t;
        self.editing_threshold = e;
        self.max_post_steps = m;
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
        assert_eq!((s.mode, s.threshold, s.editing_threshold), (Some(Mode::S), 0.5, 0.0));
        s.adjust(Row::Mode, 1);
        assert_eq!((s.mode, s.threshold), (Some(Mode::Default), 0.95));
        s.adjust(Row::Mode, 1);
        assert_eq!(s.mode, Some(Mode::Q));
    }

    #[test]
    fn thresholds_step_by_005_within_0_and_1() {
        let mut s = Settings::default();
        s.adjust(Row::Editing, -1);
        assert_eq!(s.editing_threshold, 0.45);
        assert_eq!(s.mode, None);
        s.editing_threshold = 0.0;
        s.adjust(Row::Editing, -1);
        assert_eq!(s.editing_threshold, 0.0);
    }

    #[test]
    fn lengths_step_through_powers_of_two() {
        let mut s = Settings::default();
        s.adjust(Row::BlockLength, -1);
        assert_eq!(s.block_length, 16);
        s.gen_length = 100;
        s.adjust(Row::GenLength, 1);
        assert_eq!(s.gen_length, 128);
    }

    #[test]
    fn params_carry_every_setting() {
        let s = Settings { threshold: 0.6, block_length: 8, eos_early_stop: false, ..Default::default() };
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
            seen.push((s.policy_label(), s.remask_threshold));
        }
        let want = [("t2m low_prob", 0.5), ("t2m t2t_remask", 0.9), ("t2m logit_diff", 0.3), ("t2t", 0.3)];
        assert_eq!(seen, want.map(|(l, t)| (l.to_string(), t)));
        s.adjust(Row::Policy, -1);
        assert_eq!(s.params(1, 2).edit_policy, EditPolicy::T2m);
        assert_eq!(s.params(1, 2).remask_strategy, RemaskStrategy::LogitDiff);
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
