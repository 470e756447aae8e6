//! The report's charts as inline SVG, generated here so the report needs no script library
//! and no network. Every text goes through [`crate::escape::html`].

use crate::escape::html as esc;
use crate::summary::{HistogramBin, Timeline};
use chrono::{DateTime, Utc};
use std::fmt::Write;

const W: f64 = 860.0;
const H: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 52.0;

const RED: &str = "#c0392b";
const GREY: &str = "#d5d9de";
const BLUE: &str = "#2f5d8a";
const INK: &str = "#4a5561";

/// A "nice" axis maximum and step for counts up to `max`.
fn nice_axis(max: usize) -> (usize, usize) {
    let max = max.max(1);
    let raw = max.div_ceil(4);
    let mag = 10usize.pow((raw as f64).log10().floor().max(0.0) as u32);
    let step = [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10 * mag);
    (step * max.div_ceil(step), step)
}

fn y_axis(svg: &mut String, top: usize, step: usize) {
    let plot_h = H - TOP - BOTTOM;
    let mut v = 0;
    while v <= top {
        let y = TOP + plot_h - plot_h * v as f64 / top as f64;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eceff2"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="{INK}">{v}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
        v += step;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{INK}"/>"##,
        W - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    );
}

fn open(svg: &mut String, id: &str, title: &str, desc: &str) {
    let _ = write!(
        svg,
        r#"<svg class="chart" data-chart="{id}" viewBox="0 0 {W} {H}" width="100%" role="img" aria-labelledby="{id}-t {id}-d" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc)
    );
}

/// Width of an axis label at font-size 11, on the safe side: 0.62 em per character covers
/// the digits and capitals of the labels in the usual sans-serif fonts.
fn label_width(label: &str) -> f64 {
    label.chars().count() as f64 * 11.0 * 0.62
}

fn time_label(epoch: i64, bin: i64) -> String {
    let Some(d) = DateTime::<Utc>::from_timestamp(epoch, 0) else {
        return epoch.to_string();
    };
    if bin < 86400 {
        d.format("%d %b %H:%M").to_string()
    } else if bin < 365 * 86400 {
        d.format("%d %b %Y").to_string()
    } else {
        d.format("%Y").to_string()
    }
}

/// Bars of exposing messages per time bin (red), in front of all scanned messages (grey).
pub fn timeline(t: &Timeline) -> String {
    let mut svg = String::new();
    let total: usize = t.bins.iter().map(|b| b.exposing_messages).sum();
    open(
        &mut svg,
        "timeline",
        "Exposing messages over time",
        &format!(
            "{total} exposing messages in bins of {}; grey: all scanned messages in the same bins",
            human_secs(t.bin_seconds)
        ),
    );
    if t.bins.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="14" fill="{INK}">No dated exposing message.</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    let max = t
        .bins
        .iter()
        .map(|b| b.messages.max(b.exposing_messages))
        .max()
        .unwrap_or(1);
    let (top, step) = nice_axis(max);
    y_axis(&mut svg, top, step);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / t.bins.len() as f64;
    let gap = (bw * 0.15).min(3.0);
    let label_every = (t.bins.len() as f64 / 8.0).ceil().max(1.0) as usize;
    for (k, b) in t.bins.iter().enumerate() {
        let x = LEFT + k as f64 * bw;
        let h_all = plot_h * b.messages as f64 / top as f64;
        let h_exp = plot_h * b.exposing_messages as f64 / top as f64;
        let tip = format!(
            "{} UTC: {} exposing of {} messages",
            time_label(b.start_epoch, t.bin_seconds),
            b.exposing_messages,
            b.messages
        );
        let _ = write!(
            svg,
            r#"<g><title>{}</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h_all:.1}" fill="{GREY}"/>"#,
            esc(&tip),
            x + gap / 2.0,
            TOP + plot_h - h_all,
            (bw - gap).max(1.0)
        );
        if b.exposing_messages > 0 {
            let _ = write!(
                svg,
                r#"<rect class="bar-exposing" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{RED}"/>"#,
                x + gap / 2.0,
                TOP + plot_h - h_exp,
                (bw - gap).max(1.0),
                h_exp.max(1.0)
            );
            // The count above the bar (inside the grey one when that is taller).
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" font-weight="700" fill="{}">{}</text>"#,
                x + bw / 2.0,
                (TOP + plot_h - h_exp - 4.0).max(TOP + 10.0),
                if h_all - h_exp > 14.0 { INK } else { RED },
                b.exposing_messages
            );
        }
        svg.push_str("</g>");
        if k % label_every == 0 {
            // Starts at its bin, but never runs past the right edge (the last label was
            // clipped when its bin was near the end).
            let label = time_label(b.start_epoch, t.bin_seconds);
            let lx = x.min(W - 2.0 - label_width(&label)).max(0.0);
            let _ = write!(
                svg,
                r#"<text class="axis-label" x="{:.1}" y="{:.1}" font-size="11" fill="{INK}" text-anchor="start">{}</text>"#,
                lx,
                TOP + plot_h + 16.0,
                esc(&label)
            );
        }
    }
    // Legend.
    let ly = H - 14.0;
    let _ = write!(
        svg,
        r#"<rect x="{LEFT}" y="{:.1}" width="10" height="10" fill="{RED}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{INK}">exposing messages</text><rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{GREY}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{INK}">all messages scanned (bins of {}, UTC)</text></svg>"#,
        ly - 9.0,
        LEFT + 14.0,
        ly,
        LEFT + 140.0,
        ly - 9.0,
        LEFT + 154.0,
        ly,
        esc(&human_secs(t.bin_seconds))
    );
    svg
}

