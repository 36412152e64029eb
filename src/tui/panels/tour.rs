//! The tour's overlay: a short box saying what the stop shows, with the tokens and answers in
//! the colours they carry elsewhere (right green, wrong red) and the keys that go on. On the
//! decode view it covers the block timeline (the canvas and the inspector stay readable); on
//! the results pane, the failing-items list.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::panel;
use crate::tui::app::App;
use crate::tui::screens::Screen;
use crate::tui::theme;
use crate::tui::tour::{Tone, Tour};

/// The style of a piece of overlay text.
pub fn tone_style(t: Tone) -> Style {
    match t {
        Tone::Plain => Style::new(),
        Tone::Token => Style::new().add_modifier(Modifier::BOLD),
        Tone::Right => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        Tone::Wrong => Style::new().fg(theme::ERROR).add_modifier(Modifier::BOLD),
        Tone::Muted => Style::new().fg(theme::MUTED),
    }
}

/// Where the box goes on the current screen.
pub fn area(full: Rect, app: &App) -> Rect {
    match app.screen {
        Screen::Results => {
            let [_, main, _] =
                Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(2)]).areas(full);
            let [_, lower] = Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(main);
            let [_, right] = Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)]).areas(lower);
            right
        }
        _ => {
            let a = super::layout(full, app);
            // The timeline, grown to hold the text when it is short.
            let h = a.timeline.height.max(10).min(full.height.saturating_sub(a.timeline.y));
            Rect { height: h, ..a.timeline }
        }
    }
}

pub fn render(frame: &mut Frame, app: &App) {
    let Some(tour) = &app.tour else { return };
    let rect = area(frame.area(), app);
    if rect.width < 4 || rect.height < 3 {
        return;
    }
    let stop = tour.current();
    let title = format!(" Tour {}/{} · {} ", tour.stop + 1, tour.stops.len(), stop.title);
    let mut lines: Vec<Line> = Vec::new();
    for l in tour.lines(app) {
        lines.push(Line::from(l.0.iter().map(|s| Span::styled(s.text.clone(), tone_style(s.tone))).collect::<Vec<_>>()));
    }
    lines.push(Line::from(""));
    lines.push(keys_line(tour));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(panel(title, true)), rect);
}

fn keys_line(tour: &Tour) -> Line<'static> {
    let key = Style::new().fg(theme::FOCUS).add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    for (i, (k, what)) in tour.keys().into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", Style::new().fg(theme::MUTED)));
        }
        spans.push(Span::styled(k, key));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}
