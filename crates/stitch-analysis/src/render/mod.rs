//! Text rendering: a trace as a terminal waterfall.
//!
//! ```text
//! Trace 0af7651916cd43dd8448eb211c80319c · 2.40s · 8 spans · 7 services
//!                                   0       500ms   1s      1.5s    2s
//!                                   ┌───────┬───────┬───────┬───────┬─────┐
//! API Gateway api-gateway           ███████████████████████████████████████  2.40s
//! ├─ Auth auth                      █                                       45.0ms
//! ├─ Cart cart                       ███                                     180ms
//! │  └─ DB postgres                  ██▌                                     150ms
//! ├─ Payment payment                    █████████████████████████████        1.80s
//! │  ├─ Fraud Check fraud               ███████████████████▌                 1.20s
//! │  └─ Payment Gateway API payment                        ▐█████████        580ms
//! └─ Inventory inventory                                             █████▌  320ms
//! ```
//!
//! One line per span in tree pre-order. The left column is the span tree (box-drawing
//! connectors, span name, service); the middle is a bar area that spans the whole trace, with
//! each span's bar placed at its start offset and scaled to its duration (half-cell precision,
//! never less than one cell so instant spans stay visible); the right column is the duration.
//!
//! Width contract: no line is wider than [`WaterfallOptions::width`] terminal columns. Widths
//! are counted per character: everything the renderer emits itself (box drawing, blocks,
//! markers) is one column; in span and service names, East Asian wide characters and emoji
//! count two, and control characters are replaced so a span name cannot inject escapes.
//! With `color: false` no ANSI escape is emitted.

use std::collections::HashMap;

use stitch_model::Trace;

use crate::analysis::TraceAnalysis;
use crate::findings::FindingKind;
use crate::tree::{NodeId, ParentLink, SpanTree};

mod findings;
#[cfg(test)]
mod tests;

pub use findings::{finding_kind_label, findings_text};

/// Marks a span whose status is error.
pub const ERROR_MARK: char = '✗';
/// Marks an orphan: a span whose parent is not in the trace.
pub const ORPHAN_MARK: char = '?';
/// Marks a span whose parent link was cut (it named itself, or its parent chain was a cycle).
pub const CUT_MARK: char = '↺';

/// How to lay out a waterfall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaterfallOptions {
    /// Total width in terminal columns. No line of the output is wider.
    pub width: usize,
    /// Emit ANSI colour (bars coloured by service, errors in red).
    pub color: bool,
    /// Upper bound on the left column (tree, span name, service), in columns. `None` lets the
    /// column take what it needs up to 45% of `width`.
    pub max_name_width: Option<usize>,
    /// Highlight the critical path: the parts of each bar on the critical path are drawn
    /// solid (`█`), the rest shaded (`░`, dimmed with colour), and a legend says so. The path
    /// is computed on the times drawn; to draw clock-skew-adjusted times, render the trace
    /// returned by [`crate::adjust_clock_skew`].
    pub critical_path: bool,
}

impl Default for WaterfallOptions {
    fn default() -> Self {
        WaterfallOptions {
            width: 80,
            color: false,
            max_name_width: None,
            critical_path: false,
        }
    }
}

/// Renders `trace` as a waterfall: a header (trace id, duration, span and service counts,
/// anomaly counts; wrapped onto a second line when narrow), a time axis, one line per span in
/// tree pre-order, and a legend when markers were used. Every line ends with `\n`.
pub fn waterfall(trace: &Trace, opts: &WaterfallOptions) -> String {
    waterfall_tree(&SpanTree::build(trace), opts)
}

/// Human duration with three significant digits: `850ns`, `1.25µs`, `850µs`, `12.3ms`,
/// `1.95s`, `59.9s`, then `2m03s` and `1h02m`.
pub fn format_duration(nanos: u64) -> String {
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    for (unit, suffix) in [(1_000u64, "µs"), (1_000_000, "ms"), (1_000_000_000, "s")] {
        // Two decimals below 10, one below 100, none below 1000 (of the unit).
        for decimals in [2u32, 1, 0] {
            let pow = 10u128.pow(decimals);
            let unit = unit as u128;
            let scaled = (nanos as u128 * pow + unit / 2) / unit;
            let limit = if suffix == "s" { 60 * pow } else { 1000 };
            if scaled < limit.min(1000) {
                let int = scaled / pow;
                let frac = scaled % pow;
                return if decimals == 0 {
                    format!("{int}{suffix}")
                } else {
                    format!("{int}.{frac:0width$}{suffix}", width = decimals as usize)
                };
            }
        }
    }
    let secs = (nanos as u128 + 500_000_000) / 1_000_000_000;
    if secs < 3600 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    let mins = (nanos as u128 + 30_000_000_000) / 60_000_000_000;
    format!("{}h{:02}m", mins / 60, mins % 60)
}