/// Exposed addresses by audience size.
pub fn audience_histogram(bins: &[HistogramBin]) -> String {
    let mut svg = String::new();
    let total: usize = bins.iter().map(|b| b.addresses).sum();
    open(
        &mut svg,
        "audience",
        "Exposed addresses by audience size",
        &format!("{total} exposed addresses by the number of other parties who saw each"),
    );
    let max = bins.iter().map(|b| b.addresses).max().unwrap_or(0);
    let (top, step) = nice_axis(max);
    y_axis(&mut svg, top, step);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / bins.len().max(1) as f64;
    for (k, b) in bins.iter().enumerate() {
        let x = LEFT + k as f64 * bw;
        let h = plot_h * b.addresses as f64 / top as f64;
        let _ = write!(
            svg,
            r#"<g><title>{}</title><rect class="bar-audience" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{BLUE}"/>"#,
            esc(&format!(
                "{} addresses seen by {} other parties",
                b.addresses, b.label
            )),
            x + bw * 0.15,
            TOP + plot_h - h,
            bw * 0.7
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="600" fill="{INK}">{}</text></g>"#,
            x + bw / 2.0,
            TOP + plot_h - h - 5.0,
            b.addresses
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="{INK}">{}</text>"#,
            x + bw / 2.0,
            TOP + plot_h + 16.0,
            esc(&b.label)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="{INK}">audience: other parties who saw the address</text></svg>"#,
        LEFT + plot_w / 2.0,
        H - 10.0
    );
    svg
}

/// `300` -> `5 min`, `86400` -> `1 day`.
pub fn human_secs(s: i64) -> String {
    match s {
        s if s % 86400 == 0 && s >= 86400 => {
            let d = s / 86400;
            if d == 1 {
                "1 day".into()
            } else {
                format!("{d} days")
            }
        }
        s if s % 3600 == 0 && s >= 3600 => {
            let h = s / 3600;
            if h == 1 {
                "1 hour".into()
            } else {
                format!("{h} hours")
            }
        }
        s if s % 60 == 0 && s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::TimeBin;

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(0), (1, 1));
        assert_eq!(nice_axis(8), (8, 2));
        assert_eq!(nice_axis(790), (800, 200));
        assert_eq!(nice_axis(13), (15, 5));
    }

    /// (x, text) of every axis label of a timeline chart.
    fn axis_labels(svg: &str) -> Vec<(f64, String)> {
        svg.split(r#"<text class="axis-label" x=""#)
            .skip(1)
            .map(|rest| {
                let x: f64 = rest[..rest.find('"').unwrap()].parse().unwrap();
                let text = &rest[rest.find('>').unwrap() + 1..rest.find("</text>").unwrap()];
                (x, text.to_string())
            })
            .collect()
    }

    #[test]
    fn last_timeline_label_was_clipped_regression() {
        let start = 1_570_000_000; // Oct 2019
        for bin in [60, 3600, 86400, 7 * 86400, 365 * 86400] {
            for n in 1..=60usize {
                let t = Timeline {
                    bin_seconds: bin,
                    bins: (0..n)
                        .map(|k| TimeBin {
                            start: String::new(),
                            start_epoch: start + k as i64 * bin,
                            exposing_messages: k % 3,
                            messages: 5,
                        })
                        .collect(),
                    undated_exposing_messages: 0,
                };
                let labels = axis_labels(&timeline(&t));
                assert!(!labels.is_empty());
                for (x, text) in &labels {
                    // The extent of the text is inside the viewBox (0 0 W H).
                    assert!(
                        *x >= 0.0 && x + label_width(text) <= W,
                        "{n} bins of {bin} s: `{text}` at x={x} ends at {} > {W}",
                        x + label_width(text)
                    );
                }
            }
        }
        // 25 daily bins: the last label starts at 812 and, unmoved, ran to ~894.
        let t = Timeline {
            bin_seconds: 86400,
            bins: (0..25)
                .map(|k| TimeBin {
                    start: String::new(),
                    start_epoch: start + k * 86400,
                    exposing_messages: 1,
                    messages: 1,
                })
                .collect(),
            undated_exposing_messages: 0,
        };
        let labels = axis_labels(&timeline(&t));
        let (x, text) = labels.last().unwrap();
        assert!(
            *x < LEFT + 24.0 * (W - LEFT - RIGHT) / 25.0,
            "{text} not moved in"
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(300), "5 min");
        assert_eq!(human_secs(43200), "12 hours");
        assert_eq!(human_secs(86400), "1 day");
    }
}
