//! SVG chart of throughput and p99 per server (plotters, SVG backend only: no font or
//! system libraries; text is emitted as SVG <text> and sized by plotters' naive metrics).

use plotters::prelude::*;

use crate::error::LoadgenError;

use super::Summary;

const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
];

pub fn svg(rows: &[Summary], subtitle: &str) -> Result<String, LoadgenError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1000, 460)).into_drawing_area();
        draw(&root, rows, subtitle).map_err(|e| LoadgenError::Config(format!("chart: {e}")))?;
        root.present()
            .map_err(|e| LoadgenError::Config(format!("chart: {e}")))?;
    }
    Ok(out)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(
    root: &Area<'_>,
    rows: &[Summary],
    subtitle: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.draw(&Text::new(
        "citadel-loadgen compare",
        (10, 8),
        ("sans-serif", 20).into_font(),
    ))?;
    title.draw(&Text::new(
        subtitle.to_string(),
        (10, 32),
        ("sans-serif", 11).into_font(),
    ))?;
    let panels = body.split_evenly((1, 2));
    bars(&panels[0], rows, "throughput (kops/s)", |r| {
        r.ops_per_sec / 1e3
    })?;
    bars(&panels[1], rows, "p99 latency (µs)", |r| r.p99_us)?;
    Ok(())
}

fn bars(
    area: &Area<'_>,
    rows: &[Summary],
    caption: &str,
    value: fn(&Summary) -> f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let max = rows.iter().map(value).fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let n = rows.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, 0f64..max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .light_line_style(WHITE)
        .draw()?;
    for (i, r) in rows.iter().enumerate() {
        let v = value(r);
        let color = COLORS[i % COLORS.len()];
        chart.draw_series(std::iter::once(Rectangle::new(
            [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, v)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{}: {v:.1}", r.server),
            (i as f64 + 0.2, v + max * 0.07),
            ("sans-serif", 12).into_font(),
        )))?;
    }
    Ok(())
}
