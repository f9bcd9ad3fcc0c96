mod common;

use common::{MS, T0, TraceBuilder, checkout};
use stitch_analysis::{WaterfallOptions, format_duration, waterfall};
use stitch_model::Trace;

fn plain(width: usize) -> WaterfallOptions {
    WaterfallOptions {
        width,
        color: false,
        ..Default::default()
    }
}

fn colored(width: usize) -> WaterfallOptions {
    WaterfallOptions {
        width,
        color: true,
        ..Default::default()
    }
}

/// Removes `ESC [ ... m` sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Display columns of a line: every character the tests use is one column.
fn columns(line: &str) -> usize {
    strip_ansi(line).chars().count()
}

fn is_block(c: char) -> bool {
    matches!(c, '█' | '▌' | '▐')
}

/// The bar of a span line in half cells from the start of the line: `[start, end)`.
fn bar_halves(line: &str) -> (usize, usize) {
    let chars: Vec<char> = strip_ansi(line).chars().collect();
    let first = chars
        .iter()
        .position(|&c| is_block(c))
        .expect("line has a bar");
    let last = chars.iter().rposition(|&c| is_block(c)).unwrap();
    let start = 2 * first + usize::from(chars[first] == '▐');
    let end = 2 * last + 2 - usize::from(chars[last] == '▌');
    (start, end)
}

/// Lines that carry a bar, i.e. span lines.
fn span_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.chars().any(is_block)).collect()
}

/// The header lines (everything before the tick labels) joined with " · ".
fn header(out: &str) -> String {
    out.lines()
        .take_while(|l| !l.starts_with(' '))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn assert_fits(out: &str, width: usize) {
    for line in out.lines() {
        assert!(
            columns(line) <= width,
            "line of {} columns at width {width}:\n{line}\nin\n{out}",
            columns(line)
        );
    }
}

/// A trace that is hard to fit: long names, long service names, a deep chain.
fn unwieldy() -> Trace {
    let mut b = TraceBuilder::new().ms(
        "a-service-with-an-exceedingly-long-name-indeed",
        1,
        None,
        "HTTP POST /api/v2/organisations/{org}/projects/{project}/pipelines/{id}/run",
        0,
        60_000,
    );
    for depth in 2..=14u64 {
        b = b.ms(
            &format!("svc-{depth}"),
            depth,
            Some(depth - 1),
            &format!("nested operation number {depth} with a long description"),
            depth * 100,
            60_000 - depth * 100,
        );
    }
    b.ms("x", 99, Some(42), "orphan", 10, 10).error().build()
}

#[test]
fn the_seed_checkout_trace_renders_as_an_indented_tree_with_proportional_bars() {
    let out = waterfall(&checkout(), &plain(80));
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Trace 0af7651916cd43dd8448eb211c80319c · 2.40s · 8 spans · 7 services"
    );
    assert!(
        lines[1].trim_start().starts_with("0 "),
        "tick labels: {}",
        lines[1]
    );
    assert!(lines[2].trim_start().starts_with('┌') && lines[2].ends_with('┐'));
    let spans = &lines[3..];
    assert_eq!(spans.len(), 8, "one line per span and nothing after");
    let expected = [
        ("API Gateway api-gateway", "2.40s", 0, 2400),
        ("├─ Auth auth", "45.0ms", 5, 50),
        ("├─ Cart cart", "180ms", 55, 235),
        ("│  └─ DB postgres", "150ms", 70, 220),
        ("├─ Payment payment", "1.80s", 240, 2040),
        ("│  ├─ Fraud Check fraud", "1.20s", 250, 1450),
        ("│  └─ Payment Gateway API payment", "580ms", 1455, 2035),
        ("└─ Inventory inventory", "320ms", 2045, 2365),
    ];
    // The root covers the whole bar area, so its bar gives the area's position and size.
    let (area_start, area_end) = bar_halves(spans[0]);
    let area = (area_end - area_start) as f64;
    let ruler_start = 2 * lines[2].chars().position(|c| c == '┌').unwrap();
    assert_eq!(area_start, ruler_start, "the ruler sits over the bar area");
    for (line, (label, duration, start, end)) in spans.iter().zip(expected) {
        assert!(
            line.starts_with(label),
            "{line:?} should start with {label:?}"
        );
        assert!(
            line.ends_with(&format!(" {duration}")),
            "{line:?} should end with {duration}"
        );
        assert_eq!(columns(line), 80, "span lines fill the width: {line:?}");
        let (s, e) = bar_halves(line);
        let want_s = area_start as f64 + area * start as f64 / 2400.0;
        let want_e = area_start as f64 + area * end as f64 / 2400.0;
        assert!(
            (s as f64 - want_s).abs() <= 1.0,
            "{label}: bar starts at half {s}, want {want_s}"
        );
        assert!(
            (e as f64 - want_e).abs() <= 1.0,
            "{label}: bar ends at half {e}, want {want_e}"
        );
    }
}