/// Renders an already built tree; see [`waterfall`].
pub fn waterfall_tree(tree: &SpanTree<'_>, opts: &WaterfallOptions) -> String {
    let width = opts.width;
    let rows = rows(tree);
    let (t0, total) = tree.time_range().map_or((0, 0), |(s, e)| (s, e - s));

    let mut services: HashMap<&str, usize> = HashMap::new();
    for row in &rows {
        let next = services.len();
        services.entry(row.service_raw).or_insert(next);
    }

    let mut out = String::new();
    let mut emit = |line: Line| {
        out.push_str(&line.finish());
        out.push('\n');
    };

    // Header: trace id and counts, wrapped at " · " boundaries when the width is short.
    let mut parts = vec![
        format!("Trace {}", tree.trace().trace_id),
        format_duration(total),
        plural(tree.len(), "span", "spans"),
        plural(services.len(), "service", "services"),
    ];
    let errors = rows.iter().filter(|r| r.error).count();
    let orphans = tree.orphans().count();
    let cut = rows.iter().filter(|r| r.cut).count();
    for (n, one, many) in [
        (errors, "error", "errors"),
        (orphans, "orphan", "orphans"),
        (
            tree.duplicate_count(),
            "duplicate dropped",
            "duplicates dropped",
        ),
        (cut, "parent link cut", "parent links cut"),
    ] {
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    for text in wrap_parts(&parts, " · ", width) {
        let mut line = Line::new(width, opts.color);
        line.push(&ellipsize(&text, width), Style::Bold);
        emit(line);
    }
    if rows.is_empty() {
        let mut line = Line::new(width, opts.color);
        line.push(&ellipsize("(no spans)", width), Style::Dim);
        emit(line);
        return out;
    }

    // Column layout: label │ gap │ bars │ gap │ duration.
    let dur_w = rows
        .iter()
        .map(|r| text_width(&r.duration))
        .max()
        .unwrap_or(0)
        .max(5);
    let avail = width.saturating_sub(dur_w + 2);
    let natural = rows.iter().map(Row::natural_width).max().unwrap_or(0);
    let cap = opts
        .max_name_width
        .unwrap_or_else(|| (width * 9 / 20).max(16));
    let min_bar = 10.min(avail / 2);
    let label_w = natural.min(cap).min(avail - min_bar);
    let bar_w = avail - label_w;
    let bar_col = label_w + 1;
    let dur_col = bar_col + bar_w + 1;

    // Time axis: tick labels, then a ruler over the bar area.
    if bar_w > 0 {
        let ticks = ticks(total, bar_w);
        let mut labels = Line::new(width, opts.color);
        let mut free = 0;
        for &(cell, t) in &ticks {
            let text = axis_label(t);
            let end = bar_col + cell + text.chars().count();
            if cell >= free && end <= width {
                labels.pad_to(bar_col + cell);
                labels.push(&text, Style::Dim);
                free = cell + text.chars().count() + 1;
            }
        }
        emit(labels);
        let mut ruler: Vec<char> = vec!['─'; bar_w];
        for &(cell, _) in &ticks {
            ruler[cell] = '┬';
        }
        ruler[0] = '┌';
        if bar_w > 1 {
            ruler[bar_w - 1] = '┐';
        }
        let mut line = Line::new(width, opts.color);
        line.pad_to(bar_col);
        line.push(&ruler.into_iter().collect::<String>(), Style::Dim);
        emit(line);
    }

    // Critical-path sections per span, when highlighted.
    let critical = opts
        .critical_path
        .then(|| crate::critical_path::critical_path(tree).sections_by_span());

    // One line per span.
    for row in &rows {
        let mut line = Line::new(width, opts.color);
        let service_style = Style::Fg(PALETTE[services[row.service_raw] % PALETTE.len()]);
        row.push_label(&mut line, label_w, service_style);
        if bar_w > 0 {
            let (first, glyphs) = bar(row.start - t0, row.end - row.start, total, bar_w);
            line.pad_to(bar_col + first);
            let style = if row.error { Style::Red } else { service_style };
            match &critical {
                None => line.push(&glyphs, style),
                Some(map) => {
                    let sections: Vec<(u64, u64)> = map
                        .get(&row.span_id)
                        .map(|v| v.iter().map(|&(a, b)| (a - t0, b - t0)).collect())
                        .unwrap_or_default();
                    let span = (row.start - t0, row.end - t0);
                    for (text, on_path) in
                        critical_segments(&glyphs, first, span, &sections, total, bar_w)
                    {
                        line.push(&text, if on_path { style } else { Style::Dim });
                    }
                }
            }
        }
        line.pad_to(dur_col + dur_w - text_width(&row.duration));
        let style = if row.error { Style::Red } else { Style::Plain };
        line.push(&row.duration, style);
        emit(line);
    }

    // Legend for the markers in use.
    let mut legend = Vec::new();
    if errors > 0 {
        legend.push(format!("{ERROR_MARK} error"));
    }
    if orphans > 0 {
        legend.push(format!("{ORPHAN_MARK} parent not in trace"));
    }
    if cut > 0 {
        legend.push(format!("{CUT_MARK} parent link cut (cycle)"));
    }
    if opts.critical_path {
        legend.push(format!("█ critical path   {OFF_PATH} off it"));
    }
    if !legend.is_empty() {
        let mut line = Line::new(width, opts.color);
        line.push(&ellipsize(&legend.join("   "), width), Style::Dim);
        emit(line);
    }
    out
}

/// Joins `parts` with `sep` into as few lines of at most `width` columns as it can; a part
/// longer than `width` gets a line of its own.
fn wrap_parts(parts: &[String], sep: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for part in parts {
        if current.is_empty() {
            current = part.clone();
        } else if text_width(&current) + text_width(sep) + text_width(part) <= width {
            current.push_str(sep);
            current.push_str(part);
        } else {
            lines.push(std::mem::replace(&mut current, part.clone()));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Foreground colours for services; red is kept for errors.
const PALETTE: [u8; 10] = [36, 32, 33, 34, 35, 96, 92, 93, 94, 95];

/// One span line before layout.
struct Row<'a> {
    span_id: stitch_model::SpanId,
    prefix: String,
    marks: Vec<(char, Style)>,
    name: String,
    service: String,
    service_raw: &'a str,
    start: u64,
    end: u64,
    error: bool,
    cut: bool,
    duration: String,
}

impl Row<'_> {
    fn natural_width(&self) -> usize {
        self.prefix.chars().count()
            + 2 * self.marks.len()
            + text_width(&self.name)
            + 1
            + text_width(&self.service)
    }

    /// Writes the tree prefix, markers, name and service into at most `label_w` columns.
    fn push_label(&self, line: &mut Line, label_w: usize, service_style: Style) {
        let base = line.col();
        // Deep trees: keep the innermost connectors and elide the rest.
        let max_prefix = label_w / 2;
        let prefix_len = self.prefix.chars().count();
        let prefix: String = if prefix_len <= max_prefix {
            self.prefix.clone()
        } else if max_prefix == 0 {
            String::new()
        } else {
            let tail: String = self
                .prefix
                .chars()
                .skip(prefix_len - (max_prefix - 1))
                .collect();
            format!("…{tail}")
        };
        line.push(&prefix, Style::Dim);
        let mut rest = label_w.saturating_sub(prefix.chars().count());
        for &(mark, style) in &self.marks {
            if rest < 2 {
                break;
            }
            line.push(&mark.to_string(), style);
            line.space(1);
            rest -= 2;
        }
        let (name, service) = split_label(&self.name, &self.service, rest);
        line.push(&name, Style::Plain);
        if !service.is_empty() {
            line.space(1);
            line.push(&service, service_style);
        }
        debug_assert!(line.col() <= base + label_w);
    }
}

/// Fits `name` and `service` (separated by a space) into `room` columns, shortening the
/// service first down to a third of the room, then the name. In fewer than 24 columns the
/// service is shown whole or not at all.
fn split_label(name: &str, service: &str, room: usize) -> (String, String) {
    let (nw, sw) = (text_width(name), text_width(service));
    if nw + 1 + sw <= room {
        return (name.to_owned(), service.to_owned());
    }
    let mut service_room = sw.min((room / 3).max(6));
    if room < 12 || (room < 24 && service_room < sw) {
        // Too narrow for both to be legible: the name wins (with colour, the bar still shows
        // the service).
        return (ellipsize(name, room), String::new());
    }
    let mut name_room = room - 1 - service_room;
    if nw < name_room {
        name_room = nw;
        service_room = room - 1 - nw;
    }
    (ellipsize(name, name_room), ellipsize(service, service_room))
}

/// The rows of the waterfall in pre-order, with their tree prefixes.
fn rows<'a>(tree: &SpanTree<'a>) -> Vec<Row<'a>> {
    let mut rows = Vec::with_capacity(tree.len());
    // (node, its own prefix, the prefix its children continue from)
    let mut stack: Vec<(NodeId, String, String)> = tree
        .roots()
        .iter()
        .rev()
        .map(|&r| (r, String::new(), String::new()))
        .collect();
    while let Some((id, prefix, continued)) = stack.pop() {
        let node = tree.node(id);
        let children = node.children();
        for (i, &child) in children.iter().enumerate().rev() {
            let last = i + 1 == children.len();
            let own = format!("{continued}{}", if last { "└─ " } else { "├─ " });
            let next = format!("{continued}{}", if last { "   " } else { "│  " });
            stack.push((child, own, next));
        }
        let span = node.span();
        let mut marks = Vec::new();
        if span.is_error() {
            marks.push((ERROR_MARK, Style::BoldRed));
        }
        let cut = matches!(
            node.parent_link(),
            ParentLink::SelfParent | ParentLink::CycleBroken(_)
        );
        if node.is_orphan() {
            marks.push((ORPHAN_MARK, Style::Yellow));
        }
        if cut {
            marks.push((CUT_MARK, Style::Yellow));
        }
        rows.push(Row {
            span_id: span.span_id,
            prefix,
            marks,
            name: sanitize(&span.name),
            service: sanitize(node.service_name()),
            service_raw: node.service_name(),
            start: node.start(),
            end: node.end(),
            error: span.is_error(),
            cut,
            duration: format_duration(node.end() - node.start()),
        });
    }
    rows
}

