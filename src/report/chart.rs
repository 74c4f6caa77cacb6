//! The timeline chart: one lane per key, volume and instance, drawn with plotters to SVG and PNG.
//!
//! Keys sit above the volumes that depend on them. Each lane shows coloured bands (see
//! [`super::lanes::Band`]), failed operations as red diamonds at the instant they failed, and the
//! latent window as an amber bracket labelled with its length: from the key going away to the
//! resource breaking, the chart's point. Vertical markers label material deletions, expiries,
//! reimports and key deletions. Beyond [`MAX_LANES`] resources the chart shows each key and,
//! below it, how many of its volumes are in each kind of band over time, as stacked areas; then
//! the instances, counted by state.
//!
//! Text in the PNG is drawn with the bundled DejaVu Sans (`src/assets`), so no system font or
//! library is needed; SVG text names `sans-serif` and uses the viewer's fonts.

// Pixel geometry: counts and times become pixel offsets bounded by the image's size.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

use std::sync::Once;

use image::ImageEncoder as _;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::actors::ec2::InstanceState;
use crate::actors::kms::KeyState;
use crate::engine::SimTime;

use crate::analysis::lanes::{Area, Band, Lane, LaneKind, Lanes, MarkerKind};

pub use crate::analysis::lanes::MAX_LANES;

const WIDTH: u32 = 1400;
/// The width of the chart a report prints: across an A4 or Letter page (about 720 CSS pixels
/// between the margins) it is drawn at 1.28 times its size, so its smallest text (8.9 pixels)
/// prints at 8.5 points.
pub const PRINT_WIDTH: u32 = 560;
const LABEL_W: i32 = 190;
const RIGHT: i32 = 50;
const LANE_H: i32 = 40;
const MARKER_ROW_H: i32 = 16;
const MARKER_ROWS: usize = 4;
const AREA_H: i32 = 240;

static FONTS: Once = Once::new();

fn register_fonts() {
    FONTS.call_once(|| {
        // InvalidFont has no Debug; a bundled font that fails to load is a build defect.
        let normal = register_font("sans-serif", FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"));
        let bold = register_font("sans-serif", FontStyle::Bold, include_bytes!("../assets/DejaVuSans-Bold.ttf"));
        assert!(normal.is_ok() && bold.is_ok(), "the bundled DejaVu Sans font does not load");
    });
}

fn rgb(hex: u32) -> RGBColor {
    RGBColor(((hex >> 16) & 0xff) as u8, ((hex >> 8) & 0xff) as u8, (hex & 0xff) as u8)
}

/// The colour of a band; the same in the chart, its legend and the HTML report.
#[must_use]
pub fn band_colour(b: &Band) -> u32 {
    match b {
        Band::Key(KeyState::Enabled) => 0x4caf50,
        Band::Key(KeyState::Disabled) => 0x9e9e9e,
        Band::Key(KeyState::PendingImport) => 0xff9800,
        Band::Key(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion) => 0x9c27b0,
        Band::Key(_) => 0x607d8b,
        Band::KeyDeleted => 0x212121,
        Band::Working(_) => 0x81c784,
        // A snapshot its key cannot read is latent too.
        Band::Latent(_) | Band::KeptUnreadable | Band::ServingLatent(_) => 0xffc107,
        Band::Idle(_) => 0xb0bec5,
        Band::Detached => 0xe0e0e0,
        // A group with no instance in service is as unusable as a volume that cannot attach.
        Band::Unusable | Band::Capacity(0, _) => 0xef9a9a,
        Band::Instance(InstanceState::Running) => 0x90caf9,
        Band::Instance(InstanceState::Pending) => 0xbbdefb,
        Band::Instance(InstanceState::Stopped) => 0xcfd8dc,
        Band::Instance(InstanceState::Terminated) => 0x616161,
        Band::Capacity(n, d) if n >= d => 0x90caf9,
        Band::Capacity(..) => 0xffe082,
        Band::Kept => 0x80cbc4,
        Band::Serving(_) => 0x80deea,
        Band::Down(_) => 0xe57373,
    }
}

const FAILURE: u32 = 0xd50000;
const LATENT: u32 = 0xff6f00;

fn marker_colour(k: MarkerKind) -> u32 {
    match k {
        MarkerKind::MaterialDeleted | MarkerKind::MaterialExpired => 0xe65100,
        MarkerKind::Reimported | MarkerKind::Enabled | MarkerKind::DeletionCancelled => 0x2e7d32,
        MarkerKind::Disabled => 0x616161,
        MarkerKind::DeletionScheduled => 0x7b1fa2,
        MarkerKind::KeyDeleted => 0x000000,
        MarkerKind::Rotation => 0x1565c0,
    }
}

/// What the chart needs besides the lanes.
pub struct ChartInput<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    pub start: jiff::Timestamp,
    pub lanes: &'a Lanes,
}

