//! The results pane (`r`): suite × model/adapter/checkpoint table, accuracy and edit-intensity
//! curves across checkpoints with the base model as the reference line, and the selected row's
//! failing items.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState, Widget};

use super::panel;
use super::training::{render_bottom, render_tabs};
use crate::bench::results::{ComparisonRow, row_label};
use crate::decode::{AttentionMode, Mode};
use crate::tui::app::{App, HitMap};
use crate::tui::results::{Curves, ResFocus, ResultsState};
use crate::tui::screens::Screen;
use crate::tui::theme;

/// Colours of the runs' curves, in order.
pub const CURVE_COLORS: [Color; 5] =
    [Color::Cyan, Color::Magenta, Color::Yellow, Color::LightBlue, Color::LightGreen];
/// The base model's reference line.
pub const BASE_COLOR: Color = Color::White;
pub const BETTER: Color = Color::Green;
pub const WORSE: Color = Color::Red;

/// The screen split: tabs, main area, jobs line, message, footer.
fn screen_areas(area: Rect, app: &App) -> [Rect; 5] {
    let jobs_h = u16::from(!app.results.jobs.is_empty() || !app.results.job_notes.is_empty());
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(jobs_h),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// Where the charts are on the screen (the tour's overlay goes there).
pub fn charts_area(area: Rect, app: &App) -> Rect {
    let [_, main, ..] = screen_areas(area, app);
    main_areas(main, &app.results)[1]
}

pub fn draw(frame: &mut Frame, app: &App) -> HitMap {
    let [tabs, main, jobs, message, footer] = screen_areas(frame.area(), app);
    render_tabs(frame.buffer_mut(), tabs, Screen::Results);
    render_main(frame.buffer_mut(), main, &app.results);
    render_jobs(frame.buffer_mut(), jobs, &app.results);
    render_bottom(frame.buffer_mut(), message, footer, app, app.results.footer_keys());
    if let Some(ed) = &app.results.bench_input {
        let label = "draftscope bench ";
        let line = Line::from(vec![
            Span::styled(label, Style::new().fg(theme::FOCUS).add_modifier(Modifier::BOLD)),
            Span::raw(ed.text.clone()),
        ]);
        Paragraph::new(line).render(footer, frame.buffer_mut());
        let before: String = ed.text.chars().take(ed.cursor).collect();
        let x = footer.x + Span::raw(label).width() as u16 + Span::raw(before).width() as u16;
        frame.set_cursor_position((x.min(footer.right().saturating_sub(1)), footer.y));
    }
    super::help::render_overlays(frame, app);
    HitMap::default()
}

fn render_jobs(buf: &mut Buffer, area: Rect, rs: &ResultsState) {
    if area.height == 0 {
        return;
    }
    let text = match rs.jobs.first() {
        Some(j) => format!(
            " ⟳ {} (pid {}, {}){}",
            j.what,
            j.pid,
            crate::tui::runs::fmt_duration(j.started.elapsed().as_secs_f64()),
            if rs.jobs.len() > 1 { format!(" +{} more", rs.jobs.len() - 1) } else { String::new() }
        ),
        None => format!(" {}", rs.job_notes.first().cloned().unwrap_or_default()),
    };
    Paragraph::new(Span::styled(text, Style::new().fg(Color::Cyan))).render(area, buf);
}

/// The main area split: the table on top, the charts (left) and the failing items (right)
/// below.
pub fn main_areas(area: Rect, rs: &ResultsState) -> [Rect; 3] {
    let table_h = (rs.rows.len() as u16 + 4).clamp(6, (area.height / 2).max(6));
    let [table_a, lower] = Layout::vertical([Constraint::Length(table_h), Constraint::Fill(1)]).areas(area);
    let [charts_a, failing_a] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(lower);
    [table_a, charts_a, failing_a]
}

/// Table on top, charts and failing items below.
pub fn render_main(buf: &mut Buffer, area: Rect, rs: &ResultsState) {
    let [table_a, charts_a, failing_a] = main_areas(area, rs);
    render_table(buf, table_a, rs);
    let [acc_a, edit_a] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts_a);
    let c = rs.curves();
    curve_chart(buf, acc_a, &c, true);
    curve_chart(buf, edit_a, &c, false);
    render_failing(buf, failing_a, rs);
}

/// Δbase in points with its paired 95% interval, and `*` when the McNemar test against the
/// base survives the Holm correction over the table at 0.05.
fn fmt_delta(r: &crate::bench::ComparisonRow) -> String {
    let Some(d) = r.delta_vs_base else { return "–".into() };
    let mark = if r.p_holm.is_some_and(|p| p < 0.05) { "*" } else { "" };
    match r.delta_ci {
        Some([lo, hi]) => format!("{:+.1} [{:+.0},{:+.0}]{mark}", d * 100.0, lo * 100.0, hi * 100.0),
        None => format!("{:+.1}{mark}", d * 100.0),
    }
}

