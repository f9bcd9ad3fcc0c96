use super::*;

#[test]
fn bars_are_at_least_one_cell_and_use_half_cells() {
    assert_eq!(bar(0, 0, 100, 10), (0, "█".to_owned()));
    assert_eq!(bar(100, 0, 100, 10), (9, "█".to_owned()));
    assert_eq!(bar(0, 100, 100, 10), (0, "█".repeat(10)));
    assert_eq!(bar(50, 50, 100, 10), (5, "█".repeat(5)));
    assert_eq!(bar(5, 20, 100, 10), (0, "▐█▌".to_owned()));
    assert_eq!(bar(0, 0, 0, 10), (0, "█".to_owned()));
}

#[test]
fn ticks_fall_on_round_steps_at_least_seven_cells_apart() {
    let t = ticks(2_400_000_000, 40);
    let times: Vec<u64> = t.iter().map(|&(_, t)| t / 1_000_000).collect();
    assert_eq!(
        times,
        vec![0, 500, 1000, 1500, 2000],
        "over 40 cells, 7 cells are 420ms; the next round step is 500ms"
    );
    assert_eq!(t[2].0, 16);
    assert_eq!(nice_step(600_000_000), 1_000_000_000);
    assert_eq!(nice_step(11_000_000_000), 15_000_000_000);
    assert_eq!(nice_step(2 * 3_600_000_000_000 + 1), 5 * 3_600_000_000_000);
}

#[test]
fn axis_labels_drop_trailing_zero_decimals() {
    assert_eq!(axis_label(0), "0");
    assert_eq!(axis_label(1_000_000_000), "1s");
    assert_eq!(axis_label(1_500_000_000), "1.5s");
    assert_eq!(axis_label(500_000_000), "500ms");
    assert_eq!(axis_label(2_500_000), "2.5ms");
    assert_eq!(axis_label(120_000_000_000), "2m00s");
}

#[test]
fn ellipsize_counts_wide_characters_twice() {
    assert_eq!(ellipsize("abcdef", 4), "abc…");
    assert_eq!(ellipsize("abc", 3), "abc");
    assert_eq!(ellipsize("abc", 0), "");
    assert_eq!(ellipsize("日本語", 4), "日…");
}

#[test]
fn a_line_never_grows_past_its_width_and_drops_trailing_spaces() {
    let mut line = Line::new(5, true);
    line.push("abc", Style::Red);
    line.space(3);
    line.push("defgh", Style::Plain);
    assert_eq!(line.finish(), "\x1b[31mabc\x1b[0m");
    let mut line = Line::new(5, false);
    line.push("ab", Style::Red);
    line.pad_to(3);
    line.push("xyz", Style::Plain);
    assert_eq!(line.finish(), "ab xy");
}

#[test]
fn control_characters_in_names_are_replaced() {
    assert_eq!(sanitize("a\x1b[31mb\nc"), "a?[31mb c");
}
