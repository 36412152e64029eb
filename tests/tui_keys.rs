//! Key handling on the app state: each test presses keys and checks where the cursor, the
//! selection, the focus or the queued effects end up. No terminal, no model.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use draftscope::tui::app::{
    Action, App, DecodeAction, Doc, Effect, Focus, InputKind, ModelState, Overlay, key_action,
};
use draftscope::tui::sample;
use draftscope::tui::view::StepRef;
use draftscope::tui::worker::{ModelInfo, WorkerEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn app() -> App {
    let mut a = App {
        save_dir: std::env::temp_dir().join("draftscope-tui-keys"),
        sessions_dir: std::env::temp_dir().join("draftscope-tui-keys-none"),
        ..Default::default()
    };
    a.open_doc(Doc::new(sample::small(), "sample".into(), None));
    a
}

fn press(a: &mut App, code: KeyCode) {
    press_mod(a, code, KeyModifiers::NONE);
}

fn press_mod(a: &mut App, code: KeyCode, m: KeyModifiers) {
    if let Some(act) = key_action(a, KeyEvent::new(code, m)) {
        a.update(act);
    }
}

fn typ(a: &mut App, s: &str) {
    for c in s.chars() {
        press(a, KeyCode::Char(c));
    }
}

fn at(a: &App) -> (usize, usize) {
    let r = a.cur().unwrap();
    (r.block, r.step)
}

fn ready(a: &mut App, tokenizer: bool) {
    a.on_worker(WorkerEvent::ModelReady(ModelInfo {
        id: "m".into(),
        adapter: None,
        has_tokenizer: tokenizer,
        eos_id: 98,
        mask_id: 99,
        vocab_size: 100,
    }));
}

#[test]
fn opening_a_trace_starts_at_its_first_step_on_the_first_generated_position() {
    let a = app();
    assert_eq!(at(&a), (0, 0));
    assert_eq!(a.decode.sel, 3, "block 0 holds the 3 prompt tokens");
}

#[test]
fn right_and_l_step_forward_across_blocks() {
    let mut a = app();
    press(&mut a, KeyCode::Right);
    assert_eq!(at(&a), (0, 1));
    press(&mut a, KeyCode::Char('l'));
    assert_eq!(at(&a), (1, 0));
}

#[test]
fn left_and_h_step_back_and_stop_at_the_first_step() {
    let mut a = app();
    press(&mut a, KeyCode::Char(']'));
    press(&mut a, KeyCode::Left);
    assert_eq!(at(&a), (0, 1));
    press(&mut a, KeyCode::Char('h'));
    press(&mut a, KeyCode::Char('h'));
    assert_eq!(at(&a), (0, 0));
}

#[test]
fn brackets_jump_to_the_first_step_of_the_next_and_previous_block() {
    let mut a = app();
    press(&mut a, KeyCode::Char(']'));
    assert_eq!(at(&a), (1, 0));
    press(&mut a, KeyCode::Char(']'));
    assert_eq!(at(&a), (2, 0));
    press(&mut a, KeyCode::Char(']'));
    assert_eq!(at(&a), (2, 0), "stays on the last block");
    press(&mut a, KeyCode::Char('['));
    assert_eq!(at(&a), (1, 0));
}

#[test]
fn e_jumps_to_the_next_edit_and_selects_the_edited_position() {
    let mut a = app();
    press(&mut a, KeyCode::Char('e'));
    assert_eq!((at(&a), a.decode.sel), ((1, 2), 2), "edit 7→1");
    press(&mut a, KeyCode::Char('e'));
    assert_eq!((at(&a), a.decode.sel), ((2, 1), 0), "edit EOS→5");
    press(&mut a, KeyCode::Char('E'));
    assert_eq!((at(&a), a.decode.sel), ((1, 2), 2));
    assert_eq!(a.status.as_ref().unwrap().text, "edit 1 of 3");
}

#[test]
fn f_jumps_to_the_next_fallback_commit() {
    let mut a = app();
    press(&mut a, KeyCode::Char('f'));
    assert_eq!((at(&a), a.decode.sel), ((1, 0), 0));
    press(&mut a, KeyCode::Char('f'));
    assert_eq!(at(&a), (1, 0), "no later fallback: stays");
    assert_eq!(a.status.as_ref().unwrap().text, "no later fallback commit");
}

#[test]
fn w_jumps_to_the_edit_that_first_broke_a_failed_answer() {
    let mut a = app();
    press(&mut a, KeyCode::Char('w'));
    assert!(a.status.as_ref().unwrap().text.starts_with("not a world arithmetic problem"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/final-digit.json");
    a.open_doc(draftscope::tui::open_doc(&path).unwrap());
    press(&mut a, KeyCode::Char('w'));
    let v = draftscope::bench::origin::judge(&a.decode.doc.as_ref().unwrap().trace);
    let draftscope::bench::origin::Verdict::Failed(o) = v else { panic!("{v:?}") };
    let (block, step) = o.step.unwrap();
    assert_eq!(at(&a), (block, step));
    let start = a.decode.doc.as_ref().unwrap().trace.blocks[block].start;
    assert_eq!(a.decode.sel + start, o.pos.unwrap(), "the wrong token is selected");
    assert_eq!(
        a.status.as_ref().unwrap().text,
        "first wrong token: answer line, written by T2T edit, over a right token"
    );
}

#[test]
fn up_and_down_select_positions_within_the_block() {
    let mut a = app();
    press(&mut a, KeyCode::Char(']'));
    a.decode.sel = 0;
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    assert_eq!(a.decode.sel, 2);
    for _ in 0..5 {
        press(&mut a, KeyCode::Down);
    }
    assert_eq!(a.decode.sel, 3, "clamped to the block");
    press(&mut a, KeyCode::Up);
    assert_eq!(a.decode.sel, 2);
}

#[test]
fn space_plays_and_each_tick_advances_one_step_until_the_end() {
    let mut a = app();
    press(&mut a, KeyCode::Char(' '));
    assert!(a.decode.playing);
    a.update(Action::Tick);
    assert_eq!(at(&a), (0, 1));
    for _ in 0..20 {
        a.update(Action::Tick);
    }
    assert_eq!(at(&a), (2, 2));
    assert!(!a.decode.playing, "stops at the end");
}

#[test]
fn plus_and_minus_change_the_playback_speed() {
    let mut a = app();
    let s = a.decode.speed;
    press(&mut a, KeyCode::Char('+'));
    assert_eq!(a.decode.speed, s + 1);
    press(&mut a, KeyCode::Char('-'));
    press(&mut a, KeyCode::Char('-'));
    assert_eq!(a.decode.speed, s - 1);
}

#[test]
fn tab_cycles_the_panels() {
    let mut a = app();
    assert_eq!(a.decode.focus, Focus::Tokens);
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.decode.focus, Focus::Inspector);
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.decode.focus, Focus::Prompt);
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.decode.focus, Focus::Settings);
}