/// The bar of a span at `offset` for `len` nanoseconds in a trace of `total` nanoseconds drawn
/// over `cells` cells: the first cell and the glyphs from there. Positions are computed in
/// half cells and rounded; a bar is never less than one cell.
fn bar(offset: u64, len: u64, total: u64, cells: usize) -> (usize, String) {
    let halves = 2 * cells as u128;
    let scale = |t: u64| -> u128 {
        if total == 0 {
            0
        } else {
            ((t as u128 * halves + total as u128 / 2) / total as u128).min(halves)
        }
    };
    let (mut a, mut b) = (scale(offset), scale(offset.saturating_add(len)));
    if b < a + 2 {
        a = (a / 2).min(cells as u128 - 1) * 2;
        b = a + 2;
    }
    let (first, last) = (a / 2, (b - 1) / 2);
    let glyphs = (first..=last)
        .map(|c| {
            let left = 2 * c >= a && 2 * c < b;
            let right = 2 * c + 1 >= a && 2 * c + 1 < b;
            match (left, right) {
                (true, true) => '█',
                (true, false) => '▌',
                (false, true) => '▐',
                (false, false) => ' ',
            }
        })
        .collect();
    (first as usize, glyphs)
}

/// Tick positions `(cell, time offset)` for an axis of `total` nanoseconds over `cells`
/// cells: the smallest round step that puts ticks at least [`TICK_GAP`] cells apart.
fn ticks(total: u64, cells: usize) -> Vec<(usize, u64)> {
    if total == 0 || cells == 0 {
        return vec![(0, 0)];
    }
    let raw = (total as u128 * TICK_GAP as u128).div_ceil(cells as u128);
    let step = nice_step(u64::try_from(raw).unwrap_or(u64::MAX));
    let mut out = Vec::new();
    let mut t = 0u64;
    while t <= total {
        let cell = ((t as u128 * cells as u128) / total as u128).min(cells as u128 - 1);
        out.push((cell as usize, t));
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    out
}

/// Minimum distance between ticks, in cells: room for a label such as `12.5ms` and a space.
const TICK_GAP: usize = 7;

/// The smallest round step of at least `raw` nanoseconds: 1, 2 or 5 × 10ⁿ up to ten
/// seconds, then whole minutes and hours.
fn nice_step(raw: u64) -> u64 {
    const S: u64 = 1_000_000_000;
    let mut p: u64 = 1;
    while p <= S {
        for m in [1, 2, 5] {
            if m * p >= raw {
                return m * p;
            }
        }
        p *= 10;
    }
    for s in [15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600] {
        if s * S >= raw {
            return s * S;
        }
    }
    let hour = 3600 * S;
    let mut h: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            match (m * h).checked_mul(hour) {
                Some(step) if step >= raw => return step,
                Some(_) => {}
                None => return raw,
            }
        }
        h *= 10;
    }
}