#[test]
fn no_line_exceeds_the_width_at_80_and_200_columns() {
    for trace in [checkout(), unwieldy()] {
        for width in [80, 200] {
            let out = waterfall(&trace, &plain(width));
            assert_fits(&out, width);
            let out = waterfall(&trace, &colored(width));
            assert_fits(&out, width);
        }
    }
}

#[test]
fn no_line_exceeds_the_width_at_any_width_even_absurdly_small_ones() {
    for trace in [checkout(), unwieldy(), Trace::default()] {
        for width in 0..=220 {
            assert_fits(&waterfall(&trace, &plain(width)), width);
            assert_fits(&waterfall(&trace, &colored(width)), width);
        }
    }
}

#[test]
fn the_name_column_respects_max_name_width() {
    let opts = WaterfallOptions {
        width: 120,
        max_name_width: Some(20),
        ..Default::default()
    };
    let out = waterfall(&unwieldy(), &opts);
    for line in span_lines(&out) {
        let first_block = line.chars().position(is_block).unwrap();
        assert!(
            first_block > 20,
            "bars start after the 20-column name column: {line}"
        );
        let label: String = line.chars().take(20).collect();
        assert!(!label.trim_end().is_empty());
    }
    let root = span_lines(&out)[0];
    assert!(root.starts_with("HTTP POST /api/v2/o…"), "{root}");
}

#[test]
fn at_200_columns_long_names_have_room_and_bars_get_wider() {
    let narrow = waterfall(&checkout(), &plain(80));
    let wide = waterfall(&checkout(), &plain(200));
    let width_of_root = |out: &str| {
        let (s, e) = bar_halves(span_lines(out)[0]);
        e - s
    };
    assert!(width_of_root(&wide) > 2 * width_of_root(&narrow));
    assert!(wide.contains("│  └─ Payment Gateway API payment "));
    for line in span_lines(&wide) {
        assert_eq!(columns(line), 200);
    }
}

#[test]
fn a_child_covering_the_second_half_of_the_root_starts_in_the_middle_of_the_bar_area() {
    let trace = TraceBuilder::new()
        .ms("front", 1, None, "root", 0, 1000)
        .ms("back", 2, Some(1), "second half", 500, 1000)
        .ms("back", 3, Some(1), "first quarter", 0, 250)
        .build();
    for width in [80, 200] {
        let out = waterfall(&trace, &plain(width));
        let lines = span_lines(&out);
        let (area_start, area_end) = bar_halves(lines[0]);
        let cells = (area_end - area_start) / 2;
        let quarter = lines.iter().find(|l| l.contains("first quarter")).unwrap();
        let half = lines.iter().find(|l| l.contains("second half")).unwrap();
        let (s, e) = bar_halves(half);
        let middle_cell = (area_start / 2 + cells / 2) as isize;
        assert!(((s / 2) as isize - middle_cell).abs() <= 1, "{half}");
        assert_eq!(e, area_end, "the child ends where the root ends");
        let (s, e) = bar_halves(quarter);
        assert_eq!(s, area_start);
        assert!(
            ((e - s) as isize - (cells / 2) as isize).abs() <= 1,
            "{quarter}"
        );
    }
}

