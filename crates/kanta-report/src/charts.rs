//! SVG charts drawn with plotters' SVG backend.
//!
//! Each function returns one `<svg>` element as a string, embedded inline in the HTML report so
//! the report needs no external file. Chart failures (which plotters reports only for backend
//! errors, impossible when drawing into a `String`) become an explanatory `<p>` instead of a
//! panic.

use kanta_core::analysis::{Cohorts, Concentration, GroupRow, LadderStep, TimeBetween};
use kanta_uplift::curve::CurvePoint;
use plotters::prelude::*;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 320;
const FONT: &str = "sans-serif";
const ACCENT: RGBColor = RGBColor(37, 99, 235);
const SECOND: RGBColor = RGBColor(234, 88, 12);
const GREY: RGBColor = RGBColor(148, 163, 184);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn render(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| Box::new(e) as Box<dyn std::error::Error>).and_then(|()| draw(root))
    };
    match result {
        Ok(()) => {
            svg.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{}\" class=\"chart\" ", escape(title)), 1)
        }
        Err(e) => format!(
            "<p class=\"chart-error\">The chart “{}” could not be drawn: {}</p>",
            escape(title),
            escape(&e.to_string())
        ),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn pct(v: &f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// Bars: the share of customers with k orders who made order k + 1.
pub fn ladder(steps: &[LadderStep]) -> String {
    render("Repeat-purchase ladder", (WIDTH, HEIGHT), |root| {
        let top = steps.iter().map(|s| s.share).fold(0.0, f64::max).max(0.1) * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((1u32..5u32).into_segmented(), 0f64..top.min(1.0))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("orders so far → made one more")
            .y_label_formatter(&pct)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => format!("{k} → {}", k + 1),
                SegmentValue::Last => String::new(),
            })
            .label_style((FONT, 13))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(ACCENT.filled())
                .margin(14)
                .data(steps.iter().map(|s| (s.purchases, s.share))),
        )?;
        chart.draw_series(steps.iter().map(|s| {
            Text::new(
                pct(&s.share),
                (SegmentValue::CenterOf(s.purchases), s.share + top * 0.03),
                (FONT, 13).into_font(),
            )
        }))?;
        root.present()?;
        Ok(())
    })
}

/// The Lorenz curve of customer revenue against the line of equality.
pub fn lorenz(c: &Concentration) -> String {
    render("Lorenz curve of customer revenue", (WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("share of customers (lowest revenue first)")
            .y_desc("share of revenue")
            .x_label_formatter(&pct)
            .y_label_formatter(&pct)
            .label_style((FONT, 13))
            .draw()?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], GREY.stroke_width(1)))?
            .label("equality")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREY));
        chart
            .draw_series(
                AreaSeries::new(c.lorenz.iter().map(|p| (p[0], p[1])), 0.0, ACCENT.mix(0.15))
                    .border_style(ACCENT.stroke_width(2)),
            )?
            .label(format!("customers (Gini {:.2})", c.gini))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], ACCENT.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(GREY)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Colour for a retention share: white at 0, the accent colour at `max`.
fn heat(share: f64, max: f64) -> RGBColor {
    let t = if max > 0.0 { (share / max).clamp(0.0, 1.0) } else { 0.0 };
    let mix = |from: u8, to: u8| (f64::from(from) + (f64::from(to) - f64::from(from)) * t).round() as u8;
    RGBColor(mix(248, ACCENT.0), mix(250, ACCENT.1), mix(252, ACCENT.2))
}

/// Cohort retention heat map: first-purchase month (rows) × months since (columns).
///
/// Month 0 is always 100 % and would wash out the scale, so colours are relative to the largest
/// share from month 1 on. At most the last 36 cohorts and 36 months are drawn; the table below
/// the chart in the report has them all.
pub fn cohort_heatmap(c: &Cohorts) -> String {
    let rows = c.months.len().min(36);
    let skip = c.months.len() - rows;
    let cols = rows.max(1);
    let height = (rows as u32 * 16 + 80).max(200);
    render("Monthly cohort retention", (WIDTH + 80, height), |root| {
        let max =
            c.retention.iter().skip(skip).flat_map(|r| r.iter().skip(1).take(cols - 1)).copied().fold(0.0, f64::max);
        let months = &c.months[skip..];
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(0i32..cols as i32, 0i32..rows.max(1) as i32)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("months since first purchase")
            .x_labels(cols.min(13))
            .y_labels(rows.min(24))
            .y_label_formatter(&|y| {
                let i = rows as i32 - 1 - *y;
                usize::try_from(i).ok().and_then(|i| months.get(i)).cloned().unwrap_or_default()
            })
            .label_style((FONT, 12))
            .draw()?;
        let cells = c.retention.iter().skip(skip).enumerate().flat_map(|(row, shares)| {
            shares.iter().take(cols).enumerate().map(move |(k, &share)| {
                let y = rows as i32 - 1 - row as i32;
                let colour = if k == 0 { GREY.mix(0.35).to_rgba() } else { heat(share, max).to_rgba() };
                Rectangle::new([(k as i32, y), (k as i32 + 1, y + 1)], colour.filled())
            })
        });
        chart.draw_series(cells)?;
        root.present()?;
        Ok(())
    })
}

