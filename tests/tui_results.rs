//! The results pane: styled-buffer tests of the table and the checkpoint curves on a fixed
//! results store, failing items and opening their traces, live updates when results land,
//! the demo-set fallback, and starting a bench from the pane.

mod common;

use common::screen::{find, row, screen};

use std::path::Path;

use draftscope::bench::record::{RESULTS_VERSION, RunRecord, rfc3339};
use draftscope::bench::results::ResultsStore;
use draftscope::bench::{Format, ItemOutcome, SuiteMetrics};
use draftscope::decode::{AttentionMode, DecodeParams, Mode};
use draftscope::train::snapshot::{PollEvent, Scanner};
use draftscope::tui::app::{Action, App, Effect};
use draftscope::tui::panels::results::{BASE_COLOR, render_main};
use draftscope::tui::results::{ResFocus, ResultsState};
use draftscope::tui::screens::{PaneKey, ProcessOp, Screen};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};

fn is_braille(s: &str) -> bool {
    s.chars().next().is_some_and(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
}

/// Item `i` of a suite: right when `right`, with a trace file under the store.
fn item(run: &str, suite: &str, i: usize, right: bool) -> ItemOutcome {
    serde_json::from_value(serde_json::json!({
        "id": format!("{suite}-{i}"), "line": i + 1, "correct": right,
        "predicted": if right { "85" } else { "86" }, "gold": "85",
        "final_digit": if right { None } else { Some("substituted") },
        "over_corrected": !right && i.is_multiple_of(2), "harmful_edits": usize::from(!right && i.is_multiple_of(2)),
        "edits": 2, "tokens": 40, "forwards": 20, "wall_ms": 1.0,
        "trace": format!("bench/{run}/{suite}/{suite}-{i}.json")
    }))
    .unwrap()
}

/// A record of `suite` with `right` of 10 items right, `edits` edits per item.
fn record(
    run: &str,
    t: u64,
    suite: &str,
    adapter: Option<&str>,
    step: Option<u64>,
    right: usize,
) -> RunRecord {
    let items: Vec<ItemOutcome> = (0..10).map(|i| item(run, suite, i, i < right)).collect();
    let metrics = SuiteMetrics::from_outcomes(suite, Format::World, 0, &items, 1.0);
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
        source: format!("{suite}.jsonl"),
        format: Format::World,
        chat: true,
        limit: None,
        metrics,
        items,
        traces: format!("bench/{run}/{suite}"),
        shard: None,
    }
}

const SELF: &str = "runs/self-a/checkpoints/step-100/adapter";
const SELF2: &str = "runs/self-a/checkpoints/step-200/adapter";
const RANDOM: &str = "runs/random-b/checkpoints/step-200/adapter";

fn fixed_store(dir: &Path) -> ResultsStore {
    let store = ResultsStore::open(dir);
    store
        .append(&[
            record("r1", 100, "arith", None, None, 5),
            record("r2", 200, "arith", Some(SELF), Some(100), 6),
            record("r3", 300, "arith", Some(SELF2), Some(200), 8),
            record("r4", 400, "arith", Some(RANDOM), Some(200), 4),
        ])
        .unwrap();
    store
}

fn state(dir: &Path) -> ResultsState {
    let mut rs = ResultsState::new(dir.to_path_buf());
    rs.demo_dir = dir.join("no-demo");
    let mut sc = Scanner::new(dir);
    let loaded = sc.results_if_changed(dir).unwrap();
    rs.set_loaded(dir, loaded);
    rs
}

fn draw(rs: &ResultsState) -> Buffer {
    let mut buf = Buffer::empty(Rect::new(0, 0, 130, 40));
    let area = buf.area;
    render_main(&mut buf, area, rs);
    buf
}

#[test]
fn table_lists_base_first_then_each_run_by_step_with_all_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let rs = state(tmp.path());
    let buf = draw(&rs);
    let (_, hy) = find(&buf, "model / adapter");
    let header = row(&buf, hy);
    for h in ["suite", "n", "accuracy [95% CI]", "Δbase", "edits/100", "TPF", "final-digit", "over-corr"] {
        assert!(header.contains(h), "{header}");
    }
    let labels: Vec<String> = (hy + 1..hy + 5)
        .map(|y| row(&buf, y).split_whitespace().nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(labels, ["base", "random-b@200", "self-a@100", "self-a@200"]);
    // base: 5/10, Wilson [0.24, 0.76]; 2 edits per 40 tokens = 5.0/100; 40/20 = 2.00 TPF;
    // 5 final-digit errors (substituted), 2 over-corrected (items 6 and 8 of the wrong ones).
    let base = row(&buf, hy + 1);
    assert!(base.contains("0.500 [0.24,0.76]"), "{base}");
    assert!(base.contains("5.0"), "{base}");
    assert!(base.contains("2.00"), "{base}");
    let nums: Vec<&str> = base.split_whitespace().collect();
    assert_eq!(nums[nums.len() - 3..], ["5", "2", "│"]);
    let (bx, by) = find(&buf, "base ");
    assert!(buf[(bx, by)].modifier.contains(Modifier::BOLD), "the base row is bold");
}

