//! A bar chart as inline SVG, drawn on the server: no script, no external library, readable by
//! screen readers through its title and the table beside it.

use std::fmt::Write;

/// Renders `bars` (label, value) as an SVG bar chart.
pub fn bars(title: &str, bars: &[(String, u64)]) -> String {
    const W: f64 = 900.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 50.0;
    const BOTTOM: f64 = 40.0;
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let n = bars.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{y}" x2="{W}" y2="{y}" stroke="#aab3c2"/>"##,
        y = H - BOTTOM
    );
    let _ = write!(
        svg,
        r##"<text x="{x}" y="14" font-size="12" text-anchor="end" fill="#5b6577">{max}</text>"##,
        x = LEFT - 6.0
    );
    let _ = write!(
        svg,
        r##"<text x="{x}" y="{y}" font-size="12" text-anchor="end" fill="#5b6577">0</text>"##,
        x = LEFT - 6.0,
        y = H - BOTTOM
    );
    let label_every = (bars.len() / 8).max(1);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = (H - BOTTOM - 10.0) * (*value as f64) / (max as f64);
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"><title>{}: {value}</title></rect>"#,
            escape(label),
            y = H - BOTTOM - h,
            w = slot * 0.7,
        );
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r##"<text x="{cx:.1}" y="{ty}" font-size="11" text-anchor="middle" fill="#5b6577">{}</text>"##,
                escape(axis_label(label)),
                cx = x + slot * 0.35,
                ty = H - BOTTOM + 16.0,
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Axis labels drop the year of `YYYY-…` labels; the tooltip keeps the full label.
fn axis_label(label: &str) -> &str {
    let dated = label.len() > 5 && label.as_bytes().get(4) == Some(&b'-');
    if dated { &label[5..] } else { label }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars("Usage <all>", &[("a".into(), 5), ("b&c".into(), 10)]);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("Usage &lt;all&gt;"));
        assert!(svg.contains("b&amp;c: 10"));
        assert!(
            svg.contains("height=\"190.0\""),
            "the largest bar fills the height"
        );
    }
}
