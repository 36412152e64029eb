//! The tour: each stop is read from its recorded trace (the step, the position, the tokens and
//! p in the overlay), Enter / Backspace / Esc / q move through it and leave it, leaving writes
//! the `tour-seen` flag that keeps later plain starts in the workbench, and the overlay draws
//! its tokens in the colours they mean (right green, wrong red). No terminal, no model.

mod common;

use common::screen::find;

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use draftscope::bench::results::ResultsStore;
use draftscope::tui::app::{App, Effect, Focus, key_action};
use draftscope::tui::screens::Screen;
use draftscope::tui::tour::{self, View};
use draftscope::tui::view::StepRef;
use draftscope::tui::worker::{ModelInfo, WorkerEvent};
use draftscope::tui::{TuiArgs, panels};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// A workbench whose data directory is `dir`, with the demo results set loaded as the poller
/// would, on the tour's first stop.
fn toured(dir: &Path) -> App {
    let mut a = App::default();
    a.training.data_dir = dir.to_path_buf();
    a.results.data_dir = dir.to_path_buf();
    a.results.demo_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/results");
    let demo = a.results.demo_dir.clone();
    a.results.set_loaded(dir, Ok(Default::default()));
    a.results.set_loaded(&demo, Ok(ResultsStore::open(&demo).load().unwrap()));
    a.start_tour().unwrap();
    a
}

fn press(a: &mut App, code: KeyCode) {
    if let Some(act) = key_action(a, KeyEvent::new(code, KeyModifiers::NONE)) {
        a.update(act);
    }
}

fn at(a: &App) -> (usize, usize, usize) {
    let r = a.cur().unwrap();
    (r.block, r.step, a.decode.sel)
}

fn stop(a: &App) -> usize {
    a.tour.as_ref().unwrap().stop
}

fn texts(a: &App) -> Vec<String> {
    a.tour.as_ref().unwrap().lines(&a.results).iter().map(|l| l.text()).collect()
}

fn draw(a: &App) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(150, 42)).unwrap();
    term.draw(|f| {
        panels::draw(f, a);
    })
    .unwrap();
    term.backend().buffer().clone()
}

/// Foreground and boldness of the cell `dx` cells after the start of `needle`.
fn style_at(buf: &Buffer, needle: &str, dx: u16) -> (Color, bool) {
    let (x, y) = find(buf, needle);
    let c = &buf[(x + dx, y)];
    (c.fg, c.modifier.contains(Modifier::BOLD))
}

#[test]
fn the_first_plain_start_wants_the_tour_and_the_flag_keeps_later_starts_in_the_workbench() {
    let dir = tempfile::tempdir().unwrap();
    let plain = TuiArgs { plain: true, ..TuiArgs::default() };
    assert!(tour::wanted(&plain, dir.path()));
    tour::mark_seen(dir.path()).unwrap();
    assert!(dir.path().join(tour::SEEN_FILE).is_file());
    assert!(!tour::wanted(&plain, dir.path()));
    // `draftscope tour` always starts it.
    assert!(tour::wanted(&TuiArgs { tour: true, ..TuiArgs::default() }, dir.path()));
}

#[test]
fn flags_or_no_tour_never_start_the_tour() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!tour::wanted(&TuiArgs::default(), dir.path()), "a start with flags");
    assert!(!tour::wanted(&TuiArgs { plain: true, no_tour: true, ..TuiArgs::default() }, dir.path()));
}

#[test]
fn stop_1_selects_the_wrong_final_digit_at_the_edit_that_left_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let a = toured(dir.path());
    let d = a.decode.doc.as_ref().unwrap();
    assert_eq!(d.label, "final-digit");
    // The trace: the answer line is drafted as 4185, then block 2 step 3 edits its second
    // digit (block position 15) from `1` to `0` at p=0.604; the worked value stays 4185.
    assert_eq!(at(&a), (2, 3, 15));
    let s = &d.trace.blocks[2].steps[3];
    let e = &s.edits[0];
    assert_eq!((e.pos - d.trace.blocks[2].start, d.trace.text_of(e.from).as_str()), (15, "1"));
    assert_eq!(d.trace.text_of(e.to), "0");
    assert_eq!(
        texts(&a),
        [
            "The worked steps reach 4185 but the answer reads 4085: a substituted digit (arith-tb-add4-0313).",
            "Block 2 step 3 (selected): the editor rewrote 1 → 0 at p=0.60 > 0.50 editing threshold.",
            "No edit fixed it; 1 edit there in all (← → step, e walks them).",
        ]
    );
}

#[test]
fn the_overlay_draws_the_right_answer_green_and_the_wrong_digit_red_with_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = toured(dir.path());
    let buf = draw(&a);
    find(&buf, " Tour 1/4 · a final digit committed wrong ");
    assert_eq!(style_at(&buf, "reach 4185 ", 6), (Color::Green, true));
    assert_eq!(style_at(&buf, "reads 4085", 6), (Color::Red, true));
    assert_eq!(style_at(&buf, "rewrote 1 → 0 at", 8), (Color::Green, true));
    assert_eq!(style_at(&buf, "rewrote 1 → 0 at", 12), (Color::Red, true));
    assert_eq!(style_at(&buf, "Enter next stop", 0), (Color::Cyan, true));
    find(&buf, "Esc leave the tour");
    // The canvas still shows the selected edit and the inspector explains it.
    find(&buf, "Tokens · block 2 · step 3/5");
    find(&buf, "why: edit");
}

