//! Run directories as the workbench (and anything else watching a run) sees them: read-only
//! snapshots of `run.json`, `metrics.jsonl` (tailed incrementally), `checkpoints/`, the launch
//! record and the log, with the run's state derived from them and from whether its process is
//! alive; and a [`Scanner`] that re-reads what changed, for a poller to report as [`PollEvent`]s.
//!
//! ```text
//! <data dir>/runs/<name>/run.json        written by the trainer (status, pid, step, evals)
//! <data dir>/runs/<name>/metrics.jsonl   one line per step (a partial last line is skipped)
//! <data dir>/runs/<name>/launch.json     written by the launcher: pid, command, start step
//! <data dir>/runs/<name>/train.log       the process's stdout + stderr (appended on resume)
//! <data dir>/results.jsonl               the bench results store
//! ```
//!
//! The state shown for a run is derived, never trusted: `run.json` saying `running` with a
//! dead pid is a stopped run ("stopped — last checkpoint step 300, resume?"). The file format
//! itself is `session::RunDir`'s; this module only reads it.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::bench::results::{Loaded, ResultsStore};
use crate::session::RunDir;
use crate::session::run_dir::{Launch, LaunchKind, LaunchRecord, pid_runs, runs_dir};
use crate::train::run::{Metrics, RunFile, RunKind, Status, read_run_file};

/// Steps after each (re)start left out of the ETA: the first steps of a process are slower.
pub const WARMUP_STEPS: usize = 2;
/// Lines of the log kept in a snapshot.
pub const LOG_LINES: usize = 200;

/// A run's state, derived from its files and whether its process is alive.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Launched; the trainer has not written its status yet (loading the model, the data).
    Starting {
        pid: u32,
    },
    Running {
        pid: u32,
    },
    /// `run.json` says running but the process is gone (killed, crashed, machine rebooted).
    Stopped {
        step: usize,
        checkpoint: Option<usize>,
    },
    Cancelled {
        step: usize,
        checkpoint: Option<usize>,
    },
    Finished {
        step: usize,
    },
    Failed {
        error: String,
        checkpoint: Option<usize>,
    },
    /// The process exited before writing `run.json` (see the log).
    LaunchFailed,
    /// `run.json` exists but cannot be read.
    Unreadable(String),
}

impl RunState {
    pub fn is_live(&self) -> bool {
        matches!(self, RunState::Starting { .. } | RunState::Running { .. })
    }

    pub fn can_resume(&self) -> bool {
        matches!(self, RunState::Stopped { .. } | RunState::Cancelled { .. } | RunState::Failed { .. })
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            RunState::Starting { pid } | RunState::Running { pid } => Some(*pid),
            _ => None,
        }
    }

    /// One word for the runs list.
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Starting { .. } => "starting",
            RunState::Running { .. } => "running",
            RunState::Stopped { .. } => "stopped",
            RunState::Cancelled { .. } => "cancelled",
            RunState::Finished { .. } => "finished",
            RunState::Failed { .. } => "failed",
            RunState::LaunchFailed => "no start",
            RunState::Unreadable(_) => "unreadable",
        }
    }

    /// The honest sentence for the run's detail view.
    pub fn sentence(&self) -> String {
        let ck = |c: &Option<usize>| match c {
            Some(s) => format!("last checkpoint step {s}, resume? (R)"),
            None => "no checkpoint, resume starts over (R)".into(),
        };
        match self {
            RunState::Starting { pid } => format!("starting (pid {pid}): loading model and data…"),
            RunState::Running { pid } => format!("running (pid {pid}) — c cancels (it checkpoints)"),
            RunState::Stopped { step, checkpoint } => {
                format!("stopped at step {step} (process gone) — {}", ck(checkpoint))
            }
            RunState::Cancelled { step, checkpoint } => {
                format!("cancelled at step {step} — {}", ck(checkpoint))
            }
            RunState::Finished { step } => format!("finished: {step} steps; adapter in adapter/"),
            RunState::Failed { error, checkpoint } => format!("failed: {error} — {}", ck(checkpoint)),
            RunState::LaunchFailed => "the process exited before the run started — see the log".into(),
            RunState::Unreadable(e) => format!("run.json unreadable: {e}"),
        }
    }
}

