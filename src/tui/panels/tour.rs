//! The tour's overlay: a short box saying what the stop shows, with the tokens and answers in
//! the colours they carry elsewhere (right green, wrong red) and the keys that go on. On the
//! decode view it covers the block timeline (the canvas and the inspector stay readable); on
//! the results pane, the failing-items list.

use ratatui::Frame;
use ratatui::layout::Rect;
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

/// Where the box may go on the current screen: the charts on the results pane, the block
/// timeline (grown to at least 10 rows) on the decode view.
pub fn area(full: Rect, app: &App) -> Rect {
    match app.screen {
        Screen::Results => super::results::charts_area(full, app),
        _ => {
            let a = super::layout(full, app);
            let h = a.timeline.height.max(10).min(full.height.saturating_sub(a.timeline.y));
            Rect { height: h, ..a.timeline }
        }
    }
}

pub fn render(frame: &mut Frame, app: &App) {
    let Some(tour) = &app.tour else { return };
    let room = area(frame.area(), app);
    if room.width < 4 || room.height < 3 {
        return;
    }
    let stop = tour.current();
    let title = format!(" Tour {}/{} · {} ", tour.stop + 1, tour.stops.len(), stop.title);
    let mut lines: Vec<Line> = Vec::new();
    for l in tour.lines(&app.results) {
        lines.push(Line::from(
            l.0.iter().map(|s| Span::styled(s.text.clone(), tone_style(s.tone))).collect::<Vec<_>>(),
        ));
    }
    lines.push(Line::from(""));
    lines.push(keys_line(tour));
    // As tall as the wrapped text, within the room.
    let inner_w = room.width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner_w).max(1)).sum();
    let rect = Rect { height: (rows as u16 + 2).min(room.height), ..room };
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
