//! Results: one `CellResult` per (size, rcpts) cell, printed as a table, written as JSON
//! (a contract for automation) and as an HTML page with latency plots (inline SVG).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::stats::CellStats;

pub struct CellResult {
    pub size: usize,
    pub rcpts: usize,
    pub stats: CellStats,
    pub elapsed: Duration,
}

impl CellResult {
    fn seconds(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn msgs_per_s(&self) -> f64 {
        self.stats.ok() as f64 / self.seconds()
    }

    pub fn mb_per_s(&self) -> f64 {
        let ok_bytes = self.stats.message_bytes as f64 * self.stats.ok() as f64
            / self.stats.attempted.max(1) as f64;
        ok_bytes / 1e6 / self.seconds()
    }

    /// Latency percentile in microseconds (0 when nothing was recorded).
    pub fn latency_us(&self, quantile: f64) -> u64 {
        if self.stats.latency.is_empty() {
            0
        } else {
            self.stats.latency.value_at_quantile(quantile)
        }
    }

    fn percentiles(h: &hdrhistogram::Histogram<u64>) -> Value {
        if h.is_empty() {
            return json!({});
        }
        json!({
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
            "mean": h.mean().round(),
            "count": h.len(),
        })
    }

    pub fn to_json(&self) -> Value {
        let replies: serde_json::Map<String, Value> = self
            .stats
            .replies
            .iter()
            .map(|(code, n)| (code.to_string(), json!(n)))
            .collect();
        json!({
            "size": self.size,
            "rcpts": self.rcpts,
            "messages": self.stats.attempted,
            "ok": self.stats.ok(),
            "errors": self.stats.errors,
            "first_error": self.stats.first_error,
            "replies": replies,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "msgs_per_s": self.msgs_per_s(),
            "mb_per_s": self.mb_per_s(),
            "latency_us": Self::percentiles(&self.stats.latency),
            "setup_us": Self::percentiles(&self.stats.setup),
        })
    }
}

pub fn human_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

pub fn table(results: &[CellResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>8} {:>5} {:>8} {:>8} {:>6} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}  replies",
        "size",
        "rcpts",
        "msgs",
        "ok",
        "errors",
        "msg/s",
        "MB/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9",
        "setup p50"
    );
    for r in results {
        let replies: Vec<String> = r
            .stats
            .replies
            .iter()
            .map(|(c, n)| format!("{c}:{n}"))
            .collect();
        let setup = if r.stats.setup.is_empty() {
            0
        } else {
            r.stats.setup.value_at_quantile(0.5)
        };
        let _ = writeln!(
            out,
            "{:>8} {:>5} {:>8} {:>8} {:>6} {:>10.0} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>9}  {}",
            human_size(r.size),
            r.rcpts,
            r.stats.attempted,
            r.stats.ok(),
            r.stats.errors,
            r.msgs_per_s(),
            r.mb_per_s(),
            ms(r.latency_us(0.5)),
            ms(r.latency_us(0.9)),
            ms(r.latency_us(0.99)),
            ms(r.latency_us(0.999)),
            ms(setup),
            replies.join(" ")
        );
    }
    out
}

pub fn json_report(parameters: Value, results: &[CellResult]) -> Value {
    let mut report = parameters;
    report["cells"] = Value::Array(results.iter().map(CellResult::to_json).collect());
    report
}

