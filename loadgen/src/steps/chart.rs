//! The `--rate-steps` chart (SVG, plotters' SVG backend as `compare`'s): goodput and shed
//! replies vs offered load beside the ideal (goodput = offered) and the capacity, and the
//! admitted requests' p99 vs offered load.

use plotters::prelude::*;

use crate::error::LoadgenError;

use super::StepsReport;

const GOODPUT: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const SHED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const IDEAL: RGBColor = RGBColor(0x99, 0x99, 0x99);
const P99: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

pub fn svg(r: &StepsReport) -> Result<String, LoadgenError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1000, 460)).into_drawing_area();
        draw(&root, r).map_err(|e| LoadgenError::Config(format!("chart: {e}")))?;
        root.present()
            .map_err(|e| LoadgenError::Config(format!("chart: {e}")))?;
    }
    Ok(out)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(root: &Area<'_>, r: &StepsReport) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.draw(&Text::new(
        "citadel-loadgen --rate-steps: goodput vs offered load",
        (10, 8),
        ("sans-serif", 20).into_font(),
    ))?;
    let subtitle = match &r.capacity {
        Some(c) => format!(
            "{} | capacity {:.0} ops/s ({})",
            r.servers.join(","),
            c.ops_per_sec,
            if c.measured { "closed loop" } else { "given" }
        ),
        None => r.servers.join(","),
    };
    title.draw(&Text::new(
        subtitle,
        (10, 32),
        ("sans-serif", 11).into_font(),
    ))?;
    let panels = body.split_evenly((1, 2));
    goodput(&panels[0], r)?;
    p99(&panels[1], r)?;
    Ok(())
}

/// kops/s of the steps' offered loads, for the x axis.
fn offered(r: &StepsReport) -> Vec<f64> {
    r.steps
        .iter()
        .map(|s| s.offered_ops_per_sec / 1e3)
        .collect()
}

fn goodput(area: &Area<'_>, r: &StepsReport) -> Result<(), Box<dyn std::error::Error>> {
    let xs = offered(r);
    let x_max = xs.iter().copied().fold(0.0, f64::max).max(1e-6) * 1.05;
    let y_max = r
        .steps
        .iter()
        .map(|s| (s.goodput_ops_per_sec.max(s.shed_per_sec)) / 1e3)
        .chain(xs.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    let mut chart = panel(area, "goodput and shed (kops/s)", x_max, y_max)?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (x_max, x_max)],
            IDEAL.stroke_width(1),
        ))?
        .label("offered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], IDEAL));
    if let Some(c) = &r.capacity {
        let cap = c.ops_per_sec / 1e3;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, cap), (x_max, cap)],
                4,
                4,
                IDEAL.stroke_width(1),
            ))?
            .label("capacity")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], IDEAL));
    }
    series(
        &mut chart,
        &xs,
        r,
        |s| s.goodput_ops_per_sec / 1e3,
        GOODPUT,
        "goodput",
    )?;
    series(&mut chart, &xs, r, |s| s.shed_per_sec / 1e3, SHED, "shed")?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

fn p99(area: &Area<'_>, r: &StepsReport) -> Result<(), Box<dyn std::error::Error>> {
    let xs = offered(r);
    let x_max = xs.iter().copied().fold(0.0, f64::max).max(1e-6) * 1.05;
    let y_max = r
        .steps
        .iter()
        .map(|s| s.p99_us)
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    let mut chart = panel(area, "admitted p99 (µs)", x_max, y_max)?;
    series(&mut chart, &xs, r, |s| s.p99_us, P99, "p99")?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One panel's axes: offered kops/s across, 0..`y_max` up.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    x_max: f64,
    y_max: f64,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("offered (kops/s)")
        .light_line_style(WHITE)
        .draw()?;
    Ok(chart)
}

/// A line with a dot per step.
fn series(
    chart: &mut Chart<'_, '_>,
    xs: &[f64],
    r: &StepsReport,
    y: fn(&super::Step) -> f64,
    color: RGBColor,
    label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let points: Vec<(f64, f64)> = xs.iter().zip(&r.steps).map(|(x, s)| (*x, y(s))).collect();
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
    chart.draw_series(
        points
            .into_iter()
            .map(|p| Circle::new(p, 3, color.filled())),
    )?;
    Ok(())
}