/// T2M remasks per 100 generated tokens, in the remask colour; `–` for a T2T run (it has none
/// by construction) and for records written before remasks were counted.
fn fmt_remasks(r: &crate::bench::ComparisonRow) -> Span<'static> {
    if r.remask_intensity > 0.0 || r.policy.starts_with("t2m") {
        Span::styled(format!("{:.1}", r.remask_intensity), Style::new().fg(theme::REMASK))
    } else {
        Span::styled("–", Style::new().fg(theme::MUTED))
    }
}

/// The decode setting a row was measured in: the mode (`Q`, `S`, `default`), plus `t2m` for a
/// remasking run and `hf` for full attention, so rows of one model in two settings are told apart.
fn setting_label(r: &ComparisonRow) -> String {
    let mut s = match r.mode {
        Mode::Q => "Q".to_string(),
        Mode::S => "S".to_string(),
        Mode::Default => "default".to_string(),
    };
    if r.policy.starts_with("t2m") {
        s.push_str(" t2m");
    }
    if r.attention == AttentionMode::Hf {
        s.push_str(" hf");
    }
    s
}

pub fn render_table(buf: &mut Buffer, area: Rect, rs: &ResultsState) {
    let focused = rs.focus == ResFocus::Table;
    let mut title = format!(" Results · {} ", rs.root().display());
    if rs.showing_demo() {
        title.push_str("(demo set) ");
    }
    if let Some(Ok(l)) = rs.loaded()
        && !l.bad_lines.is_empty()
    {
        title.push_str(&format!("· {} unreadable lines skipped ", l.bad_lines.len()));
    }
    let block = panel(title, focused);
    if rs.rows.is_empty() {
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Span::styled(rs.source_line(), Style::new().fg(theme::MUTED))).render(inner, buf);
        return;
    }
    let header = Row::new(vec![
        "suite",
        "model / adapter",
        "mode",
        "n",
        "accuracy [95% CI]",
        "Δbase [95% CI]",
        "edits/100",
        "remask/100",
        "TPF",
        "final-digit",
        "over-corr",
    ])
    .style(Style::new().fg(theme::MUTED).add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = rs
        .rows
        .iter()
        .map(|r| {
            let acc_style = match r.delta_vs_base {
                Some(d) if d > 0.0005 => Style::new().fg(BETTER),
                Some(d) if d < -0.0005 => Style::new().fg(WORSE),
                _ => Style::new(),
            };
            let label_style =
                if r.adapter.is_none() { Style::new().add_modifier(Modifier::BOLD) } else { Style::new() };
            Row::new(vec![
                Span::raw(r.suite.clone()),
                Span::styled(row_label(r), label_style),
                Span::raw(setting_label(r)),
                Span::raw(r.n.to_string()),
                Span::styled(
                    format!("{:.3} [{:.2},{:.2}]", r.accuracy, r.accuracy_ci[0], r.accuracy_ci[1]),
                    acc_style,
                ),
                Span::styled(fmt_delta(r), acc_style),
                Span::raw(format!("{:.1}", r.edit_intensity)),
                fmt_remasks(r),
                Span::raw(format!("{:.2}", r.tpf)),
                Span::raw(r.final_digit_errors.to_string()),
                Span::styled(
                    r.over_corrected.to_string(),
                    if r.over_corrected > 0 { Style::new().fg(Color::Yellow) } else { Style::new() },
                ),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Fill(1),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(20),
        Constraint::Length(18),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(11),
        Constraint::Length(9),
    ];
    let hl = if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::UNDERLINED)
    };
    let table =
        Table::new(rows, widths).header(header).block(block).row_highlight_style(hl).column_spacing(1);
    let mut state = TableState::default().with_selected(Some(rs.sel));
    ratatui::widgets::StatefulWidget::render(table, area, buf, &mut state);
}

/// Accuracy (`accuracy = true`) or edit intensity across checkpoints, one line per run, the
/// base model as a flat reference line.
pub fn curve_chart(buf: &mut Buffer, area: Rect, c: &Curves, accuracy: bool) {
    let what = if accuracy { "Accuracy" } else { "Edits/100 tokens" };
    let block = panel(format!(" {what} · {} ", if c.suite.is_empty() { "–" } else { &c.suite }), false);
    let series: Vec<(&str, &Vec<(f64, f64)>)> =
        c.runs.iter().map(|r| (r.name.as_str(), if accuracy { &r.accuracy } else { &r.edits })).collect();
    let base = if accuracy { c.base_accuracy } else { c.base_edits };
    if series.iter().all(|s| s.1.is_empty()) && base.is_none() {
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Span::styled("no results for this suite", Style::new().fg(theme::MUTED)))
            .render(inner, buf);
        return;
    }
    let x_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(0.0f64, f64::max).max(1.0);
    let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).chain(base);
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), y| (l.min(y), h.max(y)));
    let (y0, y1) = if accuracy {
        (0.0, 1.0)
    } else {
        let pad = ((hi - lo) * 0.1).max(0.5);
        ((lo - pad).max(0.0), hi + pad)
    };
    let base_pts: Vec<(f64, f64)> = base.map(|b| vec![(0.0, b), (x_max, b)]).unwrap_or_default();
    // Every run starts from the base model (a fresh LoRA adapter changes nothing), so its
    // curve starts at (0, base): a run with one checkpoint is still a line.
    let starts: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, pts)| match base {
            Some(b) if pts.first().is_some_and(|p| p.0 > 0.0) => {
                std::iter::once((0.0, b)).chain(pts.iter().copied()).collect()
            }
            _ => pts.to_vec(),
        })
        .collect();
    let mut ds = Vec::new();
    for (i, ((name, _), pts)) in series.iter().zip(&starts).enumerate() {
        ds.push(
            Dataset::default()
                .name(name.to_string())
                .marker(Marker::Braille)
                .graph_type(if pts.len() == 1 { GraphType::Scatter } else { GraphType::Line })
                .style(Style::new().fg(CURVE_COLORS[i % CURVE_COLORS.len()]))
                .data(pts),
        );
    }
    // The reference line last, so the runs' curves do not hide it.
    if let Some(b) = base {
        ds.push(
            Dataset::default()
                .name(format!("base {b:.2}"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(BASE_COLOR))
                .data(&base_pts),
        );
    }
    Chart::new(ds)
        .block(block)
        .x_axis(
            Axis::default()
                .title("step")
                .bounds([0.0, x_max])
                .labels(["0".to_string(), format!("{x_max:.0}")])
                .style(Style::new().fg(theme::MUTED)),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([format!("{y0:.1}"), format!("{y1:.1}")])
                .style(Style::new().fg(theme::MUTED)),
        )
        .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)))
        .render(area, buf);
}