#[test]
fn remask_intensity_has_its_own_column_in_the_remask_colour_and_a_dash_for_t2t_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ResultsStore::open(tmp.path());
    let mut t2m = record("m1", 200, "arith", None, None, 5);
    t2m.params = t2m.params.with_remask(draftscope::decode::RemaskStrategy::LowProb);
    t2m.metrics.remask_intensity = 12.5;
    store.append(&[record("r1", 100, "arith", None, None, 5), t2m]).unwrap();
    let rs = state(tmp.path());
    // Sorted by policy: `t2m:…` before `t2t`.
    assert_eq!(rs.rows.iter().map(|r| r.remask_intensity).collect::<Vec<_>>(), [12.5, 0.0]);
    let buf = draw(&rs);
    let (hx, hy) = find(&buf, "remask/100");
    let (ex, _) = find(&buf, "edits/100");
    assert!(ex < hx, "after edits/100");
    // Row 1: the T2M base, 12.5 in light blue (theme::REMASK); row 2: the T2T base, a dash.
    let cell = |y: u16| row(&buf, y).chars().skip(hx as usize).take(10).collect::<String>();
    assert_eq!(cell(hy + 1).trim(), "12.5");
    assert_eq!(buf[(hx, hy + 1)].fg, Color::LightBlue);
    assert_eq!(cell(hy + 2).trim(), "–");
    assert_eq!(buf[(hx, hy + 2)].fg, Color::DarkGray);
}

#[test]
fn accuracy_is_green_above_the_base_and_red_below_with_the_delta_in_points() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let mut rs = state(tmp.path());
    rs.focus = ResFocus::Failing; // no reversed highlight on the rows
    let buf = draw(&rs);
    let (x, y) = find(&buf, "0.800 [");
    assert_eq!(buf[(x, y)].fg, Color::Green);
    let (dx, dy) = find(&buf, "+30.0");
    assert_eq!((dy, buf[(dx, dy)].fg), (y, Color::Green));
    let (x, y) = find(&buf, "0.400 [");
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let (dx, dy) = find(&buf, "-10.0");
    assert_eq!((dy, buf[(dx, dy)].fg), (y, Color::Red));
    // The base has no delta and no colour.
    let (x, y) = find(&buf, "0.500 [");
    assert_eq!(buf[(x, y)].fg, Color::Reset);
    // Over-corrections are flagged in yellow.
    let r = row(&buf, y);
    let ox = r.trim_end_matches(['│', ' ']).chars().count() as u16 - 1;
    assert_eq!((buf[(ox, y)].symbol(), buf[(ox, y)].fg), ("2", Color::Yellow), "{r}");
}

#[test]
fn delta_shows_its_paired_interval_and_a_star_only_when_it_survives_the_correction() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ResultsStore::open(tmp.path());
    // The base gets items 0–1 right, the adapter all 10: 8 discordant pairs, McNemar p = 0.0078.
    store
        .append(&[
            record("b", 100, "arith", None, None, 2),
            record("a", 200, "arith", Some(SELF), Some(100), 10),
        ])
        .unwrap();
    let mut rs = state(tmp.path());
    rs.focus = ResFocus::Failing;
    let buf = draw(&rs);
    let (x, y) = find(&buf, "+80.0 [");
    let r = row(&buf, y);
    assert!(r.contains("+80.0 [+55,+100]*"), "{r}");
    assert_eq!(buf[(x, y)].fg, Color::Green);
    // In the fixed store no adapter differs enough from the base: intervals, no star.
    let tmp2 = tempfile::tempdir().unwrap();
    fixed_store(tmp2.path());
    let buf = draw(&state(tmp2.path()));
    let (_, y) = find(&buf, "+30.0 [");
    assert!(!row(&buf, y).contains('*'), "{}", row(&buf, y));
}

