//! The findings of a trace as text under its waterfall: each finding with the spans it
//! names drawn on and off the critical path.

use super::*;

/// Short label of a finding kind for text output.
pub fn finding_kind_label(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::DominantLeaf => "widest bar",
        FindingKind::UninstrumentedTime => "no child span",
        FindingKind::ClientServerGap => "between services",
        FindingKind::SequentialCalls => "sequential calls",
        FindingKind::RepeatedCalls => "repeated calls",
        FindingKind::Retries => "retries",
        FindingKind::ErrorOrigin => "error origin",
        FindingKind::SynchronousTail => "could be async",
        FindingKind::BrokenPropagation => "broken context",
    }
}

/// The findings of `analysis` as text to print under a waterfall, like the annotated trees of
/// a post-mortem: first the path from the root to the top finding's span, marked
/// `← here's your problem`, then up to ten findings ranked by cost, each with its cost, kind
/// and explanation (wrapped, with a hanging indent). `trace` supplies names and durations for
/// the path; it can be the trace as recorded or its skew-adjusted copy. No line is wider than
/// `width` columns and no ANSI escape is emitted. Every line ends with `\n`.
pub fn findings_text(analysis: &TraceAnalysis, trace: &Trace, width: usize) -> String {
    let mut out = String::new();
    let mut emit = |text: &str| {
        let mut line = Line::new(width, false);
        line.push(text, Style::Plain);
        out.push_str(&line.finish());
        out.push('\n');
    };
    let Some(top) = analysis.findings.first() else {
        for text in wrap_words(
            "No findings: nothing on the critical path stands out.",
            width,
            width,
        ) {
            emit(&text);
        }
        return out;
    };

    let tree = SpanTree::build(trace);
    if let Some(node) = top.spans.first().and_then(|&id| tree.find(id)) {
        let mut chain: Vec<NodeId> = tree.ancestors(node).collect();
        chain.reverse();
        chain.push(node);
        emit(&ellipsize(
            &format!(
                "Where the time went · critical path {}",
                format_duration(analysis.critical_path.total_nanos)
            ),
            width,
        ));
        let note = match top.kind {
            FindingKind::ErrorOrigin => "  ← the error started here",
            _ => "  ← here's your problem",
        };
        let labels: Vec<(String, String)> = chain
            .iter()
            .enumerate()
            .map(|(depth, &id)| {
                let n = tree.node(id);
                let prefix = if depth == 0 {
                    String::new()
                } else {
                    format!("{}└─ ", "   ".repeat(depth - 1))
                };
                (
                    format!(
                        "{prefix}{} {}",
                        sanitize(&n.span().name),
                        sanitize(n.service_name())
                    ),
                    format_duration(n.end() - n.start()),
                )
            })
            .collect();
        let dur_w = labels.iter().map(|(_, d)| text_width(d)).max().unwrap_or(0);
        let room = width
            .saturating_sub(dur_w + 2 + text_width(note))
            .max(width / 2);
        let label_w = labels
            .iter()
            .map(|(l, _)| text_width(l))
            .max()
            .unwrap_or(0)
            .min(room);
        for (k, (label, duration)) in labels.iter().enumerate() {
            let mut line = Line::new(width, false);
            line.push(&ellipsize(label, label_w), Style::Plain);
            line.pad_to(label_w + 2 + dur_w - text_width(duration));
            line.push(duration, Style::Plain);
            if k + 1 == labels.len() {
                line.push(note, Style::Plain);
            }
            out.push_str(&line.finish());
            out.push('\n');
        }
        out.push('\n');
    }

    let shown = analysis.findings.len().min(10);
    let heading = if analysis.findings.len() > shown {
        format!(
            "Findings, ranked by time on the critical path (top {shown} of {})",
            analysis.findings.len()
        )
    } else {
        "Findings, ranked by time on the critical path".to_owned()
    };
    for text in wrap_words(&heading, width, width) {
        let mut line = Line::new(width, false);
        line.push(&text, Style::Plain);
        out.push_str(&line.finish());
        out.push('\n');
    }
    let cost_w = analysis.findings[..shown]
        .iter()
        .map(|f| text_width(&format_duration(f.cost_nanos)))
        .max()
        .unwrap_or(0);
    let label_w = analysis.findings[..shown]
        .iter()
        .map(|f| finding_kind_label(f.kind).len())
        .max()
        .unwrap_or(0);
    for (i, f) in analysis.findings[..shown].iter().enumerate() {
        let cost = format_duration(f.cost_nanos);
        let head = format!(
            "{:>2}. {}{cost}  {:<label_w$}  ",
            i + 1,
            " ".repeat(cost_w - text_width(&cost)),
            finding_kind_label(f.kind),
        );
        let indent = text_width(&head);
        let mut title = sanitize(&f.title);
        if let Some(saving) = f.saving_nanos
            && !title.contains("save ~")
        {
            title.push_str(&format!(" (save ~{})", format_duration(saving)));
        }
        let (first_room, rest_room) = if indent + 20 <= width {
            (width - indent, width - indent)
        } else {
            (width.saturating_sub(indent), width.saturating_sub(4).max(1))
        };
        let lines = wrap_words(&title, first_room.max(1), rest_room);
        for (k, text) in lines.iter().enumerate() {
            let mut line = Line::new(width, false);
            if k == 0 {
                line.push(&head, Style::Plain);
            } else if indent + 20 <= width {
                line.space(indent);
            } else {
                line.space(4);
            }
            line.push(text, Style::Plain);
            out.push_str(&line.finish());
            out.push('\n');
        }
    }
    out
}

/// Greedy word wrap: the first line at most `first` columns, the others at most `rest`. A
/// word longer than a line is cut with `…`.
pub(super) fn wrap_words(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let room = if lines.is_empty() { first } else { rest };
        let needed = if current.is_empty() {
            text_width(word)
        } else {
            text_width(&current) + 1 + text_width(word)
        };
        if needed <= room {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        let room = if lines.is_empty() { first } else { rest };
        current = if text_width(word) > room {
            ellipsize(word, room)
        } else {
            word.to_owned()
        };
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}