/// Histogram of days from the first to the second purchase.
pub fn gaps(t: &TimeBetween) -> String {
    let labels: Vec<String> = t
        .histogram
        .iter()
        .map(|b| b.to.map_or_else(|| format!(">{}", b.from.saturating_sub(1)), |to| format!("{}–{to}", b.from)))
        .collect();
    let counts: Vec<u64> = t.histogram.iter().map(|b| b.customers).collect();
    bars("Days from first to second purchase", "days", &labels, &counts)
}

/// Paired horizontal bars: each group's share of customers and of revenue.
pub fn groups(title: &str, rows: &[GroupRow]) -> String {
    let rows: Vec<&GroupRow> = rows.iter().filter(|g| g.customers > 0).collect();
    let height = (rows.len() as u32 * 34 + 90).max(180);
    render(title, (WIDTH + 80, height), |root| {
        let top = rows.iter().map(|g| g.share.max(g.revenue_share)).fold(0.0, f64::max).max(0.05) * 1.1;
        let n = rows.len() as u32;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(140)
            .build_cartesian_2d(0f64..top.min(1.0), (0u32..n.saturating_sub(1)).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_label_formatter(&pct)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    rows.get((n - 1 - *i) as usize).map(|g| g.name.clone()).unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .label_style((FONT, 13))
            .draw()?;
        chart
            .draw_series(rows.iter().enumerate().map(|(i, g)| {
                let y = n - 1 - i as u32;
                Rectangle::new([(0.0, SegmentValue::Exact(y)), (g.share, SegmentValue::CenterOf(y))], ACCENT.filled())
            }))?
            .label("share of customers")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], ACCENT.filled()));
        chart
            .draw_series(rows.iter().enumerate().map(|(i, g)| {
                let y = n - 1 - i as u32;
                Rectangle::new(
                    [(0.0, SegmentValue::CenterOf(y)), (g.revenue_share, SegmentValue::Exact(y + 1))],
                    SECOND.filled(),
                )
            }))?
            .label("share of revenue")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], SECOND.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(GREY)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Two lines, observed and model, e.g. a retention curve or a BTYD tracking plot; `split` draws
/// a dashed vertical line (the end of calibration). `y_percent` labels the y axis in %.
pub fn actual_vs_model(
    title: &str,
    axes: (&str, &str),
    actual: &[(f64, f64)],
    model: &[(f64, f64)],
    split: Option<f64>,
    y_percent: bool,
) -> String {
    render(title, (WIDTH, HEIGHT), |root| {
        let all = actual.iter().chain(model);
        let x_max = all.clone().map(|p| p.0).fold(0.0, f64::max).max(1.0);
        let y_max = all.map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.08;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        let number = |v: &f64| if y_percent { pct(v) } else { format!("{v:.0}") };
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .y_label_formatter(&number)
            .label_style((FONT, 13))
            .draw()?;
        if let Some(x) = split {
            chart.draw_series(DashedLineSeries::new([(x, 0.0), (x, y_max)], 4, 4, GREY.stroke_width(1)))?;
        }
        chart
            .draw_series(LineSeries::new(actual.iter().copied(), ACCENT.stroke_width(2)))?
            .label("actual")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], ACCENT.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(model.iter().copied(), 6, 3, SECOND.stroke_width(2)))?
            .label("model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], SECOND.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(GREY)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Vertical bars of customer counts per bin, labelled `labels` (the time-between-purchases
/// histogram and the model distributions).
pub fn bars(title: &str, x_desc: &str, labels: &[String], counts: &[u64]) -> String {
    counted_bars(title, x_desc, "customers", labels, counts)
}

/// Vertical bars of counts of `y_desc` per bin, labelled `labels`.
pub fn counted_bars(title: &str, x_desc: &str, y_desc: &str, labels: &[String], counts: &[u64]) -> String {
    render(title, (WIDTH, HEIGHT), |root| {
        let n = counts.len() as u32;
        let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0u32..n.saturating_sub(1)).into_segmented(), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 12))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(ACCENT.filled())
                .margin(6)
                .data(counts.iter().enumerate().map(|(i, c)| (i as u32, *c as f64))),
        )?;
        root.present()?;
        Ok(())
    })
}

