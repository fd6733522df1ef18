//! The three plots, drawn with plotters as PNG (embedded in the page) and SVG (beside
//! it): latency against invocation time, latency quantiles over time buckets, and
//! throughput by outcome. Colours follow Jepsen (ok blue, info orange, fail pink) and
//! every plot shades the fault intervals, one colour per fault type.

use super::faults::{FaultKind, color_of};
use super::stats::{Clock, duration};
use super::{FaultInterval, ReportError};
use crate::history::{Function, History, Outcome};
use plotters::coord::Shift;
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const W: u32 = 960;
const H: u32 = 420;
/// Points in the raw latency plot; beyond this the series is thinned by a fixed
/// stride (an SVG grows by about 100 bytes per point).
const MAX_POINTS: usize = 8_000;
/// An outcome with at most this many points is never thinned.
const KEEP_ALL_BELOW: usize = 1_000;
/// Time buckets of the quantile and rate plots.
const BUCKETS: usize = 60;

const OK: RGBColor = RGBColor(0x4a, 0x90, 0xe2);
const INFO: RGBColor = RGBColor(0xff, 0xa4, 0x00);
const FAIL: RGBColor = RGBColor(0xff, 0x1e, 0x90);

/// One plot, ready to write and embed.
pub(crate) struct Plot {
    pub name: &'static str,
    pub title: &'static str,
    pub png: Vec<u8>,
    pub svg: String,
    /// What was left out to keep the plot small, if anything.
    pub note: String,
}

#[derive(Clone, Copy)]
struct Pt {
    x: f64,
    y: f64,
    outcome: Outcome,
    mark: Mark,
}

/// The marker of an operation in the latency plot, by what it does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    /// Asks: read, dequeue.
    Ask,
    /// Changes: write, add, enqueue, acquire, release, any other function.
    Change,
    Cas,
    Append,
}

impl Mark {
    fn of(f: &Function) -> Mark {
        match f {
            Function::Read | Function::Dequeue => Mark::Ask,
            Function::Cas => Mark::Cas,
            Function::Append => Mark::Append,
            _ => Mark::Change,
        }
    }
}

struct Band {
    x0: f64,
    x1: f64,
    color: RGBColor,
    label: String,
}

/// A named, coloured line of (x, y) points.
type Line = (&'static str, RGBColor, Vec<(f64, f64)>);

struct Data {
    pts: Vec<Pt>,
    x_max: f64,
    lat_min: f64,
    lat_max: f64,
    quantiles: Vec<Line>,
    rates: Vec<Line>,
    rate_max: f64,
    bands: Vec<Band>,
    /// Per marker, the functions it stands for ("read/dequeue").
    labels: BTreeMap<Mark, String>,
    x_label: &'static str,
    lat_label: &'static str,
    rate_label: &'static str,
}

fn pe<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn outcome_color(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => OK,
        Outcome::Info => INFO,
        Outcome::Fail => FAIL,
    }
}

/// A band's label colour: the band's hue, dark enough to read over the band.
fn darker(c: RGBColor) -> RGBColor {
    RGBColor(c.0 / 2, c.1 / 2, c.2 / 2)
}