struct Layout {
    width: u32,
    height: u32,
    /// The lanes' (and the counted areas') height.
    body: i32,
    x0: i32,
    x1: i32,
    lanes_top: i32,
    aggregate: bool,
    shown: Vec<usize>,
    /// The label row of each marker.
    marker_rows: Vec<usize>,
}

fn x_of(t: SimTime, end: SimTime, x0: i32, x1: i32) -> i32 {
    let end = end.as_ms().max(1);
    x0 + ((t.as_ms().min(end) as f64 / end as f64) * f64::from(x1 - x0)).round() as i32
}

/// Puts each marker's label in the first row where it does not overlap the previous label.
fn marker_rows(lanes: &Lanes, x0: i32, x1: i32) -> Vec<usize> {
    let mut row_end = [i32::MIN; MARKER_ROWS];
    lanes
        .markers
        .iter()
        .map(|m| {
            let x = x_of(m.at, lanes.end, x0, x1);
            let width = 7 * m.label.chars().count() as i32 + 16;
            let row = row_end.iter().position(|e| *e < x).unwrap_or(MARKER_ROWS - 1);
            row_end[row] = x + width;
            row
        })
        .collect()
}

fn layout(input: &ChartInput<'_>, width: u32) -> Layout {
    let aggregate = input.lanes.aggregate.is_some();
    let shown: Vec<usize> = input
        .lanes
        .lanes
        .iter()
        .enumerate()
        .filter(|(_, l)| !aggregate || l.kind == LaneKind::Key)
        .map(|(i, _)| i)
        .collect();
    let (x0, x1) = (LABEL_W + 10, width as i32 - RIGHT);
    let marker_rows = marker_rows(input.lanes, x0, x1);
    let rows_used = marker_rows.iter().max().map_or(0, |r| r + 1) as i32;
    let lanes_top = 60 + rows_used * MARKER_ROW_H + 6;
    let body = shown.len() as i32 * LANE_H + areas(input.lanes).iter().map(|_| area_height(input.lanes)).sum::<i32>();
    let legend = legend_height(input.lanes, aggregate, x1);
    let height = u32::try_from(lanes_top + body + 30 + legend).expect("positive height");
    Layout { width, height, body, x0, x1, lanes_top, aggregate, shown, marker_rows }
}

/// The chart as SVG text.
#[must_use]
pub fn svg(input: &ChartInput<'_>) -> String {
    svg_at(input, WIDTH)
}

/// The chart as SVG text, `width` pixels wide (the text keeps its size).
#[must_use]
pub fn svg_at(input: &ChartInput<'_>, width: u32) -> String {
    register_fonts();
    let l = layout(input, width);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (l.width, l.height)).into_drawing_area();
        draw(&root, input, &l).expect("drawing to a string cannot fail");
        root.present().expect("drawing to a string cannot fail");
    }
    out
}

