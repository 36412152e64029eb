//! The training panel (`t`): runs list, new-run form, and the selected run — state, progress
//! gauge with ETA, M2T / T2T loss charts, tokens/s, learning rate, the tail of its log.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, Gauge, GraphType, Paragraph, Widget};

use super::panel;
use crate::session::RunDir;
use crate::train::snapshot::{RunSnapshot, RunState};
use crate::tui::app::{App, HitMap};
use crate::tui::runs::{fmt_duration, pretty_log_line};
use crate::tui::screens::Screen;
use crate::tui::theme;
use crate::tui::training::{FORM_ROWS, FormRow, TrainFocus, TrainForm, TrainingState};

pub const M2T: Color = Color::Cyan;
pub const T2T: Color = Color::Magenta;

/// Colour of a run state.
pub fn state_color(s: &RunState) -> Color {
    match s {
        RunState::Starting { .. } => Color::Cyan,
        RunState::Running { .. } => Color::Green,
        RunState::Stopped { .. } | RunState::Cancelled { .. } => Color::Yellow,
        RunState::Finished { .. } => Color::Blue,
        RunState::Failed { .. } | RunState::LaunchFailed | RunState::Unreadable(_) => Color::Red,
    }
}

pub fn state_glyph(s: &RunState) -> &'static str {
    match s {
        RunState::Starting { .. } => "…",
        RunState::Running { .. } => "▶",
        RunState::Stopped { .. } | RunState::Cancelled { .. } => "■",
        RunState::Finished { .. } => "✓",
        _ => "✗",
    }
}

/// The screen tabs on the top line.
pub fn render_tabs(buf: &mut Buffer, area: Rect, cur: Screen) {
    let tab = |name: &str, key: &str, s: Screen| -> Vec<Span<'static>> {
        let st = if s == cur {
            Style::new().fg(theme::FOCUS).add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().fg(theme::MUTED)
        };
        vec![
            Span::styled(format!(" {name} "), st),
            Span::styled(format!("{key}  "), Style::new().fg(theme::MUTED)),
        ]
    };
    let mut spans = vec![Span::styled(" draftscope ", Style::new().add_modifier(Modifier::BOLD))];
    spans.extend(tab("decode", "Esc", Screen::Decode));
    spans.extend(tab("training", "t", Screen::Training));
    spans.extend(tab("results", "r", Screen::Results));
    Paragraph::new(Line::from(spans)).render(area, buf);
}

/// The message line and the footer keys.
pub fn render_bottom(buf: &mut Buffer, message: Rect, footer: Rect, app: &App, keys: &[(&str, &str)]) {
    if let Some(s) = &app.status {
        let st = if s.error { Style::new().fg(theme::ERROR) } else { Style::new().fg(theme::MUTED) };
        Paragraph::new(Line::from(Span::styled(format!(" {}", s.text), st))).render(message, buf);
    }
    let key = Style::new().fg(theme::FOCUS);
    let what = Style::new().fg(theme::MUTED);
    let spans: Vec<Span> = super::status::tour_keys(app, keys)
        .iter()
        .flat_map(|(k, w)| [Span::styled(*k, key), Span::styled(format!(" {w} "), what)])
        .collect();
    Paragraph::new(Line::from(spans)).render(footer, buf);
}