/// Everything the panel shows about one run directory.
#[derive(Debug, Clone)]
pub struct RunSnapshot {
    pub name: String,
    pub dir: PathBuf,
    pub run: Option<RunFile>,
    pub launch: Option<LaunchRecord>,
    pub metrics: Vec<Metrics>,
    /// Metric lines that could not be read (a torn write, a crash mid-line).
    pub bad_metric_lines: usize,
    pub checkpoints: Vec<usize>,
    pub log_tail: Vec<String>,
    pub state: RunState,
    /// Modification time of the newest of run.json / metrics.jsonl / launch.json.
    pub modified: Option<SystemTime>,
    /// Wall-clock seconds per step of the running process as the poller watched it (includes
    /// checkpoint and evaluation pauses); `None` until it has watched for a while.
    pub wall_secs_per_step: Option<f64>,
}

impl RunSnapshot {
    /// The latest step reached (metrics run ahead of run.json, which is written at checkpoints).
    pub fn step(&self) -> usize {
        let m = self.metrics.last().map_or(0, |m| m.step);
        m.max(self.run.as_ref().map_or(0, |r| r.step))
    }

    pub fn total(&self) -> Option<usize> {
        self.run.as_ref().map(|r| r.config.steps)
    }

    pub fn objective(&self) -> Option<&'static str> {
        let r = self.run.as_ref()?;
        Some(match r.config.noise.objective {
            crate::train::Objective::Random => "random",
            crate::train::Objective::SelfDraft => "self",
        })
    }

    pub fn is_pretrain(&self) -> bool {
        matches!(self.run.as_ref().map(|r| &r.config.run), Some(RunKind::Pretrain { .. }))
    }

    pub fn last_checkpoint(&self) -> Option<usize> {
        self.checkpoints.last().copied()
    }

    /// Progress and ETA for the gauge.
    pub fn progress(&self) -> Progress {
        let total = self.total().unwrap_or(0);
        let start = self.launch.as_ref().map_or(0, |l| l.start_step);
        let mut p = progress(&self.metrics, self.step(), total, start, self.state.is_live());
        if let Some(w) = self.wall_secs_per_step
            && self.state.is_live()
        {
            p.secs_per_step = Some(w);
            p.eta_s = Some(w * total.saturating_sub(p.step) as f64);
        }
        p
    }
}

/// The gauge's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub step: usize,
    pub total: usize,
    pub ratio: f64,
    /// Seconds per step: the poller's wall clock once it has watched the process for a while
    /// (checkpoint and eval pauses included), else the median of the trainer's own recent step
    /// times in this process, warm-up left out.
    pub secs_per_step: Option<f64>,
    pub eta_s: Option<f64>,
}

/// Progress of a run at `step` of `total`. The rate comes from the per-step times
/// (`elapsed_s` differences) of steps done by the current process — from `start_step` on,
/// after its first [`WARMUP_STEPS`] — so steps done before a resume and the slow first steps
/// of a process do not skew it; the median of the last 20 resists checkpoint and eval pauses.
pub fn progress(metrics: &[Metrics], step: usize, total: usize, start_step: usize, live: bool) -> Progress {
    let ratio = if total == 0 { 0.0 } else { (step as f64 / total as f64).clamp(0.0, 1.0) };
    let durations = |skip: usize| -> Vec<f64> {
        metrics
            .windows(2)
            .filter(|w| w[1].step == w[0].step + 1 && w[1].step > start_step + skip)
            .map(|w| w[1].elapsed_s - w[0].elapsed_s)
            .filter(|d| d.is_finite() && *d > 0.0)
            .collect()
    };
    let mut d = durations(WARMUP_STEPS);
    if d.is_empty() {
        d = durations(0);
    }
    let d: Vec<f64> = d.iter().rev().take(20).copied().collect();
    let secs_per_step = (!d.is_empty()).then(|| crate::bench::stats::median(&d));
    let eta_s = if live { secs_per_step.map(|s| s * total.saturating_sub(step) as f64) } else { None };
    Progress { step, total, ratio, secs_per_step, eta_s }
}

