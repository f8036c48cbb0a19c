//! Where the time of a simulated update goes, as a picture: [`plot_svg`] draws the timeline
//! of one or more runs into one SVG file, one panel per run, stacked on the same time axis.
//!
//! Each panel has two parts:
//!
//! * **above**: payload bytes durable in flash over virtual time (one line per attempt, from
//!   `Progress::Bytes`), the ideal line-rate slope for reference (dashed), and the flash-busy
//!   intervals as shaded bands behind them: sector erases, block erases, page programs and
//!   reads in their own colours, darker where the flash was busy for more of the pixel's
//!   time. Attempt starts and baud-rate changes are vertical markers with labels.
//! * **below**: the MCU's receive-buffer fill (FIFO plus ring; the highest fill within each
//!   pixel), its capacity (dashed), and UART bytes lost as red marks above it.
//!
//! The data comes from the simulator's [`Timeline`] (`World::record_timeline(true)` before
//! the run, `World::timeline()` after it) and from [`PlotCollector`], fed with the events of
//! [`Device::run`](super::Device::run).
//!
//! Text is written as SVG `<text>` (plotters' SVG backend without font loading): no system
//! font is read when the plot is made.

use std::path::Path;
use std::time::Duration;

use cellular_ota::update::Progress;
use cellular_ota_sim::{FlashOpKind, Timeline, UartEnd, World};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Event;

/// Width of the picture in pixels.
pub const WIDTH: u32 = 1280;
/// Height of one run's panel in pixels.
pub const PANEL_HEIGHT: u32 = 480;
/// Width of the legend column right of the plots.
const LEGEND_WIDTH: u32 = 250;
/// Height of a panel's title and summary line.
const HEAD_HEIGHT: i32 = 48;
/// Height of the upper part (durable bytes) of a panel; the rest shows the receive buffer.
const UPPER_HEIGHT: i32 = 290;
const Y_LABEL_AREA: u32 = 72;
const FONT: &str = "sans-serif";
/// [`PlotCollector`] keeps about one durable-bytes point per this much virtual time.
const THIN: Duration = Duration::from_millis(1);

const BYTES: RGBColor = RGBColor(25, 80, 200);
const IDEAL: RGBColor = RGBColor(90, 90, 90);
const SECTOR_ERASE: RGBColor = RGBColor(245, 140, 30);
const BLOCK_ERASE: RGBColor = RGBColor(190, 70, 0);
const PROGRAM: RGBColor = RGBColor(60, 170, 90);
const READ: RGBColor = RGBColor(150, 150, 150);
const FILL: RGBColor = RGBColor(0, 130, 140);
const LOST: RGBColor = RGBColor(220, 0, 0);
const ATTEMPT: RGBColor = RGBColor(40, 40, 40);
const BAUD: RGBColor = RGBColor(160, 0, 160);

/// One run to draw: what the update reported, and what the simulator recorded.
#[derive(Clone, Debug)]
pub struct PlotRun {
    /// The panel's title (the configuration, e.g. `"115200 baud, interrupt ring"`).
    pub title: String,
    /// Payload bytes durable over virtual time (`Progress::Bytes::done` and
    /// `World::elapsed()` when it was reported).
    pub bytes: Vec<(Duration, u32)>,
    /// The image size.
    pub total: u32,
    /// The simulator's record of the run (`World::timeline()`).
    pub timeline: Timeline,
    /// When each attempt started (`Event::Attempt`).
    pub attempts: Vec<Duration>,
    /// The UART's line rate in bytes per second (baud / 10 for 8N1), for the reference
    /// slope; 0 draws none.
    pub line_rate_bytes_per_sec: f64,
}

/// Collects what a [`PlotRun`] needs from the events of [`Device::run`](super::Device::run):
/// call [`on_event`](Self::on_event) for each. It also switches timeline recording on in
/// the world of each attempt (`World::record_timeline(true)`; switching it on before
/// `Device::run` as well records the first attempt's recovery too).
///
/// Times are the world's virtual time; a power cycle starts a new world whose clock starts
/// from zero again (and whose timeline is a new one): a plot shows runs without power cuts
/// faithfully, and of a run with one only the last world's timeline.
#[derive(Clone, Debug, Default)]
pub struct PlotCollector {
    /// Durable bytes over time.
    pub bytes: Vec<(Duration, u32)>,
    /// Attempt start times.
    pub attempts: Vec<Duration>,
    /// The image size, from `Progress::Started` or `Progress::Bytes`.
    pub total: u32,
}