/// The chart as PNG bytes.
#[must_use]
pub fn png(input: &ChartInput<'_>) -> Vec<u8> {
    register_fonts();
    let l = layout(input, WIDTH);
    let mut rgb_buf = vec![0u8; (l.width * l.height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb_buf, (l.width, l.height)).into_drawing_area();
        draw(&root, input, &l).expect("drawing to memory cannot fail");
        root.present().expect("drawing to memory cannot fail");
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&rgb_buf, l.width, l.height, image::ColorType::Rgb8)
        .expect("encoding a PNG in memory cannot fail");
    png
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn font(size: i32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

fn bold(size: i32) -> TextStyle<'static> {
    ("sans-serif", size, FontStyle::Bold).into_font().color(&BLACK)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, input: &ChartInput<'_>, l: &Layout) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let x_of = |t: SimTime| x_of(t, input.lanes.end, l.x0, l.x1);
    root.draw(&Text::new(input.title.to_string(), (12, 12), bold(18)))?;
    let grey = rgb(0x555555);
    root.draw(&Text::new(input.subtitle.to_string(), (12, 36), font(13).color(&grey)))?;

    let plot_bottom = l.lanes_top + l.body;

    // Time grid and axis.
    // A label every 95 pixels at most: twelve across the screen chart, six across the print one.
    let ticks = ticks(input.start, input.lanes.end, usize::try_from((l.x1 - l.x0) / 95).unwrap_or(1).max(2));
    let axis_y = plot_bottom + 6;
    for (t, label) in &ticks {
        let x = x_of(*t);
        root.draw(&PathElement::new(vec![(x, l.lanes_top), (x, plot_bottom)], rgb(0xeeeeee)))?;
        root.draw(&PathElement::new(vec![(x, plot_bottom), (x, plot_bottom + 4)], rgb(0x777777)))?;
        let grey = rgb(0x444444);
        let style = font(11).color(&grey).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(label.clone(), (x, axis_y), style))?;
    }
    root.draw(&PathElement::new(vec![(l.x0, plot_bottom), (l.x1, plot_bottom)], rgb(0x777777)))?;

    // Lanes; in the aggregate view each key's counted volumes under it, the instances' last.
    let mut prev_kind = None;
    let mut top = l.lanes_top;
    let areas = areas(input.lanes);
    let area_h = area_height(input.lanes);
    // Key lanes come in key order.
    let mut keys_drawn = 0;
    for (row, &li) in l.shown.iter().enumerate() {
        let lane = &input.lanes.lanes[li];
        if lane.kind == LaneKind::Key && row > 0
            || (lane.kind == LaneKind::Instance && prev_kind != Some(LaneKind::Instance))
        {
            root.draw(&PathElement::new(vec![(8, top), (l.x1, top)], rgb(0xbdbdbd)))?;
        }
        prev_kind = Some(lane.kind);
        draw_lane(root, lane, top, &x_of, l)?;
        top += LANE_H;
        if lane.kind != LaneKind::Key {
            continue;
        }
        let key = crate::actors::kms::KeyIdx(keys_drawn);
        keys_drawn += 1;
        for area in areas.iter().filter(|a| a.key == Some(key)) {
            draw_area(root, area, top + 6, top + area_h - 6, &x_of, input.lanes.end, l)?;
            top += area_h;
        }
    }
    for area in areas.iter().filter(|a| a.key.is_none()) {
        root.draw(&PathElement::new(vec![(8, top), (l.x1, top)], rgb(0xbdbdbd)))?;
        draw_area(root, area, top + 6, top + area_h - 6, &x_of, input.lanes.end, l)?;
        top += area_h;
    }

    // Markers: a dashed line through the lanes, the label in the first free row above.
    for (m, row) in input.lanes.markers.iter().zip(&l.marker_rows) {
        let x = x_of(m.at);
        let colour = rgb(marker_colour(m.kind));
        let label_y = 60 + *row as i32 * MARKER_ROW_H;
        let mut y = label_y + 12;
        while y < plot_bottom {
            root.draw(&PathElement::new(vec![(x, y), (x, (y + 5).min(plot_bottom))], colour.stroke_width(1)))?;
            y += 9;
        }
        let style = font(12).color(&colour).pos(Pos::new(HPos::Left, VPos::Top));
        root.draw(&Text::new(format!("▼ {}", m.label), (x - 4, label_y), style))?;
    }

    draw_legend(root, input.lanes, plot_bottom + 32, l)?;
    Ok(())
}