/// `draftscope train --resume DIR` for a stopped run.
pub fn resume_launch(exe: &Path, data_dir: &Path, snap: &RunSnapshot) -> Launch {
    let sub = if snap.is_pretrain() { "pretrain" } else { "train" };
    Launch {
        exe: exe.to_path_buf(),
        args: vec![sub.into(), "--resume".into(), snap.dir.display().to_string(), "--json".into()],
        data_dir: data_dir.to_path_buf(),
        log: snap.dir.join(RunDir::LOG_FILE),
        kind: LaunchKind::Train {
            run: RunDir::new(&snap.dir),
            start_step: snap.last_checkpoint().unwrap_or(0),
            resume: true,
        },
    }
}

/// Reads one run directory. Never fails: whatever is missing or broken shows in the state.
pub fn read_run(dir: &Path) -> RunSnapshot {
    let mut cache = MetricsCache::default();
    read_run_cached(dir, &mut cache)
}

/// Incremental reader of a growing `metrics.jsonl`.
#[derive(Debug, Clone, Default)]
pub struct MetricsCache {
    /// Bytes consumed (up to the end of the last complete line).
    offset: u64,
    metrics: Vec<Metrics>,
    bad: usize,
}

impl MetricsCache {
    /// Reads what was appended since the last call; starts over when the file shrank (a
    /// resume trims it). A last line without its newline is left for the next call.
    pub fn update(&mut self, path: &Path) -> (&[Metrics], usize) {
        let Ok(mut f) = std::fs::File::open(path) else {
            *self = Self::default();
            return (&self.metrics, self.bad);
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            *self = Self::default();
        }
        if len > self.offset && f.seek(SeekFrom::Start(self.offset)).is_ok() {
            let mut buf = Vec::new();
            if f.take(len - self.offset).read_to_end(&mut buf).is_ok() {
                let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                for line in buf[..complete].split(|&b| b == b'\n') {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Metrics>(line) {
                        Ok(m) => {
                            // A resume rewrites the tail: a step at or before the last one
                            // replaces what followed it.
                            while self.metrics.last().is_some_and(|l| l.step >= m.step) {
                                self.metrics.pop();
                            }
                            self.metrics.push(m)
                        }
                        Err(_) => self.bad += 1,
                    }
                }
                self.offset += complete as u64;
            }
        }
        (&self.metrics, self.bad)
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The last `n` lines of a file (reads at most the last 64 KiB).
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    // Progress bars redraw with \r: keep what the line shows last.
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| l.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or("").trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let k = out.len().saturating_sub(n);
    out.drain(..k);
    out
}

fn read_run_cached(dir: &Path, cache: &mut MetricsCache) -> RunSnapshot {
    let name = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let rd = RunDir::new(dir);
    let run_path = rd.run_file();
    let (run, run_err) = if run_path.exists() {
        match read_run_file(dir) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        }
    } else {
        (None, None)
    };
    let launch = rd.read_launch();
    let (metrics, bad) = cache.update(&rd.metrics_file());
    let metrics = metrics.to_vec();
    let checkpoints: Vec<usize> = rd.checkpoints().into_iter().map(|(s, _)| s).collect();
    let log_tail = tail_lines(&rd.log_file(), LOG_LINES);
    let modified =
        [run_path.clone(), rd.metrics_file(), rd.launch_file()].iter().filter_map(|p| mtime(p)).max();
    let last_ck = checkpoints.last().copied();
    let metrics_step = metrics.last().map_or(0, |m| m.step);
    let subs = ["train", "pretrain"];
    // A launch newer than the run file's process: the trainer has not taken over yet.
    let pending_launch = launch.as_ref().filter(|l| {
        run.as_ref().is_none_or(|r| r.pid != l.pid || r.status != Status::Running) && pid_runs(l.pid, &subs)
    });
    let state = if let Some(e) = run_err {
        match launch.as_ref().filter(|l| pid_runs(l.pid, &subs)) {
            Some(l) => RunState::Starting { pid: l.pid },
            None => RunState::Unreadable(e),
        }
    } else if let Some(l) = pending_launch {
        RunState::Starting { pid: l.pid }
    } else {
        match &run {
            None => match &launch {
                Some(_) => RunState::LaunchFailed,
                None => RunState::Unreadable("no run.json".into()),
            },
            Some(r) => {
                let step = r.step.max(metrics_step);
                match r.status {
                    Status::Running if pid_runs(r.pid, &subs) => RunState::Running { pid: r.pid },
                    Status::Running => RunState::Stopped { step, checkpoint: last_ck },
                    Status::Cancelled => RunState::Cancelled { step, checkpoint: last_ck },
                    Status::Finished => RunState::Finished { step },
                    Status::Failed => RunState::Failed {
                        error: r.error.clone().unwrap_or_else(|| "unknown error".into()),
                        checkpoint: last_ck,
                    },
                }
            }
        }
    };
    RunSnapshot {
        name,
        dir: dir.to_path_buf(),
        run,
        launch,
        metrics,
        bad_metric_lines: bad,
        checkpoints,
        log_tail,
        state,
        modified,
        wall_secs_per_step: None,
    }
}

