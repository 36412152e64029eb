//! The training panel's state (`t`): the new-run form, the list of runs under
//! `<data dir>/runs/`, and what the keys do there. Drawing is in `panels::training`; reading
//! run directories and starting processes in [`super::runs`].

use std::path::PathBuf;

use super::effect::{Effect, ProcessOp};
use super::line_edit::LineEdit;
use super::screens::{Outcome, PaneKey};
use crate::model::DeviceKind;
use crate::model::lora::DEFAULT_TARGETS;
use crate::session::RunDir;
use crate::session::run_dir::{Launch, LaunchKind, runs_dir};
use crate::train::Objective;
use crate::train::run::KindDefaults;
use crate::train::snapshot::{self, RunSnapshot, RunState};

/// The form's rows, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRow {
    Objective,
    Base,
    Name,
    Steps,
    Lr,
    Rank,
    Alpha,
    Targets,
    CheckpointEvery,
    EvalEvery,
    Device,
    Extra,
    Launch,
}

pub const FORM_ROWS: [FormRow; 13] = [
    FormRow::Objective,
    FormRow::Base,
    FormRow::Name,
    FormRow::Steps,
    FormRow::Lr,
    FormRow::Rank,
    FormRow::Alpha,
    FormRow::Targets,
    FormRow::CheckpointEvery,
    FormRow::EvalEvery,
    FormRow::Device,
    FormRow::Extra,
    FormRow::Launch,
];

/// A new LoRA run, as `draftscope train` flags.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainForm {
    pub objective: Objective,
    /// Base model (directory or HF id); empty = the embedded model.
    pub base: String,
    /// Run directory name under `<data dir>/runs/`.
    pub name: String,
    pub steps: usize,
    pub lr: f64,
    pub rank: usize,
    pub alpha: f64,
    /// Comma-separated module suffixes.
    pub targets: String,
    pub checkpoint_every: usize,
    pub eval_every: usize,
    pub device: DeviceKind,
    /// More `train` flags, whitespace-separated (`--data corpus.jsonl --seq-len 64`).
    pub extra: String,
}

impl Default for TrainForm {
    fn default() -> Self {
        let mut f = Self {
            objective: Objective::SelfDraft,
            base: String::new(),
            name: String::new(),
            steps: KindDefaults::LORA.steps,
            lr: KindDefaults::LORA.lr,
            rank: 8,
            alpha: 16.0,
            targets: DEFAULT_TARGETS.join(","),
            checkpoint_every: KindDefaults::LORA.checkpoint_every,
            eval_every: KindDefaults::LORA.eval_every,
            device: DeviceKind::Cpu,
            extra: String::new(),
        };
        f.name = f.default_name();
        f
    }
}

pub fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::Random => "random",
        Objective::SelfDraft => "self",
    }
}

impl TrainForm {
    /// `self-20260421-153012`.
    pub fn default_name(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let t = crate::bench::record::rfc3339(now);
        let stamp: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
        format!(
            "{}-{}-{}",
            objective_name(self.objective),
            &stamp[..8.min(stamp.len())],
            &stamp[8.min(stamp.len())..]
        )
    }