fn draw_lane<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    lane: &Lane,
    top: i32,
    x_of: &impl Fn(SimTime) -> i32,
    l: &Layout,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (band_top, band_bottom) = (top + 16, top + LANE_H - 4);
    let mid = (band_top + band_bottom) / 2;
    let (label_style, indent) = match lane.kind {
        LaneKind::Key => (bold(13), 12),
        LaneKind::Volume | LaneKind::Snapshot | LaneKind::Service => (font(12), 26),
        LaneKind::Instance | LaneKind::Group => (font(12), 12),
    };
    let prefix = if lane.kind == LaneKind::Key { "key " } else { "" };
    root.draw(&Text::new(
        format!("{prefix}{}", lane.name),
        (indent, mid),
        label_style.pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    root.draw(&Rectangle::new([(l.x0, band_top), (l.x1, band_bottom)], rgb(0xfafafa).filled()))?;
    // Band labels are drawn after the failure diamonds: (text, x, width, text colour, band colour).
    let mut labels = Vec::new();
    for s in &lane.segments {
        let (a, b) = (x_of(s.from), x_of(s.to).max(x_of(s.from) + 1));
        root.draw(&Rectangle::new([(a, band_top), (b, band_bottom)], rgb(band_colour(&s.band)).filled()))?;
        let text = s.band.label();
        let width = 7 * text.chars().count() as i32;
        // The first failure diamond (6 px either side of its instant) where the label would be
        // pushes it past, so that the band's first failure stays visible.
        let mut x = a + 4;
        if let Some(fx) = lane.failures.iter().map(|f| x_of(f.at)).find(|fx| (x - 6..=x + width + 6).contains(fx)) {
            x = fx + 9;
        }
        if width + 4 < b - x {
            let colour = if matches!(s.band, Band::KeyDeleted | Band::Instance(InstanceState::Terminated)) {
                WHITE
            } else {
                BLACK
            };
            labels.push((text, x, width, colour, band_colour(&s.band)));
        }
    }
    // The latent window: an amber bracket above the band, labelled with its length.
    for &(from, to, broke) in &lane.latent {
        let (a, b) = (x_of(from), x_of(to).max(x_of(from) + 2));
        let y = top + 10;
        let colour = rgb(LATENT);
        root.draw(&Rectangle::new([(a, y - 2), (b, y + 2)], colour.filled()))?;
        root.draw(&PathElement::new(vec![(a, y - 4), (a, band_bottom)], colour.stroke_width(2)))?;
        if broke {
            root.draw(&PathElement::new(vec![(b, y - 4), (b, band_bottom)], colour.stroke_width(2)))?;
        }
        let len = crate::engine::SimDuration::from_ms(to.as_ms() - from.as_ms());
        let text = match (broke, lane.kind) {
            (true, _) => format!("latent {len}"),
            (false, LaneKind::Snapshot) => format!("latent {len}, not read since"),
            (false, LaneKind::Service) => format!("latent {len}, still working"),
            (false, _) => format!("latent {len}, still running"),
        };
        let dark = rgb(0xbf360c);
        let style = bold(11).color(&dark).pos(Pos::new(HPos::Center, VPos::Bottom));
        root.draw(&Text::new(text, ((a + b) / 2, y - 3), style))?;
    }
    // Failures closer than a diamond's width apart are drawn as one: overlapping outlines
    // would hide the lane under them.
    let mut last_x: Option<i32> = None;
    for f in &lane.failures {
        let x = x_of(f.at);
        let r = 6;
        if last_x.is_some_and(|l| x - l < 2 * r) {
            continue;
        }
        last_x = Some(x);
        let diamond = vec![(x, mid - r), (x + r, mid), (x, mid + r), (x - r, mid)];
        root.draw(&Polygon::new(diamond.clone(), rgb(FAILURE).filled()))?;
        let mut outline = diamond;
        outline.push((x, mid - r));
        root.draw(&PathElement::new(outline, WHITE.stroke_width(1)))?;
    }
    // Over the diamonds, on the band's own colour: a run of failures under a label would
    // otherwise make it unreadable (their first is left visible above).
    for (text, x, width, colour, band) in labels {
        let covered = lane.failures.iter().map(|f| x_of(f.at)).any(|fx| fx + 6 > x - 2 && fx - 6 <= x + width);
        if covered {
            root.draw(&Rectangle::new([(x - 2, mid - 7), (x + width - 4, mid + 7)], rgb(band).filled()))?;
        }
        let style = font(11).color(&colour).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(text, (x, mid), style))?;
    }
    Ok(())
}

/// Counts of volumes per band over time, drawn as stacked areas.
fn draw_area<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &Area,
    top: i32,
    bottom: i32,
    x_of: &impl Fn(SimTime) -> i32,
    end: SimTime,
    l: &Layout,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let kinds = area_kinds(area);
    let series = &area.series;
    let total = area.total.max(1);
    let y_of = |n: usize| bottom - ((n as f64 / total as f64) * f64::from(bottom - top)).round() as i32;
    // A key's volumes sit indented under it, as its volume lanes do; the instances at the margin.
    let (label, indent) = if area.key.is_some() { ("volumes", 26) } else { ("instances", 12) };
    root.draw(&Text::new(
        format!("{label} ({})", area.total),
        (indent, (top + bottom) / 2),
        bold(13).pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    root.draw(&Rectangle::new([(l.x0, top), (l.x1, bottom)], rgb(0xfafafa).filled()))?;
    for (i, (t, counts)) in series.iter().enumerate() {
        let next = series.get(i + 1).map_or(end, |s| s.0);
        let (a, b) = (x_of(*t), x_of(next).max(x_of(*t) + 1));
        let mut acc = 0;
        for (k, n) in kinds.iter().zip(counts) {
            if *n == 0 {
                continue;
            }
            let (lo, hi) = (y_of(acc), y_of(acc + n));
            root.draw(&Rectangle::new([(a, hi), (b, lo)], rgb(band_colour(k)).filled()))?;
            acc += n;
        }
    }
    for n in [0, total / 2, total] {
        let grey = rgb(0x555555);
        let style = font(11).color(&grey).pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(n.to_string(), (l.x0 - 4, y_of(n)), style))?;
    }
    Ok(())
}

fn aggregate_kinds() -> [Band; 5] {
    [
        Band::Working(String::new()),
        Band::Latent(String::new()),
        Band::Idle(String::new()),
        Band::Detached,
        Band::Unusable,
    ]
}

