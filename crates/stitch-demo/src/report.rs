//! The report: per scenario, what was planted, what Stitch's analysis found, and where to look.

use std::collections::BTreeMap;

use serde::Serialize;
use stitch_analysis::{FindingKind, LikelyCause, format_duration};

use crate::scenario::Scenario;

/// What `stitch demo` did and what Stitch found. Serialises to JSON (camelCase).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoReport {
    /// Base URL of the UI links.
    pub ui_base_url: String,
    /// Requests sent by the load generator, and how many failed (some scenarios fail on
    /// purpose).
    pub requests: u64,
    pub failed_requests: u64,
    /// Requests per second asked for, and how long the traffic actually took (until the last
    /// answer).
    pub rate: f64,
    pub traffic_seconds: f64,
    /// The time window searched for the demo's traces (Unix nanoseconds).
    pub window_start_unix_nano: u64,
    pub window_end_unix_nano: u64,
    /// Services whose spans could not all be exported, with the error.
    pub export_failures: Vec<String>,
    /// Stitch's tail sampler, as its status reported it after the last decision (absent when
    /// the demo was not given the status).
    pub tail_sampling: Option<TailSamplingTotals>,
    pub scenarios: Vec<ScenarioReport>,
}

/// Stitch's tail-sampling counters for the whole run (every scenario), from its status.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TailSamplingTotals {
    /// Whether the store tail-samples at all.
    pub enabled: bool,
    /// The demo's policies, in words.
    pub policies: String,
    pub traces_received: u64,
    pub traces_sampled: u64,
    pub traces_not_sampled: u64,
    /// Traces kept, by the policy that kept them.
    pub sampled_by_policy: BTreeMap<String, u64>,
    /// Traces still undecided when the report was made (0 unless the wait ran out).
    pub buffered_traces: u64,
}

/// What Stitch kept of a tail-sampled scenario (rare-timeout), counted from the traces its
/// reader returned: the policy is the `stitch.sampling.policy` attribute of each trace's entry
/// span. Only the requests sent and failed are the load generator's numbers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioSampling {
    /// Traces of the scenario Stitch returned, and by which policy each was kept.
    pub kept_traces: u64,
    pub kept_by_policy: BTreeMap<String, u64>,
    /// Requests that failed (took the rare path), per the load generator.
    pub slow_requests: u64,
    /// Kept traces whose entry span failed or took 1 s or more.
    pub slow_kept: Vec<KeptTrace>,
    /// Requests that succeeded, per the load generator, and how many of their traces Stitch
    /// kept.
    pub normal_requests: u64,
    pub normal_kept: u64,
    /// `normal_kept` as a percentage of `normal_requests`, one decimal.
    pub normal_kept_percent: f64,
}

/// A trace the tail sampler kept, with the policy recorded on its spans.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptTrace {
    pub trace_id: String,
    pub url: String,
    pub duration_nanos: u64,
    pub failed: bool,
    /// `stitch.sampling.policy`.
    pub policy: Option<String>,
    /// `stitch.sampling.probability`.
    pub probability: Option<f64>,
}

/// One scenario: planted problem, Stitch's findings, links.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioReport {
    pub scenario: Scenario,
    pub seed: String,
    pub title: String,
    /// The planted problem, in words.
    pub planted: String,
    /// Where the demo departs from the seed's numbers.
    pub scaling: Option<String>,
    /// Where the requests enter: `POST /api/checkout on api-gateway`.
    pub entry: String,
    pub services: Vec<String>,
    pub requests: u64,
    pub failed_requests: u64,
    /// Traces of the scenario's entry operation Stitch returned for the demo's window.
    pub traces_found: usize,
    /// The trace analysed: of median duration among the failed requests if any failed, else
    /// among all.
    pub trace: Option<TraceSummary>,
    /// Stitch's findings for that trace, ranked as Stitch ranked them.
    pub findings: Vec<ReportedFinding>,
    /// For broken propagation: the hops Stitch's cross-trace analysis named, ranked.
    pub broken_hops: Vec<ReportedHop>,
    /// What Stitch should point at: `service "span"`, or `caller → callee` for a hop.
    pub expected: String,
    /// Whether Stitch's top finding (or top hop) points there.
    pub found_planted: bool,
    /// Why the scenario has no analysis, when it has none.
    pub note: Option<String>,
    /// For a tail-sampled scenario (rare-timeout): what Stitch kept.
    pub sampling: Option<ScenarioSampling>,
}