    pub fn label(row: FormRow) -> &'static str {
        match row {
            FormRow::Objective => "objective",
            FormRow::Base => "base model",
            FormRow::Name => "run name",
            FormRow::Steps => "steps",
            FormRow::Lr => "learning rate",
            FormRow::Rank => "rank",
            FormRow::Alpha => "alpha",
            FormRow::Targets => "targets",
            FormRow::CheckpointEvery => "checkpoint every",
            FormRow::EvalEvery => "eval every",
            FormRow::Device => "device",
            FormRow::Extra => "extra flags",
            FormRow::Launch => "",
        }
    }

    pub fn value(&self, row: FormRow) -> String {
        match row {
            FormRow::Objective => objective_name(self.objective).into(),
            FormRow::Base => {
                if self.base.is_empty() {
                    "embedded".into()
                } else {
                    self.base.clone()
                }
            }
            FormRow::Name => self.name.clone(),
            FormRow::Steps => self.steps.to_string(),
            FormRow::Lr => format!("{:e}", self.lr),
            FormRow::Rank => self.rank.to_string(),
            FormRow::Alpha => format!("{}", self.alpha),
            FormRow::Targets => self.targets.clone(),
            FormRow::CheckpointEvery => self.checkpoint_every.to_string(),
            FormRow::EvalEvery => {
                if self.eval_every == 0 {
                    "off".into()
                } else {
                    self.eval_every.to_string()
                }
            }
            FormRow::Device => self.device.to_string(),
            FormRow::Extra => self.extra.clone(),
            FormRow::Launch => "▶ launch".into(),
        }
    }

    /// The text an edit of `row` starts from.
    pub fn edit_text(&self, row: FormRow) -> String {
        match row {
            FormRow::Base => self.base.clone(),
            FormRow::EvalEvery => self.eval_every.to_string(),
            r => self.value(r),
        }
    }

    /// ←/→ on a row: cycle choices, step numbers. `cuda` is the reason CUDA is unavailable.
    pub fn adjust(&mut self, row: FormRow, d: i32, cuda: Option<&str>) -> Result<(), String> {
        let up = d > 0;
        match row {
            FormRow::Objective => {
                self.objective = match self.objective {
                    Objective::Random => Objective::SelfDraft,
                    Objective::SelfDraft => Objective::Random,
                };
                self.name = self.default_name();
            }
            FormRow::Steps => {
                self.steps = if up { self.steps + 50 } else { self.steps.saturating_sub(50).max(1) };
                if !up && self.steps < 50 && self.steps > 1 {
                    self.steps = 1;
                }
            }
            FormRow::Lr => self.lr = if up { self.lr * 2.0 } else { self.lr / 2.0 },
            FormRow::Rank => self.rank = if up { (self.rank * 2).min(256) } else { (self.rank / 2).max(1) },
            FormRow::Alpha => self.alpha = if up { self.alpha * 2.0 } else { (self.alpha / 2.0).max(0.125) },
            FormRow::CheckpointEvery => {
                self.checkpoint_every =
                    if up { self.checkpoint_every + 10 } else { self.checkpoint_every.saturating_sub(10) }
            }
            FormRow::EvalEvery => {
                self.eval_every = if up { self.eval_every + 50 } else { self.eval_every.saturating_sub(50) }
            }
            FormRow::Device => match self.device {
                DeviceKind::Cuda(_) => self.device = DeviceKind::Cpu,
                DeviceKind::Cpu => match cuda {
                    Some(why) => return Err(format!("cuda unavailable: {why}")),
                    None => self.device = DeviceKind::Cuda(0),
                },
            },
            FormRow::Base | FormRow::Name | FormRow::Targets | FormRow::Extra | FormRow::Launch => {
                return Err("Enter edits this field".into());
            }
        }
        Ok(())
    }

    /// Sets `row` from typed text.
    pub fn set(&mut self, row: FormRow, text: &str, cuda: Option<&str>) -> Result<(), String> {
        let t = text.trim();
        let num = |what: &str| -> Result<usize, String> {
            t.parse::<usize>().map_err(|_| format!("{what}: `{t}` is not a whole number"))
        };
        match row {
            FormRow::Objective => {
                self.objective = match t {
                    "self" => Objective::SelfDraft,
                    "random" => Objective::Random,
                    _ => return Err("objective: self or random".into()),
                }
            }
            FormRow::Base => self.base = if t == "embedded" { String::new() } else { t.to_string() },
            FormRow::Name => {
                if t.is_empty() || t.contains(['/', '\\']) || t.starts_with('.') {
                    return Err("run name: a folder name (no slashes)".into());
                }
                self.name = t.to_string();
            }
            FormRow::Steps => {
                let n = num("steps")?;
                if n == 0 {
                    return Err("steps: at least 1".into());
                }
                self.steps = n;
            }
            FormRow::Lr => {
                self.lr = t
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or(format!("learning rate: `{t}` is not a positive number"))?
            }
            FormRow::Rank => {
                let n = num("rank")?;
                if n == 0 {
                    return Err("rank: at least 1".into());
                }
                self.rank = n;
            }
            FormRow::Alpha => {
                self.alpha = t
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or(format!("alpha: `{t}` is not a positive number"))?
            }
            FormRow::Targets => {
                if t.is_empty() {
                    return Err("targets: at least one module suffix".into());
                }
                self.targets = t.replace(' ', "");
            }
            FormRow::CheckpointEvery => self.checkpoint_every = num("checkpoint every")?,
            FormRow::EvalEvery => self.eval_every = if t == "off" { 0 } else { num("eval every")? },
            FormRow::Device => match t.parse::<DeviceKind>() {
                Ok(DeviceKind::Cpu) => self.device = DeviceKind::Cpu,
                Ok(d) => match cuda {
                    Some(why) => return Err(format!("cuda unavailable: {why}")),
                    None => self.device = d,
                },
                Err(e) => return Err(format!("device: {e}")),
            },
            FormRow::Extra => self.extra = t.to_string(),
            FormRow::Launch => {}
        }
        Ok(())
    }

    /// The `draftscope` arguments for this run in `dir`: its configuration is in the run's
    /// config file ([`Self::config`]); the extra flags override it on the command line.
    pub fn args(&self, dir: &std::path::Path) -> Vec<String> {
        let config = crate::session::RunDir::new(dir).config_file();
        let mut a: Vec<String> =
            vec!["train".into(), "--config".into(), config.display().to_string(), "--json".into()];
        a.extend(self.extra.split_whitespace().map(String::from));
        a.extend(["--out".into(), dir.display().to_string()]);
        a
    }

    /// The run configuration of the form's fields, as `train` builds it from the same flags.
    pub fn config(&self) -> Result<crate::train::RunConfig, String> {
        crate::train::cli::lora_run_config_from_args(&self.flags()).map_err(|e| format!("{e:#}"))
    }

    /// The form's fields as `train` flags.
    fn flags(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["--objective".into(), objective_name(self.objective).into()];
        if !self.base.is_empty() {
            a.extend(["--base".into(), self.base.clone()]);
        }
        a.extend([
            "--steps".into(),
            self.steps.to_string(),
            "--lr".into(),
            format!("{}", self.lr),
            "--rank".into(),
            self.rank.to_string(),
            "--alpha".into(),
            format!("{}", self.alpha),
            "--targets".into(),
            self.targets.clone(),
            "--checkpoint-every".into(),
            self.checkpoint_every.to_string(),
            "--eval-every".into(),
            self.eval_every.to_string(),
            "--device".into(),
            self.device.to_string(),
        ]);
        a
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainFocus {
    Runs,
    Form,
}

pub struct TrainingState {
    /// The session data directory; runs live in `runs/` under it.
    pub data_dir: PathBuf,
    /// The binary launched for `train` (the running one).
    pub exe: PathBuf,
    pub runs: Vec<RunSnapshot>,
    /// Selected run, by name (survives re-sorting).
    pub selected: Option<String>,
    pub focus: TrainFocus,
    pub form: TrainForm,
    pub row: usize,
    /// A form field being typed.
    pub editing: Option<LineEdit>,
    /// Why `--device cuda` cannot work here (`None`: it can).
    pub cuda: Option<String>,
    /// Whether the runs folder has been read at least once.
    pub scanned: bool,
}

impl TrainingState {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("draftscope")),
            runs: Vec::new(),
            selected: None,
            focus: TrainFocus::Runs,
            form: TrainForm::default(),
            row: 0,
            editing: None,
            cuda: crate::model::cuda_unavailable(),
            scanned: false,
        }
    }

    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_ref()?;
        self.runs.iter().position(|r| &r.name == name)
    }

    pub fn selected_run(&self) -> Option<&RunSnapshot> {
        self.selected_index().map(|i| &self.runs[i])
    }

    /// New snapshots from the poller; keeps the selection (else selects the newest run).
    pub fn set_runs(&mut self, runs: Vec<RunSnapshot>) {
        self.runs = runs;
        self.scanned = true;
        if self.selected_index().is_none() {
            self.selected = self.runs.first().map(|r| r.name.clone());
        }
    }

    fn move_sel(&mut self, d: i64) {
        if self.runs.is_empty() {
            return;
        }
        let i = self.selected_index().unwrap_or(0) as i64;
        let j = (i + d).clamp(0, self.runs.len() as i64 - 1) as usize;
        self.selected = Some(self.runs[j].name.clone());
    }

    pub fn form_row(&self) -> FormRow {
        FORM_ROWS[self.row.min(FORM_ROWS.len() - 1)]
    }

    /// The launch for the form's run (or why not).
    pub fn launch_for_form(&self) -> Result<Launch, String> {
        let dir = runs_dir(&self.data_dir).join(&self.form.name);
        if crate::session::RunDir::new(&dir).is_taken() {
            return Err(format!("a run named {} exists: change the run name (n)", self.form.name));
        }
        if self.form.device.is_cuda()
            && let Some(why) = &self.cuda
        {
            return Err(format!("cuda unavailable: {why}"));
        }
        // The run's configuration goes into its directory; the process reads it back.
        let config = self.form.config()?;
        let file = crate::session::RunDir::new(&dir).config_file();
        let json = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        crate::session::atomic_write(&file, &json).map_err(|e| format!("{e:#}"))?;
        Ok(Launch {
            exe: self.exe.clone(),
            args: self.form.args(&dir),
            data_dir: self.data_dir.clone(),
            log: dir.join(RunDir::LOG_FILE),
            kind: LaunchKind::Train { run: crate::session::RunDir::new(dir), start_step: 0, resume: false },
        })
    }

    /// A key on the training screen.
    pub fn on_key(&mut self, k: PaneKey) -> Vec<Outcome> {
        if self.editing.is_some() {
            return self.edit_key(k);
        }
        match k {
            PaneKey::Tab | PaneKey::BackTab => {
                self.focus = if self.focus == TrainFocus::Runs { TrainFocus::Form } else { TrainFocus::Runs }
            }
            PaneKey::Up | PaneKey::Char('k') => match self.focus {
                TrainFocus::Runs => self.move_sel(-1),
                TrainFocus::Form => self.row = self.row.saturating_sub(1),
            },
            PaneKey::Down | PaneKey::Char('j') => match self.focus {
                TrainFocus::Runs => self.move_sel(1),
                TrainFocus::Form => self.row = (self.row + 1).min(FORM_ROWS.len() - 1),
            },
            PaneKey::Left | PaneKey::Right | PaneKey::Char('h' | 'l' | '+' | '-' | '=')
                if self.focus == TrainFocus::Form =>
            {
                let d = if matches!(k, PaneKey::Left | PaneKey::Char('h' | '-')) { -1 } else { 1 };
                let row = self.form_row();
                let cuda = self.cuda.clone();
                return vec![match self.form.adjust(row, d, cuda.as_deref()) {
                    Ok(()) => Outcome::Info(format!("{} = {}", TrainForm::label(row), self.form.value(row))),
                    Err(e) => Outcome::Error(e),
                }];
            }
            PaneKey::Enter => match self.focus {
                TrainFocus::Form if self.form_row() == FormRow::Launch => return self.launch(),
                TrainFocus::Form => {
                    let row = self.form_row();
                    self.editing = Some(LineEdit::new(&self.form.edit_text(row)));
                }
                TrainFocus::Runs => {
                    return vec![match self.selected_run() {
                        Some(r) if r.state.can_resume() => {
                            Outcome::Info("R resumes this run from its last checkpoint".into())
                        }
                        Some(r) => Outcome::Info(r.state.sentence()),
                        None => {
                            self.focus = TrainFocus::Form;
                            Outcome::Info("no runs yet: fill in the form and launch (L)".into())
                        }
                    }];
                }
            },
            PaneKey::Char('n') => {
                self.focus = TrainFocus::Form;
                self.form.name = self.form.default_name();
                self.row = FORM_ROWS.iter().position(|&r| r == FormRow::Name).unwrap_or(0);
                return vec![Outcome::Info(
                    "new run: ↑↓ choose a field, ←→ change it, Enter types it; L launches".into(),
                )];
            }
            PaneKey::Char('L') => return self.launch(),
            PaneKey::Char('R') => return self.resume(),
            PaneKey::Char('c') => return self.cancel(),
            PaneKey::Char('a') => return self.use_adapter(),
            _ => {}
        }
        Vec::new()
    }

    fn edit_key(&mut self, k: PaneKey) -> Vec<Outcome> {
        let Some(ed) = self.editing.as_mut() else { return Vec::new() };
        match k {
            PaneKey::Esc => self.editing = None,
            PaneKey::ClearLine => *ed = LineEdit::default(),
            PaneKey::Enter => {
                let text = ed.text.clone();
                self.editing = None;
                let row = self.form_row();
                let cuda = self.cuda.clone();
                return vec![match self.form.set(row, &text, cuda.as_deref()) {
                    Ok(()) => Outcome::Info(format!("{} = {}", TrainForm::label(row), self.form.value(row))),
                    Err(e) => Outcome::Error(e),
                }];
            }
            other => {
                if let Some(a) = other.line_action() {
                    ed.apply(a);
                }
            }
        }
        Vec::new()
    }

    /// Launches the form's run.
    pub fn launch(&mut self) -> Vec<Outcome> {
        match self.launch_for_form() {
            Ok(l) => {
                let name = self.form.name.clone();
                self.selected = Some(name.clone());
                self.focus = TrainFocus::Runs;
                // The next launch gets a fresh name.
                self.form.name = format!("{name}-2");
                let what = format!("training run {name}");
                vec![Outcome::Effect(Effect::Process(ProcessOp::Spawn { launch: l, what }))]
            }
            Err(e) => vec![Outcome::Error(e)],
        }
    }

    fn resume(&self) -> Vec<Outcome> {
        let Some(r) = self.selected_run() else {
            return vec![Outcome::Error("no run selected".into())];
        };
        if !r.state.can_resume() {
            let why = match &r.state {
                s if s.is_live() => "it is still running".to_string(),
                RunState::Finished { .. } => "it has finished".to_string(),
                s => s.sentence(),
            };
            return vec![Outcome::Error(format!("cannot resume {}: {why}", r.name))];
        }
        let l = snapshot::resume_launch(&self.exe, &self.data_dir, r);
        let what = format!(
            "resuming {} from {}",
            r.name,
            r.last_checkpoint().map_or("the start".to_string(), |s| format!("checkpoint step {s}"))
        );
        vec![Outcome::Effect(Effect::Process(ProcessOp::Spawn { launch: l, what }))]
    }

    fn cancel(&self) -> Vec<Outcome> {
        let Some(r) = self.selected_run() else {
            return vec![Outcome::Error("no run selected".into())];
        };
        vec![match r.state.pid() {
            Some(pid) => {
                let what = format!("{} (pid {pid})", r.name);
                Outcome::Effect(Effect::Process(ProcessOp::Interrupt { pid, what }))
            }
            None => Outcome::Error(format!("{} is not running: {}", r.name, r.state.sentence())),
        }]
    }

    /// Sets the decode view's adapter to the selected run's (final adapter, else last
    /// checkpoint).
    fn use_adapter(&self) -> Vec<Outcome> {
        let Some(r) = self.selected_run() else { return Vec::new() };
        let fin = r.dir.join("adapter");
        let path = if fin.join("adapter_config.json").exists() {
            Some(fin)
        } else {
            r.last_checkpoint().map(|s| r.dir.join(format!("checkpoints/step-{s}/adapter")))
        };
        match path {
            Some(p) => vec![
                Outcome::SetAdapter(p.clone()),
                Outcome::Info(format!("decode view: adapter {} (applied on the next run)", p.display())),
            ],
            None => vec![Outcome::Error(format!("{} has no adapter or checkpoint yet", r.name))],
        }
    }

    /// Keys shown in the training screen's footer.
    pub fn footer_keys(&self) -> &'static [(&'static str, &'static str)] {
        if self.editing.is_some() {
            return &[("type", "value"), ("Enter", "set"), ("Esc", "cancel")];
        }
        match self.focus {
            TrainFocus::Runs => &[
                ("↑↓", "run"),
                ("Tab", "form"),
                ("n", "new"),
                ("L", "launch"),
                ("R", "resume"),
                ("c", "cancel"),
                ("a", "use adapter"),
                ("r", "results"),
                ("Esc", "decode view"),
                ("q", "quit"),
            ],
            TrainFocus::Form => &[
                ("↑↓", "field"),
                ("←→", "change"),
                ("Enter", "type / launch"),
                ("L", "launch"),
                ("Tab", "runs"),
                ("r", "results"),
                ("Esc", "decode view"),
            ],
        }
    }
}