/// Draws the whole training screen.
pub fn draw(frame: &mut Frame, app: &App) -> HitMap {
    let [tabs, main, message, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_tabs(frame.buffer_mut(), tabs, Screen::Training);
    let cursor = render_main(frame.buffer_mut(), main, &app.training);
    render_bottom(frame.buffer_mut(), message, footer, app, app.training.footer_keys());
    if let Some(c) = cursor {
        frame.set_cursor_position(c);
    }
    super::help::render_overlays(frame, app);
    HitMap::default()
}

/// Runs list and form on the left, the selected run on the right. Returns the text cursor
/// when a field is being typed.
pub fn render_main(buf: &mut Buffer, area: Rect, ts: &TrainingState) -> Option<(u16, u16)> {
    let left_w = (area.width * 2 / 5).clamp(36, 54);
    let [left, right] = Layout::horizontal([Constraint::Length(left_w), Constraint::Fill(1)]).areas(area);
    let form_h = FORM_ROWS.len() as u16 + 2;
    let [list, form] = Layout::vertical([Constraint::Fill(1), Constraint::Length(form_h)]).areas(left);
    render_runs(buf, list, ts);
    let cursor = render_form(buf, form, ts);
    render_detail(buf, right, ts.selected_run());
    cursor
}

pub fn render_runs(buf: &mut Buffer, area: Rect, ts: &TrainingState) {
    let focused = ts.focus == TrainFocus::Runs;
    let block = panel(format!(" Runs ({}) ", ts.runs.len()), focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if ts.runs.is_empty() {
        let msg = if ts.scanned { "no runs yet — fill in the form, L launches" } else { "reading runs…" };
        Paragraph::new(Span::styled(msg, Style::new().fg(theme::MUTED))).render(inner, buf);
        return;
    }
    let sel = ts.selected_index();
    let first = sel.map_or(0, |s| (s + 1).saturating_sub(inner.height as usize));
    for (row, (i, r)) in ts.runs.iter().enumerate().skip(first).take(inner.height as usize).enumerate() {
        let c = state_color(&r.state);
        let progress = match r.total() {
            Some(t) => format!("{}/{t}", r.step()),
            None => String::new(),
        };
        let name_w = (inner.width as usize).saturating_sub(2 + 11 + progress.len() + 1).max(4);
        let name: String = r.name.chars().take(name_w).collect();
        let mut line = Line::from(vec![
            Span::styled(format!("{} ", state_glyph(&r.state)), Style::new().fg(c)),
            Span::raw(format!("{name:<name_w$}")),
            Span::styled(format!(" {:<10}", r.state.word()), Style::new().fg(c)),
            Span::styled(progress, Style::new().fg(theme::MUTED)),
        ]);
        if Some(i) == sel {
            line = line.patch_style(if focused {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new().add_modifier(Modifier::BOLD)
            });
        }
        let y = inner.y + row as u16;
        Paragraph::new(line).render(Rect::new(inner.x, y, inner.width, 1), buf);
    }
}

pub fn render_form(buf: &mut Buffer, area: Rect, ts: &TrainingState) -> Option<(u16, u16)> {
    let focused = ts.focus == TrainFocus::Form;
    let block = panel(" New LoRA run ", focused);
    let inner = block.inner(area);
    block.render(area, buf);
    let label_w = 18usize;
    let mut cursor = None;
    for (i, &row) in FORM_ROWS.iter().enumerate().take(inner.height as usize) {
        let y = inner.y + i as u16;
        let selected = focused && i == ts.row;
        let label = Span::styled(
            format!(" {:<w$}", TrainForm::label(row), w = label_w - 1),
            Style::new().fg(theme::MUTED),
        );
        let mut spans = vec![label];
        match (row, &ts.editing) {
            (r, Some(ed)) if selected && r != FormRow::Launch => {
                spans.push(Span::styled(
                    ed.text.clone(),
                    Style::new().fg(theme::FOCUS).add_modifier(Modifier::UNDERLINED),
                ));
                let before: String = ed.text.chars().take(ed.cursor).collect();
                let x = inner.x + label_w as u16 + Span::raw(before).width() as u16;
                cursor = Some((x.min(inner.right().saturating_sub(1)), y));
            }
            (FormRow::Device, _) => {
                let on = Style::new().add_modifier(Modifier::BOLD);
                let is_cuda = ts.form.device.is_cuda();
                spans.push(Span::styled("cpu", if is_cuda { Style::new() } else { on }));
                spans.push(Span::raw(" / "));
                match &ts.cuda {
                    Some(why) => {
                        spans.push(Span::styled(
                            "cuda",
                            Style::new().fg(theme::MUTED).add_modifier(Modifier::CROSSED_OUT),
                        ));
                        spans.push(Span::styled(format!(" ({why})"), Style::new().fg(theme::MUTED)));
                    }
                    None => spans.push(Span::styled("cuda", if is_cuda { on } else { Style::new() })),
                }
            }
            (FormRow::Launch, _) => {
                spans = vec![Span::styled(
                    format!(" ▶ launch {}", ts.form.name),
                    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                )];
            }
            (r, _) => spans.push(Span::raw(ts.form.value(r))),
        }
        let mut line = Line::from(spans);
        if selected && ts.editing.is_none() {
            line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
        }
        Paragraph::new(line).render(Rect::new(inner.x, y, inner.width, 1), buf);
    }
    cursor
}

/// The selected run: state, gauge, numbers, charts, log.
pub fn render_detail(buf: &mut Buffer, area: Rect, run: Option<&RunSnapshot>) {
    let Some(r) = run else {
        let block = panel(" Run ", false);
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Span::styled("no run selected", Style::new().fg(theme::MUTED))).render(inner, buf);
        return;
    };
    let mut title = format!(" Run {} ", r.name);
    if let Some(rf) = &r.run {
        let base = match &rf.config.run {
            crate::train::RunKind::Lora { base, .. } => base.clone().unwrap_or_else(|| "embedded".into()),
            crate::train::RunKind::Pretrain { .. } => "pretraining".into(),
        };
        title =
            format!(" Run {} · {} · {base} · {} ", r.name, r.objective().unwrap_or("?"), rf.config.device);
    }
    let block = panel(title, true);
    let inner = block.inner(area);
    block.render(area, buf);
    let [state_a, gauge_a, nums_a, ck_a, charts_a, log_a] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Percentage(50),
        Constraint::Fill(1),
    ])
    .areas(inner);
    let c = state_color(&r.state);
    Paragraph::new(Line::from(vec![
        Span::styled(format!("{} ", state_glyph(&r.state)), Style::new().fg(c)),
        Span::styled(r.state.sentence(), Style::new().fg(c).add_modifier(Modifier::BOLD)),
    ]))
    .render(state_a, buf);

    let p = r.progress();
    let mut label = match r.total() {
        Some(t) => format!("{}/{t} steps ({:.0}%)", p.step, p.ratio * 100.0),
        None => "—".into(),
    };
    if let Some(e) = p.eta_s {
        label.push_str(&format!(" · ETA {}", fmt_duration(e)));
    }
    if let Some(s) = p.secs_per_step {
        label.push_str(&format!(" · {s:.2} s/step"));
    }
    Gauge::default()
        .gauge_style(Style::new().fg(c).bg(Color::Black))
        .ratio(p.ratio)
        .label(Span::styled(label, Style::new().fg(Color::White).add_modifier(Modifier::BOLD)))
        .use_unicode(true)
        .render(gauge_a, buf);

    let nums = match r.metrics.last() {
        Some(m) => {
            let mut v = vec![
                Span::styled(
                    format!("{:.0} tok/s", m.tokens_per_s),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("  lr {:.2e}  loss {:.3}", m.lr, m.loss)),
                Span::styled(
                    format!("  m2t {}", m.loss_m2t.map_or("-".into(), |v| format!("{v:.3}"))),
                    Style::new().fg(M2T),
                ),
                Span::styled(
                    format!("  t2t {}", m.loss_t2t.map_or("-".into(), |v| format!("{v:.3}"))),
                    Style::new().fg(T2T),
                ),
                Span::raw(format!("  grad {:.2}", m.grad_norm)),
            ];
            if r.bad_metric_lines > 0 {
                v.push(Span::styled(
                    format!("  ({} unreadable metric lines skipped)", r.bad_metric_lines),
                    Style::new().fg(Color::Yellow),
                ));
            }
            Line::from(v)
        }
        None => Line::from(Span::styled("no steps yet", Style::new().fg(theme::MUTED))),
    };
    Paragraph::new(nums).render(nums_a, buf);

    let mut ck = vec![Span::styled("checkpoints ", Style::new().fg(theme::MUTED))];
    if r.checkpoints.is_empty() {
        ck.push(Span::raw("none"));
    } else {
        ck.push(Span::raw(r.checkpoints.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" ")));
    }
    if let Some(rf) = &r.run
        && let Some(last) = rf.evals.last()
    {
        let step = last["step"].as_u64().unwrap_or(0);
        let parts: Vec<String> = rf
            .evals
            .iter()
            .filter(|e| e["step"].as_u64() == Some(step))
            .map(|e| {
                format!("{} {:.3}", e["suite"].as_str().unwrap_or("?"), e["accuracy"].as_f64().unwrap_or(0.0))
            })
            .collect();
        ck.push(Span::styled(format!("   eval @{step}: "), Style::new().fg(theme::MUTED)));
        ck.push(Span::styled(parts.join("  "), Style::new().fg(Color::Green)));
    }
    Paragraph::new(Line::from(ck)).render(ck_a, buf);

    let [m2t_a, t2t_a] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts_a);
    let m2t = smooth(r.metrics.iter().filter_map(|m| m.loss_m2t.map(|v| (m.step as f64, v))));
    let t2t = smooth(r.metrics.iter().filter_map(|m| m.loss_t2t.map(|v| (m.step as f64, v))));
    let x_max = r.total().unwrap_or(0).max(r.step()).max(1) as f64;
    loss_chart(buf, m2t_a, "M2T loss", &m2t, M2T, x_max);
    loss_chart(buf, t2t_a, "T2T loss", &t2t, T2T, x_max);

    let block = panel(format!(" Log ({}) ", RunDir::LOG_FILE), false);
    let li = block.inner(log_a);
    block.render(log_a, buf);
    let n = li.height as usize;
    let lines: Vec<Line> = r
        .log_tail
        .iter()
        .skip(r.log_tail.len().saturating_sub(n))
        .map(|l| {
            let text = pretty_log_line(l);
            let st = if text.contains("error") || text.contains("failed") || text.contains("panicked") {
                Style::new().fg(theme::ERROR)
            } else if text.starts_with("eval") {
                Style::new().fg(Color::Green)
            } else {
                Style::new()
            };
            Line::from(Span::styled(text, st))
        })
        .collect();
    if lines.is_empty() {
        Paragraph::new(Span::styled("(empty)", Style::new().fg(theme::MUTED))).render(li, buf);
    } else {
        Paragraph::new(lines).render(li, buf);
    }
}

