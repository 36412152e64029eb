//! The token canvas: the current block at the current step, with the text before it. Masks
//! are `▒▒▒`, fills are coloured by confidence (bold when committed this step, underlined
//! for a fallback commit), edits read `old→new` (old struck through), T2M remasks `old⊘▒` in
//! their own colour, the prompt is dimmed
//! and EOS has a blue background. In diff mode the panel splits: this trace on the left, the
//! other at the same block and step on the right, differing positions on red.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::Widget;

use super::panel;
use crate::tui::app::{App, Doc, Focus};
use crate::tui::theme;
use crate::tui::view::{self, CellKind, StepRef, TokenCell};

pub fn render(buf: &mut Buffer, area: Rect, app: &App, hits: &mut Vec<(Rect, usize)>) {
    let focused = app.decode.focus == Focus::Tokens;
    let (Some(doc), Some(r)) = (&app.decode.doc, app.cur()) else {
        let block = panel(" Tokens ", focused);
        let inner = block.inner(area);
        block.render(area, buf);
        let msg = if app.decode.doc.is_some() { "waiting for the first step…" } else { "no trace yet" };
        buf.set_string(inner.x, inner.y, msg, Style::new().fg(theme::MUTED));
        return;
    };
    match (app.decode.diff, &app.decode.other) {
        (true, Some(other)) => {
            let [l, rr] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
            let mask = view::diff_offsets(&doc.trace, &other.trace, r);
            render_doc(buf, l, doc, r, "A", app.decode.sel, Some(&mask), focused, Some(hits));
            render_doc(buf, rr, other, r, "B", app.decode.sel, Some(&mask), false, None);
        }
        _ => render_doc(buf, area, doc, r, "", app.decode.sel, None, focused, Some(hits)),
    }
}