pub fn render_failing(buf: &mut Buffer, area: Rect, rs: &ResultsState) {
    let focused = rs.focus == ResFocus::Failing;
    let title = match rs.selected_row() {
        Some(r) => format!(" Failing · {} · {} ({}) ", r.suite, row_label(r), rs.failing.len()),
        None => " Failing items ".into(),
    };
    let block = panel(title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if rs.failing.is_empty() {
        let msg = if rs.rows.is_empty() { "" } else { "none — every item right" };
        Paragraph::new(Span::styled(msg, Style::new().fg(theme::MUTED))).render(inner, buf);
        return;
    }
    let h = inner.height as usize;
    let first = (rs.fsel + 1).saturating_sub(h);
    let id_w = rs.failing.iter().map(|f| f.id.chars().count()).max().unwrap_or(0).clamp(6, 24);
    for (row, (i, f)) in rs.failing.iter().enumerate().skip(first).take(h).enumerate() {
        let mut spans = vec![
            Span::raw(format!("{:<id_w$} ", f.id)),
            Span::styled(f.predicted.clone().unwrap_or_else(|| "∅".into()), Style::new().fg(WORSE)),
            Span::styled(" → ", Style::new().fg(theme::MUTED)),
            Span::styled(f.gold.clone(), Style::new().fg(BETTER)),
        ];
        if let Some(d) = f.final_digit {
            spans.push(Span::styled(
                format!("  digit {}", format!("{d:?}").to_lowercase()),
                Style::new().fg(Color::Yellow),
            ));
        }
        if f.over_corrected {
            spans.push(Span::styled("  over-corrected", Style::new().fg(theme::EDIT)));
        }
        if f.harmful_edits > 0 {
            spans.push(Span::styled(format!("  {} harmful", f.harmful_edits), Style::new().fg(theme::EDIT)));
        }
        if let Some(e) = &f.error {
            spans.push(Span::styled(format!("  error: {e}"), Style::new().fg(theme::ERROR)));
        }
        let mut line = Line::from(spans);
        if i == rs.fsel && focused {
            line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
        }
        Paragraph::new(line).render(Rect::new(inner.x, inner.y + row as u16, inner.width, 1), buf);
    }
}
