//! Draws a [`Frame`] with ratatui: title, cores and summary side by side,
//! the busiest commands, then shed by layer, hot keys and pipelines, then
//! each plugin version's calls, errors, p99 and queue.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use crate::model::Frame;

fn table<'a>(
    title: &'a str,
    header: &'a [&'a str],
    rows: Vec<Vec<String>>,
    widths: &[u16],
) -> Table<'a> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    Table::new(
        rows.into_iter().map(Row::new),
        widths.iter().map(|&w| Constraint::Length(w)),
    )
    .header(Row::new(header.iter().copied()).style(bold))
    .block(Block::default().borders(Borders::ALL).title(title))
}

pub fn draw(f: &mut ratatui::Frame<'_>, frame: &Frame, status: &str) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(frame.cores.len().max(8) as u16 + 3),
            Constraint::Min(6),
            Constraint::Length(9),
            Constraint::Length(frame.plugins.len().clamp(1, 8) as u16 + 3),
            Constraint::Length(1),
        ])
        .split(f.area());
    f.render_widget(
        Paragraph::new(Line::from(frame.title.as_str()))
            .style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[0],
    );
    let top = split(rows[1], &[55, 45]);
    let cores = frame
        .cores
        .iter()
        .map(|c| {
            vec![
                c.core.to_string(),
                format!("{:.0}", c.ops_per_sec),
                format!("{:.1}%", c.busy * 100.0),
                format!("{:.2}", c.queue_delay_ms),
            ]
        })
        .collect();
    f.render_widget(
        table(
            "cores",
            &["core", "ops/s", "busy", "queue ms"],
            cores,
            &[6, 12, 8, 10],
        ),
        top[0],
    );
    let summary = frame
        .summary
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    f.render_widget(table("server", &["", ""], summary, &[14, 16]), top[1]);
    let commands = frame
        .commands
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                format!("{:.0}", c.per_sec),
                c.calls.to_string(),
                format!("{:.1}", c.avg_us),
                c.p99_us.map_or("-".into(), |p| format!("<{p:.0}")),
            ]
        })
        .collect();
    f.render_widget(
        table(
            "commands",
            &["command", "calls/s", "calls", "avg µs", "p99 µs"],
            commands,
            &[24, 10, 12, 10, 10],
        ),
        rows[2],
    );
    let bottom = split(rows[3], &[30, 35, 35]);
    let shed = frame
        .shed
        .iter()
        .map(|(layer, per_sec, total)| {
            vec![
                layer.to_string(),
                format!("{per_sec:.0}"),
                total.to_string(),
            ]
        })
        .collect();
    f.render_widget(
        table(
            "shed by layer",
            &["layer", "/s", "total"],
            shed,
            &[11, 8, 10],
        ),
        bottom[0],
    );
    let hot = frame
        .hot_keys
        .iter()
        .map(|(k, r)| vec![k.clone(), format!("{r:.0}")])
        .collect();
    f.render_widget(table("hot keys", &["key", "/s"], hot, &[24, 10]), bottom[1]);
    let pipelines = frame
        .pipelines
        .iter()
        .map(|(n, v)| vec![n.clone(), v.clone()])
        .collect();
    f.render_widget(
        table("pipelines", &["name", "stats"], pipelines, &[12, 60]),
        bottom[2],
    );
    f.render_widget(plugins(frame), rows[4]);
    f.render_widget(Paragraph::new(format!(" q: quit · {status}")), rows[5]);
}

fn plugins(frame: &Frame) -> Table<'_> {
    let rows = frame
        .plugins
        .iter()
        .map(|p| {
            vec![
                p.plugin.clone(),
                p.version.clone(),
                format!("{:.0}", p.per_sec),
                p.calls.to_string(),
                p.errors.to_string(),
                p.timeouts.to_string(),
                p.p99_us.map_or("-".into(), |us| format!("<{us:.0}")),
                p.queue.to_string(),
                p.refused.to_string(),
            ]
        })
        .collect();
    table(
        "plugins",
        &[
            "plugin", "version", "calls/s", "calls", "errors", "timeouts", "p99 µs", "queue",
            "refused",
        ],
        rows,
        &[16, 12, 10, 12, 8, 9, 10, 7, 9],
    )
}

fn split(area: Rect, percents: &[u16]) -> std::rc::Rc<[Rect]> {
    Layout::default()
        .direction(Direction::Horizontal)
        .constraints(percents.iter().map(|&p| Constraint::Percentage(p)))
        .split(area)
}
