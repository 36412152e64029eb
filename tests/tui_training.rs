//! The training panel: styled-buffer tests on a fixed run directory (symbols and colours),
//! honest states for broken runs (dead pid, truncated metrics, missing checkpoint, unreadable
//! run.json), keys, and real runs launched, cancelled and resumed through the panel's actions.

mod common;

use common::screen::{find, row, screen};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use draftscope::model::lora::{AdapterConfig, DEFAULT_TARGETS};
use draftscope::session::RunDir;
use draftscope::session::run_dir::{LaunchRecord, runs_dir};
use draftscope::train::run::{Metrics, RunFile};
use draftscope::train::snapshot::{self, PollEvent, RunState, Scanner};
use draftscope::train::{Objective, RunKind, Status, testutil};
use draftscope::tui::app::{Action, App, Effect};
use draftscope::tui::panels::training::{render_detail, render_main};
use draftscope::tui::results::ResultsState;
use draftscope::tui::screens::{PaneKey, Screen};
use draftscope::tui::training::{FORM_ROWS, FormRow, TrainFocus, TrainingState};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};

fn is_braille(s: &str) -> bool {
    s.chars().next().is_some_and(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
}

fn metrics(step: usize, elapsed: f64) -> Metrics {
    Metrics {
        step,
        loss: 3.0 - step as f64 * 0.1,
        loss_m2t: Some(2.5 - step as f64 * 0.1),
        loss_t2t: Some(1.5 - step as f64 * 0.05),
        lr: 1e-3,
        grad_norm: 0.5,
        tokens_per_s: 812.0,
        elapsed_s: elapsed,
    }
}

/// A LoRA run directory: `steps` total, metrics for steps 1..=done at 2 s a step, the given
/// checkpoints, status and pid.
fn write_run(dir: &Path, status: Status, pid: u32, steps: usize, done: usize, checkpoints: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    let targets: Vec<String> = DEFAULT_TARGETS.map(String::from).to_vec();
    let adapter = AdapterConfig::new(8, 16.0, 0.0, &targets, false, "embedded");
    let run = RunKind::Lora { base: None, adapter };
    let config =
        testutil::run_config(run, Objective::SelfDraft, Path::new("c.jsonl"), Path::new("t.json"), steps);
    let rf = RunFile {
        config,
        status,
        pid,
        device: "Cpu".into(),
        versions: Default::default(),
        step: checkpoints.last().copied().unwrap_or(0),
        error: (status == Status::Failed).then(|| "out of memory".into()),
        evals: vec![serde_json::json!({"step": 5, "suite": "arith", "accuracy": 0.45})],
    };
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&rf).unwrap()).unwrap();
    let mut m = String::new();
    for s in 1..=done {
        m.push_str(&serde_json::to_string(&metrics(s, 2.0 * s as f64 + 1.0)).unwrap());
        m.push('\n');
    }
    std::fs::write(dir.join("metrics.jsonl"), m).unwrap();
    for c in checkpoints {
        let ck = dir.join(format!("checkpoints/step-{c}"));
        std::fs::create_dir_all(&ck).unwrap();
        std::fs::write(ck.join("state.json"), format!("{{\"step\": {c}}}")).unwrap();
    }
    std::fs::write(
        dir.join(RunDir::LOG_FILE),
        format!(
            "{}\neval step 5 arith: accuracy 0.450 (n=40)\n",
            serde_json::to_string(&metrics(10, 21.0)).unwrap()
        ),
    )
    .unwrap();
}

/// A pid that is not running.
const DEAD_PID: u32 = 2_000_000_000;

fn running_fixture() -> (tempfile::TempDir, TrainingState) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = runs_dir(tmp.path()).join("self-demo");
    write_run(&dir, Status::Running, DEAD_PID, 100, 10, &[5]);
    let mut snap = snapshot::read_run(&dir);
    // As the poller reports a live trainer.
    snap.state = RunState::Running { pid: 4242 };
    let mut ts = TrainingState::new(tmp.path().to_path_buf());
    ts.set_runs(vec![snap]);
    (tmp, ts)
}

fn draw_main(ts: &TrainingState, w: u16, h: u16) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
    let area = buf.area;
    render_main(&mut buf, area, ts);
    buf
}

