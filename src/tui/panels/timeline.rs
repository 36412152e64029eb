//! The block timeline: one row per block, one glyph per step. `●` threshold fills, `▲` a
//! fallback commit, `◆` an edit, `◇` an edit in a post-step, `⊘` a T2M remask, `·` a
//! post-step that changed nothing; then the block's end reason. The cursor's step is reversed; in diff mode, steps
//! whose block state differs from the other trace have a red background.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use super::panel;
use crate::decode::CommitKind;
use crate::decode::trace::{BlockEnd, StepTrace};
use crate::tui::app::{App, Doc, Focus};
use crate::tui::theme;
use crate::tui::view::{self, StepRef};

/// Width of the `b123 ` row label.
pub const LABEL_W: u16 = 6;
/// Room kept for the end reason.
pub const END_W: u16 = 16;

/// A step's glyph and colour.
pub fn glyph(s: &StepTrace) -> (&'static str, Color) {
    let post = s.post_step_counter > 0;
    if !s.remasks.is_empty() {
        (theme::GLYPH_REMASK, theme::REMASK)
    } else if !s.edits.is_empty() {
        if post { (theme::GLYPH_POST_EDIT, theme::EDIT) } else { (theme::GLYPH_EDIT, theme::EDIT) }
    } else if s.commits.iter().any(|c| c.kind == CommitKind::Fallback) {
        (theme::GLYPH_FALLBACK, theme::FALLBACK)
    } else if !s.commits.is_empty() {
        (theme::GLYPH_COMMIT, theme::COMMIT)
    } else if post {
        (theme::GLYPH_POST, theme::POST)
    } else {
        (theme::GLYPH_HOLD, theme::MUTED)
    }
}

pub fn end_color(end: BlockEnd, live: bool) -> Color {
    if live {
        return Color::Cyan;
    }
    match end {
        BlockEnd::NoEditAfterFill => Color::Green,
        BlockEnd::MaxPostSteps => Color::Yellow,
        BlockEnd::Cancelled => Color::Red,
    }
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App, hits: &mut Vec<(Rect, StepRef)>) {
    let title = " Blocks  ● fill ▲ fallback ◆ edit ◇ post-edit ⊘ remask · post ";
    let block = panel(title, app.decode.focus == Focus::Timeline);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(doc) = &app.decode.doc else {
        buf.set_string(inner.x, inner.y, "no trace yet", Style::new().fg(theme::MUTED));
        return;
    };
    let other = if app.decode.diff { app.decode.other.as_ref() } else { None };
    render_rows(buf, inner, doc, other, app.cur(), hits);
}

/// Draws the block rows into `inner` (no border), scrolled so the cursor's block shows.
pub fn render_rows(
    buf: &mut Buffer,
    inner: Rect,
    doc: &Doc,
    other: Option<&Doc>,
    cur: Option<StepRef>,
    hits: &mut Vec<(Rect, StepRef)>,
) {
    let t = &doc.trace;
    let n = t.blocks.len();
    let h = inner.height as usize;
    if h == 0 || inner.width <= LABEL_W {
        return;
    }
    let cur = cur.unwrap_or_default();
    let top = cur.block.saturating_sub(h / 2).min(n.saturating_sub(h));
    let glyph_w = inner.width.saturating_sub(LABEL_W + END_W).max(4) as usize;
    for (row, bi) in (top..n.min(top + h)).enumerate() {
        let b = &t.blocks[bi];
        let y = inner.y + row as u16;
        let is_cur = bi == cur.block;
        let label_style =
            if is_cur { Style::new().add_modifier(Modifier::BOLD) } else { Style::new().fg(theme::MUTED) };
        buf.set_stringn(inner.x, y, format!("b{:<4}", b.block), LABEL_W as usize, label_style);
        // Scroll the current row so its cursor step shows.
        let first = if is_cur && cur.step >= glyph_w { cur.step + 1 - glyph_w } else { 0 };
        let mut x = inner.x + LABEL_W;
        if first > 0 {
            buf.set_string(x - 1, y, "…", Style::new().fg(theme::MUTED));
        }
        for (si, s) in b.steps.iter().enumerate().skip(first).take(glyph_w) {
            let (g, c) = glyph(s);
            let mut st = Style::new().fg(c);
            let r = StepRef { block: bi, step: si };
            if let Some(o) = other
                && view::diff_offsets(t, &o.trace, r).iter().any(|&d| d)
            {
                st = st.bg(theme::DIFF_BG);
            }
            if is_cur && si == cur.step {
                st = st.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            buf.set_string(x, y, g, st);
            hits.push((Rect::new(x, y, 1, 1), r));
            x += 1;
        }
        let shown = b.steps.len().saturating_sub(first).min(glyph_w);
        if first + shown < b.steps.len() {
            buf.set_string(x, y, "…", Style::new().fg(theme::MUTED));
            x += 1;
        }
        let live = doc.live.is_some() && bi + 1 == n;
        let end = view::end_label(b.ended_by, live);
        let room = inner.right().saturating_sub(x + 1) as usize;
        buf.set_stringn(x + 1, y, end, room, Style::new().fg(end_color(b.ended_by, live)));
    }
}