#[test]
fn enter_goes_to_the_over_corrected_answer_at_the_edit_that_broke_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    press(&mut a, KeyCode::Enter);
    assert_eq!(stop(&a), 1);
    let d = a.decode.doc.as_ref().unwrap();
    assert_eq!(d.label, "over-correction");
    assert_eq!(at(&a), (0, 1, 9));
    let e = &d.trace.blocks[0].steps[1].edits[0];
    assert_eq!((d.trace.text_of(e.from), d.trace.text_of(e.to)), ("Max".into(), "4".into()));
    assert_eq!(
        texts(&a)[1],
        "Block 0 step 1 (selected): the editor rewrote Max → 4 at p=0.60 > 0.50 editing threshold."
    );
    let buf = draw(&a);
    find(&buf, " Tour 2/4 · an over-corrected short answer ");
    assert_eq!(style_at(&buf, "rewrote Max", 8), (Color::Green, true));
    assert_eq!(style_at(&buf, "→ 4 at", 2), (Color::Red, true));
    find(&buf, "Backspace back");
}

#[test]
fn stop_3_diffs_s_against_q_step_aligned_at_the_edit_where_they_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Enter);
    assert!(a.decode.diff);
    assert_eq!(a.decode.doc.as_ref().unwrap().label, "q-vs-s-s");
    assert_eq!(a.decode.other.as_ref().unwrap().label, "q-vs-s-q");
    assert_eq!(at(&a), (1, 3, 8));
    assert_eq!(texts(&a)[1], "They part at block 1 step 3: S rewrote 8 → 7 at p=1.00 (selected).");
    let buf = draw(&a);
    find(&buf, " Tour 3/4 · Q vs S on the same item ");
    assert_eq!(style_at(&buf, "Q answers 192", 10), (Color::Green, true));
    assert_eq!(style_at(&buf, "S answers 172", 10), (Color::Red, true));
    find(&buf, "DIFF");
}

#[test]
fn stop_4_is_the_results_pane_on_the_adapter_furthest_from_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    for _ in 0..3 {
        press(&mut a, KeyCode::Enter);
    }
    assert_eq!(a.screen, Screen::Results);
    let rows = &a.results.rows;
    let far = rows.iter().filter_map(|r| r.delta_vs_base).map(f64::abs).fold(0.0, f64::max);
    let sel = a.results.selected_row().unwrap();
    assert_eq!(sel.delta_vs_base.map(f64::abs), Some(far));
    let line = &texts(&a)[1];
    assert!(
        line.starts_with(&format!(
            "Selected: {} on {}: accuracy ",
            draftscope::bench::results::row_label(sel),
            sel.suite
        )),
        "{line}"
    );
    let buf = draw(&a);
    find(&buf, " Tour 4/4 · base vs adapters ");
    find(&buf, "Enter finish");
    let acc = format!("accuracy {:.3}", sel.accuracy);
    let want = if sel.delta_vs_base.unwrap() < 0.0 { Color::Red } else { Color::Green };
    assert_eq!(style_at(&buf, &acc, 9), (want, true));
}

#[test]
fn with_no_results_set_the_last_stop_says_so_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    a.results.demo_dir = dir.path().join("nowhere");
    a.results.demo = None;
    let d = dir.path().to_path_buf();
    a.results.set_loaded(&d, Ok(Default::default()));
    for _ in 0..3 {
        press(&mut a, KeyCode::Enter);
    }
    assert_eq!(a.screen, Screen::Results);
    assert!(texts(&a)[1].starts_with("There are no results here ("), "{:?}", texts(&a));
    let buf = draw(&a);
    assert_eq!(style_at(&buf, "There are no results", 0), (Color::Red, true));
}

#[test]
fn backspace_goes_back_a_stop_and_other_keys_still_explore_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    press(&mut a, KeyCode::Left);
    assert_eq!(at(&a), (2, 2, 15), "← steps back to the draft the edit broke");
    assert_eq!(stop(&a), 0);
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Backspace);
    assert_eq!((stop(&a), at(&a)), (0, (2, 3, 15)));
    press(&mut a, KeyCode::Backspace);
    assert_eq!(stop(&a), 0, "nothing before the first stop");
}

#[test]
fn esc_leaves_the_tour_where_it_is_and_queues_the_seen_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    press(&mut a, KeyCode::Enter);
    a.effects.clear();
    press(&mut a, KeyCode::Esc);
    assert!(a.tour.is_none());
    assert_eq!(a.effects, vec![Effect::TourSeen(dir.path().to_path_buf())]);
    assert_eq!(a.decode.doc.as_ref().unwrap().label, "over-correction", "the view stays");
    assert!(a.status.as_ref().unwrap().text.starts_with("tour left — `draftscope tour` shows it again"));
    assert!(!draw_has(&a, "Tour 2/4"));
    // Now Enter is the workbench's again (run the prompt).
    press(&mut a, KeyCode::Enter);
    assert!(a.tour.is_none());
}