#[test]
fn the_selected_row_is_reversed_while_the_table_has_focus() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let mut rs = state(tmp.path());
    rs.sel = 2;
    let buf = draw(&rs);
    let (x, y) = find(&buf, "self-a@100");
    assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
    let (x, y) = find(&buf, "self-a@200");
    assert!(!buf[(x, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn charts_plot_each_run_across_checkpoints_against_the_base_reference_line() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let rs = state(tmp.path());
    let c = rs.curves();
    assert_eq!(c.suite, "arith");
    assert_eq!(c.base_accuracy, Some(0.5));
    assert_eq!(c.base_edits, Some(5.0));
    let names: Vec<&str> = c.runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["random-b", "self-a"]);
    assert_eq!(c.runs[1].accuracy, vec![(100.0, 0.6), (200.0, 0.8)]);
    let buf = draw(&rs);
    let (ax, ay) = find(&buf, " Accuracy · arith ");
    let (_, ey) = find(&buf, " Edits/100 tokens · arith ");
    assert!(ey > ay);
    let b = &buf;
    let cells = |c: Color| {
        (ay + 1..ey).flat_map(|y| (ax..ax + 60).map(move |x| (x, y))).filter(move |&(x, y)| {
            let cell = &b[(x, y)];
            is_braille(cell.symbol()) && cell.fg == c
        })
    };
    // The base line is flat: all its cells on one row.
    let base: Vec<(u16, u16)> = cells(BASE_COLOR).collect();
    assert!(base.len() > 10, "no base line:\n{}", screen(&buf));
    assert!(base.iter().all(|p| p.1 == base[0].1), "base line not flat: {base:?}");
    assert!(cells(Color::Cyan).count() > 0, "random-b curve missing");
    assert!(cells(Color::Magenta).count() > 0, "self-a curve missing");
    find(&buf, "base 0.50");
}

#[test]
fn selecting_a_row_lists_its_failing_items_and_enter_opens_a_trace_in_the_decode_view() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let mut app = App { results: state(tmp.path()), ..Default::default() };
    app.update(Action::Show(Screen::Results));
    assert_eq!(app.screen, Screen::Results);
    let key = |app: &mut App, k| app.update(Action::Pane(k));
    key(&mut app, PaneKey::Down);
    key(&mut app, PaneKey::Down);
    let r = app.results.selected_row().unwrap();
    assert_eq!(r.adapter.as_deref(), Some(SELF));
    let ids: Vec<&str> = app.results.failing.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["arith-6", "arith-7", "arith-8", "arith-9"]);
    let buf = draw(&app.results);
    find(&buf, " Failing · arith · self-a@100 (4) ");
    let (x, y) = find(&buf, "arith-6");
    let pred = &buf[(x + 8, y)];
    assert_eq!((pred.symbol(), pred.fg), ("8", Color::Red));
    let (fx, fy) = find(&buf, "digit substituted");
    assert_eq!((fy, buf[(fx, fy)].fg), (y, Color::Yellow));
    let (ox, oy) = find(&buf, "over-corrected");
    assert_eq!((oy, buf[(ox, oy)].fg), (y, Color::Magenta));
    // Enter: into the list; ↓; Enter: open — the trace is missing, so say so and stay.
    key(&mut app, PaneKey::Enter);
    assert_eq!(app.results.focus, ResFocus::Failing);
    key(&mut app, PaneKey::Down);
    key(&mut app, PaneKey::Enter);
    assert!(app.status.as_ref().unwrap().error);
    assert!(app.status.as_ref().unwrap().text.contains("trace of arith-7 not found"));
    assert_eq!(app.screen, Screen::Results);
    // With the trace on disk: opened in the decode view.
    let trace = tmp.path().join("bench/r2/arith/arith-7.json");
    std::fs::create_dir_all(trace.parent().unwrap()).unwrap();
    std::fs::write(&trace, "{}").unwrap();
    key(&mut app, PaneKey::Enter);
    assert_eq!(app.screen, Screen::Decode);
    assert_eq!(app.effects.last(), Some(&Effect::Open(trace)));
}

#[test]
fn results_landing_in_the_store_show_up_on_the_next_poll_keeping_the_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixed_store(tmp.path());
    let mut app = App { results: ResultsState::new(tmp.path().to_path_buf()), ..Default::default() };
    app.results.demo_dir = tmp.path().join("no-demo");
    let mut sc = Scanner::new(tmp.path());
    let poll = |app: &mut App, sc: &mut Scanner| {
        if let Some(l) = sc.results_if_changed(tmp.path()) {
            app.on_poll(PollEvent::Results { root: tmp.path().to_path_buf(), loaded: Box::new(l) });
            true
        } else {
            false
        }
    };
    assert!(poll(&mut app, &mut sc));
    assert!(!poll(&mut app, &mut sc), "unchanged file: nothing to re-read");
    app.results.sel = 3; // self-a@200
    store
        .append(&[record("r5", 500, "arith", Some("runs/self-a/checkpoints/step-300/adapter"), Some(300), 9)])
        .unwrap();
    assert!(poll(&mut app, &mut sc));
    assert_eq!(app.results.rows.len(), 5);
    assert_eq!(app.results.selected_row().unwrap().checkpoint_step, Some(200));
    assert_eq!(app.results.curves().runs[1].accuracy.last(), Some(&(300.0, 0.9)));
    // A broken line is reported in the title, not fatal.
    std::fs::OpenOptions::new()
        .append(true)
        .open(store.path())
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{torn"))
        .unwrap();
    assert!(poll(&mut app, &mut sc));
    assert_eq!(app.results.rows.len(), 5);
    find(&draw(&app.results), "1 unreadable lines skipped");
}

