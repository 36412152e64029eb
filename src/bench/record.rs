//! What a bench run records: one [`RunRecord`] per (run, suite) with its [`SuiteMetrics`]
//! and one [`ItemOutcome`] per item. The types here are the results store's line format and
//! the `--json` interface; running ([`super::run`]), storing ([`super::results`]) and merging
//! shards ([`super::shard`]) all build on them and none of them is needed here.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::classify::DigitError;
use super::score::Scorer;
use super::stats::{Z95, wilson};
use super::suite::Format;
use crate::decode::{AttentionMode, DecodeParams, Mode};
use crate::session::RunDir;

/// Bumped on incompatible changes of [`RunRecord`].
pub const RESULTS_VERSION: u32 = 1;
/// An adapter that is a training run's checkpoint: the run directory and the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterCheckpoint {
    pub run: String,
    pub step: u64,
}

impl AdapterCheckpoint {
    /// The checkpoint `adapter` is, asked of the run-directory format ([`RunDir`]):
    /// `RUN/checkpoints/step-N[/adapter]`, or `RUN/adapter` of a run directory at `step`.
    pub fn of(adapter: &Path, step: Option<u64>) -> Option<Self> {
        if let Some(c) = RunDir::checkpoint_of(adapter) {
            return Some(Self { run: c.run.path().display().to_string(), step: c.step as u64 });
        }
        let run = RunDir::new(adapter.parent()?);
        (adapter.file_name()? == "adapter" && run.has_run())
            .then(|| Some(Self { run: run.path().display().to_string(), step: step? }))
            .flatten()
    }
}

impl RunRecord {
    /// The training run of the record's adapter: the typed `adapter_checkpoint`, else (records
    /// written before it) read from the adapter path; `None` for the base model.
    pub fn adapter_run(&self) -> Option<String> {
        match (&self.adapter_checkpoint, &self.adapter) {
            (Some(c), _) => Some(c.run.clone()),
            (None, Some(a)) => Some(legacy_adapter_run(a)),
            (None, None) => None,
        }
    }

    /// The adapter's training step: the typed checkpoint's, else `checkpoint_step`.
    pub fn adapter_step(&self) -> Option<u64> {
        self.adapter_checkpoint.as_ref().map(|c| c.step).or(self.checkpoint_step)
    }

    /// Numbers a bench run can produce: counts that add up, finite rates, valid parameters.
    /// A record that fails is reported as a bad line, never shown.
    pub fn validate(&self) -> Result<()> {
        let m = &self.metrics;
        self.params.validate(u32::MAX as usize).map_err(|e| anyhow::anyhow!("params: {e}"))?;
        if m.correct > m.n {
            anyhow::bail!("metrics: correct ({}) exceeds n ({})", m.correct, m.n);
        }
        let rates = [
            ("accuracy", m.accuracy),
            ("accuracy_ci[0]", m.accuracy_ci[0]),
            ("accuracy_ci[1]", m.accuracy_ci[1]),
        ];
        for (name, v) in rates {
            if !(0.0..=1.0).contains(&v) {
                anyhow::bail!("metrics.{name} is {v}, not in [0, 1]");
            }
        }
        for (name, v) in [("edit_intensity", m.edit_intensity), ("tpf", m.tpf), ("wall_s", m.wall_s)] {
            if !(v.is_finite() && v >= 0.0) {
                anyhow::bail!("metrics.{name} is {v}, not a finite number >= 0");
            }
        }
        Ok(())
    }
}

