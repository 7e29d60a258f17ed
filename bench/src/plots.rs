//! The report's line charts, as SVG (plotters' SVG backend): one or more panels side by side,
//! each a few named series over a linear or logarithmic axis.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

/// An axis scale. Logarithmic axes plot `log10` of the values and label them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Values as they are.
    Linear,
    /// Powers of ten apart.
    Log,
}

impl Scale {
    fn to_axis(self, value: f64) -> Option<f64> {
        match self {
            Scale::Linear => value.is_finite().then_some(value),
            Scale::Log => (value.is_finite() && value > 0.0).then(|| value.log10()),
        }
    }

    fn label(self, axis: f64) -> String {
        let value = match self {
            Scale::Linear => axis,
            Scale::Log => 10f64.powf(axis),
        };
        human(value)
    }
}

/// A number the way a person reads it on an axis: 1, 250, 10k, 1.5M, 0.02.
pub fn human(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if magnitude >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// One line of a panel.
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Which of the palette's colours.
    pub colour: usize,
    /// Dashed (a baseline) or solid.
    pub dashed: bool,
    /// (x, y) points; points an axis cannot show (non-positive on a log axis) are left out.
    pub points: Vec<(f64, f64)>,
}

/// One chart.
pub struct Panel {
    /// Its title.
    pub title: String,
    /// The x axis's name and scale.
    pub x: (String, Scale),
    /// The y axis's name and scale.
    pub y: (String, Scale),
    /// Its lines.
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
    RGBColor(214, 39, 40),
];

/// Draws `panels` side by side into an SVG file at `path`.
pub fn draw(path: &Path, panels: &[Panel]) -> anyhow::Result<()> {
    let width = 520 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        draw_panel(panel, area)?;
    }
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn draw_panel(
    panel: &Panel,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
) -> anyhow::Result<()> {
    let (x_scale, y_scale) = (panel.x.1, panel.y.1);
    let points: Vec<Vec<(f64, f64)>> = panel
        .series
        .iter()
        .map(|series| {
            series
                .points
                .iter()
                .filter_map(|&(x, y)| Some((x_scale.to_axis(x)?, y_scale.to_axis(y)?)))
                .collect()
        })
        .collect();
    let all = points.iter().flatten();
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min > x_max {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    // Log axes span whole powers of ten, so their ticks fall on 1, 10, 100…
    let range = |low: f64, high: f64, scale: Scale| match scale {
        Scale::Log => {
            let (low, high) = (low.floor(), high.ceil());
            (low, if high > low { high } else { low + 1.0 })
        }
        Scale::Linear => {
            let span = (high - low).max(high.abs().max(1.0) * 0.2);
            let low = if low >= 0.0 { 0.0 } else { low - span * 0.08 };
            (low, high + span * 0.08)
        }
    };
    let ticks = |(low, high): (f64, f64), scale: Scale| match scale {
        Scale::Log => ((high - low) as usize + 1).min(12),
        Scale::Linear => 8,
    };
    let (x_low, x_high) = range(x_min, x_max, x_scale);
    let (y_low, y_high) = range(y_min, y_max, y_scale);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_low..x_high, y_low..y_high)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(panel.x.0.as_str())
        .y_desc(panel.y.0.as_str())
        .x_label_formatter(&|v| x_scale.label(*v))
        .y_label_formatter(&|v| y_scale.label(*v))
        .x_labels(ticks((x_low, x_high), x_scale))
        .y_labels(ticks((y_low, y_high), y_scale))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()
        .map_err(plot_error)?;
    for (series, points) in panel.series.iter().zip(points) {
        let colour = PALETTE[series.colour % PALETTE.len()];
        let style = ShapeStyle::from(&colour).stroke_width(2);
        let line = if series.dashed {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))
                .map_err(plot_error)?
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(plot_error)?
        };
        line.label(series.name.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
        });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_numbers_read_as_a_person_writes_them() {
        assert_eq!(human(1.0), "1");
        assert_eq!(human(250_000.0), "250k");
        assert_eq!(human(1_500_000.0), "1.5M");
        assert_eq!(human(0.02), "0.02");
        assert_eq!(human(12.5), "12.5");
        assert_eq!(Scale::Log.label(3.0), "1k");
    }

    #[test]
    fn charts_are_written_as_svg() {
        let path = std::env::temp_dir().join(format!("bench-plot-{}.svg", std::process::id()));
        let panel = Panel {
            title: "deliveries".into(),
            x: ("subscribers".into(), Scale::Log),
            y: ("per second".into(), Scale::Log),
            series: vec![Series {
                name: "a".into(),
                colour: 0,
                dashed: true,
                points: vec![(1.0, 100.0), (100.0, 1e4), (0.0, 5.0)],
            }],
        };
        draw(&path, &[panel]).expect("draws");
        let svg = std::fs::read_to_string(&path).expect("written");
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("deliveries") && svg.contains("subscribers"));
    }
}