#[test]
fn with_no_results_of_its_own_the_pane_shows_the_demo_set_and_d_switches() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    fixed_store(&demo);
    let data = tmp.path().join("data");
    let mut app = App { results: ResultsState::new(data.clone()), ..Default::default() };
    app.results.demo_dir = demo.clone();
    let mut sc = Scanner::new(&data);
    for root in [&data, &demo] {
        let l = sc.results_if_changed(root).unwrap();
        app.on_poll(PollEvent::Results { root: root.clone(), loaded: Box::new(l) });
    }
    assert!(app.results.showing_demo());
    assert_eq!(app.results.rows.len(), 4);
    find(&draw(&app.results), "(demo set)");
    app.update(Action::Show(Screen::Results));
    app.update(Action::Pane(PaneKey::Char('d')));
    assert!(!app.results.showing_demo());
    assert!(app.results.rows.is_empty());
    let buf = draw(&app.results);
    let (x, y) = find(&buf, "results: none yet in");
    assert_eq!(buf[(x, y)].fg, Color::DarkGray);
}

#[test]
fn b_starts_a_bench_of_the_selected_adapter_writing_to_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let mut app = App { results: state(tmp.path()), ..Default::default() };
    app.training.exe = "/bin/draftscope".into();
    app.update(Action::Show(Screen::Results));
    app.results.sel = 2;
    app.update(Action::Pane(PaneKey::Char('b')));
    let text = app.results.bench_input.as_ref().unwrap().text.clone();
    assert_eq!(text, format!("--suite arith,facts --limit 40 --adapter {SELF}"));
    // Typed letters edit the flags (q does not quit).
    app.update(Action::Pane(PaneKey::Char(' ')));
    app.update(Action::Pane(PaneKey::Char('q')));
    assert!(!app.quit);
    app.update(Action::Pane(PaneKey::Backspace));
    app.update(Action::Pane(PaneKey::Backspace));
    app.update(Action::Pane(PaneKey::Enter));
    let Some(Effect::Process(ProcessOp::Spawn { launch, .. })) = app.effects.last() else {
        panic!("no spawn: {:?}", app.effects)
    };
    let want: Vec<String> =
        ["bench", "--sessions", &tmp.path().display().to_string(), "--suite", "arith,facts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert_eq!(launch.args[..5], want[..]);
    assert_eq!(launch.args.last().map(String::as_str), Some(SELF));
    assert!(launch.log.starts_with(tmp.path().join("bench-logs")));
    assert_eq!(launch.kind, draftscope::session::run_dir::LaunchKind::Bench);
}

#[test]
fn a_bench_of_an_adapter_whose_path_has_spaces_gets_the_whole_path() {
    let tmp = tempfile::tempdir().unwrap();
    let rs = state(tmp.path());
    let adapter = "/my runs/self a/checkpoints/step-100/adapter";
    let flags = format!("--suite arith --adapter '{adapter}'");
    let l = rs.bench_launch(std::path::Path::new("/bin/draftscope"), &flags).unwrap();
    assert_eq!(l.args[3..], ["--suite", "arith", "--adapter", adapter]);
    assert!(rs.bench_launch(std::path::Path::new("/bin/draftscope"), "--suite 'x").is_err());
}

#[test]
fn tiny_terminals_and_an_empty_store_draw_without_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    fixed_store(tmp.path());
    let rs = state(tmp.path());
    let empty = ResultsState::new(tmp.path().join("none"));
    for (w, h) in [(1, 1), (20, 5), (60, 12), (200, 60)] {
        for s in [&rs, &empty] {
            let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
            let area = buf.area;
            render_main(&mut buf, area, s);
        }
    }
}

#[test]
fn rows_of_one_model_in_two_modes_say_which_mode_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ResultsStore::open(tmp.path());
    let q = record("q1", 100, "arith", None, None, 5);
    let mut s = record("s1", 200, "arith", None, None, 5);
    s.mode = draftscope::decode::Mode::S;
    store.append(&[q, s]).unwrap();
    let rs = state(tmp.path());
    let buf = draw(&rs);
    let (mx, hy) = find(&buf, " mode ");
    let mx = mx + 1;
    let (lx, _) = find(&buf, "model / adapter");
    assert!(lx < mx, "the mode follows the model");
    let modes: Vec<String> = (hy + 1..hy + 3)
        .map(|y| {
            (mx..mx + 6).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim().to_string()
        })
        .collect();
    assert_eq!(modes, ["Q", "S"]);
}