#[test]
fn runs_list_shows_a_running_run_in_green_with_its_step() {
    let (_tmp, ts) = running_fixture();
    let buf = draw_main(&ts, 140, 40);
    let (x, y) = find(&buf, "▶ self-demo");
    assert_eq!(buf[(x, y)].fg, Color::Green);
    assert!(row(&buf, y).contains("running"), "{}", row(&buf, y));
    assert!(row(&buf, y).contains("10/100"), "{}", row(&buf, y));
    let (rx, ry) = find(&buf, "running ");
    assert_eq!((buf[(rx, ry)].fg, ry), (Color::Green, y));
    // The selected run is reversed while the list has the focus.
    assert!(buf[(x + 2, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn gauge_shows_steps_percent_and_an_eta_from_the_step_rate() {
    let (_tmp, ts) = running_fixture();
    let buf = draw_main(&ts, 140, 40);
    // 2 s a step, 90 steps left.
    let (x, y) = find(&buf, "10/100 steps (10%) · ETA 3m00s · 2.00 s/step");
    assert_eq!(buf[(x, y)].fg, Color::White);
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    // The filled part of the gauge is green for a running run.
    let left = find(&buf, "▶ running").0;
    let filled = &buf[(left + 1, y)];
    assert_eq!((filled.symbol(), filled.fg), ("█", Color::Green));
}

#[test]
fn detail_shows_tokens_per_second_lr_losses_checkpoints_and_the_last_eval() {
    let (_tmp, ts) = running_fixture();
    let buf = draw_main(&ts, 140, 40);
    let (x, y) = find(&buf, "812 tok/s");
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    assert!(row(&buf, y).contains("lr 1.00e-3  loss 2.000"), "{}", row(&buf, y));
    let (mx, my) = find(&buf, "m2t 1.500");
    assert_eq!(buf[(mx, my)].fg, Color::Cyan);
    let (tx, ty) = find(&buf, "t2t 1.000");
    assert_eq!(buf[(tx, ty)].fg, Color::Magenta);
    let (_, cy) = find(&buf, "checkpoints 5");
    let (ex, ey) = find(&buf, "arith 0.450");
    assert_eq!((ey, buf[(ex, ey)].fg), (cy, Color::Green));
    assert!(row(&buf, cy).contains("eval @5:"), "{}", row(&buf, cy));
}

#[test]
fn loss_charts_draw_m2t_in_cyan_and_t2t_in_magenta() {
    let (_tmp, ts) = running_fixture();
    let buf = draw_main(&ts, 140, 40);
    let (mx, my) = find(&buf, " M2T loss ");
    assert_eq!(buf[(mx + 1, my)].fg, Color::Cyan);
    let (tx, ty) = find(&buf, " T2T loss ");
    assert_eq!(buf[(tx + 1, ty)].fg, Color::Magenta);
    assert_eq!(my, ty);
    let braille = |lo: u16, hi: u16, c: Color| {
        (my + 1..buf.area.height)
            .any(|y| (lo..hi).any(|x| is_braille(buf[(x, y)].symbol()) && buf[(x, y)].fg == c))
    };
    assert!(braille(mx, tx, Color::Cyan), "no cyan M2T curve:\n{}", screen(&buf));
    assert!(braille(tx, buf.area.width, Color::Magenta), "no magenta T2T curve:\n{}", screen(&buf));
}

#[test]
fn log_tail_renders_step_lines_compactly_and_evals_in_green() {
    let (_tmp, ts) = running_fixture();
    let buf = draw_main(&ts, 140, 40);
    find(&buf, "step 10  loss 2.000 (m2t 1.500 t2t 1.000)  lr 1.00e-3  812 tok/s");
    let (x, y) = find(&buf, "eval step 5 arith");
    assert_eq!(buf[(x, y)].fg, Color::Green);
}

#[test]
fn form_lists_every_field_and_greys_out_cuda_with_the_reason_when_unavailable() {
    let (_tmp, mut ts) = running_fixture();
    ts.focus = TrainFocus::Form;
    ts.row = FORM_ROWS.iter().position(|&r| r == FormRow::Steps).unwrap();
    let buf = draw_main(&ts, 140, 40);
    for label in [
        "objective",
        "base model",
        "run name",
        "steps",
        "learning rate",
        "rank",
        "alpha",
        "targets",
        "checkpoint every",
        "eval every",
        "device",
        "extra flags",
    ] {
        find(&buf, label);
    }
    let (x, y) = find(&buf, " steps      ");
    assert!(buf[(x + 1, y)].modifier.contains(Modifier::REVERSED), "selected row is reversed");
    find(&buf, "self");
    find(&buf, "embedded");
    find(&buf, "▶ launch self-");
    let (cx, cy) = find(&buf, "cpu / cuda");
    let cpu = &buf[(cx, cy)];
    assert!(cpu.modifier.contains(Modifier::BOLD));
    let cuda = &buf[(cx + 6, cy)];
    match &ts.cuda {
        Some(why) => {
            assert_eq!(cuda.fg, Color::DarkGray);
            assert!(cuda.modifier.contains(Modifier::CROSSED_OUT));
            let reason: String = format!("({why}").chars().take(12).collect();
            assert!(row(&buf, cy).contains(&reason), "{}", row(&buf, cy));
        }
        None => assert_ne!(cuda.fg, Color::DarkGray),
    }
}

#[test]
fn a_running_status_with_a_dead_pid_reads_as_stopped_at_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    write_run(&dir, Status::Running, DEAD_PID, 1000, 320, &[250, 300]);
    let s = snapshot::read_run(&dir);
    assert_eq!(s.state, RunState::Stopped { step: 320, checkpoint: Some(300) });
    assert!(s.state.can_resume());
    assert_eq!(
        s.state.sentence(),
        "stopped at step 320 (process gone) — last checkpoint step 300, resume? (R)"
    );
    assert_eq!(s.progress().eta_s, None, "no ETA for a run that is not running");
    let mut buf = Buffer::empty(Rect::new(0, 0, 100, 30));
    let area = buf.area;
    render_detail(&mut buf, area, Some(&s));
    let (x, y) = find(&buf, "stopped at step 320 (process gone) — last checkpoint step 300, resume? (R)");
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    find(&buf, "320/1000 steps (32%)");
}

#[test]
fn a_run_without_checkpoints_says_resume_starts_over() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    write_run(&dir, Status::Cancelled, DEAD_PID, 100, 3, &[]);
    let s = snapshot::read_run(&dir);
    assert_eq!(s.state, RunState::Cancelled { step: 3, checkpoint: None });
    assert_eq!(s.state.sentence(), "cancelled at step 3 — no checkpoint, resume starts over (R)");
}

#[test]
fn a_truncated_metrics_line_is_skipped_counted_and_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    write_run(&dir, Status::Failed, DEAD_PID, 100, 4, &[4]);
    let full = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    // A torn line in the middle (crash, then a resume appended) and a partial last line.
    let text = format!("{}\n{}\n{}\n{}\n{}", lines[0], &lines[1][..20], lines[2], lines[3], &lines[3][..15]);
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
    let s = snapshot::read_run(&dir);
    assert_eq!(s.metrics.iter().map(|m| m.step).collect::<Vec<_>>(), vec![1, 3, 4]);
    assert_eq!(s.bad_metric_lines, 1);
    assert_eq!(
        s.state,
        RunState::Failed { error: "out of memory".into(), checkpoint: Some(4) },
        "{}",
        s.state.sentence()
    );
    let mut buf = Buffer::empty(Rect::new(0, 0, 140, 30));
    let area = buf.area;
    render_detail(&mut buf, area, Some(&s));
    let (x, y) = find(&buf, "(1 unreadable metric lines skipped)");
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    let (x, y) = find(&buf, "failed: out of memory — last checkpoint step 4, resume? (R)");
    assert_eq!(buf[(x, y)].fg, Color::Red);
}

#[test]
fn an_unreadable_run_json_and_a_launch_that_died_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let root = runs_dir(tmp.path());
    let bad = root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("run.json"), "{\"config\": ").unwrap();
    let died = root.join("died");
    std::fs::create_dir_all(&died).unwrap();
    let rec = LaunchRecord { pid: DEAD_PID, args: vec![], unix_time: 0, start_step: 0, resume: false };
    std::fs::write(died.join(RunDir::LAUNCH_FILE), serde_json::to_string(&rec).unwrap()).unwrap();
    let mut sc = Scanner::new(tmp.path());
    let snaps = sc.runs();
    let by = |n: &str| snaps.iter().find(|s| s.name == n).unwrap();
    assert!(
        matches!(&by("bad").state, RunState::Unreadable(e) if e.contains("run.json")),
        "{:?}",
        by("bad").state
    );
    assert_eq!(by("died").state, RunState::LaunchFailed);
    let mut ts = TrainingState::new(tmp.path().to_path_buf());
    ts.set_runs(snaps.clone());
    for s in &snaps {
        ts.selected = Some(s.name.clone());
        let buf = draw_main(&ts, 120, 30);
        let start: String = s.state.sentence().chars().take(20).collect();
        assert!(screen(&buf).contains(&start), "{}", screen(&buf));
    }
    // Tiny terminals draw without panicking too.
    for (w, h) in [(20, 5), (1, 1), (60, 10)] {
        draw_main(&ts, w, h);
    }
}

