//! PNG plots of upload latency against load (plotters drawing into a pixel buffer, encoded by
//! the `image` crate the workspace already has). Text needs a TrueType font: DejaVu Sans from
//! the system (Debian's `fonts-dejavu-core`); without it the plots are skipped.

use std::path::{Path, PathBuf};

use plotters::{prelude::*, style::FontStyle};

use crate::report::UploadPoint;

const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> bool {
    for path in FONTS {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps fonts for the whole process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok();
        }
    }
    false
}

/// One plot per mode (closed, open) of the 100 KB distinct-body points: p50 and p99 against
/// achieved uploads/s, one line per system and percentile. Returns (title, file) of each.
pub fn upload_plots(points: &[UploadPoint], dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if !register_font() {
        eprintln!("no DejaVu Sans font found: plots skipped");
        return Ok(Vec::new());
    }
    let mut made = Vec::new();
    for (mode, title) in [
        (
            "closed",
            "Uploads, 100 KB, closed loop (concurrency 1/16/64)",
        ),
        ("open", "Uploads, 100 KB, open loop (fixed offered rates)"),
    ] {
        let series: Vec<(&str, Vec<&UploadPoint>)> = ["facematch", "peer"]
            .into_iter()
            .map(|s| {
                let mut v: Vec<&UploadPoint> = points
                    .iter()
                    .filter(|p| {
                        p.system == s && p.mode == mode && p.body_bytes < 1 << 20 && !p.same_bytes
                    })
                    .collect();
                v.sort_by(|a, b| a.level.total_cmp(&b.level));
                (s, v)
            })
            .collect();
        if series.iter().all(|(_, v)| v.is_empty()) {
            continue;
        }
        let file = dir.join(format!("uploads-{mode}.png"));
        draw(&file, title, &series)?;
        made.push((title.to_owned(), file));
    }
    Ok(made)
}

fn draw(file: &Path, title: &str, series: &[(&str, Vec<&UploadPoint>)]) -> anyhow::Result<()> {
    let (w, h) = (900u32, 540u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let all = series.iter().flat_map(|(_, v)| v.iter());
        let x_max = all.clone().map(|p| p.throughput).fold(1.0, f64::max) * 1.1;
        let y_max = all.clone().map(|p| p.p99_ms).fold(1.0, f64::max) * 2.0;
        let y_min = all.map(|p| p.p50_ms).fold(f64::MAX, f64::min).max(0.01) / 2.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("uploads answered 200 per second")
            .y_desc("latency, ms (log)")
            .label_style(("sans-serif", 14))
            .draw()?;
        let colours = [RGBColor(0, 90, 200), RGBColor(220, 90, 0)];
        for ((system, pts), colour) in series.iter().zip(colours) {
            for (pct, dashed) in [("p50", false), ("p99", true)] {
                let xy: Vec<(f64, f64)> = pts
                    .iter()
                    .map(|p| (p.throughput, if pct == "p50" { p.p50_ms } else { p.p99_ms }))
                    .collect();
                let style = ShapeStyle {
                    color: colour.to_rgba(),
                    filled: !dashed,
                    stroke_width: if dashed { 1 } else { 2 },
                };
                chart
                    .draw_series(LineSeries::new(xy.clone(), style))?
                    .label(format!("{system} {pct}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                chart.draw_series(xy.iter().map(|&(x, y)| Circle::new((x, y), 4, style)))?;
            }
            for p in pts {
                chart.draw_series(std::iter::once(Text::new(
                    format!("{}", p.level),
                    (p.throughput, p.p99_ms * 1.15),
                    ("sans-serif", 12).into_font().color(&colour),
                )))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        root.present()?;
    }
    let img =
        image::RgbImage::from_raw(w, h, buf).ok_or_else(|| anyhow::anyhow!("plot buffer size"))?;
    img.save(file)?;
    Ok(())
}