fn hex(c: &str) -> RGBColor {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap_or(0x999999);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Registers the embedded DejaVu font once, so text renders on machines without
/// system fonts (both backends measure text with it).
fn ensure_font() -> Result<(), String> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu font did not load".to_string())
    }
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn prepare(
    history: &History,
    clock: &Clock,
    faults: &[FaultInterval],
    kinds: &[FaultKind],
) -> (Data, String) {
    let mut x_max: f64 = 0.0;
    let mut all: Vec<Pt> = Vec::new();
    for op in &history.ops {
        x_max = x_max.max(clock.x(op.ret.unwrap_or(op.call)));
        if let Some(d) = duration(op) {
            all.push(Pt {
                x: clock.x(op.call),
                y: clock.latency(d.max(1)),
                outcome: op.outcome,
                mark: Mark::of(&op.f),
            });
        }
    }
    for f in faults {
        x_max = x_max.max(clock.x(f.end_ns.unwrap_or(f.start_ns)));
    }
    if x_max <= 0.0 {
        x_max = 1.0;
    }
    let floor = if clock.timed { 1e-3 } else { 1.0 };
    let lat_min = all
        .iter()
        .map(|p| p.y)
        .fold(f64::INFINITY, f64::min)
        .max(floor);
    let lat_min = if lat_min.is_finite() {
        lat_min / 1.5
    } else {
        floor
    };
    let lat_max = all.iter().map(|p| p.y).fold(lat_min * 10.0, f64::max) * 1.5;

    // Quantiles and rates per bucket, from every completed operation.
    let width = x_max / BUCKETS as f64;
    let bucket = |x: f64| ((x / width) as usize).min(BUCKETS - 1);
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS];
    let mut done = vec![[0usize; 3]; BUCKETS];
    for op in &history.ops {
        if let (Some(r), Some(d)) = (op.ret, duration(op)) {
            lat[bucket(clock.x(op.call))].push(clock.latency(d.max(1)));
            let o = match op.outcome {
                Outcome::Ok => 0,
                Outcome::Info => 1,
                Outcome::Fail => 2,
            };
            done[bucket(clock.x(r))][o] += 1;
        }
    }
    let mid = |i: usize| (i as f64 + 0.5) * width;
    let mut quantiles = Vec::new();
    for (name, p, color) in [
        ("p50", 0.5, RGBColor(0x2c, 0x7b, 0xb6)),
        ("p95", 0.95, RGBColor(0x1a, 0x98, 0x50)),
        ("p99", 0.99, RGBColor(0xd7, 0x30, 0x27)),
        ("max", 1.0, RGBColor(0x40, 0x40, 0x40)),
    ] {
        let line = lat
            .iter_mut()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| {
                v.sort_by(f64::total_cmp);
                (mid(i), quantile(v, p))
            })
            .collect();
        quantiles.push((name, color, line));
    }
    let per = if clock.timed { width } else { 1.0 };
    let mut rate_max: f64 = 1.0;
    let mut rates = Vec::new();
    for (o, name, color) in [(0, "ok", OK), (1, "info", INFO), (2, "fail", FAIL)] {
        let line: Vec<(f64, f64)> = done
            .iter()
            .enumerate()
            .map(|(i, c)| (mid(i), c[o] as f64 / per))
            .collect();
        if line.iter().all(|(_, y)| *y == 0.0) {
            continue;
        }
        rate_max = line.iter().map(|p| p.1).fold(rate_max, f64::max);
        rates.push((name, color, line));
    }

    // Thin the raw points by one stride for all outcomes, so the picture keeps its
    // proportions; an outcome with few points keeps them all, so rare ones stay visible.
    let mut note = String::new();
    let stride = all.len().div_ceil(MAX_POINTS).max(1);
    let mut pts = Vec::new();
    for o in [Outcome::Ok, Outcome::Info, Outcome::Fail] {
        let n = all.iter().filter(|p| p.outcome == o).count();
        let s = if n <= KEEP_ALL_BELOW { 1 } else { stride };
        if s > 1 {
            note.push_str(&format!(
                "{} points: 1 in {s} of {n} shown. ",
                super::stats::outcome_name(o)
            ));
        }
        pts.extend(all.iter().filter(|p| p.outcome == o).step_by(s).copied());
    }
    let bands = faults
        .iter()
        .map(|f| Band {
            x0: clock.x(f.start_ns),
            x1: f.end_ns.map_or(x_max, |e| clock.x(e)),
            color: hex(color_of(kinds, &f.kind)),
            label: f.kind.clone(),
        })
        .collect();
    let mut names: BTreeMap<Mark, BTreeSet<&str>> = BTreeMap::new();
    for op in &history.ops {
        names
            .entry(Mark::of(&op.f))
            .or_default()
            .insert(op.f.name());
    }
    let labels = names
        .into_iter()
        .map(|(m, n)| (m, n.into_iter().collect::<Vec<_>>().join("/")))
        .collect();
    let data = Data {
        pts,
        labels,
        x_max,
        lat_min,
        lat_max,
        quantiles,
        rates,
        rate_max: rate_max * 1.15,
        bands,
        x_label: clock.x_label(),
        lat_label: clock.latency_label(),
        rate_label: if clock.timed {
            "completions per second"
        } else {
            "completions per bucket"
        },
    };
    (data, note)
}

