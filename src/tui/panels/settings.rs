//! The settings panel: compact when unfocused, one row per setting when focused.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::panel;
use crate::decode::EditPolicy;
use crate::tui::app::{App, Focus};
use crate::tui::settings::{ROWS, Settings};
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.decode.focus == Focus::Settings;
    let block = panel(" Settings (Tab here to change) ", focused);
    let s = &app.decode.settings;
    let spec = &s.spec;
    let key = Style::new().fg(theme::MUTED);
    let lines: Vec<Line> = if focused {
        ROWS.iter()
            .enumerate()
            .map(|(i, &row)| {
                let mut st = Style::new();
                if i == app.decode.setting_row {
                    st = st.add_modifier(Modifier::REVERSED);
                }
                Line::from(vec![
                    Span::styled(format!("{:<12}", Settings::label(row)), key),
                    Span::styled(s.value(row), st),
                ])
            })
            .collect()
    } else {
        vec![
            Line::from(first_line(s, key)),
            Line::from(vec![
                Span::raw(format!("{} ", spec.attention.label())),
                Span::styled("block ", key),
                Span::raw(format!("{} ", spec.block_length)),
                Span::styled("gen ", key),
                Span::raw(spec.gen_length.to_string()),
                // Sampling shows only when on (greedy is the default).
                Span::raw(if spec.temperature > 0.0 {
                    format!(" {}", spec.sampling_label())
                } else {
                    String::new()
                }),
            ]),
            Line::from(vec![
                Span::styled("adapter ", key),
                Span::raw(match (&s.adapter, s.adapter_on) {
                    (Some(p), true) => p.display().to_string(),
                    (Some(_), false) => "off".into(),
                    (None, _) => "none".into(),
                }),
            ]),
        ]
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Mode, thresholds and post-steps; under T2M the strategy and τ replace the editing threshold.
fn first_line(s: &Settings, key: Style) -> Vec<Span<'static>> {
    let spec = &s.spec;
    let (threshold, editing, max_post) = spec.thresholds();
    let mut spans = vec![
        Span::styled("mode ", key),
        Span::raw(format!("{} ", s.mode_label())),
        Span::styled("thr ", key),
        Span::raw(format!("{threshold:.2} ")),
    ];
    match spec.edit_policy {
        EditPolicy::T2t => {
            spans.push(Span::styled("edit ", key));
            spans.push(Span::raw(format!("{editing:.2} ")));
        }
        EditPolicy::T2m => {
            spans.push(Span::styled("t2m ", Style::new().fg(theme::REMASK)));
            spans.push(Span::raw(format!(
                "{} {:.2} ",
                spec.remask_strategy.label(),
                spec.remask_threshold()
            )));
        }
    }
    spans.push(Span::styled("post ", key));
    spans.push(Span::raw(max_post.to_string()));
    spans
}