/// One suite of one bench run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    /// Shared by the suites of one `bench` invocation (`20260421-153012-7f3a`).
    pub run_id: String,
    /// UTC, RFC 3339.
    pub time: String,
    pub unix_time: u64,
    pub model: String,
    pub adapter: Option<String>,
    /// Training step of the adapter checkpoint, when it can be told.
    pub checkpoint_step: Option<u64>,
    /// The training run and step the adapter is a checkpoint of, when it came from a run
    /// directory. Records from before it have only `adapter` (see [`RunRecord::adapter_run`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_checkpoint: Option<AdapterCheckpoint>,
    /// Threshold preset the run started from (stored as `q`, `s`, `default`); `params` has
    /// the values.
    pub mode: Mode,
    pub params: DecodeParams,
    pub attention: AttentionMode,
    pub suite: String,
    /// The suite file.
    pub source: String,
    pub format: Format,
    pub chat: bool,
    /// `--limit`, if given.
    pub limit: Option<usize>,
    pub metrics: SuiteMetrics,
    pub items: Vec<ItemOutcome>,
    /// Folder of this suite's traces, relative to the data directory.
    pub traces: String,
    /// Set when this record scored one shard of the suite (`bench --shard i/N`); `results
    /// merge` joins the shards into one record without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemOutcome {
    pub id: String,
    /// Line in the suite file.
    pub line: usize,
    pub correct: bool,
    pub predicted: Option<String>,
    pub gold: String,
    /// Token F1 (text answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// Final-digit transcription error subtype, when the item is one.
    #[serde(default)]
    pub final_digit: Option<DigitError>,
    /// Right at some step, wrong at the end.
    #[serde(default)]
    pub over_corrected: bool,
    /// `(block, step)` after which the answer was first right.
    #[serde(default)]
    pub first_right: Option<(usize, usize)>,
    #[serde(default)]
    pub harmful_edits: usize,
    #[serde(default)]
    pub helpful_edits: usize,
    #[serde(default)]
    pub churn: usize,
    pub edits: usize,
    /// Edits inside the answer span (generated tokens up to the first EOS); the rest of
    /// `edits` fell in the EOS padding after it. `None` in records from before the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_edits: Option<usize>,
    /// T2M remasks (0 under T2T).
    #[serde(default)]
    pub remasks: usize,
    pub tokens: usize,
    pub forwards: usize,
    pub wall_ms: f64,
    /// Saved trace, relative to the session data directory.
    pub trace: String,
    /// Set when the item could not be decoded (it is then left out of the metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Other accepted answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// How the item is scored, so the trace can be re-judged without the suite file
    /// ([`super::results::item_findings`]).
    #[serde(default)]
    pub scorer: Option<Scorer>,
}

/// Counts of final-digit transcription errors by subtype.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitErrorCounts {
    pub total: usize,
    pub substituted: usize,
    pub extra: usize,
    pub dropped: usize,
    pub marker: usize,
    #[serde(default)]
    pub other: usize,
}

/// One suite's numbers: the `--json` interface (field names are fixed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteMetrics {
    pub suite: String,
    /// Items scored (decoded without error).
    pub n: usize,
    /// Malformed lines skipped.
    pub skipped: usize,
    pub accuracy: f64,
    /// 95% Wilson interval.
    pub accuracy_ci: [f64; 2],
    /// T2T edits per 100 generated tokens (over the whole suite).
    pub edit_intensity: f64,
    /// T2M remasks per 100 generated tokens (over the whole suite; 0 under T2T).
    #[serde(default)]
    pub remask_intensity: f64,
    /// `edit_intensity` split: edits inside the answer span and in the EOS padding after it,
    /// each per 100 generated tokens (they add up to `edit_intensity`), the per-item median of
    /// answer-span edits per 100 tokens, and the paper's edits per sample (all edits / items).
    /// `None` when a record predates the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_split: Option<EditSplit>,
    /// Generated tokens per forward (over the whole suite).
    pub tpf: f64,
    pub final_digit_errors: DigitErrorCounts,
    /// Items whose answer was right at some step and wrong at the end.
    pub over_corrected: usize,
    pub harmful_edits: usize,
    pub helpful_edits: usize,
    /// Edits that returned a position to a token it held before (A→B→A).
    pub churn: usize,
    pub wall_s: f64,
    // More fields (not part of the fixed interface).
    #[serde(default)]
    pub correct: usize,
    #[serde(default)]
    pub failed: usize,
    /// Mean token F1 (text suites).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(default)]
    pub edits: usize,
    #[serde(default)]
    pub remasks: usize,
    #[serde(default)]
    pub tokens: usize,
    #[serde(default)]
    pub forwards: usize,
    #[serde(default)]
    pub format: Option<Format>,
}

/// Where the edits fell (see [`SuiteMetrics::edit_split`]; defined in docs/bench.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditSplit {
    pub answer_per_100: f64,
    pub padding_per_100: f64,
    pub answer_median_per_100: f64,
    pub edits_per_sample: f64,
}

