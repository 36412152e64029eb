//! The results store: every bench run, one JSON line per (run, suite), in
//! `<session data dir>/results.jsonl`; each append rewrites the file atomically under a lock
//! file, so readers never see half a line and concurrent runs never lose one. Traces live
//! beside it in `bench/<run id>/<suite>/<item>.json`. The query API here is what the results
//! pane uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::record::{ItemOutcome, RunRecord};
use crate::decode::{AttentionMode, Mode};

pub const RESULTS_FILE: &str = "results.jsonl";
/// The results file of a session data directory.
#[derive(Debug, Clone)]
pub struct ResultsStore {
    /// The session data directory (traces are relative to it).
    pub root: PathBuf,
}

/// Records read back, with the lines that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub records: Vec<RunRecord>,
    /// `results.jsonl:LINE: reason`.
    pub bad_lines: Vec<String>,
}

/// A run (all its suites), for listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub time: String,
    pub model: String,
    pub adapter: Option<String>,
    pub checkpoint_step: Option<u64>,
    pub mode: Mode,
    pub attention: AttentionMode,
    /// `(suite, accuracy, n)`.
    pub suites: Vec<(String, f64, usize)>,
}

/// One line of the comparison table: the latest run of one (suite, model, adapter, step,
/// mode, attention), with its accuracy change against the base model's latest run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    pub suite: String,
    pub model: String,
    pub adapter: Option<String>,
    /// The training run an adapter checkpoint belongs to ([`RunRecord::adapter_run`]).
    pub adapter_run: Option<String>,
    pub checkpoint_step: Option<u64>,
    pub mode: Mode,
    pub attention: AttentionMode,
    /// `t2t` or `t2m:STRATEGY@τ` ([`DecodeParams::policy_label`]); T2T and T2M runs are
    /// separate configurations.
    #[serde(default)]
    pub policy: String,
    pub run_id: String,
    pub time: String,
    pub n: usize,
    pub accuracy: f64,
    pub accuracy_ci: [f64; 2],
    /// Accuracy minus the base model's (same suite, model, mode, attention); `None` for the
    /// base itself or when there is no base run.
    pub delta_vs_base: Option<f64>,
    /// 95% interval of `delta_vs_base`, paired over the items both runs scored (Wald interval of
    /// a difference of paired proportions).
    #[serde(default)]
    pub delta_ci: Option<[f64; 2]>,
    /// Exact McNemar p against the base on the same items, Holm-adjusted over every adapter
    /// row of the comparison (the table's family of tests).
    #[serde(default)]
    pub p_holm: Option<f64>,
    pub edit_intensity: f64,
    #[serde(default)]
    pub remask_intensity: f64,
    pub tpf: f64,
    pub final_digit_errors: usize,
    pub over_corrected: usize,
    pub harmful_edits: usize,
    pub helpful_edits: usize,
    pub churn: usize,
    /// Runs of this configuration in the store (the row shows the latest).
    pub runs: usize,
}

/// An item a run got wrong, with where to find its trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingItem {
    pub id: String,
    pub predicted: Option<String>,
    pub gold: String,
    pub final_digit: Option<super::classify::DigitError>,
    pub over_corrected: bool,
    pub harmful_edits: usize,
    pub error: Option<String>,
    pub trace_path: PathBuf,
}

impl ResultsStore {
    pub fn open(data_dir: &Path) -> Self {
        Self { root: data_dir.to_path_buf() }
    }

    pub fn path(&self) -> PathBuf {
        self.root.join(RESULTS_FILE)
    }

    /// Appends records (one line each) atomically, holding `results.lock`.
    pub fn append(&self, records: &[RunRecord]) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let lock_path = self.root.join("results.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let path = self.path();
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        for r in records {
            serde_json::to_writer(&mut bytes, r)?;
            bytes.push(b'\n');
        }
        let res = crate::session::atomic_write(&path, &bytes);
        lock.unlock().ok();
        res
    }