/// What the chart counts rather than draws (nothing unless it aggregates): each key's volumes,
/// then the instances, by band kind from each instant on.
#[must_use]
pub fn areas(lanes: &Lanes) -> &[Area] {
    lanes.aggregate.as_ref().map_or(&[], |a| &a.areas)
}

/// The bands an area stacks, in its counts' order.
fn area_kinds(area: &Area) -> [Band; 5] {
    if area.key.is_some() {
        aggregate_kinds()
    } else {
        [
            Band::Instance(InstanceState::Running),
            Band::Instance(InstanceState::Pending),
            Band::Instance(InstanceState::Stopped),
            Band::Instance(InstanceState::Terminated),
            // Unused: an instance is in one of four states.
            Band::Detached,
        ]
    }
}

/// The height of each counted area: the whole [`AREA_H`] for one, shared down to 100 pixels each.
fn area_height(lanes: &Lanes) -> i32 {
    let n = areas(lanes).len() as i32;
    if n == 0 { 0 } else { (AREA_H / n).max(100) + 12 }
}

/// What the legend explains: only what this chart shows, in a fixed order.
fn legend_bands(lanes: &Lanes, aggregate_view: bool) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    let order = [
        Band::Key(KeyState::Enabled),
        Band::Key(KeyState::Disabled),
        Band::Key(KeyState::PendingImport),
        Band::Key(KeyState::PendingDeletion),
        Band::KeyDeleted,
        Band::Working(String::new()),
        Band::Latent(String::new()),
        Band::Idle(String::new()),
        Band::Detached,
        Band::Unusable,
        Band::Instance(InstanceState::Running),
        Band::Instance(InstanceState::Pending),
        Band::Instance(InstanceState::Stopped),
        Band::Instance(InstanceState::Terminated),
        Band::Kept,
        Band::KeptUnreadable,
        Band::Serving(""),
        Band::ServingLatent(""),
        Band::Down(""),
        Band::Capacity(1, 1),
        Band::Capacity(1, 2),
        Band::Capacity(0, 1),
    ];
    // In the aggregate view the instance lanes are not drawn, nor are single failures.
    let drawn = |x: &&Lane| !aggregate_view || x.kind != LaneKind::Instance;
    for b in order {
        let exact = matches!(b, Band::Key(_) | Band::Instance(_));
        let same_kind = |a: &Band| std::mem::discriminant(a) == std::mem::discriminant(&b);
        let counted = areas(lanes).iter().any(|a| {
            area_kinds(a)
                .iter()
                .position(|x| same_kind(x) && (!exact || *x == b))
                .is_some_and(|k| a.series.iter().any(|(_, n)| n[k] > 0))
        });
        let present = counted
            || lanes
                .lanes
                .iter()
                .filter(drawn)
                .flat_map(|x| &x.segments)
                .any(|s| same_kind(&s.band) && (!exact || s.band == b));
        if present {
            bands.push(b);
        }
    }
    bands
}

/// The legend's entries, each placed: (swatch, text, x, row).
fn legend_items(bands: &[Band], aggregate_view: bool, x1: i32) -> Vec<(Swatch, &str, i32, i32)> {
    let mut items: Vec<(Swatch, &str)> = bands.iter().map(|b| (Swatch::Colour(band_colour(b)), b.legend())).collect();
    if !aggregate_view {
        items.push((Swatch::Failure, "failed operation"));
        items.push((Swatch::Latent, "latent window: key gone, resource still working"));
    }
    let (mut x, mut row) = (12, 0);
    let mut placed = Vec::new();
    for (swatch, text) in items {
        let w = 7 * text.chars().count() as i32 + 34;
        if x + w > x1 && x > 12 {
            x = 12;
            row += 1;
        }
        placed.push((swatch, text, x, row));
        x += w;
    }
    placed
}

/// The legend's height: room for its rows, and at least what three take.
fn legend_height(lanes: &Lanes, aggregate_view: bool, x1: i32) -> i32 {
    let bands = legend_bands(lanes, aggregate_view);
    let rows = legend_items(&bands, aggregate_view, x1).last().map_or(0, |i| i.3 + 1);
    (rows * 22 + 14).max(80)
}

fn draw_legend<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, lanes: &Lanes, top: i32, l: &Layout) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let bands = legend_bands(lanes, l.aggregate);
    for (swatch, text, x, row) in legend_items(&bands, l.aggregate, l.x1) {
        let y = top + row * 22;
        match swatch {
            Swatch::Colour(c) => root.draw(&Rectangle::new([(x, y), (x + 16, y + 14)], rgb(c).filled()))?,
            Swatch::Failure => {
                let d = vec![(x + 8, y), (x + 15, y + 7), (x + 8, y + 14), (x + 1, y + 7)];
                root.draw(&Polygon::new(d, rgb(FAILURE).filled()))?;
            }
            Swatch::Latent => root.draw(&Rectangle::new([(x, y + 5), (x + 16, y + 9)], rgb(LATENT).filled()))?,
        }
        root.draw(&Text::new(text.to_string(), (x + 22, y + 7), font(12).pos(Pos::new(HPos::Left, VPos::Center))))?;
    }
    Ok(())
}