/// Per-step losses are noisy: past [`SMOOTH_AFTER`] points the chart shows an exponential
/// moving average (weight 0.9; the first points are debiased as in Adam).
pub fn smooth(pts: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let raw: Vec<(f64, f64)> = pts.collect();
    if raw.len() <= SMOOTH_AFTER {
        return raw;
    }
    let (mut ema, mut w) = (0.0, 0.0);
    raw.iter()
        .map(|&(x, y)| {
            ema = 0.9 * ema + 0.1 * y;
            w = 0.9 * w + 0.1;
            (x, ema / w)
        })
        .collect()
}

pub const SMOOTH_AFTER: usize = 30;

fn bounds(v: &[(f64, f64)]) -> [f64; 2] {
    let lo = v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = v.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return [0.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    [(lo - pad).max(0.0), hi + pad]
}

/// A loss curve against the step.
pub fn loss_chart(buf: &mut Buffer, area: Rect, name: &str, pts: &[(f64, f64)], color: Color, x_max: f64) {
    let block = panel(Span::styled(format!(" {name} "), Style::new().fg(color)), false);
    if pts.is_empty() {
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Span::styled("no data", Style::new().fg(theme::MUTED))).render(inner, buf);
        return;
    }
    let [y0, y1] = bounds(pts);
    let last = pts.last().map_or(0.0, |p| p.1);
    let ds = Dataset::default()
        .name(format!("{last:.3}"))
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(pts);
    Chart::new(vec![ds])
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(["0".to_string(), format!("{x_max:.0}")])
                .style(Style::new().fg(theme::MUTED)),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([format!("{y0:.2}"), format!("{y1:.2}")])
                .style(Style::new().fg(theme::MUTED)),
        )
        .render(area, buf);
}