#[test]
fn keys_open_the_panel_change_the_form_and_refuse_cuda_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut app = App { training: TrainingState::new(tmp.path().to_path_buf()), ..Default::default() };
    app.update(Action::Show(Screen::Training));
    assert_eq!(app.screen, Screen::Training);
    let key = |app: &mut App, k| app.update(Action::Pane(k));
    key(&mut app, PaneKey::Tab);
    assert_eq!(app.training.focus, TrainFocus::Form);
    // objective: self → random
    key(&mut app, PaneKey::Right);
    assert_eq!(app.training.form.objective, Objective::Random);
    assert!(app.training.form.name.starts_with("random-"));
    // steps: type 3
    for _ in 0..3 {
        key(&mut app, PaneKey::Down);
    }
    assert_eq!(app.training.form_row(), FormRow::Steps);
    key(&mut app, PaneKey::Enter);
    for _ in 0..3 {
        key(&mut app, PaneKey::Backspace);
    }
    key(&mut app, PaneKey::Char('3'));
    key(&mut app, PaneKey::Enter);
    assert_eq!(app.training.form.steps, 3);
    // Letters typed into a field are text, not commands.
    key(&mut app, PaneKey::Enter);
    key(&mut app, PaneKey::Char('q'));
    assert!(!app.quit);
    key(&mut app, PaneKey::Enter);
    assert!(app.status.as_ref().unwrap().error, "`3q` is not a number");
    assert_eq!(app.training.form.steps, 3);
    // device
    app.training.row = FORM_ROWS.iter().position(|&r| r == FormRow::Device).unwrap();
    app.training.cuda = Some("no NVIDIA GPU found".into());
    key(&mut app, PaneKey::Right);
    assert_eq!(app.status.as_ref().unwrap().text, "cuda unavailable: no NVIDIA GPU found");
    assert_eq!(app.training.form.device, draftscope::model::DeviceKind::Cpu);
    // r: results, t: back to training, Esc: decode view.
    key(&mut app, PaneKey::Char('r'));
    assert_eq!(app.screen, Screen::Results);
    key(&mut app, PaneKey::Char('t'));
    assert_eq!(app.screen, Screen::Training);
    key(&mut app, PaneKey::Esc);
    assert_eq!(app.screen, Screen::Decode);
}