enum Swatch {
    Colour(u32),
    Failure,
    Latent,
}

/// Tick instants and labels in units that fit the span (at most `most` of them): minutes to
/// months, aligned to UTC.
#[must_use]
pub fn ticks(start: jiff::Timestamp, end: SimTime, most: usize) -> Vec<(SimTime, String)> {
    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    let steps = [
        (MIN, "%H:%M"),
        (5 * MIN, "%H:%M"),
        (15 * MIN, "%H:%M"),
        (30 * MIN, "%H:%M"),
        (HOUR, "%H:%M"),
        (3 * HOUR, "%b %d %H:%M"),
        (6 * HOUR, "%b %d %H:%M"),
        (12 * HOUR, "%b %d %H:%M"),
        (DAY, "%b %d"),
        (2 * DAY, "%b %d"),
        (7 * DAY, "%b %d"),
        (14 * DAY, "%b %d"),
        (30 * DAY, "%Y-%m-%d"),
        (91 * DAY, "%Y-%m-%d"),
        (365 * DAY, "%Y"),
    ];
    let span = end.as_ms().max(1);
    let (step, fmt) = steps.iter().copied().find(|(s, _)| span / s <= most as u64).unwrap_or((365 * DAY, "%Y"));
    let start_ms = start.as_millisecond();
    let step_i = i64::try_from(step).expect("small step");
    // First multiple of the step (in absolute UTC time) at or after the start.
    let first = start_ms.div_euclid(step_i) * step_i + if start_ms.rem_euclid(step_i) == 0 { 0 } else { step_i };
    let mut out = Vec::new();
    let mut t = first;
    while t - start_ms <= i64::try_from(span).expect("span fits") {
        let rel = SimTime::from_ms(u64::try_from(t - start_ms).expect("after start"));
        let label =
            jiff::Timestamp::from_millisecond(t).map_or_else(|_| rel.to_string(), |ts| ts.strftime(fmt).to_string());
        out.push((rel, label));
        t += step_i;
    }
    out
}

/// The sweep chart: the broken share over time with percentile bands, zoomed on the window
/// where resources break and marked with what the timeline does to its keys; below it, the
/// distributions of the time to first failure, the recovery time and the throttled calls over
/// the runs. As SVG and PNG.
pub mod sweep {
    use image::ImageEncoder as _;
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    use super::{bold, font, register_fonts, rgb};
    use crate::analysis::sweep::Sweep;

    const W: u32 = 1200;
    const H: u32 = 820;
    const TOP_H: u32 = 500;

    fn p(row: &[(String, u64)], name: &str) -> f64 {
        row.iter().find(|(n, _)| n == name).map_or(0.0, |x| x.1 as f64)
    }

    /// The units a time is rounded to, largest first.
    const UNITS: [f64; 5] = [86_400_000.0, 3_600_000.0, 60_000.0, 1_000.0, 1.0];

    /// `ms` rounded to a multiple of `unit`, written as a duration (`30d 2h`: zero units left out).
    fn rounded(ms: f64, unit: f64) -> crate::engine::SimDuration {
        crate::engine::SimDuration::from_ms(((ms.max(0.0) / unit).round() * unit) as u64)
    }

    /// A length of time to its two largest units, rounded to the second: `30d 6h`, `2h 30m`.
    pub(crate) fn short(ms: f64) -> String {
        // The unit below the largest one in it: two units at most.
        let largest = UNITS.iter().position(|u| ms >= *u).unwrap_or(UNITS.len() - 1);
        rounded(ms, UNITS[(largest + 1).min(UNITS.len() - 1)]).to_string()
    }

    /// Axis labels for times over a span of `span` ms: each rounded to the largest unit that
    /// still tells ticks apart (a tenth of the span: there are at most eight), then written
    /// whole (`30d 2h`, `30d 10s`).
    fn time_label(span: f64, offset: bool) -> impl Fn(&f64) -> String {
        let unit = UNITS.into_iter().find(|u| *u <= span / 10.0).unwrap_or(1.0);
        move |v: &f64| {
            let d = rounded(*v, unit);
            if offset { format!("+{d}") } else { d.to_string() }
        }
    }

