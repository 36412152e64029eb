//! Styled-buffer tests: the token canvas, the block timeline and the inspector draw the exact
//! symbols and colours for a hand-built trace (`tui::sample::small`, numbers in its docs).

use draftscope::tui::app::{App, DecodeAction, Doc};
use draftscope::tui::panels::{canvas, inspector, timeline};
use draftscope::tui::sample;
use draftscope::tui::view::StepRef;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};

fn doc() -> Doc {
    Doc::new(sample::small(), "sample".into(), None)
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect()
}

/// Column of the first cell of `needle` in row `y` (cells, not bytes).
fn col(buf: &Buffer, y: u16, needle: &str) -> u16 {
    let cells: Vec<String> = (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect();
    let n: Vec<String> = needle.chars().map(|c| c.to_string()).collect();
    (0..cells.len())
        .find(|&i| cells[i..].starts_with(&n))
        .unwrap_or_else(|| panic!("{needle:?} not in row {y}: {:?}", row(buf, y))) as u16
}

fn canvas_at(r: StepRef, sel: usize) -> Buffer {
    let d = doc();
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 8));
    let area = buf.area;
    canvas::render_doc(&mut buf, area, &d, r, "", sel, None, false, None);
    buf
}

#[test]
fn canvas_title_names_block_and_step() {
    let buf = canvas_at(StepRef { block: 1, step: 2 }, 0);
    assert!(row(&buf, 0).contains(" Tokens · block 1 · step 2/4 "), "{}", row(&buf, 0));
}

#[test]
fn canvas_dims_the_prompt_in_the_text_before_the_block() {
    let buf = canvas_at(StepRef { block: 1, step: 2 }, 0);
    assert_eq!(row(&buf, 1).trim_matches(|c| c == '│' || c == ' '), "The answer is7");
    let t = &buf[(1, 1)];
    assert_eq!(t.symbol(), "T");
    assert_eq!(t.fg, Color::DarkGray);
    assert!(t.modifier.contains(Modifier::DIM));
    // The generated `7` of block 0 is plain text.
    let seven = &buf[(14, 1)];
    assert_eq!(seven.symbol(), "7");
    assert_eq!(seven.fg, Color::Reset);
    assert!(!seven.modifier.contains(Modifier::DIM));
}

#[test]
fn canvas_colours_kept_tokens_by_confidence() {
    let buf = canvas_at(StepRef { block: 1, step: 2 }, 3);
    let y = 3;
    assert_eq!(buf[(1, y)].symbol(), "2");
    assert_eq!(buf[(1, y)].fg, Color::LightGreen, "p(2) = 0.70");
    assert_eq!(buf[(3, y)].symbol(), "3");
    assert_eq!(buf[(3, y)].fg, Color::Green, "p(3) = 0.90");
    assert!(!buf[(3, y)].modifier.contains(Modifier::BOLD), "kept, not committed this step");
}

#[test]
fn canvas_shows_an_edit_as_old_arrow_new() {
    let buf = canvas_at(StepRef { block: 1, step: 2 }, 3);
    let y = 3;
    let x = col(&buf, y, "7→1");
    assert_eq!(buf[(x, y)].fg, Color::DarkGray);
    assert!(buf[(x, y)].modifier.contains(Modifier::CROSSED_OUT));
    assert_eq!(buf[(x + 1, y)].symbol(), "→");
    assert_eq!(buf[(x + 1, y)].fg, Color::Magenta);
    assert_eq!(buf[(x + 2, y)].symbol(), "1");
    assert_eq!(buf[(x + 2, y)].fg, Color::Magenta);
    assert!(buf[(x + 2, y)].modifier.contains(Modifier::BOLD));
}

#[test]
fn canvas_marks_eos_blue_and_reverses_the_selection() {
    let buf = canvas_at(StepRef { block: 1, step: 2 }, 3);
    let y = 3;
    let x = col(&buf, y, "EOS");
    let c = &buf[(x, y)];
    assert_eq!(c.bg, Color::Blue);
    assert_eq!(c.fg, Color::Green, "committed with p = 0.90");
    assert!(c.modifier.contains(Modifier::BOLD | Modifier::REVERSED));
    assert!(!buf[(1, y)].modifier.contains(Modifier::REVERSED), "only the selection is reversed");
}