/// The analysed trace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub trace_id: String,
    /// `{ui_base_url}/trace/{id}`.
    pub url: String,
    /// The `stitch trace` command that prints it.
    pub command: String,
    pub duration_nanos: u64,
    pub span_count: usize,
    pub root_failed: bool,
}

/// One of Stitch's findings, as `stitch_analysis::analyze` returned it, with the name of its
/// main span looked up in the trace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedFinding {
    pub kind: FindingKind,
    pub title: String,
    pub service: String,
    pub operation: String,
    pub target: Option<String>,
    pub count: Option<u32>,
    pub cost_nanos: u64,
    pub saving_nanos: Option<u64>,
    /// Hex ids of the spans involved, the main one first.
    pub span_ids: Vec<String>,
    pub main_span: Option<SpanInfo>,
}

/// A span of the analysed trace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanInfo {
    pub span_id: String,
    pub service: String,
    pub name: String,
    /// From the start of the trace.
    pub offset_nanos: u64,
    pub duration_nanos: u64,
}

/// A hop that lost trace context, as `stitch_analysis::find_broken_propagation` named it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedHop {
    pub caller_service: String,
    pub caller_operation: String,
    pub callee_service: String,
    pub callee_operation: String,
    pub cause: LikelyCause,
    pub occurrences: usize,
    pub blamed_service: Option<String>,
    pub message: String,
    pub evidence: Vec<String>,
    /// One occurrence: the caller's and the callee's fragments.
    pub example: Option<HopExampleLinks>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HopExampleLinks {
    pub caller_trace_id: String,
    pub caller_url: String,
    pub callee_trace_id: String,
    pub callee_url: String,
}

impl DemoReport {
    /// The report of one scenario, if it ran.
    pub fn scenario(&self, s: Scenario) -> Option<&ScenarioReport> {
        self.scenarios.iter().find(|r| r.scenario == s)
    }

    /// Whether Stitch found every planted problem.
    pub fn all_found(&self) -> bool {
        self.scenarios.iter().all(|s| s.found_planted)
    }

    /// The report as text, wrapped at `width` columns (at least 60).
    pub fn render(&self, width: usize) -> String {
        let width = width.max(60);
        let mut out = String::new();
        let failed_on_purpose: Vec<&str> = self
            .scenarios
            .iter()
            .filter(|s| {
                matches!(
                    s.scenario,
                    Scenario::Cascade | Scenario::Chaos | Scenario::RareTimeout
                )
            })
            .map(|s| s.scenario.name())
            .collect();
        let mut intro = format!(
            "Stitch demo: {} scenario{}, {} requests in {:.1}s ({} failed",
            self.scenarios.len(),
            if self.scenarios.len() == 1 { "" } else { "s" },
            thousands(self.requests),
            self.traffic_seconds,
            self.failed_requests,
        );
        if failed_on_purpose.is_empty() {
            intro.push(')');
        } else {
            intro.push_str(&format!(
                "; {} fail{} on purpose)",
                join(&failed_on_purpose),
                if failed_on_purpose.len() == 1 {
                    "s"
                } else {
                    ""
                }
            ));
        }
        intro.push_str(
            ". Each service is a real HTTP server with the OpenTelemetry SDK exporting to Stitch. \
             Every \"found\" line below is Stitch's own analysis of a trace it stored; nothing in \
             it is scripted.",
        );
        wrap_into(&mut out, &intro, "", "", width);
        let found = self.scenarios.iter().filter(|s| s.found_planted).count();
        out.push_str(&format!(
            "Stitch found {found} of {} planted problems.\n",
            self.scenarios.len()
        ));
        if let Some(t) = &self.tail_sampling {
            render_totals(&mut out, t, width);
        }
        for f in &self.export_failures {
            wrap_into(
                &mut out,
                &format!("warning: export failed: {f}"),
                "",
                "  ",
                width,
            );
        }
        for (i, s) in self.scenarios.iter().enumerate() {
            out.push('\n');
            render_scenario(&mut out, i + 1, s, width);
        }
        out
    }
}

const LABEL: usize = 10;