/// An axis label: `0`, or the duration without trailing zero decimals (`1.5s`, `2s`).
fn axis_label(t: u64) -> String {
    if t == 0 {
        return "0".to_owned();
    }
    let text = format_duration(t);
    let Some(dot) = text.find('.') else {
        return text;
    };
    let digits_end = text[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(text.len(), |i| dot + 1 + i);
    let decimals = text[dot + 1..digits_end].trim_end_matches('0');
    let int = &text[..dot];
    let unit = &text[digits_end..];
    if decimals.is_empty() {
        format!("{int}{unit}")
    } else {
        format!("{int}.{decimals}{unit}")
    }
}

/// Terminal columns of `c` as this renderer counts them: 2 for East Asian wide characters and
/// emoji, 1 otherwise.
fn char_width(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

fn text_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Replaces characters that would let a span name move the cursor, change colours or reorder
/// text: control characters and bidirectional overrides.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => '?',
            c => c,
        })
        .collect()
}

/// `s` cut to at most `max` columns, ending in `…` when cut.
fn ellipsize(s: &str, max: usize) -> String {
    if text_width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Plain,
    Bold,
    Dim,
    Red,
    BoldRed,
    Yellow,
    Fg(u8),
}

impl Style {
    fn sgr(self) -> Option<String> {
        Some(match self {
            Style::Plain => return None,
            Style::Bold => "1".to_owned(),
            Style::Dim => "2".to_owned(),
            Style::Red => "31".to_owned(),
            Style::BoldRed => "1;31".to_owned(),
            Style::Yellow => "33".to_owned(),
            Style::Fg(n) => n.to_string(),
        })
    }
}

