//! The results pane's state (`r`): the bench results store as a table (suite × model /
//! adapter / checkpoint), per-run curves across checkpoints, the failing items of the selected
//! row, and bench jobs started from the pane. Drawing is in `panels::results`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::effect::{Effect, ProcessOp};
use super::line_edit::LineEdit;
use super::screens::{Ctx, Outcome, PaneKey, Screen};
use crate::bench::results::{self, ComparisonRow, FailingItem, Loaded, ResultsStore};
use crate::session::run_dir::{Launch, LaunchKind, pid_runs, quote_arg, split_args};
use crate::train::snapshot::tail_lines;

/// Where the demo results set lives (relative to the working directory, like `sessions/`).
pub const DEMO_DIR: &str = "sessions/results";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResFocus {
    Table,
    Failing,
}

/// A `draftscope bench` started from the pane.
#[derive(Debug, Clone)]
pub struct BenchJob {
    pub pid: u32,
    pub log: PathBuf,
    pub what: String,
    pub started: Instant,
}

/// One curve of a chart: a training run's points across checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    /// `(step, accuracy)`.
    pub accuracy: Vec<(f64, f64)>,
    /// `(step, edit intensity)`.
    pub edits: Vec<(f64, f64)>,
}

/// The charts of a suite: each run's curve and the base model's reference values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curves {
    pub suite: String,
    pub runs: Vec<Curve>,
    pub base_accuracy: Option<f64>,
    pub base_edits: Option<f64>,
}

pub struct ResultsState {
    /// The session data directory (its `results.jsonl` updates live).
    pub data_dir: PathBuf,
    /// The demo set shown when the data directory has no results yet.
    pub demo_dir: PathBuf,
    pub live: Option<Result<Loaded, String>>,
    pub demo: Option<Result<Loaded, String>>,
    /// `None`: the data directory when it has results, else the demo set; `d` picks.
    pub use_demo: Option<bool>,
    pub rows: Vec<ComparisonRow>,
    pub sel: usize,
    pub focus: ResFocus,
    pub failing: Vec<FailingItem>,
    pub fsel: usize,
    /// `b`: the bench flags being typed.
    pub bench_input: Option<LineEdit>,
    pub jobs: Vec<BenchJob>,
    /// Last lines of finished jobs' logs, newest first.
    pub job_notes: Vec<String>,
    /// When the shown store last changed.
    pub updated: Option<Instant>,
}