/// Shades the fault bands from `$y0` to `$y1`, with their labels staggered on three
/// heights (`$ylab(i)`) so neighbouring bands stay readable.
macro_rules! draw_bands {
    ($chart:expr, $bands:expr, $y0:expr, $y1:expr, $ylab:expr) => {{
        $chart
            .draw_series($bands.iter().map(|b| {
                Rectangle::new(
                    [(b.x0, $y0), (b.x1.max(b.x0), $y1)],
                    b.color.mix(0.22).filled(),
                )
            }))
            .map_err(pe)?;
        $chart
            .draw_series($bands.iter().enumerate().map(|(i, b)| {
                Text::new(
                    b.label.clone(),
                    (b.x0, $ylab(i % 3)),
                    ("sans-serif", 12).into_font().color(&darker(b.color)),
                )
            }))
            .map_err(pe)?;
    }};
}

fn latency_raw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &Data) -> Result<(), String> {
    root.fill(&WHITE).map_err(pe)?;
    let mut chart = ChartBuilder::on(root)
        .caption("Latency of each operation", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..d.x_max, (d.lat_min..d.lat_max).log_scale())
        .map_err(pe)?;
    chart
        .configure_mesh()
        .x_desc(d.x_label)
        .y_desc(d.lat_label)
        .label_style(("sans-serif", 12))
        .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
        .draw()
        .map_err(pe)?;
    let (lo, hi) = (d.lat_min, d.lat_max);
    draw_bands!(chart, d.bands, lo, hi, |i: usize| hi
        / 1.5f64.powi(i as i32 + 1));
    let style = |p: &Pt| outcome_color(p.outcome).filled();
    let grey = RGBColor(0x55, 0x55, 0x55).filled();
    let of = |m: Mark| d.pts.iter().filter(move |p| p.mark == m);
    let has = |m: Mark| d.pts.iter().any(|p| p.mark == m);
    let label = |m: Mark| d.labels.get(&m).cloned().unwrap_or_default();
    if has(Mark::Ask) {
        chart
            .draw_series(of(Mark::Ask).map(|p| Circle::new((p.x, p.y), 3, style(p))))
            .map_err(pe)?
            .label(label(Mark::Ask))
            .legend(move |(x, y)| Circle::new((x, y), 3, grey));
    }
    if has(Mark::Change) {
        chart
            .draw_series(of(Mark::Change).map(|p| TriangleMarker::new((p.x, p.y), 4, style(p))))
            .map_err(pe)?
            .label(label(Mark::Change))
            .legend(move |(x, y)| TriangleMarker::new((x, y), 4, grey));
    }
    if has(Mark::Cas) {
        chart
            .draw_series(
                of(Mark::Cas)
                    .map(|p| Cross::new((p.x, p.y), 3, outcome_color(p.outcome).stroke_width(2))),
            )
            .map_err(pe)?
            .label(label(Mark::Cas))
            .legend(move |(x, y)| Cross::new((x, y), 3, grey.stroke_width(2)));
    }
    if has(Mark::Append) {
        chart
            .draw_series(of(Mark::Append).map(|p| {
                EmptyElement::at((p.x, p.y)) + Rectangle::new([(-3, -3), (3, 3)], style(p))
            }))
            .map_err(pe)?
            .label(label(Mark::Append))
            .legend(move |(x, y)| Rectangle::new([(x - 3, y - 3), (x + 3, y + 3)], grey));
    }
    for (name, c) in [("ok", OK), ("info", INFO), ("fail", FAIL)] {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(pe)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(pe)
}

fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &Data,
    quantiles: bool,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(pe)?;
    let series = if quantiles { &d.quantiles } else { &d.rates };
    let caption = if quantiles {
        "Latency quantiles over time"
    } else {
        "Throughput by outcome"
    };
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! finish {
        ($chart:expr, $lo:expr, $hi:expr, $ylab:expr, $ydesc:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(d.x_label)
                .y_desc($ydesc)
                .label_style(("sans-serif", 12))
                .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
                .draw()
                .map_err(pe)?;
            draw_bands!(chart, d.bands, $lo, $hi, $ylab);
            for (name, color, pts) in series.iter() {
                let c = *color;
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                    .map_err(pe)?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x - 8, y), (x + 8, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(pe)?;
        }};
    }
    if quantiles {
        let (lo, hi) = (d.lat_min, d.lat_max);
        let chart = builder
            .build_cartesian_2d(0f64..d.x_max, (lo..hi).log_scale())
            .map_err(pe)?;
        finish!(
            chart,
            lo,
            hi,
            |i: usize| hi / 1.5f64.powi(i as i32 + 1),
            d.lat_label
        );
    } else {
        let hi = d.rate_max;
        let chart = builder
            .build_cartesian_2d(0f64..d.x_max, 0f64..hi)
            .map_err(pe)?;
        finish!(
            chart,
            0.0,
            hi,
            |i: usize| hi * (0.97 - 0.07 * i as f64),
            d.rate_label
        );
    }
    Ok(())
}