/// A line that never grows past `max` columns. Spaces are kept pending and only written
/// before visible text, so lines carry no trailing blanks.
struct Line {
    out: String,
    used: usize,
    pending: usize,
    max: usize,
    color: bool,
}

impl Line {
    fn new(max: usize, color: bool) -> Line {
        Line {
            out: String::new(),
            used: 0,
            pending: 0,
            max,
            color,
        }
    }

    /// The column the next character would go to.
    fn col(&self) -> usize {
        self.used + self.pending
    }

    fn space(&mut self, n: usize) {
        self.pending += n;
    }

    /// Moves to column `col` if not already past it.
    fn pad_to(&mut self, col: usize) {
        if col > self.col() {
            self.pending = col - self.used;
        }
    }

    /// Appends `text` in `style`, cut at the line's width.
    fn push(&mut self, text: &str, style: Style) {
        if text.is_empty() || self.used + self.pending >= self.max {
            return;
        }
        let mut room = self.max - self.used - self.pending;
        let mut visible = String::new();
        for c in text.chars() {
            let w = char_width(c);
            if w > room {
                break;
            }
            visible.push(c);
            room -= w;
        }
        if visible.is_empty() {
            return;
        }
        self.out.extend(std::iter::repeat_n(' ', self.pending));
        self.used += self.pending + text_width(&visible);
        self.pending = 0;
        match style.sgr().filter(|_| self.color) {
            Some(code) => {
                self.out.push_str("\x1b[");
                self.out.push_str(&code);
                self.out.push('m');
                self.out.push_str(&visible);
                self.out.push_str("\x1b[0m");
            }
            None => self.out.push_str(&visible),
        }
    }

    fn finish(self) -> String {
        self.out
    }
}

/// Glyph of the parts of a bar that are off the critical path.
pub const OFF_PATH: char = '░';

/// Splits a bar (as drawn by [`bar`], starting at cell `first`) into runs of cells on and off
/// the critical path. A cell is on it when critical sections cover at least half of the part
/// of the cell the span covers (a span too short to cover any is on it if it has a section).
/// Times are offsets from the trace start.
fn critical_segments(
    glyphs: &str,
    first: usize,
    span: (u64, u64),
    sections: &[(u64, u64)],
    total: u64,
    cells: usize,
) -> Vec<(String, bool)> {
    let overlap = |a: (u64, u64), b: (u64, u64)| a.1.min(b.1).saturating_sub(a.0.max(b.0));
    let mut out: Vec<(String, bool)> = Vec::new();
    for (k, glyph) in glyphs.chars().enumerate() {
        let c = (first + k) as u128;
        let at = |c: u128| (c * total as u128 / cells.max(1) as u128) as u64;
        let cell = (at(c), at(c + 1));
        let covered = overlap(cell, span);
        let on = if covered == 0 {
            !sections.is_empty()
        } else {
            let part = (cell.0.max(span.0), cell.1.min(span.1));
            let critical: u64 = sections.iter().map(|&s| overlap(part, s)).sum();
            critical * 2 >= covered
        };
        let shown = if on || glyph == ' ' { glyph } else { OFF_PATH };
        match out.last_mut() {
            Some((text, flag)) if *flag == on => text.push(shown),
            _ => out.push((shown.to_string(), on)),
        }
    }
    out
}
