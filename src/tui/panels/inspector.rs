//! The inspector: everything the trace knows about the selected position at the current step —
//! the decision, p(argmax) and p(current token) against the thresholds in force, the top-k
//! alternatives with bars, the position's p across the block's steps as sparklines (this step
//! reversed), and the "why" sentence.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::panel;
use crate::decode::trace::Decision;
use crate::decode::{EditPolicy, Trace};
use crate::tui::app::{App, Focus};
use crate::tui::theme;
use crate::tui::view::{self, StepRef};

pub const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The sparkline character for a probability.
pub fn spark(p: f32) -> char {
    SPARK[((p.clamp(0.0, 1.0) * 7.0).round() as usize).min(7)]
}

pub fn decision_label(d: Decision) -> (&'static str, ratatui::style::Color) {
    match d {
        Decision::Prompt => ("PROMPT", theme::PROMPT),
        Decision::Commit => ("COMMIT", theme::COMMIT),
        Decision::CommitFallback => ("FALLBACK COMMIT", theme::FALLBACK),
        Decision::Edit => ("EDIT", theme::EDIT),
        Decision::Remask => ("REMASK", theme::REMASK),
        Decision::Hold => ("HOLD (mask)", theme::MASK),
        Decision::Keep => ("KEEP", ratatui::style::Color::Reset),
    }
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App) {
    let focused = app.decode.focus == Focus::Inspector;
    let (Some(doc), Some(r)) = (&app.decode.doc, app.cur()) else {
        Paragraph::new("select a position in the token canvas (↑↓ or click)")
            .style(Style::new().fg(theme::MUTED))
            .wrap(Wrap { trim: true })
            .block(panel(" Inspector ", focused))
            .render(area, buf);
        return;
    };
    let b = &doc.trace.blocks[r.block];
    let title =
        format!(" Inspector · pos {} (block {} +{}) ", b.start + app.decode.sel, b.block, app.decode.sel);
    let lines = lines(&doc.trace, r, app.decode.sel);
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(panel(title, focused)).render(area, buf);
}