impl PlotCollector {
    /// Nothing collected yet.
    pub fn new() -> Self {
        PlotCollector::default()
    }

    /// Takes one event of `Device::run`.
    pub fn on_event(&mut self, world: &World, ev: &Event<'_>) {
        match ev {
            Event::Attempt(_) => {
                // A world made by a power cycle records too (recording is per world).
                world.record_timeline(true);
                self.attempts.push(world.elapsed());
            }
            Event::Progress(Progress::Started { total, .. }) => self.total = *total,
            Event::Progress(Progress::Bytes { done, total }) => {
                self.total = *total;
                let t = world.elapsed();
                // At most about one point per millisecond: a report within 1 ms of the
                // point before the last one replaces the last one (within an attempt).
                let attempt = self.attempts.last().copied().unwrap_or_default();
                match self.bytes.as_mut_slice() {
                    [.., prev, last] if prev.0 >= attempt && t.saturating_sub(prev.0) < THIN => {
                        *last = (t, *done)
                    }
                    _ => self.bytes.push((t, *done)),
                }
            }
            _ => {}
        }
    }

    /// The run to draw, with the world's timeline and the line rate (bytes per second).
    pub fn into_run(self, title: impl Into<String>, timeline: Timeline, line_rate: f64) -> PlotRun {
        PlotRun {
            title: title.into(),
            bytes: self.bytes,
            total: self.total,
            timeline,
            attempts: self.attempts,
            line_rate_bytes_per_sec: line_rate,
        }
    }
}

/// Draws `runs` into one SVG file at `path`: one panel per run, stacked, on the same time
/// axis (from the world's start to the end of the longest run).
pub fn plot_svg(path: &Path, runs: &[PlotRun]) -> Result<(), String> {
    let svg = render_svg(runs)?;
    std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
}