    /// Every record, oldest first; unreadable lines are reported, not fatal. A missing file
    /// is an empty store.
    pub fn load(&self) -> Result<Loaded> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut out = Loaded::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<RunRecord>(line).map_err(anyhow::Error::from).and_then(|r| {
                r.validate()?;
                Ok(r)
            }) {
                Ok(r) => out.records.push(r),
                Err(e) => out.bad_lines.push(format!("{}:{}: {e}", path.display(), i + 1)),
            }
        }
        Ok(out)
    }

    /// Absolute path of an item's trace.
    pub fn trace_path(&self, item: &ItemOutcome) -> PathBuf {
        self.root.join(&item.trace)
    }

    /// Items a record got wrong (or could not decode), in suite order.
    pub fn failing_items(&self, record: &RunRecord) -> Vec<FailingItem> {
        record
            .items
            .iter()
            .filter(|o| !o.correct)
            .map(|o| FailingItem {
                id: o.id.clone(),
                predicted: o.predicted.clone(),
                gold: o.gold.clone(),
                final_digit: o.final_digit,
                over_corrected: o.over_corrected,
                harmful_edits: o.harmful_edits,
                error: o.error.clone(),
                trace_path: self.trace_path(o),
            })
            .collect()
    }
}

/// Re-judges an item's saved trace without the model: which edits were harmful or helpful
/// (block, step, position, tokens), churn, and when the answer was right. `None` for records
/// written without a scorer.
pub fn item_findings(
    item: &ItemOutcome,
    trace: &crate::decode::Trace,
) -> Option<super::classify::TraceFindings> {
    let scorer = item.scorer.as_ref()?;
    let detok = super::classify::trace_detok(trace);
    Some(super::classify::analyse_trace(trace, &detok, &|t| {
        scorer.score(t, &item.gold, &item.aliases).correct
    }))
}

/// Runs, newest first, each with its suites.
pub fn list_runs(records: &[RunRecord]) -> Vec<RunSummary> {
    let mut by_run: BTreeMap<(u64, String), RunSummary> = BTreeMap::new();
    for r in records {
        let s = by_run.entry((r.unix_time, r.run_id.clone())).or_insert_with(|| RunSummary {
            run_id: r.run_id.clone(),
            time: r.time.clone(),
            model: r.model.clone(),
            adapter: r.adapter.clone(),
            checkpoint_step: r.checkpoint_step,
            mode: r.mode,
            attention: r.attention,
            suites: Vec::new(),
        });
        s.suites.push((r.suite.clone(), r.metrics.accuracy, r.metrics.n));
    }
    by_run.into_values().rev().collect()
}

/// The record of `run_id` for `suite`.
pub fn find<'a>(records: &'a [RunRecord], run_id: &str, suite: &str) -> Option<&'a RunRecord> {
    records.iter().rev().find(|r| r.run_id == run_id && r.suite == suite)
}