/// When the poller saw a running process reach each step: `(seen, step, pid)`.
#[derive(Debug, Clone, Default)]
struct WallClock {
    seen: Vec<(std::time::Instant, usize, u32)>,
}

/// How long the poller watches before it trusts its own clock over the trainer's step times.
const WALL_MIN_SPAN_S: f64 = 10.0;
/// The window of recent observations the wall-clock rate uses.
const WALL_WINDOW_S: f64 = 120.0;

impl WallClock {
    fn observe(&mut self, snap: &RunSnapshot) -> Option<f64> {
        let RunState::Running { pid } = snap.state else {
            self.seen.clear();
            return None;
        };
        let step = snap.step();
        let start = snap.launch.as_ref().filter(|l| l.pid == pid).map_or(0, |l| l.start_step);
        if self.seen.last().is_some_and(|l| l.2 != pid || l.1 > step) {
            self.seen.clear();
        }
        // The first steps of a process are slow: start watching after them.
        if step > start + WARMUP_STEPS && self.seen.last().is_none_or(|l| l.1 != step) {
            self.seen.push((std::time::Instant::now(), step, pid));
        }
        let now = std::time::Instant::now();
        while self.seen.len() > 2 && now.duration_since(self.seen[0].0).as_secs_f64() > WALL_WINDOW_S {
            self.seen.remove(0);
        }
        let (a, b) = (self.seen.first()?, self.seen.last()?);
        let span = b.0.duration_since(a.0).as_secs_f64();
        (span >= WALL_MIN_SPAN_S && b.1 > a.1).then(|| span / (b.1 - a.1) as f64)
    }
}

/// Re-reads run directories and the results files, keeping what it can between calls.
#[derive(Debug, Default)]
pub struct Scanner {
    pub data_dir: PathBuf,
    metrics: HashMap<PathBuf, MetricsCache>,
    clocks: HashMap<PathBuf, WallClock>,
    results_sig: HashMap<PathBuf, (u64, Option<SystemTime>)>,
}

/// What the poller reports.
#[derive(Debug, Clone)]
pub enum PollEvent {
    /// Every run directory, newest first.
    Runs(Vec<RunSnapshot>),
    /// A results store that changed (or was seen for the first time).
    Results { root: PathBuf, loaded: Box<std::result::Result<Loaded, String>> },
}