#[test]
fn canvas_draws_masks_and_underlines_a_fallback_commit() {
    let buf = canvas_at(StepRef { block: 1, step: 0 }, 0);
    let y = 3;
    assert!(row(&buf, y).contains("2 ▒▒▒ ▒▒▒ ▒▒▒"), "{}", row(&buf, y));
    let two = &buf[(1, y)];
    assert_eq!(two.fg, Color::LightRed, "fallback with p = 0.40");
    assert!(two.modifier.contains(Modifier::UNDERLINED | Modifier::BOLD));
    let m = &buf[(3, y)];
    assert_eq!(m.symbol(), "▒");
    assert_eq!(m.fg, Color::DarkGray);
}

#[test]
fn canvas_in_diff_mode_puts_differing_positions_on_red() {
    let d = doc();
    let mut b = sample::small();
    b.blocks[1].steps[2].after[1] = 5; // the other trace has 5 where this one has 3
    let other = Doc::new(b, "other".into(), None);
    let mask = draftscope::tui::view::diff_offsets(&d.trace, &other.trace, StepRef { block: 1, step: 2 });
    assert_eq!(mask, vec![false, true, false, false]);
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 8));
    let area = buf.area;
    canvas::render_doc(&mut buf, area, &d, StepRef { block: 1, step: 2 }, "A", 9, Some(&mask), false, None);
    assert!(row(&buf, 0).contains("A: sample"), "{}", row(&buf, 0));
    assert_eq!(buf[(3, 3)].symbol(), "3");
    assert_eq!(buf[(3, 3)].bg, Color::Red);
    assert_eq!(buf[(1, 3)].bg, Color::Reset);
}

fn timeline(other: Option<&Doc>) -> Buffer {
    let d = doc();
    let mut buf = Buffer::empty(Rect::new(0, 0, 40, 3));
    let area = buf.area;
    let mut hits = Vec::new();
    timeline::render_rows(&mut buf, area, &d, other, Some(StepRef { block: 1, step: 2 }), &mut hits);
    assert_eq!(hits.len(), 2 + 4 + 3, "one click target per step");
    buf
}

#[test]
fn timeline_draws_one_glyph_per_step_and_the_end_reason() {
    let buf = timeline(None);
    assert_eq!(row(&buf, 0).trim_end(), "b0    ●· done");
    assert_eq!(row(&buf, 1).trim_end(), "b1    ▲●◆· done");
    assert_eq!(row(&buf, 2).trim_end(), "b2    ●◇◇ max-post-steps");
}

#[test]
fn timeline_colours_fills_fallbacks_edits_and_post_steps() {
    let buf = timeline(None);
    assert_eq!(buf[(6, 0)].fg, Color::Green, "threshold fill");
    assert_eq!(buf[(7, 0)].fg, Color::DarkGray, "post-step without change");
    assert_eq!(buf[(6, 1)].fg, Color::Yellow, "fallback commit");
    assert_eq!(buf[(8, 1)].fg, Color::Magenta, "edit");
    assert_eq!(buf[(7, 2)].fg, Color::Magenta, "edit in a post-step");
    assert_eq!(buf[(9, 0)].fg, Color::Green, "done");
    assert_eq!(buf[(10, 2)].fg, Color::Yellow, "max-post-steps");
}

#[test]
fn timeline_reverses_the_cursor_step_only() {
    let buf = timeline(None);
    assert!(buf[(8, 1)].modifier.contains(Modifier::REVERSED));
    assert!(!buf[(7, 1)].modifier.contains(Modifier::REVERSED));
    assert!(buf[(0, 1)].modifier.contains(Modifier::BOLD), "the cursor's block label is bold");
}

#[test]
fn timeline_in_diff_mode_marks_steps_that_differ() {
    let mut b = sample::small();
    b.blocks[2].steps[1].after[0] = 7;
    let other = Doc::new(b, "other".into(), None);
    let buf = timeline(Some(&other));
    assert_eq!(buf[(7, 2)].bg, Color::Red);
    assert_eq!(buf[(6, 2)].bg, Color::Reset);
    assert_eq!(buf[(8, 2)].bg, Color::Reset);
}

fn inspector_at(r: StepRef, sel: usize) -> Buffer {
    let mut app = App::default();
    app.open_doc(doc());
    app.update(draftscope::tui::app::Action::Decode(DecodeAction::Goto(r)));
    app.decode.sel = sel;
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 16));
    let area = buf.area;
    inspector::render(&mut buf, area, &app);
    buf
}