/// Base vs adapters by checkpoint: the latest run of each configuration, ordered by suite,
/// model, mode, attention, edit policy, then the base first and adapters by name and step.
pub fn compare(records: &[RunRecord], suite: Option<&str>) -> Vec<ComparisonRow> {
    // Adapters: grouped by training run, then by step (base = None sorts first).
    type Key = (String, String, String, String, String, Option<(String, Option<u64>, String)>);
    let mut latest: BTreeMap<Key, (&RunRecord, usize)> = BTreeMap::new();
    for r in records.iter().filter(|r| suite.is_none_or(|s| s == r.suite)) {
        let key = (
            r.suite.clone(),
            r.model.clone(),
            r.mode.label().to_string(),
            r.attention.label().to_string(),
            r.params.policy_label(),
            r.adapter.as_ref().map(|a| (r.adapter_run().unwrap_or_default(), r.adapter_step(), a.clone())),
        );
        let e = latest.entry(key).or_insert((r, 0));
        e.1 += 1;
        if r.unix_time >= e.0.unix_time {
            e.0 = r;
        }
    }
    type Config = (String, String, String, String, String);
    let config = |k: &Key| -> Config { (k.0.clone(), k.1.clone(), k.2.clone(), k.3.clone(), k.4.clone()) };
    let base_of: BTreeMap<Config, &RunRecord> =
        latest.iter().filter(|(k, _)| k.5.is_none()).map(|(k, (r, _))| (config(k), *r)).collect();
    let mut rows: Vec<ComparisonRow> = latest
        .into_iter()
        .map(|(k, (r, runs))| {
            let m = &r.metrics;
            let base = if k.5.is_some() { base_of.get(&config(&k)).copied() } else { None };
            let delta = base.map(|b| m.accuracy - b.metrics.accuracy);
            let paired = base.and_then(|b| paired_vs(b, r));
            ComparisonRow {
                suite: r.suite.clone(),
                model: r.model.clone(),
                adapter: r.adapter.clone(),
                adapter_run: r.adapter_run(),
                checkpoint_step: r.adapter_step(),
                mode: r.mode,
                attention: r.attention,
                policy: r.params.policy_label(),
                run_id: r.run_id.clone(),
                time: r.time.clone(),
                n: m.n,
                accuracy: m.accuracy,
                accuracy_ci: m.accuracy_ci,
                delta_vs_base: delta,
                delta_ci: paired.map(|p| p.0),
                p_holm: paired.map(|p| p.1),
                edit_intensity: m.edit_intensity,
                remask_intensity: m.remask_intensity,
                tpf: m.tpf,
                final_digit_errors: m.final_digit_errors.total,
                over_corrected: m.over_corrected,
                harmful_edits: m.harmful_edits,
                helpful_edits: m.helpful_edits,
                churn: m.churn,
                runs,
            }
        })
        .collect();
    // The raw p-values sit in `p_holm` until here; adjust them together.
    let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].p_holm.is_some()).collect();
    let adjusted =
        super::stats::holm(&idx.iter().map(|&i| rows[i].p_holm.unwrap_or(1.0)).collect::<Vec<_>>());
    for (&i, p) in idx.iter().zip(adjusted) {
        rows[i].p_holm = Some(p);
    }
    rows
}

/// The paired comparison of `run` against `base` over the items both scored: the 95% interval
/// of the accuracy difference and the exact McNemar p. `None` when no item is shared.
fn paired_vs(base: &RunRecord, run: &RunRecord) -> Option<([f64; 2], f64)> {
    let right: std::collections::HashMap<&str, bool> =
        base.items.iter().filter(|o| o.error.is_none()).map(|o| (o.id.as_str(), o.correct)).collect();
    let (mut only_base, mut only_run, mut n) = (0usize, 0usize, 0usize);
    for o in run.items.iter().filter(|o| o.error.is_none()) {
        let Some(&b) = right.get(o.id.as_str()) else { continue };
        n += 1;
        only_base += usize::from(b && !o.correct);
        only_run += usize::from(!b && o.correct);
    }
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let d = (only_run as f64 - only_base as f64) / nf;
    let var = ((only_run + only_base) as f64 / nf - d * d) / nf;
    let half = super::stats::Z95 * var.max(0.0).sqrt();
    Some(([(d - half).max(-1.0), (d + half).min(1.0)], super::stats::mcnemar_exact(only_base, only_run)))
}

/// `self-0421` for `…/runs/self-0421`.
pub fn short_run(run: &str) -> String {
    Path::new(run).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| run.to_string())
}

/// The table's model / adapter label: `base` or `RUN@STEP`.
pub fn row_label(r: &ComparisonRow) -> String {
    match (&r.adapter_run, r.checkpoint_step) {
        (None, _) => "base".into(),
        (Some(run), Some(s)) => format!("{}@{s}", short_run(run)),
        (Some(run), None) => short_run(run),
    }
}

/// The training step of an adapter checkpoint. Looks in the adapter folder, then its parent
/// (a trainer's `checkpoints/step-N/adapter` or `RUN/adapter`): a `step` / `global_step` field
/// in `state.json`, `run.json`, `trainer_state.json` and the like, else a number in the folder
/// name (`step-500`, `checkpoint-500`, `step_000500`, `ckpt500`).
pub fn checkpoint_step(adapter_dir: &Path) -> Option<u64> {
    let dirs = [Some(adapter_dir), adapter_dir.parent().filter(|p| !p.as_os_str().is_empty())];
    for dir in dirs.into_iter().flatten() {
        if let Some(s) = step_in(dir) {
            return Some(s);
        }
    }
    None
}