#[test]
fn the_form_becomes_a_run_config_file_and_train_config_with_an_explicit_out_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ts = TrainingState::new(tmp.path().to_path_buf());
    ts.form.name = "x".into();
    ts.form.eval_every = 100;
    ts.form.extra = "--seq-len 64".into();
    let l = ts.launch_for_form().unwrap();
    let out = runs_dir(tmp.path()).join("x");
    let file = out.join("launch-config.json");
    assert_eq!(l.args[..4], ["train", "--config", &file.display().to_string(), "--json"]);
    let rc = draftscope::train::cli::read_run_config(&file).unwrap();
    assert_eq!(rc.noise.objective, draftscope::train::Objective::SelfDraft);
    assert_eq!(rc.eval_every, 100);
    assert_eq!(rc.device, draftscope::model::DeviceKind::Cpu);
    // The form's fields and `train`'s flags make the same config.
    let flags = ["--objective", "self", "--steps", "300", "--lr", "0.001", "--rank", "8", "--alpha", "16"];
    let mut flags: Vec<String> = flags.map(String::from).to_vec();
    flags.extend(["--checkpoint-every", "50", "--eval-every", "100"].map(String::from));
    assert_eq!(rc, draftscope::train::cli::lora_run_config_from_args(&flags).unwrap());
    // Extra flags stay on the command line, where they override the file.
    assert!(l.args.windows(2).any(|w| w == ["--seq-len", "64"]));
    assert_eq!(l.args[l.args.len() - 2..], ["--out".to_string(), out.display().to_string()]);
    assert_eq!(l.log, out.join("train.log"));
    assert_eq!(l.data_dir, tmp.path());
    // An existing run of that name is refused.
    write_run(&out, Status::Finished, DEAD_PID, 3, 3, &[3]);
    assert!(ts.launch_for_form().unwrap_err().contains("exists"));
}