#[test]
fn instant_spans_still_get_a_one_cell_bar() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 1000)
        .ns("a", 2, Some(1), "instant", T0 + 400 * MS, T0 + 400 * MS)
        .ns(
            "a",
            3,
            Some(1),
            "instant at the end",
            T0 + 1000 * MS,
            T0 + 1000 * MS,
        )
        .build();
    let out = waterfall(&trace, &plain(80));
    let lines = span_lines(&out);
    assert_eq!(lines.len(), 3);
    let (area_start, area_end) = bar_halves(lines[0]);
    for line in &lines[1..] {
        let (s, e) = bar_halves(line);
        assert_eq!(e - s, 2, "one full cell: {line}");
        assert!(s >= area_start && e <= area_end);
        assert!(line.ends_with(" 0ns"));
    }
}

#[test]
fn durations_are_right_aligned_whatever_their_unit() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 3)
        .ns("a", 2, Some(1), "micro", T0 + MS, T0 + MS + 850_000)
        .ns("a", 3, Some(1), "nano", T0 + 2 * MS, T0 + 2 * MS + 12)
        .build();
    for width in [80, 200] {
        let out = waterfall(&trace, &plain(width));
        let lines = span_lines(&out);
        assert!(
            lines[1].ends_with(" 850µs") && lines[2].ends_with(" 12ns"),
            "{out}"
        );
        for line in lines {
            assert_eq!(columns(line), width, "{line}");
        }
    }
}

#[test]
fn a_trace_of_one_instant_span_renders() {
    let trace = TraceBuilder::new().ms("a", 1, None, "tick", 5, 5).build();
    let out = waterfall(&trace, &plain(80));
    assert!(out.starts_with("Trace 0af7651916cd43dd8448eb211c80319c · 0ns · 1 span · 1 service\n"));
    assert_eq!(span_lines(&out).len(), 1);
}

#[test]
fn an_empty_trace_renders_a_header_and_says_so() {
    let out = waterfall(&Trace::default(), &plain(80));
    assert_eq!(
        out,
        "Trace 00000000000000000000000000000000 · 0ns · 0 spans · 0 services\n(no spans)\n"
    );
}

#[test]
fn error_spans_are_marked_and_drawn_red_with_color() {
    let trace = TraceBuilder::new()
        .ms("api", 1, None, "checkout", 0, 100)
        .ms("pay", 2, Some(1), "charge card", 10, 90)
        .error()
        .ms("api", 3, Some(1), "render", 90, 100)
        .build();
    let out = waterfall(&trace, &plain(80));
    let lines = span_lines(&out);
    assert!(lines[1].starts_with("├─ ✗ charge card pay"), "{}", lines[1]);
    assert!(!lines[0].contains('✗') && !lines[2].contains('✗'));
    assert!(header(&out).ends_with("· 1 error"));
    assert!(
        out.lines().last().unwrap().contains("✗ error"),
        "a legend explains the mark"
    );

    let out = waterfall(&trace, &colored(80));
    let line = out.lines().find(|l| l.contains("charge card")).unwrap();
    assert!(line.contains("\x1b[31m█"), "error bar is red: {line:?}");
    let line = out.lines().find(|l| l.contains("render")).unwrap();
    assert!(
        !line.contains("\x1b[31m"),
        "other bars are not red: {line:?}"
    );
}

#[test]
fn orphans_and_cut_cycles_are_marked() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 100)
        .ms("b", 2, Some(77), "lost child", 20, 40)
        .ms("c", 3, Some(3), "own parent", 50, 60)
        .build();
    let out = waterfall(&trace, &plain(80));
    let lines = span_lines(&out);
    assert!(lines[0].starts_with("root a"));
    assert!(lines[1].starts_with("? lost child b"), "{}", lines[1]);
    assert!(lines[2].starts_with("↺ own parent c"), "{}", lines[2]);
    let header = header(&out);
    assert!(
        header.ends_with("· 1 orphan · 1 parent link cut"),
        "{header}"
    );
    let legend = out.lines().last().unwrap();
    assert!(legend.contains("? parent not in trace") && legend.contains("↺ parent link cut"));
}

#[test]
fn duplicates_are_reported_in_the_header() {
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 100)
        .ms("a", 1, None, "root again", 0, 100)
        .build();
    let out = waterfall(&trace, &plain(80));
    let header = header(&out);
    assert!(
        header.ends_with("· 1 span · 1 service · 1 duplicate dropped"),
        "{header}"
    );
    assert_eq!(span_lines(&out).len(), 1);
}

