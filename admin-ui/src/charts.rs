//! Charts as inline SVG, rendered on the server: sparklines, bars and a utilisation gauge.
//! No chart library and no external asset.

use leptos::prelude::*;

use crate::chrome::Status;

const SPARK_W: f64 = 160.0;
const SPARK_H: f64 = 28.0;

/// The points of a sparkline over `values` (gaps skipped), scaled to the box.
pub fn spark_points(values: &[Option<f64>]) -> String {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let max = present.iter().copied().fold(0.0_f64, f64::max);
    let min = present.iter().copied().fold(max, f64::min).min(0.0);
    let span = if max - min > 0.0 { max - min } else { 1.0 };
    let step = if values.len() > 1 { SPARK_W / (values.len() - 1) as f64 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| format!("{:.1},{:.1}", i as f64 * step, SPARK_H - 1.0 - (v - min) / span * (SPARK_H - 2.0)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sparkline of the last hour (oldest first).
pub fn sparkline(label: &'static str, values: &[Option<f64>]) -> impl IntoView + use<> {
    let points = spark_points(values);
    // The newest point is marked, so even a single sample shows.
    let last = points.rsplit(' ').next().and_then(|p| p.split_once(',')).map(|(x, y)| (x.to_owned(), y.to_owned()));
    view! {
        <svg class="spark" role="img" aria-label=format!("{label}, last hour") width=SPARK_W.to_string()
            height=SPARK_H.to_string() viewBox=format!("0 0 {SPARK_W} {SPARK_H}")>
            <polyline points=points/>
            {last.map(|(cx, cy)| view! { <circle cx=cx cy=cy r="2"/> })}
        </svg>
    }
}

/// Vertical bars with a label under each (e.g. one per day).
pub fn bars(label: &'static str, items: &[(String, f64)]) -> impl IntoView + use<> {
    let (w, h, gap) = (28.0_f64, 90.0_f64, 4.0_f64);
    let max = items.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max).max(1.0);
    let width = items.len() as f64 * (w + gap);
    let rects = items
        .iter()
        .enumerate()
        .map(|(i, (name, v))| {
            let bar_h = (v / max * (h - 14.0)).max(if *v > 0.0 { 1.0 } else { 0.0 });
            let x = i as f64 * (w + gap);
            view! {
                <g>
                    <title>{format!("{name}: {v}")}</title>
                    <rect x=format!("{x:.1}") y=format!("{:.1}", h - 14.0 - bar_h) width=w.to_string() height=format!("{bar_h:.1}")/>
                    <text x=format!("{:.1}", x + 2.0) y=format!("{:.1}", h - 2.0)>{name.clone()}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="bars" role="img" aria-label=label width=width.to_string() height=h.to_string()
            viewBox=format!("0 0 {width} {h}")>{rects}</svg>
    }
}

/// A horizontal gauge for a share of capacity (0-1, drawn up to 100 %).
pub fn gauge(label: &'static str, share: f64) -> impl IntoView {
    let status = Status::utilisation(share);
    let class = match status {
        Status::Good => "good",
        Status::Warn => "warn",
        _ => "bad",
    };
    let filled = (share.clamp(0.0, 1.0) * 200.0).max(if share > 0.0 { 1.0 } else { 0.0 });
    view! {
        <svg class="gauge" role="img" aria-label=format!("{label}: {:.0} %", share * 100.0) width="200" height="12" viewBox="0 0 200 12">
            <rect class="track" x="0" y="0" width="200" height="12"/>
            <rect class=class x="0" y="0" width=format!("{filled:.1}") height="12"/>
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_points_span_the_box_and_skip_gaps() {
        let points = spark_points(&[Some(0.0), None, Some(10.0)]);
        assert_eq!(points, "0.0,27.0 160.0,1.0");
        assert_eq!(spark_points(&[]), "");
    }
}