    /// The part of the horizon worth showing, in ms: from a little before the first mark or
    /// break to a little after the last, or all of it when nothing happens.
    fn window(s: &Sweep) -> (f64, f64) {
        let horizon = s.horizon_ms as f64;
        let broken = |row: &[(String, u64)]| row.iter().any(|(_, v)| *v > 0);
        let active: Vec<usize> = (0..s.broken.len()).filter(|&g| broken(&s.broken[g])).collect();
        let mut ends: Vec<f64> = s.marks.iter().map(|m| m.at_ms as f64).collect();
        if let (Some(&a), Some(&b)) = (active.first(), active.last()) {
            // The grid instants either side of the breaks, where the counts were still zero.
            ends.push(s.grid_ms[a.saturating_sub(1)] as f64);
            ends.push(s.grid_ms.get(b + 1).map_or(horizon, |&t| t as f64));
        }
        let lo = ends.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return (0.0, horizon.max(1.0));
        }
        let pad = ((hi - lo) * 0.08).max(60_000.0);
        ((lo - pad).max(0.0), (hi + pad).min(horizon).max(lo + 1.0))
    }

    fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>, s: &Sweep) -> super::DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(TOP_H);
        let (lo, hi) = window(s);
        let zoomed = lo > 0.0 || hi < s.horizon_ms as f64;
        let vols = s.resources.max(1) as f64;
        let frac = |row: &[(String, u64)], n: &str| p(row, n) / vols;
        let title = format!("{}: share of resources broken over time ({} runs)", s.scenario, s.runs);
        let mut chart = ChartBuilder::on(&top)
            .caption(title, bold(18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, 0f64..1.08)?;
        let x_desc = if zoomed {
            format!(
                "time from the start (shown: +{} to +{} of a {} horizon)",
                short(lo),
                short(hi),
                short(s.horizon_ms as f64)
            )
        } else {
            "time from the start".to_string()
        };
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("broken")
            .x_labels(8)
            .x_label_formatter(&time_label(hi - lo, true))
            .y_labels(6)
            .y_label_formatter(&|v| if *v <= 1.0 + 1e-9 { format!("{:.0}%", v * 100.0) } else { String::new() })
            .label_style(font(12))
            .axis_desc_style(font(13))
            .draw()?;
        // The grid instants inside the window, and one either side so that lines reach its edges
        // (clamped to them).
        let inside: Vec<usize> = (0..s.grid_ms.len())
            .filter(|&g| {
                let t = s.grid_ms[g] as f64;
                let next = s.grid_ms.get(g + 1).map_or(f64::INFINITY, |&n| n as f64);
                let prev = g.checked_sub(1).map_or(f64::NEG_INFINITY, |q| s.grid_ms[q] as f64);
                (lo..=hi).contains(&t) || (t < lo && next >= lo) || (t > hi && prev <= hi)
            })
            .collect();
        let at = |g: usize| (s.grid_ms[g] as f64).clamp(lo, hi);
        let band = |low: &str, high: &str| -> Vec<(f64, f64)> {
            let upper = inside.iter().map(|&g| (at(g), frac(&s.broken[g], high)));
            let lower: Vec<(f64, f64)> = inside.iter().map(|&g| (at(g), frac(&s.broken[g], low))).collect();
            upper.chain(lower.into_iter().rev()).collect()
        };
        chart
            .draw_series(std::iter::once(Polygon::new(band("p5", "p95"), rgb(0xffcdd2).filled())))?
            .label("p5 to p95 of the runs")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], rgb(0xffcdd2).filled()));
        chart
            .draw_series(std::iter::once(Polygon::new(band("p25", "p75"), rgb(0xef9a9a).filled())))?
            .label("p25 to p75")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], rgb(0xef9a9a).filled()));
        chart
            .draw_series(LineSeries::new(
                inside.iter().map(|&g| (at(g), frac(&s.broken[g], "p50"))),
                rgb(0xb71c1c).stroke_width(2),
            ))?
            .label("median")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], rgb(0xb71c1c).stroke_width(2)));
        // What the timeline does to its keys: a dashed line each, labelled in rows near the top
        // so that neighbours do not overwrite each other.
        let marks: Vec<_> = s.marks.iter().filter(|m| (lo..=hi).contains(&(m.at_ms as f64))).collect();
        for (i, m) in marks.iter().enumerate() {
            let x = m.at_ms as f64;
            chart.draw_series(DashedLineSeries::new(vec![(x, 0.0), (x, 1.08)], 6, 4, rgb(0x37474f).stroke_width(1)))?;
            let y = 1.06 - 0.05 * (i % 3) as f64;
            // Beside the line, on the side with room: right of it in the window's left part.
            let (label, pos) = if x < (lo + hi) / 2.0 {
                (format!(" {} (+{})", m.what, short(x)), HPos::Left)
            } else {
                (format!("{} (+{}) ", m.what, short(x)), HPos::Right)
            };
            let style = font(12).pos(Pos::new(pos, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(label, (x, y), style)))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .label_font(font(12))
            .draw()?;

        let columns = bottom.split_evenly((1, 3));
        let runs = s.runs;
        let firsts: Vec<u64> = s.per_run.iter().filter_map(|r| r.first_failure_ms).collect();
        let caption = format!("time to first failure ({} of {runs} runs)", firsts.len());
        histogram(&columns[0], &caption, "from the start", &firsts, Axis::Time { offset: true })?;
        let recoveries: Vec<u64> = s.per_run.iter().filter_map(|r| r.recovery_ms).collect();
        let caption = format!("recovery time ({} of {runs} runs)", recoveries.len());
        let x_desc = "from the key usable again to the last resource back";
        histogram(&columns[1], &caption, x_desc, &recoveries, Axis::Time { offset: false })?;
        let throttled: Vec<u64> = s.per_run.iter().map(|r| r.throttled).collect();
        let caption = format!("throttled calls ({runs} runs)");
        histogram(&columns[2], &caption, "calls KMS throttled in a run", &throttled, Axis::Count)?;
        Ok(())
    }

    /// What a histogram counts along its x axis.
    #[derive(Clone, Copy)]
    enum Axis {
        /// Milliseconds: an offset from the start, or a length of time.
        Time { offset: bool },
        /// Whole things: bins of one when the values are close, and labels only at whole numbers.
        Count,
    }

    /// A histogram of `values` over the runs, its counts whole runs, in 20 even bins (counts
    /// that are few and close: a bin each, centred on its number).
    fn histogram<DB: DrawingBackend>(
        area: &DrawingArea<DB, plotters::coord::Shift>,
        caption: &str,
        x_desc: &str,
        values: &[u64],
        axis: Axis,
    ) -> super::DrawResult
    where
        DB::ErrorType: 'static,
    {
        let first = values.iter().copied().min().unwrap_or(0) as f64;
        let last = values.iter().copied().max().unwrap_or(0) as f64;
        let whole = matches!(axis, Axis::Count) && last - first < 20.0;
        let (lo, bins, width) = if whole {
            (first - 0.5, (last - first) as usize + 1, 1.0)
        } else {
            // A few seconds' room when every run has the same time.
            let span = (last - first).max(1_000.0);
            (first, 20, span / 20.0)
        };
        let hi = lo + width * bins as f64;
        let mut counts = vec![0u32; bins];
        for &v in values {
            counts[(((v as f64 - lo) / width) as usize).min(bins - 1)] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut hist = ChartBuilder::on(area)
            .caption(caption, bold(14))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(40)
            .build_cartesian_2d(lo..hi, 0f64..f64::from(max) * 1.1)?;
        let time = time_label(hi - lo, matches!(axis, Axis::Time { offset: true }));
        let label = |v: &f64| match axis {
            Axis::Time { .. } => time(v),
            Axis::Count if (v - v.round()).abs() < 1e-9 => format!("{v:.0}"),
            Axis::Count => String::new(),
        };
        hist.configure_mesh()
            .x_desc(x_desc)
            .y_desc("runs")
            .x_labels(if whole { bins + 1 } else { 4 })
            .x_label_formatter(&label)
            .y_labels((max as usize + 1).min(11))
            .y_label_formatter(&|v| if (v - v.round()).abs() < 1e-9 { format!("{v:.0}") } else { String::new() })
            .disable_x_mesh()
            .label_style(font(11))
            .axis_desc_style(font(12))
            .draw()?;
        if values.is_empty() {
            let style = font(13).pos(Pos::new(HPos::Center, VPos::Center));
            hist.draw_series(std::iter::once(Text::new("none", ((lo + hi) / 2.0, f64::from(max) * 0.55), style)))?;
        }
        hist.draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| {
            let x0 = lo + width * (i as f64 + 0.05);
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, f64::from(*c))], rgb(0xe57373).filled())
        }))?;
        Ok(())
    }

    /// The chart as SVG text.
    #[must_use]
    pub fn svg(s: &Sweep) -> String {
        register_fonts();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
            draw(&root, s).expect("drawing to a string cannot fail");
            root.present().expect("drawing to a string cannot fail");
        }
        out
    }

    /// The chart as PNG bytes.
    #[must_use]
    pub fn png(s: &Sweep) -> Vec<u8> {
        register_fonts();
        let mut buf = vec![0u8; (W * H * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
            draw(&root, s).expect("drawing to memory cannot fail");
            root.present().expect("drawing to memory cannot fail");
        }
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&buf, W, H, image::ColorType::Rgb8)
            .expect("encoding a PNG in memory cannot fail");
        png
    }
}
