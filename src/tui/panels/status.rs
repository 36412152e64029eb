//! The three bottom lines: the trace summary, the last message, and the keys (or the input
//! line when one is open).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Focus, InputKind, Overlay, SPEEDS};
use crate::tui::theme;

/// The footer's key hints for the focused panel: (keys, what), the tour's first while it has
/// the keys.
pub fn footer_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    tour_keys(app, panel_keys(app.decode.focus))
}

/// Key hints as they are while the tour takes its keys ([`App::tour_takes_keys`]): the tour's
/// Enter and Esc first, and the keys it takes dropped from the screen's own (`Enter/Tab` reads
/// `Tab`). Otherwise the hints as given.
pub fn tour_keys<'a>(app: &App, keys: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let Some(t) = app.tour.as_ref().filter(|_| app.tour_takes_keys()) else { return keys.to_vec() };
    let taken = |p: &str| p == "Enter" || p == "Esc";
    let mut out =
        vec![("Enter", if t.is_last() { "tour: finish" } else { "tour: next" }), ("Esc", "leave tour")];
    for &(k, w) in keys {
        if !k.split('/').any(taken) {
            out.push((k, w));
        } else if let [rest] = k.split('/').filter(|p| !taken(p)).collect::<Vec<_>>()[..] {
            out.push((rest, w));
        }
    }
    out
}

fn panel_keys(focus: Focus) -> &'static [(&'static str, &'static str)] {
    match focus {
        Focus::Prompt => &[
            ("type", "the prompt"),
            ("Enter", "run"),
            ("Esc", "done"),
            ("Tab", "next panel"),
            ("^C", "quit"),
        ],
        Focus::Settings => &[
            ("↑↓", "choose"),
            ("←→/+-", "change"),
            ("a", "adapter path"),
            ("Enter", "run (what-if)"),
            ("Tab", "next panel"),
        ],
        _ => &[
            ("→/l ←/h", "step"),
            ("]/[", "block"),
            ("e/E", "edit"),
            ("f", "fallback"),
            ("space", "play"),
            ("↑↓", "select"),
            ("Enter", "run"),
            ("Tab", "panel"),
            ("/", "find"),
            ("s", "save"),
            ("o", "open"),
            ("d", "diff"),
            ("t", "train"),
            ("r", "results"),
            ("?", "help"),
            ("q", "quit"),
        ],
    }
}

pub fn render(frame: &mut Frame, status: Rect, message: Rect, footer: Rect, app: &App) {
    let mut spans = Vec::new();
    if let Some(d) = &app.decode.doc {
        spans.push(Span::styled(format!(" {} ", d.label), Style::new().add_modifier(Modifier::REVERSED)));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(app.summary()));
    if app.decode.playing {
        spans.push(Span::styled(
            format!("  ▶ {}/s", SPEEDS[app.decode.speed]),
            Style::new().fg(ratatui::style::Color::Cyan),
        ));
    }
    if app.decode.diff {
        spans.push(Span::styled("  DIFF", Style::new().fg(theme::DIFF_BG).add_modifier(Modifier::BOLD)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), status);
    if let Some(s) = &app.status {
        let st = if s.error { Style::new().fg(theme::ERROR) } else { Style::new().fg(theme::MUTED) };
        frame.render_widget(Paragraph::new(Line::from(Span::styled(format!(" {}", s.text), st))), message);
    }
    match &app.overlay {
        Overlay::Input(inp) => {
            let label = match inp.kind {
                InputKind::Open => "open trace: ",
                InputKind::Save => "save trace to: ",
                InputKind::Search => "search token: ",
                InputKind::Adapter => "adapter dir (empty: none): ",
            };
            let line = Line::from(vec![
                Span::styled(label, Style::new().fg(theme::FOCUS).add_modifier(Modifier::BOLD)),
                Span::raw(inp.edit.text.clone()),
            ]);
            frame.render_widget(Paragraph::new(line), footer);
            let before: String = inp.edit.text.chars().take(inp.edit.cursor).collect();
            let x = footer.x + Span::raw(label).width() as u16 + Span::raw(before).width() as u16;
            frame.set_cursor_position((x.min(footer.right().saturating_sub(1)), footer.y));
        }
        _ => {
            let key = Style::new().fg(theme::FOCUS);
            let what = Style::new().fg(theme::MUTED);
            let spans: Vec<Span> = footer_keys(app)
                .iter()
                .flat_map(|(k, w)| [Span::styled(*k, key), Span::styled(format!(" {w} "), what)])
                .collect();
            frame.render_widget(Paragraph::new(Line::from(spans)), footer);
        }
    }
}