#[test]
fn keys_type_into_the_prompt_box_when_it_has_focus() {
    let mut a = app();
    a.decode.focus = Focus::Prompt;
    typ(&mut a, "1,2lq");
    press(&mut a, KeyCode::Backspace);
    assert_eq!(a.decode.prompt.text, "1,2l");
    assert_eq!(at(&a), (0, 0), "l typed, not a step");
    assert!(!a.quit, "q typed, not quit");
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.decode.focus, Focus::Tokens);
}

#[test]
fn ctrl_c_quits_even_while_typing() {
    let mut a = app();
    a.decode.focus = Focus::Prompt;
    press_mod(&mut a, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(a.quit);
}

#[test]
fn q_quits() {
    let mut a = app();
    press(&mut a, KeyCode::Char('q'));
    assert!(a.quit);
    assert_eq!(a.effects, vec![Effect::Quit]);
}

#[test]
fn enter_without_a_model_says_so_and_runs_nothing() {
    let mut a = app();
    a.model = ModelState::Missing("embedded model not found".into());
    press(&mut a, KeyCode::Enter);
    assert!(a.effects.is_empty());
    let s = a.status.unwrap();
    assert!(s.error);
    assert!(s.text.contains("embedded model not found"), "{}", s.text);
}

#[test]
fn enter_queues_a_run_with_the_prompt_and_settings() {
    let mut a = app();
    ready(&mut a, false);
    assert_eq!(a.decode.prompt.text, "409,191,80,91,337", "the sample prompt is ready");
    press(&mut a, KeyCode::Enter);
    match &a.effects[..] {
        [Effect::Run(r)] => {
            assert_eq!(r.prompt, "409,191,80,91,337");
            assert_eq!(r.settings, a.decode.settings);
        }
        e => panic!("{e:?}"),
    }
    assert!(a.is_running());
}

#[test]
fn enter_refuses_text_for_a_model_without_tokenizer() {
    let mut a = app();
    ready(&mut a, false);
    a.set_prompt("hello");
    press(&mut a, KeyCode::Enter);
    assert!(a.effects.is_empty());
    assert!(a.status.unwrap().error);
}

#[test]
fn esc_cancels_a_running_decode() {
    let mut a = app();
    ready(&mut a, false);
    press(&mut a, KeyCode::Enter);
    a.effects.clear();
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.effects, vec![Effect::Cancel]);
}