fn render_scenario(out: &mut String, n: usize, s: &ScenarioReport, width: usize) {
    let head = format!(
        "── {n}. {} · seed {} · {} ",
        s.scenario.name(),
        s.seed,
        s.title
    );
    let fill = width.saturating_sub(head.chars().count());
    out.push_str(&head);
    out.push_str(&"─".repeat(fill));
    out.push('\n');
    let pad = " ".repeat(LABEL);
    labelled(out, "Planted", &s.planted, width);
    if let Some(scaling) = &s.scaling {
        wrap_into(out, &format!("Scaled: {scaling}."), &pad, &pad, width);
    }
    let mut traffic = format!("{} requests to {}", thousands(s.requests), s.entry);
    if s.failed_requests > 0 {
        traffic.push_str(&format!(", {} failed", s.failed_requests));
    }
    traffic.push_str(&format!(
        "; Stitch returned {} trace{} of it",
        thousands(s.traces_found as u64),
        if s.traces_found == 1 { "" } else { "s" }
    ));
    labelled(out, "Traffic", &traffic, width);
    if let Some(sampling) = &s.sampling {
        render_sampling(out, sampling, width);
    }

    match &s.trace {
        None => {
            let why = s
                .note
                .clone()
                .unwrap_or_else(|| "no trace of this scenario was found".to_owned());
            labelled(out, "Found", &why, width);
        }
        Some(t) => {
            let which = if t.root_failed && s.failed_requests == 1 {
                "the request that failed".to_owned()
            } else if t.root_failed {
                format!(
                    "a typical failed request (median duration of {})",
                    s.failed_requests
                )
            } else {
                format!("a typical request (median duration of {})", s.traces_found)
            };
            labelled(
                out,
                "Found",
                &format!(
                    "in {which}, {} long with {} spans, Stitch's analysis ranks:",
                    format_duration(t.duration_nanos),
                    t.span_count
                ),
                width,
            );
            if s.findings.is_empty() {
                wrap_into(out, "(no findings)", &pad, &pad, width);
            }
            for (i, f) in s.findings.iter().take(5).enumerate() {
                let mut head = format!(
                    "{}. {} · {}",
                    i + 1,
                    kind_name(f.kind),
                    format_duration(f.cost_nanos)
                );
                if let Some(saving) = f.saving_nanos {
                    head.push_str(&format!(" (saving ~{})", format_duration(saving)));
                }
                if let Some(m) = &f.main_span {
                    head.push_str(&format!(
                        " · {} {:?} at +{}",
                        m.service,
                        m.name,
                        format_duration(m.offset_nanos)
                    ));
                }
                wrap_into(out, &head, &pad, &format!("{pad}   "), width);
                wrap_into(
                    out,
                    &f.title,
                    &format!("{pad}   "),
                    &format!("{pad}   "),
                    width,
                );
            }
            if s.findings.len() > 5 {
                wrap_into(
                    out,
                    &format!("... and {} more", s.findings.len() - 5),
                    &format!("{pad}   "),
                    &pad,
                    width,
                );
            }
        }
    }
    if s.scenario == Scenario::BrokenPropagation {
        if s.broken_hops.is_empty() {
            labelled(
                out,
                "Hops",
                "Stitch's cross-trace analysis named no broken hop",
                width,
            );
        }
        for (i, h) in s.broken_hops.iter().take(3).enumerate() {
            let label = if i == 0 { "Hops" } else { "" };
            let mut text = format!(
                "{}. {} {:?} → {} {:?}: broke {} time{} — {}",
                i + 1,
                h.caller_service,
                h.caller_operation,
                h.callee_service,
                h.callee_operation,
                h.occurrences,
                if h.occurrences == 1 { "" } else { "s" },
                h.cause.describe(),
            );
            if let Some(b) = &h.blamed_service {
                text.push_str(&format!("; the evidence points at {b}"));
            }
            labelled(out, label, &text, width);
            wrap_into(
                out,
                &h.message,
                &format!("{pad}   "),
                &format!("{pad}   "),
                width,
            );
            if let Some(e) = &h.example {
                wrap_into(
                    out,
                    &format!("caller's fragment {}", e.caller_url),
                    &format!("{pad}   "),
                    &format!("{pad}     "),
                    width,
                );
                wrap_into(
                    out,
                    &format!("callee's fragment {}", e.callee_url),
                    &format!("{pad}   "),
                    &format!("{pad}     "),
                    width,
                );
            }
        }
    }
    let verdict = if s.found_planted {
        format!(
            "✓ Stitch's top result is the planted problem: {}",
            s.expected
        )
    } else {
        format!(
            "✗ Stitch's top result is not the planted problem ({})",
            s.expected
        )
    };
    labelled(out, "", &verdict, width);
    if let Some(t) = &s.trace {
        labelled(out, "Trace", &t.url, width);
        labelled(out, "", &t.command, width);
    }
}

