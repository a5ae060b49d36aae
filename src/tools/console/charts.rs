//! The overview's charts as inline SVG, drawn here (no script, no library):
//! records per day by direction and kind, and acknowledgment latency.

use std::collections::BTreeMap;
use std::fmt::Write;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Shanghai dates of the last `days` days, oldest first.
fn last_days(days: u32) -> Vec<String> {
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC))
        .date();
    (0..days)
        .rev()
        .filter_map(|i| today.checked_sub(time::Duration::days(i64::from(i))))
        .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
        .collect()
}

/// Two bars a day (收到 in on the left, 发出 out on the right), each stacked
/// by record kind; every bar says its figures on hover.
pub fn records_per_day(rows: &[(String, String, String, u64)], days: u32) -> String {
    let days = last_days(days);
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let color = |k: &str| PALETTE[kinds.iter().position(|x| *x == k).unwrap_or(0) % PALETTE.len()];
    let mut per: BTreeMap<(&str, &str), Vec<(&str, u64)>> = BTreeMap::new();
    for (day, dir, kind, n) in rows {
        per.entry((day.as_str(), dir.as_str()))
            .or_default()
            .push((kind.as_str(), *n));
    }
    let top = per
        .values()
        .map(|v| v.iter().map(|x| x.1).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h, left, base) = (640.0, 230.0, 46.0, 180.0);
    let slot = (w - left - 10.0) / days.len().max(1) as f64;
    let scale = (base - 14.0) / top as f64;
    let mut s = format!(
        "<svg id=\"chart-records\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"每日交换记录 records per day\" font-size=\"11\">"
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#555\"/><text x=\"{}\" y=\"18\" text-anchor=\"end\">{top}</text><text x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        w - 10.0,
        left - 4.0,
        left - 4.0
    );
    for (i, day) in days.iter().enumerate() {
        let x0 = left + i as f64 * slot;
        for (j, dir) in ["in", "out"].into_iter().enumerate() {
            let Some(parts) = per.get(&(day.as_str(), dir)) else {
                continue;
            };
            let x = x0 + 1.0 + j as f64 * slot / 2.0;
            let mut y = base;
            let total: u64 = parts.iter().map(|p| p.1).sum();
            let what: Vec<String> = parts.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = write!(
                s,
                "<g><title>{day} {} {total}: {}</title>",
                if dir == "in" {
                    "收到 in"
                } else {
                    "发出 out"
                },
                esc(&what.join(", "))
            );
            for (kind, n) in parts {
                let bh = *n as f64 * scale;
                y -= bh;
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"{}/>",
                    (slot / 2.0 - 1.5).max(1.0),
                    color(kind),
                    if dir == "out" { " fill-opacity=\"0.5\"" } else { "" }
                );
            }
            s.push_str("</g>");
        }
        if i % 5 == 0 || i + 1 == days.len() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{}\">{}</text>",
                x0,
                base + 14.0,
                &day[5..]
            );
        }
    }
    let mut lx = left;
    for k in &kinds {
        let _ = write!(
            s,
            "<rect x=\"{lx:.0}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{}\">{}</text>",
            base + 24.0,
            color(k),
            lx + 13.0,
            base + 33.0,
            esc(k)
        );
        lx += 14.0 + 6.5 * k.len() as f64 + 8.0;
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\">每日左柱 收到 in (solid) · 右柱 发出 out (light)</text></svg>",
        base + 48.0
    );
    s
}

/// How long peers took to acknowledge this node's batches: a bar per range.
pub fn latency(secs: &[f64]) -> String {
    const RANGES: [(f64, &str); 7] = [
        (60.0, "<1m"),
        (300.0, "<5m"),
        (900.0, "<15m"),
        (3600.0, "<1h"),
        (6.0 * 3600.0, "<6h"),
        (86400.0, "<1d"),
        (f64::INFINITY, "≥1d"),
    ];
    let mut counts = [0u64; RANGES.len()];
    for v in secs {
        let i = RANGES
            .iter()
            .position(|r| *v < r.0)
            .unwrap_or(RANGES.len() - 1);
        counts[i] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, base) = (330.0, 230.0, 180.0);
    let slot = (w - 20.0) / RANGES.len() as f64;
    let mut s = format!(
        "<svg id=\"chart-latency\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"确认耗时 acknowledgment latency\" font-size=\"11\"><line x1=\"10\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#555\"/>",
        w - 10.0
    );
    for (i, ((_, label), n)) in RANGES.iter().zip(counts).enumerate() {
        let x = 10.0 + i as f64 * slot;
        let bh = n as f64 * (base - 20.0) / top as f64;
        let _ = write!(
            s,
            "<g><title>{label}: {n}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#1f77b4\"/></g><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text><text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + 4.0,
            base - bh,
            slot - 8.0,
            x + slot / 2.0,
            base - bh - 3.0,
            x + slot / 2.0,
            base + 14.0,
            esc(label)
        );
    }
    let _ = write!(
        s,
        "<text x=\"10\" y=\"{}\">{} 个批次 batches acknowledged, by time from shipping</text></svg>",
        base + 34.0,
        secs.len()
    );
    s
}