#[test]
fn inspector_heads_with_the_decision_and_the_edit() {
    let buf = inspector_at(StepRef { block: 1, step: 2 }, 2);
    assert!(row(&buf, 0).contains("Inspector · pos 6 (block 1 +2)"), "{}", row(&buf, 0));
    assert!(row(&buf, 1).starts_with("│EDIT  7→1"), "{}", row(&buf, 1));
    assert_eq!(buf[(1, 1)].fg, Color::Magenta);
    assert!(buf[(1, 1)].modifier.contains(Modifier::BOLD));
    assert!(buf[(7, 1)].modifier.contains(Modifier::CROSSED_OUT));
}

#[test]
fn inspector_shows_probabilities_against_thresholds() {
    let buf = inspector_at(StepRef { block: 1, step: 2 }, 2);
    assert!(row(&buf, 2).contains("p(argmax 1) 0.830  p(current) 0.120"), "{}", row(&buf, 2));
    let x = col(&buf, 2, "0.830");
    assert_eq!(buf[(x, 2)].fg, Color::LightGreen);
    let x = col(&buf, 2, "0.120");
    assert_eq!(buf[(x, 2)].fg, Color::Red);
    assert!(row(&buf, 3).contains("threshold 0.70  editing 0.50  post 0/2"), "{}", row(&buf, 3));
}

#[test]
fn inspector_lists_top_k_with_argmax_and_current_marked() {
    let buf = inspector_at(StepRef { block: 1, step: 2 }, 2);
    assert!(row(&buf, 4).contains("top-3 at step 2"), "{}", row(&buf, 4));
    assert!(row(&buf, 5).starts_with("│▸1          0.830 █████████████"), "{}", row(&buf, 5));
    assert!(row(&buf, 6).starts_with("│•7          0.102 ██"), "{}", row(&buf, 6));
    let x = col(&buf, 5, "█");
    assert_eq!(buf[(x, 5)].fg, Color::LightGreen);
    assert_eq!(buf[(col(&buf, 6, "█"), 6)].fg, Color::Red);
}

#[test]
fn inspector_sparklines_follow_the_position_across_steps() {
    let buf = inspector_at(StepRef { block: 1, step: 2 }, 2);
    // p(token): masked at steps 0-1, p(7) = 0.12 at step 2, p(1) = 0.88 at step 3.
    assert!(row(&buf, 8).starts_with("│p(token)  ··▂▇"), "{}", row(&buf, 8));
    assert!(row(&buf, 9).starts_with("│p(argmax) ▂▆▇▇"), "{}", row(&buf, 9));
    let cur = &buf[(13, 8)];
    assert_eq!(cur.symbol(), "▂");
    assert_eq!(cur.fg, Color::Red);
    assert!(cur.modifier.contains(Modifier::REVERSED), "this step is reversed");
    assert!(!buf[(14, 8)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn inspector_ends_with_the_why_sentence() {
    let buf = inspector_at(StepRef { block: 1, step: 2 }, 2);
    // The sentence wraps at spaces.
    let text = (10..14)
        .map(|y| row(&buf, y).trim_matches(|c| c == '│').trim_end().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("why: edit 7→1 at step 2: p(1)=0.83 > 0.50 editing threshold; p(7)=0.12"),
        "{text}"
    );
}

#[test]
fn inspector_lists_the_positions_changes_and_marks_churn() {
    let t = sample::small();
    let text = |l: ratatui::text::Line| l.spans.iter().map(|s| s.content.to_string()).collect::<String>();
    let l = inspector::changes_line(&t, StepRef { block: 1, step: 2 }, 2);
    assert_eq!(text(l.clone()), "changes: s1 ▒→7 0.75 · s2 7→1 0.83");
    assert_eq!(l.spans[1].style.fg, Some(Color::Green), "the commit");
    assert_eq!(l.spans[3].style.fg, Some(Color::Magenta), "the edit");
    assert!(l.spans[3].style.add_modifier.contains(Modifier::REVERSED), "this step's change");
    let l = inspector::changes_line(&t, StepRef { block: 2, step: 0 }, 0);
    assert_eq!(text(l), "changes: s0 ▒→EOS 0.95 · s1 EOS→5 0.60 · s2 5→EOS 0.70↺");
}

#[test]
fn inspector_on_a_mask_shows_hold_and_no_current_probability() {
    let buf = inspector_at(StepRef { block: 1, step: 0 }, 1);
    assert!(row(&buf, 1).starts_with("│HOLD (mask)  ▒"), "{}", row(&buf, 1));
    assert!(row(&buf, 2).contains("p(current) mask"), "{}", row(&buf, 2));
}

// ---- T2M: the same prompt with a remask (`tui::sample::small_t2m`) ---------------------

fn t2m_doc() -> Doc {
    Doc::new(sample::small_t2m(), "t2m".into(), None)
}

#[test]
fn canvas_shows_a_remask_as_old_slash_mask_in_the_remask_colour() {
    let d = t2m_doc();
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 8));
    let area = buf.area;
    canvas::render_doc(&mut buf, area, &d, StepRef { block: 1, step: 2 }, "", 0, None, false, None);
    let y = 3;
    let x = col(&buf, y, "7⊘▒");
    assert_eq!(buf[(x, y)].fg, Color::LightBlue);
    assert!(buf[(x, y)].modifier.contains(Modifier::CROSSED_OUT), "the token taken back");
    assert_eq!(buf[(x + 1, y)].fg, Color::LightBlue);
    assert_eq!(buf[(x + 2, y)].fg, Color::LightBlue);
    assert!(buf[(x + 2, y)].modifier.contains(Modifier::BOLD));
    // The next step refills it from the mask: an ordinary commit, coloured by confidence.
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 8));
    canvas::render_doc(&mut buf, area, &d, StepRef { block: 1, step: 3 }, "", 0, None, false, None);
    let x = col(&buf, y, "1");
    assert_eq!(buf[(x, y)].fg, Color::LightGreen, "p(1) = 0.88");
}