#[test]
fn streamed_steps_build_a_live_trace_the_cursor_follows() {
    let mut a = app();
    ready(&mut a, false);
    press(&mut a, KeyCode::Enter);
    let full = sample::small();
    let mut skel = full.clone();
    skel.blocks.clear();
    skel.output.clear();
    skel.final_canvas = vec![10, 11, 12, 99, 99, 99, 99, 99, 99, 99, 99, 99];
    a.on_worker(WorkerEvent::Started { run_id: 1, trace: Box::new(skel) });
    assert_eq!(a.decode.other.as_ref().unwrap().label, "sample", "the previous trace is kept for diffs");
    for (i, b) in full.blocks[..2].iter().enumerate() {
        for s in &b.steps {
            a.on_worker(WorkerEvent::Step {
                run_id: 1,
                block: b.block,
                block_start: b.start,
                step: Box::new(s.clone()),
                texts: vec![],
            });
        }
        if i == 0 {
            let (block, block_start, ended_by) = (b.block, b.start, b.ended_by);
            a.on_worker(WorkerEvent::BlockEnd { run_id: 1, block, block_start, ended_by });
        }
    }
    let d = a.decode.doc.as_ref().unwrap();
    assert_eq!(d.live, Some(1));
    assert_eq!(d.index.len(), 6);
    assert_eq!(d.trace.blocks[0].ended_by, full.blocks[0].ended_by, "block 0 ended as the decoder reported");
    assert_eq!(at(&a), (1, 3), "following the newest step");
    press(&mut a, KeyCode::Left);
    assert!(!a.decode.follow, "stepping back freezes the view");
    a.on_worker(WorkerEvent::Done { run_id: 1, trace: Box::new(full.clone()) });
    let d = a.decode.doc.as_ref().unwrap();
    assert_eq!(d.live, None);
    assert_eq!(d.trace, full);
    assert_eq!(at(&a), (1, 2), "the cursor stays where the user left it");
    assert!(!a.is_running());
}

#[test]
fn d_toggles_the_diff_view_once_there_are_two_traces() {
    let mut a = App::default();
    a.open_doc(Doc::new(sample::small(), "one".into(), None));
    press(&mut a, KeyCode::Char('d'));
    assert!(!a.decode.diff);
    assert!(a.status.as_ref().unwrap().error);
    let mut b = sample::small();
    b.blocks[1].steps[2].after[2] = 7;
    b.final_canvas[6] = 7;
    a.open_doc(Doc::new(b, "two".into(), None));
    press(&mut a, KeyCode::Char('d'));
    assert!(a.decode.diff);
    assert_eq!(
        a.status.as_ref().unwrap().text,
        "diff vs one: 1 final positions differ; first difference at block 1 step 2"
    );
    press(&mut a, KeyCode::Char('x'));
    assert_eq!(a.decode.doc.as_ref().unwrap().label, "one");
}