fn encode_png(buf: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, W, H);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(pe)?;
    w.write_image_data(buf).map_err(pe)?;
    w.finish().map_err(pe)?;
    Ok(out)
}

/// Draws one plot on both backends.
macro_rules! both {
    ($f:ident $(, $arg:expr)*) => {
        (|| -> Result<(Vec<u8>, String), String> {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
                $f(&root $(, $arg)*)?;
                root.present().map_err(pe)?;
            }
            let mut buf = vec![0u8; (W * H * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
                $f(&root $(, $arg)*)?;
                root.present().map_err(pe)?;
            }
            Ok((encode_png(&buf)?, svg))
        })()
    };
}

/// Draws `latency-raw`, `latency-quantiles` and `rate`.
pub(crate) fn draw_all(
    history: &History,
    clock: &Clock,
    faults: &[FaultInterval],
    kinds: &[FaultKind],
) -> Result<Vec<Plot>, ReportError> {
    let err = |plot: &'static str| move |message: String| ReportError::Plot { plot, message };
    ensure_font().map_err(err("latency-raw"))?;
    let (d, note) = prepare(history, clock, faults, kinds);
    let (png, svg) = both!(latency_raw, &d).map_err(err("latency-raw"))?;
    let raw = Plot {
        name: "latency-raw",
        title: "Latency vs invocation time",
        png,
        svg,
        note,
    };
    let (png, svg) = both!(lines, &d, true).map_err(err("latency-quantiles"))?;
    let q = Plot {
        name: "latency-quantiles",
        title: "Latency quantiles per time bucket",
        png,
        svg,
        note: format!(
            "{BUCKETS} buckets of {:.3} {}",
            d.x_max / BUCKETS as f64,
            if clock.timed { "s" } else { "events" }
        ),
    };
    let (png, svg) = both!(lines, &d, false).map_err(err("rate"))?;
    let rate = Plot {
        name: "rate",
        title: "Throughput over time, by outcome",
        png,
        svg,
        note: String::new(),
    };
    Ok(vec![raw, q, rate])
}