/// One trace's canvas at step `r` (clamped to the block's last step for the other side of a
/// diff), in a bordered panel.
#[allow(clippy::too_many_arguments)]
pub fn render_doc(
    buf: &mut Buffer,
    area: Rect,
    doc: &Doc,
    r: StepRef,
    side: &str,
    sel: usize,
    diff: Option<&[bool]>,
    focused: bool,
    hits: Option<&mut Vec<(Rect, usize)>>,
) {
    let t = &doc.trace;
    let prefix =
        if side.is_empty() { "Tokens · ".to_string() } else { format!("{side}: {} · ", doc.label) };
    let Some(b) = t.blocks.get(r.block) else {
        let block = panel(format!(" {prefix}no block {} ", r.block), focused);
        block.render(area, buf);
        return;
    };
    let last = b.steps.len().saturating_sub(1);
    let step = r.step.min(last);
    let ended = if r.step > last { format!(" (ended at step {last})") } else { String::new() };
    let s = &b.steps[step];
    let title = format!(
        " {prefix}block {} · step {}/{}{ended}{} ",
        b.block,
        step,
        b.steps.len(),
        if s.post_step_counter > 0 {
            format!(" · post-step {}", s.post_step_counter)
        } else {
            String::new()
        }
    );
    let block = panel(title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 4 || inner.height == 0 {
        return;
    }
    let cells = view::block_cells(t, StepRef { block: r.block, step });
    let placed = flow(t, &cells, inner.width);
    let lines = placed.last().map_or(0, |p| p.1 + 1);
    let block_h = (lines as u16).min(inner.height);
    let ctx_h = inner.height - block_h;
    // Text before the block (prompt dimmed), its last lines.
    let mut used = 0;
    if ctx_h >= 2 && b.start > 0 {
        let ctx = Rect::new(inner.x, inner.y, inner.width, ctx_h - 1);
        used = render_context(buf, ctx, doc, b.start) + 1;
    }
    let y0 = inner.y + used;
    let mut hits = hits;
    for (cell, (x, line, spans)) in cells.iter().zip(placed) {
        if line as u16 >= block_h {
            break;
        }
        let y = y0 + line as u16;
        let x0 = inner.x + x;
        let mut cx = x0;
        let differs = diff.is_some_and(|d| d.get(cell.offset).copied().unwrap_or(false));
        for (text, mut st) in spans {
            if differs {
                st = st.bg(theme::DIFF_BG);
            }
            if cell.offset == sel {
                st = theme::selected(st);
            }
            let room = inner.right().saturating_sub(cx) as usize;
            let (nx, _) = buf.set_stringn(cx, y, &text, room, st);
            cx = nx;
        }
        if let Some(h) = hits.as_deref_mut() {
            h.push((Rect::new(x0, y, cx.saturating_sub(x0).max(1), 1), cell.offset));
        }
    }
}

/// The spans a cell draws: `old→new` for an edit, `old⊘▒` for a remask, the token otherwise.
pub fn cell_spans(t: &crate::decode::Trace, c: &TokenCell) -> Vec<(String, Style)> {
    let st = theme::token_style(c);
    match c.kind {
        CellKind::Mask => vec![(theme::MASK_GLYPH.repeat(3), st)],
        CellKind::Edit { from } => vec![
            (view::token_label(t, from), theme::edit_old()),
            ("→".into(), theme::edit_arrow()),
            (view::token_label(t, c.token), st),
        ],
        CellKind::Remask { from } => vec![
            (view::token_label(t, from), theme::remask_old()),
            (format!("{}{}", theme::GLYPH_REMASK, theme::MASK_GLYPH), st),
        ],
        _ => vec![(view::token_label(t, c.token), st)],
    }
}

/// A laid-out cell: column, line, and the spans it draws.
pub type Placed = (u16, usize, Vec<(String, Style)>);

/// Lays cells out left to right, wrapping at `width`: `(x, line, spans)` per cell.
pub fn flow(t: &crate::decode::Trace, cells: &[TokenCell], width: u16) -> Vec<Placed> {
    let mut out = Vec::with_capacity(cells.len());
    let (mut x, mut line) = (0u16, 0usize);
    for c in cells {
        let spans = cell_spans(t, c);
        let w: u16 = spans.iter().map(|(s, _)| Span::raw(s.as_str()).width() as u16).sum();
        if x > 0 && x + w > width {
            x = 0;
            line += 1;
        }
        out.push((x, line, spans));
        x = x.saturating_add(w + 1);
    }
    out
}

/// The committed text before position `end`, wrapped, showing its last lines; returns how
/// many lines it drew.
fn render_context(buf: &mut Buffer, area: Rect, doc: &Doc, end: usize) -> u16 {
    let t = &doc.trace;
    let w = area.width as usize;
    let budget = w * area.height as usize;
    let sep = if t.token_text.is_empty() { " " } else { "" };
    let p0 = t.prompt_ids.len();
    // Walk back until the text would overflow the area.
    let mut pieces: Vec<(String, Style)> = Vec::new();
    let mut chars = 0usize;
    let mut i = end.min(t.final_canvas.len());
    while i > 0 && chars <= budget {
        i -= 1;
        let id = t.final_canvas[i];
        let text = if id == t.params.eos_id {
            "EOS".to_string()
        } else {
            t.text_of(id).replace('\n', "⏎").chars().filter(|c| !c.is_control()).collect()
        };
        let st = if i < p0 {
            Style::new().fg(theme::PROMPT).add_modifier(Modifier::DIM)
        } else if id == t.params.eos_id {
            Style::new().bg(theme::EOS_BG)
        } else {
            Style::new()
        };
        chars += text.chars().count() + sep.len();
        pieces.push((format!("{text}{sep}"), st));
    }
    pieces.reverse();
    // Wrap character-wise into lines of `w` cells.
    let mut lines: Vec<Vec<(String, Style)>> = vec![Vec::new()];
    let mut x = 0usize;
    for (text, st) in pieces {
        // Whole tokens move to the next line; only a token wider than the area is split.
        let tw = Span::raw(text.as_str()).width();
        if x > 0 && x + tw.min(w) > w {
            lines.push(Vec::new());
            x = 0;
        }
        let mut cur = String::new();
        for ch in text.chars() {
            let cw = Span::raw(ch.to_string()).width();
            if x + cw > w {
                lines.last_mut().unwrap().push((std::mem::take(&mut cur), st));
                lines.push(Vec::new());
                x = 0;
            }
            cur.push(ch);
            x += cw;
        }
        lines.last_mut().unwrap().push((cur, st));
    }
    let h = area.height as usize;
    let skip = lines.len().saturating_sub(h);
    let drawn = (lines.len() - skip) as u16;
    for (row, line) in lines.into_iter().skip(skip).enumerate() {
        let mut cx = area.x;
        for (text, st) in line {
            let (nx, _) =
                buf.set_stringn(cx, area.y + row as u16, &text, area.right().saturating_sub(cx) as usize, st);
            cx = nx;
        }
    }
    drawn
}