/// The inspector's lines for block position `offset` at step `r`.
pub fn lines(t: &Trace, r: StepRef, offset: usize) -> Vec<Line<'static>> {
    let key = Style::new().fg(theme::MUTED);
    let Some(b) = t.blocks.get(r.block) else { return Vec::new() };
    let Some(s) = b.steps.get(r.step) else { return Vec::new() };
    let lbl = |id: u32| view::token_label(t, id);
    let mut out = Vec::new();
    let Some(rec) = s.positions.get(offset) else {
        out.push(Line::from(Span::styled("this step recorded no per-position numbers", key)));
        return out;
    };
    let before = s.before[offset];
    let after = s.after[offset];
    let (dl, dc) = decision_label(rec.decision);
    let mut head = vec![Span::styled(dl, Style::new().fg(dc).add_modifier(Modifier::BOLD)), Span::raw("  ")];
    if before != after {
        head.push(Span::styled(lbl(before), theme::edit_old()));
        head.push(Span::styled("→", theme::edit_arrow()));
        head.push(Span::styled(lbl(after), Style::new().add_modifier(Modifier::BOLD)));
    } else {
        head.push(Span::raw(lbl(after)));
    }
    out.push(Line::from(head));
    let p_cur = if before == t.params.mask_id { "mask".to_string() } else { format!("{:.3}", rec.p_current) };
    out.push(Line::from(vec![
        Span::styled("p(argmax ", key),
        Span::raw(lbl(rec.argmax)),
        Span::styled(") ", key),
        Span::styled(format!("{:.3}", rec.p), Style::new().fg(theme::confidence(rec.p))),
        Span::styled("  p(current) ", key),
        Span::styled(
            p_cur,
            if before == t.params.mask_id {
                Style::new().fg(theme::MASK)
            } else {
                Style::new().fg(theme::confidence(rec.p_current))
            },
        ),
    ]));
    let (second, second_value) = match t.params.edit_policy {
        EditPolicy::T2t => ("  editing ", format!("{:.2}", t.params.editing_threshold)),
        EditPolicy::T2m => {
            ("  remask ", format!("{} {:.2}", t.params.remask_strategy.label(), t.params.remask_threshold))
        }
    };
    out.push(Line::from(vec![
        Span::styled("threshold ", key),
        Span::raw(format!("{:.2}", t.params.threshold)),
        Span::styled(second, key),
        Span::raw(second_value),
        Span::styled("  post ", key),
        Span::raw(format!("{}/{}", s.post_step_counter, t.params.max_post_steps)),
    ]));
    out.push(Line::from(Span::styled(format!("top-{} at step {}", rec.top.len(), r.step), key)));
    for &(tok, p) in &rec.top {
        let bar_w = (p.clamp(0.0, 1.0) * 16.0).round() as usize;
        let mark = if tok == rec.argmax {
            "▸"
        } else if tok == before {
            "•"
        } else {
            " "
        };
        out.push(Line::from(vec![
            Span::raw(format!("{mark}{:<10}", truncate(&lbl(tok), 10))),
            Span::raw(format!("{p:>6.3} ")),
            Span::styled(
                "█".repeat(bar_w.max(if p > 0.0 { 1 } else { 0 })),
                Style::new().fg(theme::confidence(p)),
            ),
        ]));
    }
    // History of this position across the block's steps.
    let hist = t.history(r.block, offset);
    let mut tok_line = vec![Span::styled("p(token)  ", key)];
    let mut arg_line = vec![Span::styled("p(argmax) ", key)];
    for h in &hist {
        let cur = if h.step == r.step { Modifier::REVERSED } else { Modifier::empty() };
        let (c, st) = if h.token == t.params.mask_id {
            ('·', Style::new().fg(theme::MASK))
        } else {
            (spark(h.p_current), Style::new().fg(theme::confidence(h.p_current)))
        };
        tok_line.push(Span::styled(c.to_string(), st.add_modifier(cur)));
        arg_line.push(Span::styled(
            spark(h.p).to_string(),
            Style::new().fg(theme::confidence(h.p)).add_modifier(cur),
        ));
    }
    out.push(Line::from(tok_line));
    out.push(Line::from(arg_line));
    if let Some(why) = t.why(r.block, r.step, offset) {
        out.push(Line::from(vec![Span::styled("why: ", key), Span::raw(why)]));
    }
    out.push(changes_line(t, r, offset));
    out
}

/// Every change of the position in its block: `s1 ▒→7 0.75 · s2 7→1 0.83`, a remask as
/// `s2 7→▒ 0.12` with p(7); a change back to a token the position held before is marked `↺`
/// (churn, A→B→A); this step's change is bold.
pub fn changes_line(t: &Trace, r: StepRef, offset: usize) -> Line<'static> {
    let key = Style::new().fg(theme::MUTED);
    let Some(b) = t.blocks.get(r.block) else { return Line::default() };
    let mut spans = vec![Span::styled("changes: ", key)];
    let mut held: Vec<u32> = Vec::new();
    let mut n = 0;
    for s in &b.steps {
        let (Some(&from), Some(&to)) = (s.before.get(offset), s.after.get(offset)) else { continue };
        if from == to {
            continue;
        }
        if from != t.params.mask_id {
            held.push(from);
        }
        let remask = to == t.params.mask_id;
        let p = s.positions.get(offset).map(|p| if remask { p.p_current } else { p.p }).unwrap_or(0.0);
        let colour = if from == t.params.mask_id {
            theme::COMMIT
        } else if remask {
            theme::REMASK
        } else {
            theme::EDIT
        };
        let mut st = Style::new().fg(colour);
        if s.step == r.step {
            st = st.add_modifier(Modifier::BOLD | Modifier::REVERSED);
        }
        if n > 0 {
            spans.push(Span::styled(" · ", key));
        }
        let churn = if held.contains(&to) { "↺" } else { "" };
        spans.push(Span::styled(
            format!("s{} {}→{} {p:.2}{churn}", s.step, view::token_label(t, from), view::token_label(t, to)),
            st,
        ));
        n += 1;
    }
    if n == 0 {
        spans.push(Span::styled("none in this block", key));
    }
    Line::from(spans)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).chain(['…']).collect() }
}
