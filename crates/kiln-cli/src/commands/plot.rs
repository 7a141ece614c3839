//! Loss curves as SVG.

use std::path::Path;

use plotters::prelude::*;

/// Writes `curve` (loss per step) as an SVG line chart to `path`.
pub fn loss_curve(path: &Path, title: &str, curve: &[f64]) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: cannot write plot: {e}", path.display());
    let finite: Vec<(usize, f64)> = curve.iter().copied().enumerate().filter(|(_, v)| v.is_finite()).collect();
    let top = finite.iter().map(|(_, v)| *v).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.05 } else { 1.0 };
    let steps = curve.len().max(2);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0..steps, 0.0..top)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (binary cross-entropy)")
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(finite.iter().map(|&(i, v)| (i + 1, v)), &BLUE))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
