//! `--plot FILE.svg`: every target's latency percentile curve on one chart, as HdrHistogram
//! plots them (x: percentile on a log scale of 1/(1-q), so 90, 99, 99.9 % are evenly spaced;
//! y: latency on a log scale). SVG only, text as SVG text: no font or bitmap libraries.

use std::path::Path;

use plotters::prelude::*;

use crate::latency::Latencies;

/// The plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PlotError {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws the percentile curves of `series` (name, latencies) to `path`.
pub fn percentiles(path: &Path, title: &str, series: &[(String, Latencies)]) -> Result<(), PlotError> {
    let err = |reason: String| PlotError { path: path.display().to_string(), reason };
    let curves: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, l)| (n.as_str(), l.curve(20).into_iter().map(|(q, v)| (nines(q), v.max(1.0))).collect()))
        .collect();
    let x_max = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)).fold(1.0f64, f64::max).ceil();
    let y_min = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(f64::MAX, f64::min).min(1e9);
    let y_max = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(1.0f64, f64::max);
    let (y_min, y_max) = ((y_min * 0.8).max(1.0), y_max * 1.25);

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, (name, points)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Quantile q as "nines": 0 → 0, 0.9 → 1, 0.99 → 2.
fn nines(q: f64) -> f64 {
    if q >= 1.0 { 6.0 } else { -(1.0 - q).log10() }
}

fn percentile_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x.round() as usize).saturating_sub(2);
    format!("{q:.digits$}%")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_plot_names_every_target_and_is_svg() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("p.svg");
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        for v in 1..=2000u64 {
            a.record(Duration::from_micros(20 + v % 50));
            b.record(Duration::from_micros(60 + v % 90));
        }
        percentiles(&path, "test", &[("direct".into(), a), ("sluice".into(), b)]).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for needle in ["direct", "sluice", "90%", "99%", "<polyline"] {
            assert!(svg.contains(needle), "no {needle} in the SVG");
        }
    }

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
    }
}