/// Counts per day stacked from several series (sends at once, delayed by quiet hours, …), one
/// bar per day labelled with every seventh day's label, with a legend.
pub fn stacked_days(title: &str, y_desc: &str, labels: &[String], series: &[(&str, &[u64])]) -> String {
    render(title, (WIDTH, HEIGHT), |root| {
        let n = labels.len().max(1);
        let totals: Vec<u64> =
            (0..n).map(|i| series.iter().map(|(_, s)| s.get(i).copied().unwrap_or(0)).sum()).collect();
        // At least 0–5: with a smaller top the whole-number tick labels would repeat.
        let top = totals.iter().copied().max().unwrap_or(0).max(5) as f64 * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(8))
            .x_label_formatter(&|v| labels.get(*v as usize).cloned().unwrap_or_default())
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 12))
            .draw()?;
        let colours = [ACCENT, SECOND, GREY];
        let mut base = vec![0u64; n];
        for (k, (name, counts)) in series.iter().enumerate() {
            let colour = colours[k % colours.len()];
            let bars: Vec<Rectangle<(f64, f64)>> = (0..n)
                .filter_map(|i| {
                    let c = counts.get(i).copied().unwrap_or(0);
                    let from = base[i];
                    base[i] += c;
                    (c > 0).then(|| {
                        Rectangle::new(
                            [(i as f64 + 0.1, from as f64), (i as f64 + 0.9, (from + c) as f64)],
                            colour.filled(),
                        )
                    })
                })
                .collect();
            chart
                .draw_series(bars)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(GREY)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// One value per day as a line (a segment's size over time), labelled with up to eight of the
/// days' labels; the y axis starts at zero so a change is not exaggerated.
pub fn line_days(title: &str, y_desc: &str, labels: &[String], values: &[f64]) -> String {
    // At least 0–5: with a smaller top the whole-number tick labels would repeat.
    let top = values.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max).max(5.0) * 1.1;
    line(title, y_desc, labels, values, (0.0, top))
}

/// Values as a line over labelled points on a fixed y range (NPS on −100…100); a non-finite
/// value (a month without responses) breaks the line there.
pub fn line(title: &str, y_desc: &str, labels: &[String], values: &[f64], range: (f64, f64)) -> String {
    render(title, (WIDTH, HEIGHT), |root| {
        let n = values.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(n.saturating_sub(1)).max(1) as f64, range.0..range.1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(8))
            .x_label_formatter(&|v| labels.get(v.round() as usize).cloned().unwrap_or_default())
            .y_desc(y_desc)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 12))
            .draw()?;
        // Each unbroken run of finite values is one line, with a dot per point.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut runs = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if v.is_finite() {
                run.push((i as f64, *v));
            } else if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        for run in runs {
            chart.draw_series(LineSeries::new(run.iter().copied(), ACCENT.stroke_width(2)))?;
            chart.draw_series(run.iter().map(|p| Circle::new(*p, 3, ACCENT.filled())))?;
        }
        root.present()?;
        Ok(())
    })
}

/// Cumulative conversion by day since entry for the treated and the control arm, each with its
/// band (a translucent area between the band's ends) — the uplift report's chart.
pub fn conversion_curves(treatment: &[CurvePoint], control: &[CurvePoint]) -> String {
    render("Cumulative conversion by day since entry", (WIDTH, HEIGHT), |root| {
        let all = treatment.iter().chain(control);
        let x_max = all.clone().map(|p| p.day).max().unwrap_or(0).max(1);
        let y_max = all.map(|p| p.band.upper.max(p.converted)).fold(0.0, f64::max).clamp(0.01, 1.0) * 1.08;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..f64::from(x_max), 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("days since entry")
            .y_desc("converted")
            .y_label_formatter(&pct)
            .label_style((FONT, 13))
            .draw()?;
        for (points, colour, label) in [(treatment, ACCENT, "treatment"), (control, SECOND, "control")] {
            if points.is_empty() {
                continue;
            }
            // The band as one polygon: along the upper ends, back along the lower ones.
            let upper = points.iter().map(|p| (f64::from(p.day), p.band.upper.clamp(0.0, 1.0)));
            let lower = points.iter().rev().map(|p| (f64::from(p.day), p.band.lower.clamp(0.0, 1.0)));
            chart
                .draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), colour.mix(0.15))))?;
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (f64::from(p.day), p.converted)),
                    colour.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(GREY)
            .label_font((FONT, 13))
            .draw()?;
        root.present()?;
        Ok(())
    })
}