impl EditSplit {
    /// `None` unless every item carries its answer-span count.
    fn of(ok: &[&ItemOutcome], tokens: usize) -> Option<Self> {
        let answer: Vec<usize> = ok.iter().map(|o| o.answer_edits).collect::<Option<_>>()?;
        let per_100 = |n: usize, t: usize| if t == 0 { 0.0 } else { 100.0 * n as f64 / t as f64 };
        let in_answer: usize = answer.iter().sum();
        let all: usize = ok.iter().map(|o| o.edits).sum();
        let per_item: Vec<f64> = ok.iter().zip(&answer).map(|(o, &a)| per_100(a, o.tokens)).collect();
        Some(Self {
            answer_per_100: per_100(in_answer, tokens),
            padding_per_100: per_100(all.saturating_sub(in_answer), tokens),
            answer_median_per_100: super::stats::median(&per_item),
            edits_per_sample: if ok.is_empty() { 0.0 } else { all as f64 / ok.len() as f64 },
        })
    }
}

impl SuiteMetrics {
    pub fn from_outcomes(
        suite: &str,
        format: Format,
        skipped: usize,
        items: &[ItemOutcome],
        wall_s: f64,
    ) -> Self {
        let ok: Vec<&ItemOutcome> = items.iter().filter(|o| o.error.is_none()).collect();
        let n = ok.len();
        let correct = ok.iter().filter(|o| o.correct).count();
        let edits: usize = ok.iter().map(|o| o.edits).sum();
        let remasks: usize = ok.iter().map(|o| o.remasks).sum();
        let tokens: usize = ok.iter().map(|o| o.tokens).sum();
        let per_100 = |n: usize| if tokens == 0 { 0.0 } else { 100.0 * n as f64 / tokens as f64 };
        let forwards: usize = ok.iter().map(|o| o.forwards).sum();
        let mut fde = DigitErrorCounts::default();
        for e in ok.iter().filter_map(|o| o.final_digit) {
            fde.total += 1;
            match e {
                DigitError::Substituted => fde.substituted += 1,
                DigitError::Extra => fde.extra += 1,
                DigitError::Dropped => fde.dropped += 1,
                DigitError::Marker => fde.marker += 1,
                DigitError::Other => fde.other += 1,
            }
        }
        let f1s: Vec<f64> = ok.iter().filter_map(|o| o.f1).collect();
        Self {
            suite: suite.to_string(),
            n,
            skipped,
            accuracy: if n == 0 { 0.0 } else { correct as f64 / n as f64 },
            accuracy_ci: wilson(correct, n, Z95),
            edit_intensity: per_100(edits),
            remask_intensity: per_100(remasks),
            edit_split: EditSplit::of(&ok, tokens),
            tpf: if forwards == 0 { 0.0 } else { tokens as f64 / forwards as f64 },
            final_digit_errors: fde,
            over_corrected: ok.iter().filter(|o| o.over_corrected).count(),
            harmful_edits: ok.iter().map(|o| o.harmful_edits).sum(),
            helpful_edits: ok.iter().map(|o| o.helpful_edits).sum(),
            churn: ok.iter().map(|o| o.churn).sum(),
            wall_s,
            correct,
            failed: items.len() - n,
            f1: (!f1s.is_empty()).then(|| f1s.iter().sum::<f64>() / f1s.len() as f64),
            edits,
            remasks,
            tokens,
            forwards,
            format: Some(format),
        }
    }
}

/// What a shard's record says about where it belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    /// Items of the whole (limited) suite, across all shards.
    pub suite_items: usize,
    /// Fingerprint of the whole suite's items (ids, prompts, answers): shards of different
    /// suite files never merge.
    pub suite_hash: String,
}

/// File name for an item's trace: the id with anything but `[A-Za-z0-9._-]` replaced.
pub fn trace_file_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    let s = s.trim_start_matches('.');
    format!("{}.json", if s.is_empty() { "item" } else { s })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (UTC).
pub fn rfc3339(unix: u64) -> String {
    let t = i64::try_from(unix)
        .ok()
        .and_then(|u| time::OffsetDateTime::from_unix_timestamp(u).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The training run of a legacy record's adapter path (no `adapter_checkpoint`): `RUN` for
/// `RUN/checkpoints/step-N/adapter` and `RUN/adapter`; the adapter path itself otherwise. The
/// one place a path is taken apart for it.
fn legacy_adapter_run(adapter: &str) -> String {
    if let Some(c) = RunDir::checkpoint_of(Path::new(adapter)) {
        return c.run.path().display().to_string();
    }
    // Adapters from elsewhere: `…/RUN/adapter`, or a Windows-style path.
    let a = adapter.replace('\\', "/");
    let a = a.trim_end_matches('/');
    if let Some(i) = a.rfind("/checkpoints/") {
        return a[..i].to_string();
    }
    if let Some(run) = a.strip_suffix("/adapter") {
        return run.to_string();
    }
    a.to_string()
}