#[test]
fn slash_searches_for_a_token_and_n_finds_the_next() {
    let mut a = app();
    press(&mut a, KeyCode::Char('/'));
    assert!(matches!(&a.overlay, Overlay::Input(i) if i.kind == InputKind::Search));
    typ(&mut a, "eos");
    press(&mut a, KeyCode::Enter);
    assert_eq!((at(&a), a.decode.sel), ((1, 2), 3), "EOS first committed at block 1 step 2");
    press(&mut a, KeyCode::Char('n'));
    assert_eq!((at(&a), a.decode.sel), ((2, 0), 0));
}

#[test]
fn s_proposes_a_path_and_enter_queues_the_save() {
    let mut a = app();
    press(&mut a, KeyCode::Char('s'));
    let Overlay::Input(inp) = &a.overlay else { panic!() };
    assert_eq!(inp.kind, InputKind::Save);
    assert!(inp.edit.text.ends_with(".json"));
    for _ in 0..200 {
        press(&mut a, KeyCode::Backspace);
    }
    typ(&mut a, "/tmp/x.json");
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.effects, vec![Effect::Save("/tmp/x.json".into())]);
    assert_eq!(a.overlay, Overlay::None);
}

#[test]
fn o_lists_traces_and_enter_opens_the_picked_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), "{}").unwrap();
    std::fs::write(dir.path().join("manifest.json"), "{}").unwrap();
    let mut a = app();
    a.sessions_dir = dir.path().to_path_buf();
    press(&mut a, KeyCode::Char('o'));
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.effects, vec![Effect::Open(dir.path().join("a.json"))]);
}

#[test]
fn question_mark_opens_help_and_esc_closes_it() {
    let mut a = app();
    press(&mut a, KeyCode::Char('?'));
    assert_eq!(a.overlay, Overlay::Help);
    press(&mut a, KeyCode::Char('l'));
    assert_eq!(at(&a), (0, 0), "keys do not leak through the help");
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.overlay, Overlay::None);
}

#[test]
fn settings_arrows_change_values_and_a_threshold_change_makes_mode_custom() {
    let mut a = app();
    a.decode.settings.set_mode(draftscope::decode::Mode::Q);
    a.decode.focus = Focus::Settings;
    press(&mut a, KeyCode::Right);
    assert_eq!(a.decode.settings.mode_label(), "S");
    let (t, e, _) = a.decode.settings.spec.thresholds();
    assert_eq!((t, e), (0.5, 0.0));
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Char('+'));
    assert_eq!(a.decode.settings.spec.thresholds().0, 0.55);
    assert_eq!(a.decode.settings.mode_label(), "custom");
    assert_eq!(at(&a), (0, 0), "arrows did not step");
}

#[test]
fn opening_a_trace_adopts_its_settings_so_enter_reruns_it() {
    let mut a = App::default();
    let mut t = sample::small();
    t.prompt = None;
    t.attention = draftscope::decode::AttentionMode::Hf;
    a.open_doc(Doc::new(t, "s".into(), None));
    let s = &a.decode.settings;
    assert_eq!(s.spec.thresholds(), (0.7, 0.5, 2));
    assert_eq!(s.mode_label(), "custom", "max_post_steps 2 is no preset");
    assert_eq!((s.spec.block_length, s.spec.gen_length), (4, 8));
    assert_eq!(s.spec.attention, draftscope::decode::AttentionMode::Hf);
    assert_eq!(a.decode.prompt.text, "10,11,12");
}

#[test]
fn a_click_on_a_token_selects_it_and_on_a_step_jumps_there() {
    let mut a = app();
    press(&mut a, KeyCode::Char(']'));
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    term.draw(|f| a.hits = draftscope::tui::panels::draw(f, &a)).unwrap();
    let (rect, off) = a.hits.tokens[2];
    a.update(Action::Decode(DecodeAction::Click { x: rect.x, y: rect.y }));
    assert_eq!(a.decode.sel, off);
    assert_eq!(off, 2);
    let (rect, r) = *a.hits.steps.iter().find(|(_, r)| *r == StepRef { block: 2, step: 1 }).unwrap();
    a.update(Action::Decode(DecodeAction::Click { x: rect.x, y: rect.y }));
    assert_eq!(at(&a), (r.block, r.step));
    assert_eq!(a.decode.focus, Focus::Timeline);
}