#[test]
fn no_ansi_escape_is_emitted_when_color_is_false() {
    for trace in [checkout(), unwieldy()] {
        for width in [80, 200] {
            assert!(!waterfall(&trace, &plain(width)).contains('\x1b'));
            assert!(waterfall(&trace, &colored(width)).contains("\x1b["));
        }
    }
}

#[test]
fn color_changes_only_escapes_not_layout() {
    for trace in [checkout(), unwieldy()] {
        let a = waterfall(&trace, &plain(100));
        let b = strip_ansi(&waterfall(&trace, &colored(100)));
        assert_eq!(a, b);
    }
}

#[test]
fn escape_sequences_in_span_names_are_neutralised() {
    let trace = TraceBuilder::new()
        .ms("evil\x1b[2J", 1, None, "name\x1b[31m\nsecond line", 0, 10)
        .build();
    let out = waterfall(&trace, &plain(80));
    assert!(!out.contains('\x1b'));
    assert_eq!(out.lines().count(), 4);
}

#[test]
fn long_names_are_truncated_with_an_ellipsis() {
    let out = waterfall(&unwieldy(), &plain(80));
    let root = span_lines(&out)[0];
    assert!(root.starts_with("HTTP POST /api/v2/"), "{root}");
    assert!(root.contains('…'));
    let deepest = span_lines(&out)[13];
    assert!(
        deepest.starts_with('…'),
        "deep indentation is elided: {deepest}"
    );
    assert!(
        deepest.contains("└─ "),
        "the innermost connector stays: {deepest}"
    );
}

#[test]
fn the_time_axis_labels_round_ticks() {
    let out = waterfall(&checkout(), &plain(200));
    let axis = out.lines().nth(1).unwrap();
    let labels: Vec<&str> = axis.split_whitespace().collect();
    assert_eq!(labels.first(), Some(&"0"));
    assert!(labels.contains(&"1s") && labels.contains(&"2s"), "{axis}");
    // Labels sit on the ruler's ticks.
    let ruler: Vec<char> = out.lines().nth(2).unwrap().chars().collect();
    let axis_chars: Vec<char> = axis.chars().collect();
    for (i, c) in axis_chars.iter().enumerate() {
        let starts_label = *c != ' ' && (i == 0 || axis_chars[i - 1] == ' ');
        if starts_label {
            assert!(
                matches!(ruler[i], '┌' | '┬' | '┐'),
                "label at column {i} is on a tick"
            );
        }
    }
}

#[test]
fn durations_are_formatted_for_humans() {
    let cases = [
        (0, "0ns"),
        (999, "999ns"),
        (1_000, "1.00µs"),
        (1_234, "1.23µs"),
        (12_345, "12.3µs"),
        (850_000, "850µs"),
        (999_499, "999µs"),
        (999_500, "1.00ms"),
        (12_340_000, "12.3ms"),
        (45_000_000, "45.0ms"),
        (180_000_000, "180ms"),
        (1_950_000_000, "1.95s"),
        (2_400_000_000, "2.40s"),
        (9_996_000_000, "10.0s"),
        (59_940_000_000, "59.9s"),
        (59_960_000_000, "1m00s"),
        (123_000_000_000, "2m03s"),
        (3_599_400_000_000, "59m59s"),
        (3_600_000_000_000, "1h00m"),
        (3_723_000_000_000, "1h02m"),
        (u64::MAX, "5124095h35m"),
    ];
    for (nanos, want) in cases {
        assert_eq!(format_duration(nanos), want, "{nanos}ns");
    }
}

#[test]
#[ignore = "for a human: cargo test -p stitch-analysis -- --ignored --nocapture"]
fn sample_waterfalls_can_be_printed_for_a_human_to_look_at() {
    for w in [80, 200, 50] {
        println!("{}", waterfall(&checkout(), &plain(w)));
    }
    println!("{}", waterfall(&unwieldy(), &plain(80)));
    let trace = TraceBuilder::new()
        .ms("a", 1, None, "root", 0, 100)
        .ms("b", 2, Some(77), "lost child", 20, 40)
        .error()
        .ms("c", 3, Some(3), "own parent", 50, 60)
        .build();
    println!("{}", waterfall(&trace, &plain(80)));
    print!("{}", waterfall(&checkout(), &colored(80)));
}