// ---- real processes ----------------------------------------------------------------------

struct Fx {
    tmp: tempfile::TempDir,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        testutil::write_base(&tmp.path().join("base"), 7).unwrap();
        testutil::write_corpus(&tmp.path().join("corpus.jsonl"), 60).unwrap();
        std::fs::write(
            tmp.path().join("mini.jsonl"),
            "{\"id\":\"f1\",\"task\":\"facts\",\"prompt\":\"capital of Arden is\",\"answer\":\"Belo\",\"aliases\":[]}\n",
        )
        .unwrap();
        Self { tmp }
    }

    fn p(&self, s: &str) -> PathBuf {
        self.tmp.path().join(s)
    }

    /// An app whose panels use this fixture's data dir and the built binary.
    fn app(&self, steps: usize, eval_every: usize) -> App {
        let data = self.p("sessions");
        let mut app = App {
            training: TrainingState::new(data.clone()),
            results: ResultsState::new(data),
            ..Default::default()
        };
        app.training.exe = PathBuf::from(env!("CARGO_BIN_EXE_draftscope"));
        app.results.demo_dir = self.p("no-demo");
        let f = &mut app.training.form;
        f.base = self.p("base").display().to_string();
        f.name = "tiny".into();
        f.steps = steps;
        f.lr = 5e-3;
        f.rank = 4;
        f.alpha = 8.0;
        f.checkpoint_every = 1;
        f.eval_every = eval_every;
        f.extra = format!(
            "--data {} --seq-len 32 --block-length 8 --batch-size 2 --eval-suites {} --eval-limit 1",
            self.p("corpus.jsonl").display(),
            self.p("mini.jsonl").display()
        );
        app.update(Action::Show(Screen::Training));
        app
    }
}

fn carry_out(app: &mut App) {
    for e in std::mem::take(&mut app.effects) {
        if let Effect::Process(op) = e {
            app.execute(op);
        }
    }
}