#[test]
fn a_saved_trace_opens_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.json");
    sample::small().save(&p).unwrap();
    let d = draftscope::tui::open_doc(&p).unwrap();
    assert_eq!(d.trace, sample::small());
    assert_eq!(d.label, "t");
    assert_eq!(d.index.edit_steps, vec![4, 7, 8]);
    assert_eq!(d.index.fallback_steps, vec![2]);
}

#[test]
fn the_whole_screen_renders_at_tiny_and_huge_sizes() {
    let mut a = app();
    a.decode.diff = true;
    a.decode.other = Some(Doc::new(sample::small(), "b".into(), None));
    a.overlay = Overlay::Help;
    for (w, h) in [(1, 1), (20, 5), (80, 24), (300, 100)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| {
            draftscope::tui::panels::draw(f, &a);
        })
        .unwrap();
    }
}

#[test]
fn opening_a_sampled_trace_reruns_it_sampled_with_its_seed() {
    let mut a = app();
    ready(&mut a, false);
    let mut t = sample::small();
    t.params.temperature = 0.8;
    t.params.seed = 3;
    t.params.top_p = Some(0.9);
    let want = t.params.clone();
    a.open_doc(Doc::new(t, "s".into(), None));
    press(&mut a, KeyCode::Enter);
    match &a.effects[..] {
        [Effect::Run(r)] => assert_eq!(r.settings.params(want.eos_id, want.mask_id), want),
        e => panic!("{e:?}"),
    }
}

#[test]
fn opening_a_t2m_trace_reruns_it_as_t2m() {
    let mut a = app();
    ready(&mut a, false);
    let t = sample::small_t2m();
    let want = t.params.clone();
    a.open_doc(Doc::new(t, "m".into(), None));
    press(&mut a, KeyCode::Enter);
    match &a.effects[..] {
        [Effect::Run(r)] => assert_eq!(r.settings.params(want.eos_id, want.mask_id), want),
        e => panic!("{e:?}"),
    }
}

#[test]
fn tui_decode_flags_are_shown_in_the_settings_and_used_by_the_run() {
    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        a: draftscope::tui::TuiArgs,
    }
    let args = <Wrap as clap::Parser>::parse_from([
        "draftscope",
        "--temperature",
        "0.8",
        "--seed",
        "3",
        "--top-k",
        "7",
        "--top-p",
        "0.9",
        "--num-to-transfer",
        "2",
        "--eos-id",
        "5",
        "--mask-id",
        "6",
        "--edit-policy",
        "t2m",
        "--no-eos-early-stop",
    ])
    .a;
    let mut a = draftscope::tui::initial_app(&args).unwrap();
    use draftscope::tui::settings::{Row, Settings};
    assert_eq!(a.decode.settings.value(Row::Temperature), "0.80 top-k 7 top-p 0.90");
    assert_eq!(a.decode.settings.value(Row::Seed), "3");
    assert_eq!(a.decode.settings.value(Row::Policy), "t2m low_prob");
    assert_eq!(Settings::label(Row::EosStop), "eos stop");
    assert_eq!(a.decode.settings.value(Row::EosStop), "off");
    ready(&mut a, false);
    press(&mut a, KeyCode::Enter);
    let [Effect::Run(r)] = &a.effects[..] else { panic!("{:?}", a.effects) };
    let p = r.settings.params(100, 101);
    assert_eq!((p.temperature, p.seed, p.top_k, p.top_p), (0.8, 3, Some(7), Some(0.9)));
    assert_eq!((p.num_to_transfer, p.eos_id, p.mask_id), (2, 5, 6));
    assert_eq!(p.edit_policy, draftscope::decode::EditPolicy::T2m);
    assert!(!p.eos_early_stop);
}

#[test]
fn the_workbench_stops_at_eos_by_default() {
    let a = draftscope::tui::initial_app(&draftscope::tui::TuiArgs::default()).unwrap();
    assert!(a.decode.settings.params(1, 2).eos_early_stop);
}