/// What [`plot_svg`] writes, as a string.
pub fn render_svg(runs: &[PlotRun]) -> Result<String, String> {
    if runs.is_empty() {
        return Err("no run to plot".into());
    }
    let x_end = runs.iter().map(run_end).fold(0.0, f64::max).max(0.001) * 1.02;
    let mut out = String::new();
    {
        let height = PANEL_HEIGHT.saturating_mul(u32::try_from(runs.len()).unwrap_or(u32::MAX));
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (area, run) in root.split_evenly((runs.len(), 1)).iter().zip(runs) {
            draw_panel(area, run, x_end)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plot: {e:?}")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The last moment a run has data for, in seconds.
fn run_end(r: &PlotRun) -> f64 {
    let t = &r.timeline;
    let last_bytes = r.bytes.last().map_or(0.0, |b| secs(b.0));
    let last_attempt = r.attempts.last().map_or(0.0, |a| secs(*a));
    let last_flash = t.flash.last().map_or(0.0, |b| secs(b.end));
    secs(t.end)
        .max(last_bytes)
        .max(last_attempt)
        .max(last_flash)
}

fn kind_color(kind: FlashOpKind) -> RGBColor {
    match kind {
        FlashOpKind::SectorErase => SECTOR_ERASE,
        FlashOpKind::BlockErase => BLOCK_ERASE,
        FlashOpKind::PageProgram => PROGRAM,
        FlashOpKind::Read => READ,
    }
}

/// The flash-busy bands of `kind` at the resolution of `bins` columns over `[0, x_end)`:
/// `(start, end, fraction of the time busy)`, the fraction rounded to sixteenths (but
/// never to 0), equal neighbours merged.
fn busy_bands(t: &Timeline, kind: FlashOpKind, x_end: f64, bins: usize) -> Vec<(f64, f64, f64)> {
    let w = x_end / bins as f64;
    let mut busy = vec![0.0f64; bins];
    for b in t.flash.iter().filter(|b| b.kind == kind) {
        let (s, e) = (secs(b.start), secs(b.end));
        let mut i = (s / w).floor() as usize;
        while i < bins && (i as f64) * w < e {
            let lo = s.max(i as f64 * w);
            let hi = e.min((i + 1) as f64 * w);
            busy[i] += (hi - lo).max(0.0) / w;
            i += 1;
        }
    }
    let mut out: Vec<(f64, f64, f64)> = Vec::new();
    for (i, f) in busy.iter().enumerate() {
        if *f <= 0.0 {
            continue;
        }
        let q = ((f.min(1.0) * 16.0).round() / 16.0).max(1.0 / 32.0);
        let (lo, hi) = (i as f64 * w, (i + 1) as f64 * w);
        match out.last_mut() {
            Some(last) if last.2 == q && (last.1 - lo).abs() < w * 1e-6 => last.1 = hi,
            _ => out.push((lo, hi, q)),
        }
    }
    out
}

/// The receive-buffer fill as a step line at the resolution of `bins` columns: the highest
/// fill within each column, from the start of recording to its end.
fn fill_envelope(t: &Timeline, x_end: f64, bins: usize) -> Vec<(f64, f64)> {
    let w = x_end / bins as f64;
    let (start, end) = (secs(t.start), secs(t.end));
    let mut samples = t.rx_fill.iter().peekable();
    let mut carry = t.rx_fill_at_start;
    let mut steps: Vec<(f64, f64, u32)> = Vec::new();
    for i in 0..bins {
        let (lo, hi) = (i as f64 * w, (i + 1) as f64 * w);
        if hi <= start {
            continue;
        }
        if lo >= end {
            break;
        }
        let mut v = carry;
        while let Some(s) = samples.next_if(|s| secs(s.at) < hi) {
            v = v.max(s.max);
            carry = s.last;
        }
        let (lo, hi) = (lo.max(start), hi.min(end));
        match steps.last_mut() {
            Some(last) if last.2 == v => last.1 = hi,
            _ => steps.push((lo, hi, v)),
        }
    }
    let mut points = Vec::with_capacity(steps.len() * 2 + 2);
    for (lo, hi, v) in steps {
        points.push((lo, f64::from(v)));
        points.push((hi, f64::from(v)));
    }
    points
}

/// Bytes lost per column, at the column's middle.
fn loss_marks(t: &Timeline, x_end: f64, bins: usize) -> Vec<(f64, u64)> {
    let w = x_end / bins as f64;
    let mut out: Vec<(usize, u64)> = Vec::new();
    for l in &t.lost {
        let i = ((secs(l.at) / w).floor() as usize).min(bins.saturating_sub(1));
        match out.last_mut() {
            Some(last) if last.0 == i => last.1 += l.bytes,
            _ => out.push((i, l.bytes)),
        }
    }
    out.into_iter()
        .map(|(i, n)| ((i as f64 + 0.5) * w, n))
        .collect()
}

/// A vertical marker: `(time, label, colour)`.
type Marker = (f64, String, RGBColor);

/// Vertical markers: attempt starts and baud changes.
fn markers(run: &PlotRun) -> Vec<Marker> {
    let mut m: Vec<Marker> = run
        .attempts
        .iter()
        .enumerate()
        .map(|(i, t)| (secs(*t), format!("attempt {}", i + 1), ATTEMPT))
        .collect();
    let bauds = &run.timeline.bauds;
    let (mut modem, mut host) = (
        run.timeline.modem_baud_at_start,
        run.timeline.host_baud_at_start,
    );
    for (i, c) in bauds.iter().enumerate() {
        // A rate set and set back within the same instant (a capability check of the MCU's
        // UART) is not a change on the line: keep only the last one of that end at `at`.
        if bauds[i + 1..]
            .iter()
            .any(|later| later.end == c.end && later.at == c.at)
        {
            continue;
        }
        let (end, now) = match c.end {
            UartEnd::Modem => ("modem", &mut modem),
            UartEnd::Host => ("host", &mut host),
        };
        if *now == c.baud {
            continue;
        }
        *now = c.baud;
        m.push((secs(c.at), format!("{end} {} baud", c.baud), BAUD));
    }
    m.sort_by(|a, b| a.0.total_cmp(&b.0));
    m
}

/// Labels of markers that lie close together, drawn once at the first one's time.
struct MarkerGroup {
    at: f64,
    labels: Vec<(String, RGBColor)>,
}

/// Groups `markers` (sorted by time) whose times lie within `gap` of the group's first one.
/// Within a group, attempt labels are kept, and the baud changes of either end collapse
/// into one label naming the rates they reached, in order, without repeats.
fn marker_groups(markers: &[Marker], gap: f64) -> Vec<MarkerGroup> {
    let mut groups: Vec<(f64, Vec<&Marker>)> = Vec::new();
    for m in markers {
        match groups.last_mut() {
            Some((start, members)) if m.0 - *start <= gap => members.push(m),
            _ => groups.push((m.0, vec![m])),
        }
    }
    groups
        .into_iter()
        .map(|(at, members)| {
            let mut labels: Vec<(String, RGBColor)> = Vec::new();
            let mut rates: Vec<&str> = Vec::new();
            for (_, label, color) in members {
                if *color == BAUD {
                    // "modem 921600 baud" / "host 921600 baud" -> "921600"
                    let rate = label.split(' ').nth(1).unwrap_or(label);
                    if rates.last() != Some(&rate) {
                        rates.push(rate);
                    }
                } else {
                    labels.push((label.clone(), *color));
                }
            }
            if !rates.is_empty() {
                labels.push((format!("baud {}", rates.join(" → ")), BAUD));
            }
            MarkerGroup { at, labels }
        })
        .collect()
}

/// The reference slope: the line rate through the first durable-bytes report, from where it
/// would have started (not before 0) to where it reaches the total.
fn ideal_line(run: &PlotRun) -> Option<Vec<(f64, f64)>> {
    let rate = run.line_rate_bytes_per_sec;
    let &(t0, b0) = run.bytes.first()?;
    if rate <= 0.0 || !rate.is_finite() {
        return None;
    }
    let (t0, b0, total) = (secs(t0), f64::from(b0), f64::from(run.total));
    let ts = (t0 - b0 / rate).max(0.0);
    let bs = b0 - (t0 - ts) * rate;
    let te = t0 + (total - b0).max(0.0) / rate;
    Some(vec![(ts, bs / 1024.0), (te, total / 1024.0)])
}

fn summary(run: &PlotRun) -> String {
    let t = &run.timeline;
    let done = run.bytes.last().map_or(0, |b| b.1);
    let at = run.bytes.last().map_or(0.0, |b| secs(b.0));
    format!(
        "{done} of {} bytes durable at {at:.2} s; flash busy {:.2} s; RX buffer peak {} of {} B; {} bytes lost; {} attempt(s)",
        run.total,
        secs(t.flash_busy()),
        t.max_rx_fill(),
        t.rx_capacity,
        t.lost_bytes(),
        run.attempts.len(),
    )
}

/// What a legend entry shows next to its text.
#[derive(Clone, Copy, Debug)]
enum Swatch {
    /// A shaded band.
    Band(RGBColor),
    /// A line (dashed or not) of this width.
    Line(RGBColor, u32, bool),
    /// A short vertical mark.
    Tick(RGBColor),
}

/// Draws the legend into the column right of the plots, from the top.
fn draw_legend(
    side: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(Swatch, String)],
) -> Result<(), String> {
    let text = (FONT, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = 12;
    for (swatch, label) in entries {
        match *swatch {
            Swatch::Band(c) => side
                .draw(&Rectangle::new(
                    [(6, y - 5), (24, y + 5)],
                    c.mix(0.55).filled(),
                ))
                .map_err(err)?,
            Swatch::Line(c, width, false) => side
                .draw(&PathElement::new(
                    vec![(6, y), (24, y)],
                    c.stroke_width(width),
                ))
                .map_err(err)?,
            Swatch::Line(c, width, true) => {
                for x in [6, 15] {
                    side.draw(&PathElement::new(
                        vec![(x, y), (x + 6, y)],
                        c.stroke_width(width),
                    ))
                    .map_err(err)?;
                }
            }
            Swatch::Tick(c) => side
                .draw(&PathElement::new(
                    vec![(15, y - 6), (15, y + 6)],
                    c.stroke_width(2),
                ))
                .map_err(err)?,
        }
        side.draw_text(label, &text, (30, y)).map_err(err)?;
        y += 18;
    }
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    run: &PlotRun,
    x_end: f64,
) -> Result<(), String> {
    let t = &run.timeline;
    let (head, rest) = area.split_vertically(HEAD_HEIGHT);
    let plots_width = i32::try_from(WIDTH - LEGEND_WIDTH).unwrap_or(0);
    let (plots, side) = rest.split_horizontally(plots_width);
    let (upper, lower) = plots.split_vertically(UPPER_HEIGHT);
    let mut legend: Vec<(Swatch, String)> = Vec::new();

    let centre = i32::try_from(WIDTH / 2).unwrap_or(0);
    let title = (FONT, 18)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    head.draw_text(&run.title, &title, (centre, 6))
        .map_err(err)?;
    let line = (FONT, 12)
        .into_font()
        .color(&BLACK.mix(0.8))
        .pos(Pos::new(HPos::Center, VPos::Top));
    head.draw_text(&summary(run), &line, (centre, 30))
        .map_err(err)?;

    let y_max = (f64::from(run.total.max(1)) / 1024.0) * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .margin_top(4)
        .margin_left(10)
        .margin_right(16)
        .x_label_area_size(0)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0f64..x_end, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_desc("payload durable (KiB)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(6)
        .x_labels(12)
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.12))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(err)?;
    let bins = (chart.plotting_area().dim_in_pixel().0 as usize).max(1);

    // Flash-busy bands behind everything.
    for kind in FlashOpKind::ALL {
        let bands = busy_bands(t, kind, x_end, bins);
        if bands.is_empty() {
            continue;
        }
        let color = kind_color(kind);
        chart
            .draw_series(bands.into_iter().map(|(lo, hi, q)| {
                Rectangle::new(
                    [(lo, 0.0), (hi, y_max)],
                    color.mix(0.05 + 0.55 * q).filled(),
                )
            }))
            .map_err(err)?;
        legend.push((
            Swatch::Band(color),
            format!(
                "flash {} ({:.2} s)",
                kind.name(),
                secs(t.flash_busy_of(kind))
            ),
        ));
    }

    // Durable bytes, one line per attempt.
    for seg in attempt_segments(run) {
        chart
            .draw_series(LineSeries::new(
                thin(&seg, x_end, bins),
                BYTES.stroke_width(2),
            ))
            .map_err(err)?;
    }
    legend.push((
        Swatch::Line(BYTES, 2, false),
        "payload durable in flash".into(),
    ));

    // The line rate on top: where the transfer keeps up with it, the two lines coincide.
    if let Some(line) = ideal_line(run) {
        chart
            .draw_series(DashedLineSeries::new(line, 8, 5, IDEAL.stroke_width(1)))
            .map_err(err)?;
        legend.push((
            Swatch::Line(IDEAL, 1, true),
            format!("line rate {:.0} B/s", run.line_rate_bytes_per_sec),
        ));
    }

    // Markers: every line is drawn; labels of markers closer than 2 % of the axis are
    // grouped (a negotiation changes both ends' rates several times within a fraction of a
    // second) and stacked, and groups alternate between three rows.
    let dx = x_end * 0.003;
    let markers = markers(run);
    for (at, _, color) in &markers {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*at, 0.0), (*at, y_max)],
                color.stroke_width(1),
            )))
            .map_err(err)?;
    }
    for (g, group) in marker_groups(&markers, x_end * 0.02).iter().enumerate() {
        for (row, (label, color)) in group.labels.iter().enumerate() {
            let y = y_max * (0.975 - 0.055 * ((g % 3) + row) as f64);
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (group.at + dx, y),
                    (FONT, 12).into_font().color(color),
                )))
                .map_err(err)?;
        }
    }
    if !run.attempts.is_empty() {
        legend.push((Swatch::Line(ATTEMPT, 1, false), "attempt start".into()));
    }
    if !t.bauds.is_empty() {
        legend.push((Swatch::Line(BAUD, 1, false), "baud-rate change".into()));
    }

    // The receive buffer.
    let cap = f64::from(t.rx_capacity.max(1));
    let fill_max = cap * 1.3;
    let mut rx = ChartBuilder::on(&lower)
        .margin_top(6)
        .margin_left(10)
        .margin_right(16)
        .margin_bottom(4)
        .x_label_area_size(34)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0f64..x_end, 0f64..fill_max)
        .map_err(err)?;
    rx.configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc("MCU RX buffer (B)")
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(4)
        .x_labels(12)
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.12))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for kind in FlashOpKind::ALL {
        let color = kind_color(kind);
        rx.draw_series(
            busy_bands(t, kind, x_end, bins)
                .into_iter()
                .map(|(lo, hi, q)| {
                    Rectangle::new(
                        [(lo, 0.0), (hi, fill_max)],
                        color.mix(0.03 + 0.3 * q).filled(),
                    )
                }),
        )
        .map_err(err)?;
    }
    for (at, _, color) in &markers {
        rx.draw_series(std::iter::once(PathElement::new(
            vec![(*at, 0.0), (*at, fill_max)],
            color.mix(0.6).stroke_width(1),
        )))
        .map_err(err)?;
    }
    let fill = fill_envelope(t, x_end, bins);
    if !fill.is_empty() {
        rx.draw_series(
            AreaSeries::new(fill, 0.0, FILL.mix(0.3)).border_style(FILL.stroke_width(1)),
        )
        .map_err(err)?;
    }
    legend.push((Swatch::Band(FILL), "RX buffer fill (peak per pixel)".into()));
    rx.draw_series(DashedLineSeries::new(
        vec![(0.0, cap), (x_end, cap)],
        6,
        4,
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    legend.push((
        Swatch::Line(BLACK, 1, true),
        format!("RX capacity {} B (FIFO + ring)", t.rx_capacity),
    ));
    let lost = loss_marks(t, x_end, bins);
    if !lost.is_empty() {
        rx.draw_series(lost.into_iter().map(|(at, _)| {
            PathElement::new(
                vec![(at, cap * 1.04), (at, cap * 1.26)],
                LOST.stroke_width(2),
            )
        }))
        .map_err(err)?;
        legend.push((
            Swatch::Tick(LOST),
            format!("UART bytes lost ({})", t.lost_bytes()),
        ));
    }
    draw_legend(&side, &legend)
}

/// A line of durable-bytes reports at the resolution of `bins` columns: the first report,
/// then the last one in each column (an update reports after every write, hundreds of
/// thousands of times in a large one).
fn thin(seg: &[(Duration, u32)], x_end: f64, bins: usize) -> Vec<(f64, f64)> {
    let w = x_end / bins as f64;
    let mut out: Vec<(usize, f64, f64)> = Vec::new();
    for (i, &(t, b)) in seg.iter().enumerate() {
        let (x, y) = (secs(t), f64::from(b) / 1024.0);
        let col = (x / w).floor() as usize;
        match out.last_mut() {
            Some(last) if i > 1 && last.0 == col => *last = (col, x, y),
            _ => out.push((col, x, y)),
        }
    }
    out.into_iter().map(|(_, x, y)| (x, y)).collect()
}

/// The durable-bytes reports split at attempt starts (a line per attempt).
fn attempt_segments(run: &PlotRun) -> Vec<Vec<(Duration, u32)>> {
    let mut segs: Vec<Vec<(Duration, u32)>> = Vec::new();
    let mut next = 1;
    for &(t, b) in &run.bytes {
        let mut new_seg = segs.is_empty();
        while next < run.attempts.len() && t >= run.attempts[next] {
            next += 1;
            new_seg = true;
        }
        if new_seg {
            segs.push(Vec::new());
        }
        if let Some(s) = segs.last_mut() {
            s.push((t, b));
        }
    }
    segs
}