impl ResultsState {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            demo_dir: PathBuf::from(DEMO_DIR),
            live: None,
            demo: None,
            use_demo: None,
            rows: Vec::new(),
            sel: 0,
            focus: ResFocus::Table,
            failing: Vec::new(),
            fsel: 0,
            bench_input: None,
            jobs: Vec::new(),
            job_notes: Vec::new(),
            updated: None,
        }
    }

    fn has_records(l: &Option<Result<Loaded, String>>) -> bool {
        matches!(l, Some(Ok(x)) if !x.records.is_empty())
    }

    /// Whether the demo set is on screen.
    pub fn showing_demo(&self) -> bool {
        match self.use_demo {
            Some(d) => d,
            None => !Self::has_records(&self.live) && Self::has_records(&self.demo),
        }
    }

    /// The store on screen.
    pub fn root(&self) -> &Path {
        if self.showing_demo() { &self.demo_dir } else { &self.data_dir }
    }

    pub fn loaded(&self) -> Option<&Result<Loaded, String>> {
        if self.showing_demo() { self.demo.as_ref() } else { self.live.as_ref() }
    }

    pub fn records(&self) -> &[crate::bench::RunRecord] {
        match self.loaded() {
            Some(Ok(l)) => &l.records,
            _ => &[],
        }
    }

    pub fn source_line(&self) -> String {
        let root = self.root().display().to_string();
        match self.loaded() {
            None => format!("results: reading {root}…"),
            Some(Err(e)) => format!("results: {e}"),
            Some(Ok(l)) if l.records.is_empty() => format!(
                "results: none yet in {root} — b runs a benchmark; training runs with eval every K add theirs"
            ),
            Some(Ok(l)) => format!(
                "results: {} rows from {} records in {root}{}",
                self.rows.len(),
                l.records.len(),
                if self.showing_demo() { " (demo set; d: your results)" } else { "" }
            ),
        }
    }

    /// A store the poller (re)read.
    pub fn set_loaded(&mut self, root: &Path, loaded: Result<Loaded, String>) {
        if root == self.data_dir {
            self.live = Some(loaded);
        } else if root == self.demo_dir {
            self.demo = Some(loaded);
        } else {
            return;
        }
        if root == self.root() {
            self.updated = Some(Instant::now());
        }
        self.recompute();
    }

    fn row_key(r: &ComparisonRow) -> (String, String, Option<String>, Option<u64>, crate::decode::Mode) {
        (r.suite.clone(), r.model.clone(), r.adapter.clone(), r.checkpoint_step, r.mode)
    }

    /// Rebuilds the table, keeping the selected row.
    pub fn recompute(&mut self) {
        let key = self.rows.get(self.sel).map(Self::row_key);
        self.rows = results::compare(self.records(), None);
        self.sel = key
            .and_then(|k| self.rows.iter().position(|r| Self::row_key(r) == k))
            .unwrap_or(0)
            .min(self.rows.len().saturating_sub(1));
        self.refresh_failing();
    }

    fn refresh_failing(&mut self) {
        let store = ResultsStore::open(self.root());
        self.failing = self
            .rows
            .get(self.sel)
            .and_then(|r| results::find(self.records(), &r.run_id, &r.suite))
            .map(|rec| store.failing_items(rec))
            .unwrap_or_default();
        self.fsel = self.fsel.min(self.failing.len().saturating_sub(1));
    }

    pub fn selected_row(&self) -> Option<&ComparisonRow> {
        self.rows.get(self.sel)
    }

    /// The charts for the selected row's suite (same model, mode and attention).
    pub fn curves(&self) -> Curves {
        let Some(sel) = self.selected_row() else { return Curves::default() };
        let same = |r: &&ComparisonRow| {
            r.suite == sel.suite && r.model == sel.model && r.mode == sel.mode && r.attention == sel.attention
        };
        let mut c = Curves { suite: sel.suite.clone(), ..Default::default() };
        for r in self.rows.iter().filter(same) {
            match (&r.adapter_run, r.checkpoint_step) {
                (None, _) => {
                    c.base_accuracy = Some(r.accuracy);
                    c.base_edits = Some(r.edit_intensity);
                }
                (Some(run), Some(step)) => {
                    let name = results::short_run(run);
                    let i = match c.runs.iter().position(|x| x.name == name) {
                        Some(i) => i,
                        None => {
                            c.runs.push(Curve { name, accuracy: Vec::new(), edits: Vec::new() });
                            c.runs.len() - 1
                        }
                    };
                    c.runs[i].accuracy.push((step as f64, r.accuracy));
                    c.runs[i].edits.push((step as f64, r.edit_intensity));
                }
                (Some(_), None) => {}
            }
        }
        for r in &mut c.runs {
            r.accuracy.sort_by(|a, b| a.0.total_cmp(&b.0));
            r.edits.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        c
    }

    /// The bench flags `b` proposes: the selected row's suite and adapter.
    pub fn default_bench_flags(&self) -> String {
        let mut s = String::from("--suite arith,facts --limit 40");
        if let Some(r) = self.selected_row() {
            if !r.model.starts_with("embedded") && !r.model.is_empty() {
                s.push_str(&format!(" --model {}", quote_arg(&r.model)));
            }
            if let Some(a) = &r.adapter {
                s.push_str(&format!(" --adapter {}", quote_arg(a)));
            }
        }
        s
    }

    /// The launch of `draftscope bench FLAGS` writing to the data directory. The flags split
    /// like shell words: quote a path with spaces.
    pub fn bench_launch(&self, exe: &Path, flags: &str) -> anyhow::Result<Launch> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut args = vec!["bench".to_string(), "--sessions".into(), self.data_dir.display().to_string()];
        args.extend(split_args(flags)?);
        Ok(Launch {
            exe: exe.to_path_buf(),
            args,
            data_dir: self.data_dir.clone(),
            log: self.data_dir.join("bench-logs").join(format!("bench-{now}.log")),
            kind: LaunchKind::Bench,
        })
    }

    /// Drops finished jobs, keeping the last line of their logs.
    pub fn refresh_jobs(&mut self) {
        let mut notes = Vec::new();
        self.jobs.retain(|j| {
            if pid_runs(j.pid, &["bench"]) {
                return true;
            }
            let tail = tail_lines(&j.log, 3);
            notes.push(format!("{} finished: {}", j.what, tail.last().cloned().unwrap_or_default()));
            false
        });
        for n in notes {
            self.job_notes.insert(0, n);
        }
        self.job_notes.truncate(3);
    }

    /// Selects the adapter row furthest from its base (the comparison worth reading first).
    pub fn select_notable_row(&mut self) {
        let best =
            self.rows.iter().enumerate().filter_map(|(i, r)| r.delta_vs_base.map(|d| (i, d.abs()))).fold(
                None::<(usize, f64)>,
                |acc, (i, d)| match acc {
                    Some((_, bd)) if bd >= d => acc,
                    _ => Some((i, d)),
                },
            );
        if let Some((i, _)) = best
            && self.sel != i
        {
            self.sel = i;
            self.recompute();
        }
    }

    /// A key on the results screen.
    pub fn on_key(&mut self, k: PaneKey, ctx: &Ctx) -> Vec<Outcome> {
        if self.bench_input.is_some() {
            return self.bench_key(k, ctx);
        }
        match k {
            PaneKey::Esc => match self.focus {
                ResFocus::Failing => self.focus = ResFocus::Table,
                ResFocus::Table => return vec![Outcome::Show(Screen::Decode)],
            },
            PaneKey::Tab | PaneKey::BackTab => {
                self.focus = if self.focus == ResFocus::Table && !self.failing.is_empty() {
                    ResFocus::Failing
                } else {
                    ResFocus::Table
                }
            }
            PaneKey::Up
            | PaneKey::Char('k')
            | PaneKey::Down
            | PaneKey::Char('j')
            | PaneKey::PageUp
            | PaneKey::PageDown => {
                let d: i64 = match k {
                    PaneKey::Up | PaneKey::Char('k') => -1,
                    PaneKey::Down | PaneKey::Char('j') => 1,
                    PaneKey::PageUp => -10,
                    _ => 10,
                };
                match self.focus {
                    ResFocus::Table => {
                        let n = self.rows.len() as i64;
                        if n > 0 {
                            self.sel = (self.sel as i64 + d).clamp(0, n - 1) as usize;
                            self.fsel = 0;
                            self.refresh_failing();
                        }
                    }
                    ResFocus::Failing => {
                        let n = self.failing.len() as i64;
                        if n > 0 {
                            self.fsel = (self.fsel as i64 + d).clamp(0, n - 1) as usize;
                        }
                    }
                }
            }
            PaneKey::Enter => match self.focus {
                ResFocus::Table => {
                    if self.failing.is_empty() {
                        let msg = match self.selected_row() {
                            Some(r) => format!("{} on {}: no failing items", results::row_label(r), r.suite),
                            None => "no results".into(),
                        };
                        return vec![Outcome::Info(msg)];
                    }
                    self.focus = ResFocus::Failing;
                    let n = self.failing.len();
                    return vec![Outcome::Info(format!(
                        "{n} failing items: ↑↓ choose, Enter opens the trace"
                    ))];
                }
                ResFocus::Failing => return self.open_trace(),
            },
            PaneKey::Char('b') => {
                let flags = self.default_bench_flags();
                self.bench_input = Some(LineEdit::new(&flags));
            }
            PaneKey::Char('d') => {
                let demo = !self.showing_demo();
                self.use_demo = Some(demo);
                self.sel = 0;
                self.recompute();
                return vec![Outcome::Info(self.source_line())];
            }
            _ => {}
        }
        Vec::new()
    }

    fn bench_key(&mut self, k: PaneKey, ctx: &Ctx) -> Vec<Outcome> {
        let Some(ed) = self.bench_input.as_mut() else { return Vec::new() };
        match k {
            PaneKey::Esc => self.bench_input = None,
            PaneKey::ClearLine => *ed = LineEdit::default(),
            PaneKey::Enter => {
                let flags = ed.text.clone();
                self.bench_input = None;
                let l = match self.bench_launch(ctx.exe, &flags) {
                    Ok(l) => l,
                    Err(e) => return vec![Outcome::Error(format!("bench flags: {e}"))],
                };
                if !l.args.iter().any(|a| a == "--suite" || a.starts_with("--suite=")) {
                    return vec![Outcome::Error("bench needs --suite (e.g. --suite arith,facts)".into())];
                }
                let what = format!("bench {flags}");
                return vec![Outcome::Effect(Effect::Process(ProcessOp::Spawn { launch: l, what }))];
            }
            other => {
                if let Some(a) = other.line_action() {
                    ed.apply(a);
                }
            }
        }
        Vec::new()
    }

    /// Opens the selected failing item's trace in the decode view.
    fn open_trace(&self) -> Vec<Outcome> {
        let Some(item) = self.failing.get(self.fsel) else { return Vec::new() };
        let path = item.trace_path.clone();
        if !path.exists() {
            return vec![Outcome::Error(format!("trace of {} not found: {}", item.id, path.display()))];
        }
        vec![
            Outcome::Info(format!("opening {}…", path.display())),
            Outcome::Effect(Effect::Open(path)),
            Outcome::Show(Screen::Decode),
        ]
    }

    /// Keys shown in the results screen's footer.
    pub fn footer_keys(&self) -> &'static [(&'static str, &'static str)] {
        if self.bench_input.is_some() {
            return &[("type", "bench flags"), ("Enter", "start"), ("Esc", "cancel")];
        }
        match self.focus {
            ResFocus::Table => &[
                ("↑↓", "row"),
                ("Enter/Tab", "failing items"),
                ("b", "run a bench"),
                ("d", "demo / yours"),
                ("t", "training"),
                ("Esc", "decode view"),
                ("q", "quit"),
            ],
            ResFocus::Failing => &[
                ("↑↓", "item"),
                ("Enter", "open its trace"),
                ("Tab/Esc", "table"),
                ("b", "run a bench"),
                ("t", "training"),
                ("q", "quit"),
            ],
        }
    }
}
