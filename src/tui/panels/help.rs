//! Overlays: the help popup (`?`) and the file list under the open prompt.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::panel;
use crate::tui::app::{App, HELP, Overlay};
use crate::tui::theme;

pub fn render_overlays(frame: &mut Frame, app: &App) {
    match &app.overlay {
        Overlay::Help => render_help(frame),
        Overlay::Input(inp) if !inp.suggestions.is_empty() => {
            let area = frame.area();
            let h = (inp.suggestions.len() as u16 + 2).min(area.height.saturating_sub(4)).max(3);
            let rect = Rect::new(area.x, area.bottom().saturating_sub(h + 1), area.width.min(100), h);
            let visible = h.saturating_sub(2) as usize;
            let first = inp.pick.map_or(0, |p| (p + 1).saturating_sub(visible));
            let lines: Vec<Line> = inp
                .suggestions
                .iter()
                .enumerate()
                .skip(first)
                .take(visible)
                .map(|(i, s)| {
                    let st = if Some(i) == inp.pick {
                        Style::new().add_modifier(Modifier::REVERSED)
                    } else {
                        Style::new()
                    };
                    Line::from(Span::styled(s.clone(), st))
                })
                .collect();
            frame.render_widget(Clear, rect);
            frame.render_widget(
                Paragraph::new(lines).block(panel(" traces (↑↓ pick, Enter open, or type a path) ", true)),
                rect,
            );
        }
        _ => {}
    }
}

fn render_help(frame: &mut Frame) {
    let area = frame.area();
    let h = (HELP.len() as u16 + 4).min(area.height);
    let rect = area.centered(Constraint::Length(80.min(area.width)), Constraint::Length(h));
    let key = Style::new().fg(theme::FOCUS).add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, d)| Line::from(vec![Span::styled(format!("{k:>12}  "), key), Span::raw(*d)]))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "canvas: ▒ mask, colour = confidence (fill), old→new edit, old⊘▒ remask, blue = EOS",
        Style::new().fg(theme::MUTED),
    )));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(panel(" Help — ? or Esc closes ", true)), rect);
}