fn render_totals(out: &mut String, t: &TailSamplingTotals, width: usize) {
    let text = if t.enabled {
        let mut text = format!(
            "Tail sampling is on ({}): Stitch decided {} traces, kept {} ({}) and dropped {}.",
            t.policies,
            thousands(t.traces_sampled + t.traces_not_sampled),
            thousands(t.traces_sampled),
            by_policy(&t.sampled_by_policy),
            thousands(t.traces_not_sampled),
        );
        if t.buffered_traces > 0 {
            text.push_str(&format!(
                " {} traces were still undecided at the report.",
                thousands(t.buffered_traces)
            ));
        }
        text
    } else {
        "Tail sampling is off: Stitch kept every trace.".to_owned()
    };
    wrap_into(out, &text, "", "", width);
}

fn render_sampling(out: &mut String, s: &ScenarioSampling, width: usize) {
    let pad = " ".repeat(LABEL);
    labelled(
        out,
        "Sampling",
        &format!(
            "Stitch kept {} trace{} of this scenario (by stitch.sampling.policy: {}).",
            thousands(s.kept_traces),
            if s.kept_traces == 1 { "" } else { "s" },
            by_policy(&s.kept_by_policy)
        ),
        width,
    );
    for k in &s.slow_kept {
        let mut text = format!(
            "Kept slow trace: {}, {}{}, kept by policy {:?}",
            k.trace_id,
            format_duration(k.duration_nanos),
            if k.failed { ", failed" } else { "" },
            k.policy.as_deref().unwrap_or("(none)"),
        );
        if let Some(p) = k.probability {
            text.push_str(&format!(" (probability {p})"));
        }
        wrap_into(out, &text, &pad, &format!("{pad}  "), width);
    }
    if (s.slow_kept.len() as u64) < s.slow_requests {
        wrap_into(
            out,
            &format!(
                "✗ {} of the {} slow request{} {} not kept",
                s.slow_requests - s.slow_kept.len() as u64,
                s.slow_requests,
                if s.slow_requests == 1 { "" } else { "s" },
                if s.slow_requests - s.slow_kept.len() as u64 == 1 {
                    "was"
                } else {
                    "were"
                },
            ),
            &pad,
            &format!("{pad}  "),
            width,
        );
    }
    wrap_into(
        out,
        &format!(
            "Normal requests: {} of {} kept ({:.1}%), {} dropped.",
            thousands(s.normal_kept),
            thousands(s.normal_requests),
            s.normal_kept_percent,
            thousands(s.normal_requests.saturating_sub(s.normal_kept)),
        ),
        &pad,
        &format!("{pad}  "),
        width,
    );
}

/// `rest 497, slow 1`.
fn by_policy(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(p, n)| format!("{p} {}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn labelled(out: &mut String, label: &str, text: &str, width: usize) {
    let first = format!("{label:<LABEL$}");
    wrap_into(out, text, &first, &" ".repeat(LABEL), width);
}

/// Appends `text` wrapped at `width`: the first line after `first`, the others after `rest`.
fn wrap_into(out: &mut String, text: &str, first: &str, rest: &str, width: usize) {
    let mut line = first.to_owned();
    let mut line_len = first.chars().count();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !empty && line_len + 1 + len > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            line_len = rest.chars().count();
            empty = true;
        }
        if !empty {
            line.push(' ');
            line_len += 1;
        }
        line.push_str(word);
        line_len += len;
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn join(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A finding kind in words.
pub fn kind_name(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::DominantLeaf => "dominant leaf",
        FindingKind::UninstrumentedTime => "uninstrumented time",
        FindingKind::ClientServerGap => "client→server gap",
        FindingKind::SequentialCalls => "sequential calls",
        FindingKind::RepeatedCalls => "repeated calls",
        FindingKind::Retries => "retries",
        FindingKind::ErrorOrigin => "error origin",
        FindingKind::SynchronousTail => "synchronous tail",
        FindingKind::BrokenPropagation => "broken propagation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_the_width_with_indents() {
        let mut out = String::new();
        wrap_into(&mut out, "aaa bbb ccc ddd", "> ", "  ", 9);
        assert_eq!(out, "> aaa bbb\n  ccc ddd\n");
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(9_999), "9,999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
