//! The panels. Each one borrows the [`App`] and projects it into a screen area; [`draw`] lays
//! them out and returns where the clickable things landed.

pub mod canvas;
pub mod help;
pub mod inspector;
pub mod prompt;
pub mod results;
pub mod settings;
pub mod status;
pub mod timeline;
pub mod tour;
pub mod training;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, Borders};

use super::app::{App, Focus, HitMap};
use super::theme;

/// Where each panel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub prompt: Rect,
    pub settings: Rect,
    pub timeline: Rect,
    pub tokens: Rect,
    pub inspector: Rect,
    pub status: Rect,
    pub message: Rect,
    pub footer: Rect,
}

pub fn layout(area: Rect, app: &App) -> Areas {
    let [main, status, message, footer] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let right_w = (main.width * 2 / 5).clamp(30, 56);
    let [left, right] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_w)]).areas(main);
    let [prompt, timeline, tokens] =
        Layout::vertical([Constraint::Length(3), Constraint::Percentage(38), Constraint::Fill(1)])
            .areas(left);
    let settings_h =
        if app.decode.focus == Focus::Settings { super::settings::ROWS.len() as u16 + 2 } else { 5 };
    let [settings, inspector] =
        Layout::vertical([Constraint::Length(settings_h), Constraint::Fill(1)]).areas(right);
    Areas { prompt, settings, timeline, tokens, inspector, status, message, footer }
}

/// A bordered panel block, highlighted when focused.
pub fn panel<'a>(title: impl Into<ratatui::text::Line<'a>>, focused: bool) -> Block<'a> {
    Block::new().borders(Borders::ALL).border_style(theme::border(focused)).title(title)
}

/// Draws the whole workbench; returns the click targets.
pub fn draw(frame: &mut Frame, app: &App) -> HitMap {
    let hits = match app.screen {
        crate::tui::screens::Screen::Training => training::draw(frame, app),
        crate::tui::screens::Screen::Results => results::draw(frame, app),
        crate::tui::screens::Screen::Decode => draw_decode(frame, app),
    };
    tour::render(frame, app);
    hits
}

fn draw_decode(frame: &mut Frame, app: &App) -> HitMap {
    let a = layout(frame.area(), app);
    let mut hits = HitMap {
        panels: vec![
            (a.prompt, Focus::Prompt),
            (a.settings, Focus::Settings),
            (a.timeline, Focus::Timeline),
            (a.tokens, Focus::Tokens),
            (a.inspector, Focus::Inspector),
        ],
        ..Default::default()
    };
    prompt::render(frame, a.prompt, app);
    settings::render(frame, a.settings, app);
    timeline::render(frame.buffer_mut(), a.timeline, app, &mut hits.steps);
    canvas::render(frame.buffer_mut(), a.tokens, app, &mut hits.tokens);
    inspector::render(frame.buffer_mut(), a.inspector, app);
    status::render(frame, a.status, a.message, a.footer, app);
    help::render_overlays(frame, app);
    hits
}