#[test]
fn timeline_distinguishes_fill_edit_and_remask() {
    let d = t2m_doc();
    let mut buf = Buffer::empty(Rect::new(0, 0, 40, 3));
    let area = buf.area;
    timeline::render_rows(&mut buf, area, &d, None, Some(StepRef { block: 0, step: 0 }), &mut Vec::new());
    assert_eq!(row(&buf, 1).trim_end(), "b1    ▲●⊘●· done");
    assert_eq!(buf[(8, 1)].fg, Color::LightBlue, "remask");
    assert_eq!(buf[(9, 1)].fg, Color::Green, "the refill is a fill");
    // The T2T trace of the same prompt draws its edit in magenta at the same step.
    let t2t = timeline(None);
    assert_eq!((t2t[(8, 1)].symbol(), t2t[(8, 1)].fg), ("◆", Color::Magenta));
}

#[test]
fn inspector_heads_a_remask_with_its_colour_numbers_and_why() {
    let mut app = App::default();
    app.open_doc(t2m_doc());
    app.update(draftscope::tui::app::Action::Decode(DecodeAction::Goto(StepRef { block: 1, step: 2 })));
    app.decode.sel = 2;
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 16));
    let area = buf.area;
    inspector::render(&mut buf, area, &app);
    assert!(row(&buf, 1).starts_with("│REMASK  7→▒"), "{}", row(&buf, 1));
    assert_eq!(buf[(1, 1)].fg, Color::LightBlue);
    assert!(row(&buf, 3).contains("threshold 0.70  remask low_prob 0.50  post 0/2"), "{}", row(&buf, 3));
    let text = (10..14).map(|y| row(&buf, y).trim_matches('│').trim_end().to_string()).collect::<Vec<_>>();
    assert!(text.join(" ").contains("why: remask 7 at step 2: p(7)=0.12 < 0.50"), "{text:?}");
    let t = sample::small_t2m();
    let l = inspector::changes_line(&t, StepRef { block: 1, step: 2 }, 2);
    let s: String = l.spans.iter().map(|s| s.content.to_string()).collect();
    assert_eq!(s, "changes: s1 ▒→7 0.75 · s2 7→▒ 0.12 · s3 ▒→1 0.88");
    assert_eq!(l.spans[3].style.fg, Some(Color::LightBlue));
}

#[test]
fn diff_of_t2t_and_t2m_marks_the_edited_versus_remasked_position() {
    let t2t = doc();
    let t2m = t2m_doc();
    let mut buf = Buffer::empty(Rect::new(0, 0, 60, 8));
    let area = buf.area;
    let r = StepRef { block: 1, step: 2 };
    let mask = draftscope::tui::view::diff_offsets(&t2t.trace, &t2m.trace, r);
    assert_eq!(mask, vec![false, false, true, false]);
    canvas::render_doc(&mut buf, area, &t2m, r, "B", 0, Some(&mask), false, None);
    let x = col(&buf, 3, "7⊘▒");
    assert_eq!(buf[(x, 3)].bg, Color::Red);
    assert_eq!(buf[(x, 3)].fg, Color::LightBlue);
    // One step later both hold `1` there: no difference left in block 1.
    assert!(
        draftscope::tui::view::diff_offsets(&t2t.trace, &t2m.trace, StepRef { block: 1, step: 3 })
            .iter()
            .all(|d| !d)
    );
}