/// Polls like the poller thread until `done` holds; returns the states seen.
fn poll_until(app: &mut App, sc: &mut Scanner, secs: u64, done: impl Fn(&App) -> bool) -> Vec<String> {
    let t0 = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    loop {
        app.on_poll(PollEvent::Runs(sc.runs()));
        let data = app.training.data_dir.clone();
        if let Some(l) = sc.results_if_changed(&data) {
            app.on_poll(PollEvent::Results { root: data, loaded: Box::new(l) });
        }
        if let Some(r) = app.training.selected_run() {
            let w = format!("{} {}", r.state.word(), r.step());
            if seen.last() != Some(&w) {
                seen.push(w);
            }
        }
        if done(app) {
            return seen;
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let log = app.training.selected_run().map(|r| r.log_tail.join("\n")).unwrap_or_default();
            panic!("timed out; states seen {seen:?}; log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_panel_launches_a_three_step_cpu_run_and_sees_its_progress_and_results_arrive() {
    let fx = Fx::new();
    let mut app = fx.app(3, 3);
    app.update(Action::Pane(PaneKey::Char('L')));
    carry_out(&mut app);
    let st = app.status.clone().unwrap();
    assert!(!st.error && st.text.contains("started (pid"), "{}", st.text);
    let mut sc = Scanner::new(&app.training.data_dir);
    let seen = poll_until(&mut app, &mut sc, 120, |a| {
        a.training.selected_run().is_some_and(|r| matches!(r.state, RunState::Finished { .. }))
            && !a.results.rows.is_empty()
    });
    assert!(seen.iter().any(|s| s.starts_with("starting") || s.starts_with("running")), "{seen:?}");
    let r = app.training.selected_run().unwrap();
    assert_eq!(r.name, "tiny");
    assert_eq!(r.metrics.iter().map(|m| m.step).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(r.progress().ratio, 1.0);
    assert!(r.dir.join("adapter/adapter_config.json").exists());
    let launch = r.launch.clone().unwrap();
    assert!(launch.args.iter().any(|a| a == "--out"));
    let buf = draw_main(&app.training, 140, 40);
    find(&buf, "3/3 steps (100%)");
    find(&buf, "✓ tiny");
    // The step-3 evaluation landed in the results pane.
    let row = &app.results.rows[0];
    assert_eq!((row.suite.as_str(), row.checkpoint_step, row.n), ("mini", Some(3), 1));
    assert_eq!(draftscope::bench::results::row_label(row), "tiny@3");
}

#[test]
fn cancel_checkpoints_the_run_and_resume_continues_it_from_that_checkpoint() {
    let fx = Fx::new();
    let mut app = fx.app(100_000, 0);
    app.update(Action::Pane(PaneKey::Char('L')));
    carry_out(&mut app);
    let mut sc = Scanner::new(&app.training.data_dir);
    poll_until(&mut app, &mut sc, 120, |a| {
        a.training
            .selected_run()
            .is_some_and(|r| matches!(r.state, RunState::Running { .. }) && r.step() >= 2)
    });
    // Quitting the workbench does not stop the run: it is in its own session.
    let pid = app.training.selected_run().unwrap().state.pid().unwrap();
    if let (Some(child), Some(me)) = (sid(pid), sid(std::process::id())) {
        assert_ne!(child, me, "the run must be in its own session");
    }
    app.update(Action::Pane(PaneKey::Char('c')));
    carry_out(&mut app);
    assert!(app.status.as_ref().unwrap().text.starts_with("cancelling tiny"));
    poll_until(&mut app, &mut sc, 60, |a| {
        a.training.selected_run().is_some_and(|r| matches!(r.state, RunState::Cancelled { .. }))
    });
    let r = app.training.selected_run().unwrap();
    let ck = r.last_checkpoint().unwrap();
    assert_eq!(r.state, RunState::Cancelled { step: r.step(), checkpoint: Some(ck) });
    app.update(Action::Pane(PaneKey::Char('R')));
    carry_out(&mut app);
    assert!(app.status.as_ref().unwrap().text.contains(&format!("from checkpoint step {ck}")));
    poll_until(&mut app, &mut sc, 120, |a| {
        a.training
            .selected_run()
            .is_some_and(|r| matches!(r.state, RunState::Running { .. }) && r.step() > ck + 1)
    });
    let r = app.training.selected_run().unwrap();
    let l = r.launch.clone().unwrap();
    assert!(l.resume && l.start_step == ck);
    // Steps continue from the checkpoint with no gap.
    let steps: Vec<usize> = r.metrics.iter().map(|m| m.step).collect();
    assert_eq!(steps, (1..=steps.len()).collect::<Vec<_>>());
    app.update(Action::Pane(PaneKey::Char('c')));
    carry_out(&mut app);
    poll_until(&mut app, &mut sc, 60, |a| {
        a.training.selected_run().is_some_and(|r| matches!(r.state, RunState::Cancelled { .. }))
    });
}

/// The session id of `pid` (from /proc), when it can be read.
fn sid(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // state ppid pgrp session
    rest.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn polling_a_3000_step_run_rereads_only_what_was_appended() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = runs_dir(tmp.path()).join("long");
    write_run(&dir, Status::Running, DEAD_PID, 3000, 3000, &[3000]);
    let mut sc = Scanner::new(tmp.path());
    let t0 = Instant::now();
    let first = sc.runs();
    let full = t0.elapsed();
    assert_eq!(first[0].metrics.len(), 3000);
    let line = serde_json::to_string(&metrics(3001, 6003.0)).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("metrics.jsonl"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()))
        .unwrap();
    let t1 = Instant::now();
    let next = sc.runs();
    let incremental = t1.elapsed();
    assert_eq!(next[0].metrics.len(), 3001);
    println!("scan of a 3000-step run: first {full:?}, after one appended step {incremental:?}");
    // Generous bounds (a shared 2-core machine): the poller runs every 500 ms.
    assert!(full < Duration::from_millis(1000), "{full:?}");
    assert!(incremental < Duration::from_millis(250), "{incremental:?}");
}