impl Scanner {
    pub fn new(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_path_buf(), ..Default::default() }
    }

    /// Every run under `<data dir>/runs/`, newest first.
    pub fn runs(&mut self) -> Vec<RunSnapshot> {
        let root = runs_dir(&self.data_dir);
        let Ok(rd) = std::fs::read_dir(&root) else { return Vec::new() };
        let mut dirs: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.is_dir() && RunDir::new(p).is_taken()).collect();
        dirs.sort();
        self.metrics.retain(|k, _| dirs.contains(k));
        self.clocks.retain(|k, _| dirs.contains(k));
        let mut out: Vec<RunSnapshot> = dirs
            .iter()
            .map(|d| {
                let c = self.metrics.entry(d.clone()).or_default();
                let mut snap = read_run_cached(d, c);
                snap.wall_secs_per_step = self.clocks.entry(d.clone()).or_default().observe(&snap);
                snap
            })
            .collect();
        out.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
        out
    }

    /// The records of the store at `root` when its file changed since the last call.
    pub fn results_if_changed(&mut self, root: &Path) -> Option<std::result::Result<Loaded, String>> {
        let store = ResultsStore::open(root);
        let sig = std::fs::metadata(store.path()).map(|m| (m.len(), m.modified().ok())).unwrap_or((0, None));
        if self.results_sig.get(root) == Some(&sig) {
            return None;
        }
        self.results_sig.insert(root.to_path_buf(), sig);
        Some(store.load().map_err(|e| format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(step: usize, elapsed: f64) -> Metrics {
        Metrics {
            step,
            loss: 1.0,
            loss_m2t: Some(1.0),
            loss_t2t: Some(0.5),
            lr: 1e-3,
            grad_norm: 1.0,
            tokens_per_s: 100.0,
            elapsed_s: elapsed,
        }
    }

    #[test]
    fn eta_leaves_out_warmup_and_steps_before_the_resume() {
        // Steps 1..=10 at 1 s (step 1 slow), resumed at 10: steps 11, 12 slow (warm-up), then 2 s.
        let mut ms: Vec<Metrics> = (1..=10).map(|s| m(s, 5.0 + s as f64)).collect();
        let mut t = 15.0;
        for (s, dt) in [(11, 9.0), (12, 7.0), (13, 2.0), (14, 2.0), (15, 2.0)] {
            t += dt;
            ms.push(m(s, t));
        }
        let p = progress(&ms, 15, 100, 10, true);
        assert_eq!(p.secs_per_step, Some(2.0));
        assert_eq!(p.eta_s, Some(170.0));
        assert_eq!(p.ratio, 0.15);
        // Not live: no ETA.
        assert_eq!(progress(&ms, 15, 100, 10, false).eta_s, None);
        // Only warm-up steps so far: use them (median of 9 s and 7 s) rather than nothing.
        assert_eq!(progress(&ms[..12], 12, 100, 10, true).secs_per_step, Some(8.0));
    }

    #[test]
    fn metrics_cache_skips_a_partial_line_then_reads_it_when_complete() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("metrics.jsonl");
        let l1 = serde_json::to_string(&m(1, 1.0)).unwrap();
        let l2 = serde_json::to_string(&m(2, 2.0)).unwrap();
        std::fs::write(&p, format!("{l1}\n{}", &l2[..10])).unwrap();
        let mut c = MetricsCache::default();
        assert_eq!(c.update(&p).0.len(), 1);
        std::fs::write(&p, format!("{l1}\n{l2}\n")).unwrap();
        let (ms, bad) = c.update(&p);
        assert_eq!((ms.len(), bad), (2, 0));
        // Trimmed by a resume: starts over.
        std::fs::write(&p, format!("{l1}\n")).unwrap();
        assert_eq!(c.update(&p).0.len(), 1);
    }
}