fn draw_has(a: &App, needle: &str) -> bool {
    std::panic::catch_unwind(|| find(&draw(a), needle)).is_ok()
}

#[test]
fn enter_on_the_last_stop_finishes_and_q_quits_both_remembering_the_tour() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    a.effects.clear();
    for _ in 0..4 {
        press(&mut a, KeyCode::Enter);
    }
    assert!(a.tour.is_none());
    assert_eq!(a.effects, vec![Effect::TourSeen(dir.path().to_path_buf())]);
    let mut b = toured(dir.path());
    b.effects.clear();
    press(&mut b, KeyCode::Char('q'));
    assert!(b.quit);
    assert_eq!(b.effects, vec![Effect::TourSeen(dir.path().to_path_buf()), Effect::Quit]);
}

#[test]
fn keys_typed_into_the_prompt_box_are_text_not_tour_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    a.decode.focus = Focus::Prompt;
    press(&mut a, KeyCode::Char('q'));
    assert!(!a.quit);
    assert!(a.tour.is_some());
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.decode.focus, Focus::Tokens, "Esc leaves the prompt box first");
    assert!(a.tour.is_some());
}

#[test]
fn the_stops_are_views_of_the_embedded_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let a = toured(dir.path());
    let t = a.tour.as_ref().unwrap();
    assert_eq!(t.stops.len(), 4);
    assert!(matches!(t.stops[2].view, View::Trace { other: Some(_), at: StepRef { block: 1, step: 3 }, .. }));
    assert_eq!(t.stops[3].view, View::Results);
}

#[test]
fn the_manifest_items_are_the_benchmark_items_their_prompts_come_from() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = draftscope::tui::demo::load_manifest(&root.join("sessions/manifest.json")).unwrap();
    for s in &m.sessions {
        let item = s.item.as_ref().unwrap_or_else(|| panic!("{} names no item", s.name));
        // The item is in one of the shipped suites of its task (`arith-tb-…` in a testbed).
        let suites = std::fs::read_dir(root.join("assets/benchmarks")).unwrap().flatten().map(|e| e.path());
        let line: serde_json::Value = suites
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(item.task.as_str()))
            .flat_map(|p| std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
            .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap())
            .find(|v| v["id"] == item.id.as_str())
            .unwrap_or_else(|| panic!("{} not in a {} suite", item.id, item.task));
        assert_eq!(line["answer"], item.answer.as_str(), "{}", s.name);
        assert_eq!(line["aliases"], serde_json::json!(item.aliases), "{}", s.name);
        assert_eq!(line["prompt"], s.prompt.as_deref().unwrap(), "{}", s.name);
    }
}

#[test]
fn during_the_tour_the_decode_footer_gives_enter_to_the_tour() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    let buf = draw(&a);
    let (_, y) = find(&buf, "Enter tour: next");
    assert_eq!(y, buf.area.height - 1, "on the footer line");
    assert_eq!(style_at(&buf, "Enter tour: next", 0), (Color::Cyan, false), "the key");
    assert_eq!(style_at(&buf, "Enter tour: next", 6), (Color::DarkGray, false), "what it does");
    assert!(!draw_has(&a, "Enter run "));
    press(&mut a, KeyCode::Esc);
    assert!(a.tour.is_none());
    assert!(draw_has(&a, "Enter run "), "Enter runs the prompt again once the tour is left");
    assert!(!draw_has(&a, "Enter tour: next"));
}

#[test]
fn a_model_ready_during_the_tour_does_not_say_enter_runs_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    a.on_worker(WorkerEvent::ModelReady(ModelInfo {
        id: "m".into(),
        adapter: None,
        has_tokenizer: false,
        eos_id: 98,
        mask_id: 99,
        vocab_size: 100,
    }));
    assert_eq!(
        a.status.as_ref().unwrap().text,
        "model m ready: Esc leaves the tour, then Enter runs the prompt"
    );
    press(&mut a, KeyCode::Enter);
    assert_eq!(stop(&a), 1, "Enter still walks the tour");
    assert!(a.effects.iter().all(|e| !matches!(e, Effect::Run(_))), "and runs nothing");
}

#[test]
fn on_the_results_stop_the_footer_gives_enter_and_esc_to_the_tour() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = toured(dir.path());
    for _ in 0..3 {
        press(&mut a, KeyCode::Enter);
    }
    assert_eq!(a.screen, Screen::Results);
    let buf = draw(&a);
    let (x, y) = find(&buf, "Enter tour: finish");
    assert_eq!((x, y), (0, buf.area.height - 1), "first on the footer line");
    assert_eq!(style_at(&buf, "Enter tour: finish", 0), (Color::Cyan, false));
    assert_eq!(find(&buf, "Esc leave tour").1, y);
    assert_eq!(find(&buf, "Tab failing items").1, y, "Enter/Tab reads Tab");
    assert!(!draw_has(&a, "Enter/Tab"));
    assert!(!draw_has(&a, "Esc decode view"));
}