/// One line series of a chart.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A small line chart in SVG: log-scaled x axis when asked, linear y from zero.
fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    x_name: &dyn Fn(f64) -> String,
) -> String {
    let (width, height, left, right, top, bottom) = (640.0, 360.0, 70.0, 170.0, 40.0, 50.0);
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    if xs.is_empty() {
        return String::new();
    }
    let fx = |x: f64| if log_x { x.max(1.0).log10() } else { x };
    let (x_min, x_max) = xs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| {
        (lo.min(fx(x)), hi.max(fx(x)))
    });
    let y_max = ys.iter().fold(0.0f64, |m, &y| m.max(y)).max(1e-9) * 1.1;
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let px = |x: f64| {
        left + if x_max > x_min {
            (fx(x) - x_min) / (x_max - x_min) * plot_w
        } else {
            plot_w / 2.0
        }
    };
    let py = |y: f64| top + plot_h - y / y_max * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{title}</text>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\
         <text x=\"15\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 15 {})\">{y_label}</text>",
        left + plot_w / 2.0,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h,
        left + plot_w / 2.0,
        height - 10.0,
        top + plot_h / 2.0,
        top + plot_h / 2.0,
    );
    for i in 0..=4 {
        let y = y_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4:.2}</text>",
            py(y),
            left + plot_w,
            left - 5.0,
            py(y) + 4.0,
            y
        );
    }
    let mut ticks: Vec<f64> = xs.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for x in ticks {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(x),
            top + plot_h + 16.0,
            x_name(x)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        for &(x, y) in &s.points {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                px(x),
                py(y)
            );
        }
        let ly = top + 10.0 + 18.0 * i as f64;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            width - right + 15.0,
            ly - 4.0,
            width - right + 32.0,
            ly + 1.0,
            s.name
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The distinct values of `key` over the cells, ascending.
fn distinct(results: &[CellResult], key: fn(&CellResult) -> usize) -> Vec<usize> {
    let mut values: Vec<usize> = results.iter().map(key).collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// One series per value in `groups` of `group`, named by `name`, of the cells' `point`s.
fn series(
    results: &[CellResult],
    groups: &[usize],
    group: fn(&CellResult) -> usize,
    name: impl Fn(usize) -> String,
    point: impl Fn(&CellResult) -> (f64, f64),
) -> Vec<Series> {
    groups
        .iter()
        .map(|&g| Series {
            name: name(g),
            points: results
                .iter()
                .filter(|r| group(r) == g)
                .map(&point)
                .collect(),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn html_report(parameters: &Value, results: &[CellResult]) -> String {
    let sizes = distinct(results, |r| r.size);
    let rcpts = distinct(results, |r| r.rcpts);
    let mut charts = String::new();
    for (quantile, label) in [(0.5, "p50"), (0.99, "p99")] {
        let latency_ms = |r: &CellResult| r.latency_us(quantile) as f64 / 1000.0;
        let by_size = series(
            results,
            &rcpts,
            |r| r.rcpts,
            |n| format!("{n} rcpt {label}"),
            |r| (r.size as f64, latency_ms(r)),
        );
        charts.push_str(&line_chart(
            &format!("{label} latency against message size"),
            "message size",
            "latency (ms)",
            &by_size,
            true,
            &|x| human_size(x as usize),
        ));
        let by_rcpts = series(
            results,
            &sizes,
            |r| r.size,
            |size| format!("{} {label}", human_size(size)),
            |r| (r.rcpts as f64, latency_ms(r)),
        );
        charts.push_str(&line_chart(
            &format!("{label} latency against recipients"),
            "recipients",
            "latency (ms)",
            &by_rcpts,
            false,
            &|x| format!("{x}"),
        ));
    }
    let throughput = series(
        results,
        &rcpts,
        |r| r.rcpts,
        |n| format!("{n} rcpt"),
        |r| (r.size as f64, r.mb_per_s()),
    );
    charts.push_str(&line_chart(
        "Throughput against size",
        "message size",
        "MB/s",
        &throughput,
        true,
        &|x| human_size(x as usize),
    ));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>smtpgate-load report</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}svg{{margin:1em 1em 0 0;border:1px solid #ddd}}\
         pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>\
         <h1>smtpgate-load report</h1><h2>Run</h2><pre>{}</pre><h2>Results</h2><pre>{}</pre>\
         <p>Latency is measured from the first byte of MAIL to the final reply (from the intended send \
         time under <code>--rate</code>, correcting coordinated omission); setup is connect + TLS + AUTH.</p>\
         <h2>Plots</h2>{charts}</body></html>\n",
        escape(&serde_json::to_string_pretty(parameters).unwrap_or_default()),
        escape(&table(results)),
    )
}