fn step_in(dir: &Path) -> Option<u64> {
    for f in [
        "state.json",
        "checkpoint.json",
        "trainer_state.json",
        "run.json",
        "status.json",
        "adapter_config.json",
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(f)) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        for k in ["step", "global_step", "checkpoint_step"] {
            if let Some(s) = v.get(k).and_then(serde_json::Value::as_u64) {
                return Some(s);
            }
        }
    }
    let name = dir.file_name()?.to_str()?.to_ascii_lowercase();
    for prefix in ["checkpoint", "step", "ckpt"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let digits = rest.trim_start_matches(['-', '_']);
            if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                return digits.parse().ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::record::{RESULTS_VERSION, SuiteMetrics, rfc3339};
    use crate::bench::suite::Format;
    use crate::decode::DecodeParams;
    use crate::decode::Mode;

    fn record(
        run: &str,
        t: u64,
        suite: &str,
        adapter: Option<&str>,
        step: Option<u64>,
        acc: f64,
    ) -> RunRecord {
        let mut metrics = SuiteMetrics::from_outcomes(suite, Format::World, 0, &[], 1.0);
        metrics.accuracy = acc;
        metrics.n = 10;
        RunRecord {
            version: RESULTS_VERSION,
            run_id: run.into(),
            time: rfc3339(t),
            unix_time: t,
            model: "embedded:draftscope-tiny".into(),
            adapter: adapter.map(String::from),
            checkpoint_step: step,
            adapter_checkpoint: None,
            mode: Mode::Q,
            params: DecodeParams::preset(Mode::Q, 1, 2),
            attention: AttentionMode::BlockCausal,
            suite: suite.into(),
            source: "x.jsonl".into(),
            format: Format::World,
            chat: true,
            limit: None,
            metrics,
            items: Vec::new(),
            traces: format!("bench/{run}/{suite}"),
            shard: None,
        }
    }

    #[test]
    fn append_then_load_round_trips_and_reports_bad_lines() {
        let d = tempfile::tempdir().unwrap();
        let store = ResultsStore::open(d.path());
        assert!(store.load().unwrap().records.is_empty());
        let a = record("r1", 100, "arith", None, None, 0.5);
        store.append(std::slice::from_ref(&a)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(store.path())
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{broken"))
            .unwrap();
        let b = record("r2", 200, "arith", Some("runs/x/checkpoint-500"), Some(500), 0.7);
        store.append(std::slice::from_ref(&b)).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.records, vec![a, b]);
        assert_eq!(loaded.bad_lines.len(), 1);
        assert!(loaded.bad_lines[0].contains("results.jsonl:2:"), "{}", loaded.bad_lines[0]);
    }

    #[test]
    fn the_mode_is_an_enum_and_records_written_with_mode_strings_load() {
        let mut v = serde_json::to_value(record("r1", 100, "arith", None, None, 0.5)).unwrap();
        assert_eq!(v["mode"], "q");
        for (text, mode) in [("q", Mode::Q), ("s", Mode::S), ("default", Mode::Default)] {
            v["mode"] = text.into();
            let r: RunRecord = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(r.mode, mode);
        }
    }

    #[test]
    fn compare_puts_base_first_and_adapters_by_step_with_deltas() {
        let recs = vec![
            record("r1", 100, "arith", None, None, 0.40),
            record("r2", 200, "arith", Some("a"), Some(1000), 0.55),
            record("r3", 300, "arith", Some("a"), Some(500), 0.50),
            record("r4", 400, "arith", None, None, 0.45),
            record("r4", 400, "facts", None, None, 0.80),
        ];
        let rows = compare(&recs, Some("arith"));
        assert_eq!(rows[1].adapter_run.as_deref(), Some("a"));
        let got: Vec<(Option<u64>, f64, Option<f64>, usize)> =
            rows.iter().map(|r| (r.checkpoint_step, r.accuracy, r.delta_vs_base, r.runs)).collect();
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].0, got[0].1, got[0].2, got[0].3), (None, 0.45, None, 2));
        assert_eq!((got[1].0, got[2].0), (Some(500), Some(1000)));
        assert!(close(got[1].2, 0.05) && close(got[2].2, 0.10));
        assert_eq!(compare(&recs, None).len(), 4);
        let runs = list_runs(&recs);
        assert_eq!(runs[0].run_id, "r4");
        assert_eq!(runs[0].suites.len(), 2);
        assert_eq!(find(&recs, "r4", "facts").unwrap().metrics.accuracy, 0.80);
    }

    #[test]
    fn failing_items_point_at_their_traces() {
        let d = tempfile::tempdir().unwrap();
        let store = ResultsStore::open(d.path());
        let mut r = record("r1", 100, "arith", None, None, 0.5);
        let ok: ItemOutcome = serde_json::from_value(serde_json::json!({
            "id": "a", "line": 1, "correct": true, "predicted": "5", "gold": "5",
            "edits": 0, "tokens": 3, "forwards": 2, "wall_ms": 1.0, "trace": "bench/r1/arith/a.json"
        }))
        .unwrap();
        let mut bad = ok.clone();
        bad.id = "b".into();
        bad.correct = false;
        bad.trace = "bench/r1/arith/b.json".into();
        r.items = vec![ok, bad];
        let f = store.failing_items(&r);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].trace_path, d.path().join("bench/r1/arith/b.json"));
    }

    #[test]
    fn checkpoint_step_from_files_or_folder_names() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("checkpoint-500");
        std::fs::create_dir(&c).unwrap();
        assert_eq!(checkpoint_step(&c), Some(500));
        // The trainer's layout: RUN/checkpoints/step-N/adapter, state.json beside it.
        let a = d.path().join("run/checkpoints/step-300/adapter");
        std::fs::create_dir_all(&a).unwrap();
        assert_eq!(checkpoint_step(&a), Some(300));
        std::fs::write(a.parent().unwrap().join("state.json"), "{\"step\": 301}").unwrap();
        assert_eq!(checkpoint_step(&a), Some(301));
        // RUN/adapter with RUN/run.json.
        let r = d.path().join("run2/adapter");
        std::fs::create_dir_all(&r).unwrap();
        assert_eq!(checkpoint_step(&r), None);
        std::fs::write(d.path().join("run2/run.json"), "{\"step\": 1200}").unwrap();
        assert_eq!(checkpoint_step(&r), Some(1200));
    }

    #[test]
    fn adapters_of_one_training_run_sort_by_step() {
        let recs = vec![
            record("r1", 100, "arith", Some("runs/x/checkpoints/step-1000/adapter"), Some(1000), 0.6),
            record("r2", 200, "arith", Some("runs/x/checkpoints/step-250/adapter"), Some(250), 0.5),
            record("r3", 300, "arith", Some("runs/x/adapter"), Some(1500), 0.7),
        ];
        let rows = compare(&recs, None);
        assert_eq!(rows.iter().map(|r| r.checkpoint_step.unwrap()).collect::<Vec<_>>(), [250, 1000, 1500]);
        assert!(rows.iter().all(|r| r.adapter_run.as_deref() == Some("runs/x")));
        let elsewhere = record("r4", 400, "arith", Some("some/dir"), None, 0.7);
        assert_eq!(elsewhere.adapter_run().as_deref(), Some("some/dir"));
    }

    #[test]
    fn a_typed_adapter_checkpoint_names_the_run_and_step_and_legacy_records_still_load() {
        // New: written when benching a run's checkpoint; the path is not taken apart.
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("runs/odd name");
        let ckpt = run.join("checkpoints/step-40/adapter");
        let c = crate::bench::record::AdapterCheckpoint::of(&ckpt, None).unwrap();
        assert_eq!((c.run.as_str(), c.step), (run.display().to_string().as_str(), 40));
        let mut new = record("r1", 100, "arith", Some("/elsewhere/copy-of-adapter"), None, 0.6);
        new.adapter_checkpoint = Some(c.clone());
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.contains("\"adapter_checkpoint\":{\"run\":"), "{text}");
        // Legacy: a path-only line (no `adapter_checkpoint`) loads; its run is read from the path.
        let legacy = record("r2", 200, "arith", Some("runs/x/checkpoints/step-250/adapter"), Some(250), 0.5);
        let legacy_line = serde_json::to_string(&legacy).unwrap();
        assert!(!legacy_line.contains("adapter_checkpoint"));
        let store = ResultsStore::open(d.path());
        std::fs::write(store.path(), format!("{text}\n{legacy_line}\n")).unwrap();
        let loaded = store.load().unwrap().records;
        assert_eq!(loaded, vec![new.clone(), legacy.clone()]);
        let rows = compare(&loaded, None);
        let runs: Vec<(Option<String>, Option<u64>)> =
            rows.iter().map(|r| (r.adapter_run.clone(), r.checkpoint_step)).collect();
        assert!(runs.contains(&(Some(run.display().to_string()), Some(40))), "{runs:?}");
        assert!(runs.contains(&(Some("runs/x".to_string()), Some(250))), "{runs:?}");
        // A run's final adapter (RUN/adapter beside run.json) takes the step it was benched at.
        std::fs::create_dir_all(run.join("adapter")).unwrap();
        std::fs::write(run.join("run.json"), "{}").unwrap();
        let fin = crate::bench::record::AdapterCheckpoint::of(&run.join("adapter"), Some(60)).unwrap();
        assert_eq!(fin.step, 60);
        assert_eq!(crate::bench::record::AdapterCheckpoint::of(Path::new("/x/adapter"), Some(1)), None);
    }

    #[test]
    fn the_results_table_names_each_adapters_run_not_a_clipped_path() {
        let long = "/home/someone/experiments/2026-11/draftscope/runs";
        let recs = vec![
            record("r1", 100, "arith", None, None, 0.40),
            record(
                "r2",
                200,
                "arith",
                Some(&format!("{long}/self/checkpoints/step-30/adapter")),
                Some(30),
                0.5,
            ),
            record(
                "r3",
                300,
                "arith",
                Some(&format!("{long}/random/checkpoints/step-30/adapter")),
                Some(30),
                0.6,
            ),
        ];
        let table = crate::bench::cli::comparison_table(&compare(&recs, None));
        let label = |l: &str| l.split_whitespace().nth(2).map(String::from);
        let labels: Vec<_> = table.lines().skip(1).filter_map(label).collect();
        assert_eq!(labels, ["(base)", "random", "self"], "{table}");
    }

    #[test]
    fn t2t_and_t2m_runs_are_separate_rows_each_against_its_own_base() {
        let t2m = |mut r: RunRecord| {
            r.params = r.params.with_remask(crate::decode::RemaskStrategy::LowProb);
            r.metrics.remask_intensity = 12.5;
            r
        };
        let recs = vec![
            record("r1", 100, "arith", None, None, 0.40),
            t2m(record("r2", 200, "arith", None, None, 0.50)),
            t2m(record("r3", 300, "arith", Some("a"), Some(10), 0.60)),
        ];
        let rows = compare(&recs, None);
        let got: Vec<_> =
            rows.iter().map(|r| (r.policy.as_str(), r.run_id.as_str(), r.remask_intensity)).collect();
        assert_eq!(
            got,
            [("t2m:low_prob@0.50", "r2", 12.5), ("t2m:low_prob@0.50", "r3", 12.5), ("t2t", "r1", 0.0)]
        );
        assert!((rows[1].delta_vs_base.unwrap() - 0.10).abs() < 1e-9, "vs the T2M base, not T2T");
        let table = crate::bench::cli::comparison_table(&rows);
        assert!(table.lines().next().unwrap().contains("policy") && table.contains("rmsk/100"), "{table}");
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_776_780_612), "2026-04-21T14:10:12Z");
    }
}
