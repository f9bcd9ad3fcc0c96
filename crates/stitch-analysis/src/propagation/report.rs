//! What is reported of a broken hop: propagation formats on each side, grouping, the
//! explanation.

use super::*;

/// Signs of which propagation format a side uses.
#[derive(Default)]
pub(super) struct Markers {
    /// The side's tracer is a B3 (Zipkin-family) tracer.
    pub(super) b3_tracer: Option<String>,
    /// The side's tracer is an OpenTelemetry SDK (W3C by default).
    pub(super) w3c_tracer: Option<String>,
    /// The span recorded a B3 request header.
    pub(super) b3_header: Option<String>,
    /// The span recorded a `traceparent` request header.
    pub(super) w3c_header: Option<String>,
}

/// Why a B3/W3C mismatch is suspected.
#[derive(Clone, Debug)]
pub(super) struct Mismatch {
    /// The header format the callee was seen receiving, when it recorded its request headers.
    pub(super) received: Option<&'static str>,
    pub(super) evidence: Vec<String>,
}

pub(super) fn format_markers(span: SpanRef<'_>) -> Markers {
    let mut m = Markers::default();
    let service = span.service_name();
    let sdk = match find_attribute(&span.resource.attributes, "telemetry.sdk.name") {
        Some(v) => v.to_text().to_ascii_lowercase(),
        None => String::new(),
    };
    let scope = span.scope.name.to_ascii_lowercase();
    for tracer in ["zipkin", "brave", "sleuth"] {
        if m.b3_tracer.is_none() && sdk.contains(tracer) {
            m.b3_tracer = Some(format!(
                "{service} reports through a {tracer} tracer (`telemetry.sdk.name` = {sdk}), \
                 which propagates B3"
            ));
        } else if m.b3_tracer.is_none() && scope.contains(tracer) {
            m.b3_tracer = Some(format!(
                "spans of {service} come from the {tracer} instrumentation scope `{}`, which \
                 propagates B3",
                span.scope.name
            ));
        }
    }
    if sdk == "opentelemetry" {
        m.w3c_tracer = Some(format!(
            "{service} uses an OpenTelemetry SDK, whose default propagator is W3C `traceparent`"
        ));
    }
    // Captured headers (`http.request.header.*`) are direct evidence.
    for kv in &span.span.attributes {
        let key = kv.key.to_ascii_lowercase();
        if let Some(header) = key.strip_prefix("http.request.header.") {
            if header == "b3" || header.starts_with("x-b3-") {
                m.b3_header = Some(format!(
                    "the span of {service} recorded a `{header}` request header"
                ));
            } else if header == "traceparent" {
                m.w3c_header = Some(format!(
                    "the span of {service} recorded a `traceparent` request header"
                ));
            }
        }
    }
    m
}

/// A suspected B3/W3C mismatch between a caller and a callee that started a new trace.
pub(super) fn format_mismatch(caller: &Markers, callee: &Markers) -> Option<Mismatch> {
    // Observed: the callee recorded the header it got, and still started a new trace.
    if let (Some(seen), None) = (&callee.b3_header, &callee.w3c_header) {
        let mut evidence = vec![seen.clone()];
        evidence.extend(callee.w3c_tracer.clone());
        return Some(Mismatch {
            received: Some("B3"),
            evidence,
        });
    }
    if let (Some(seen), None, Some(tracer)) =
        (&callee.w3c_header, &callee.b3_header, &callee.b3_tracer)
    {
        return Some(Mismatch {
            received: Some("W3C `traceparent`"),
            evidence: vec![seen.clone(), tracer.clone()],
        });
    }
    // Inferred from the tracers on each side.
    let b3_callee = callee.b3_tracer.is_some() && caller.b3_tracer.is_none();
    let b3_caller = caller.b3_tracer.is_some() && callee.b3_tracer.is_none();
    let evidence: Vec<String> = if b3_callee && caller.w3c_tracer.is_some() {
        [&callee.b3_tracer, &caller.w3c_tracer]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    } else if b3_caller && callee.w3c_tracer.is_some() {
        [&caller.b3_tracer, &callee.w3c_tracer]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    } else {
        return None;
    };
    Some(Mismatch {
        received: None,
        evidence,
    })
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Groups occurrences into hops, writes the explanations and ranks the hops.
pub(super) fn group(
    index: &Index<'_>,
    occurrences: Vec<Occurrence>,
    opts: &PropagationOptions,
) -> Vec<BrokenHop> {
    type Key = (String, String, String, String, LikelyCause, bool);
    let mut groups: BTreeMap<Key, Vec<Occurrence>> = BTreeMap::new();
    for occ in occurrences {
        let caller = index.node(occ.caller);
        let callee = index.node(occ.callee);
        let key = (
            caller.service_name().to_owned(),
            caller.span.name.clone(),
            callee.service_name().to_owned(),
            callee.span.name.clone(),
            occ.cause,
            occ.enclosing,
        );
        groups.entry(key).or_default().push(occ);
    }
    // Which callees each caller lost the context to, and the reverse: a service that loses
    // it on calls to several services (or from several callers) is the common factor.
    let mut stripped_to: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut stripped_from: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (caller, _, callee, _, cause, _) in groups.keys() {
        if *cause == LikelyCause::HeaderStripped {
            stripped_to.entry(caller).or_default().insert(callee);
            stripped_from.entry(callee).or_default().insert(caller);
        }
    }
    let spread: HashMap<(String, String), (usize, usize)> = groups
        .keys()
        .map(|(caller, _, callee, ..)| {
            let out = stripped_to.get(caller.as_str()).map_or(0, HashSet::len);
            let inn = stripped_from.get(callee.as_str()).map_or(0, HashSet::len);
            ((caller.clone(), callee.clone()), (out, inn))
        })
        .collect();
    // With a focus trace: only its hops, its own occurrences first.
    let in_focus = |o: &Occurrence| {
        opts.focus_trace.is_none_or(|t| {
            index.node(o.caller).span.trace_id == t || index.node(o.callee).span.trace_id == t
        })
    };
    let mut hops: Vec<BrokenHop> = groups
        .into_iter()
        .filter(|(_, occs)| occs.iter().any(in_focus))
        .map(
            |((caller, caller_op, callee, callee_op, cause, enclosing), mut occs)| {
                occs.sort_by_key(|o| {
                    let s = index.node(o.callee).span;
                    (!in_focus(o), s.start_time_unix_nano, s.trace_id, s.span_id)
                });
                let examples = occs
                    .iter()
                    .take(opts.max_examples)
                    .map(|o| {
                        let (c, r) = (index.node(o.caller).span, index.node(o.callee).span);
                        HopExample {
                            caller_trace_id: c.trace_id.to_hex(),
                            caller_span_id: c.span_id.to_hex(),
                            callee_trace_id: r.trace_id.to_hex(),
                            callee_span_id: r.span_id.to_hex(),
                            callee_parent_span_id: r
                                .parent_span_id
                                .filter(|p| p.is_valid())
                                .map(|p| p.to_hex()),
                        }
                    })
                    .collect();
                let n = occs.len();
                let spread = spread
                    .get(&(caller.clone(), callee.clone()))
                    .copied()
                    .unwrap_or((0, 0));
                let (message, evidence, blamed) = explain(
                    index, &caller, &callee, cause, enclosing, &occs, spread, opts,
                );
                BrokenHop {
                    caller_service: caller,
                    caller_operation: caller_op,
                    callee_service: callee,
                    callee_operation: callee_op,
                    cause,
                    occurrences: n,
                    examples,
                    blamed_service: blamed,
                    evidence,
                    message,
                }
            },
        )
        .collect();
    hops.sort_by(|a, b| {
        b.occurrences
            .cmp(&a.occurrences)
            .then_with(|| a.caller_service.cmp(&b.caller_service))
            .then_with(|| a.callee_service.cmp(&b.callee_service))
            .then_with(|| a.caller_operation.cmp(&b.caller_operation))
            .then_with(|| a.callee_operation.cmp(&b.callee_operation))
            .then_with(|| a.cause.cmp(&b.cause))
    });
    hops
}

/// The message, evidence and blamed service of one hop. `spread` is how many services the
/// caller lost the context to, and how many callers lost it to the callee (stripped headers).
#[allow(clippy::too_many_arguments)]
pub(super) fn explain(
    index: &Index<'_>,
    caller: &str,
    callee: &str,
    cause: LikelyCause,
    enclosing: bool,
    occs: &[Occurrence],
    spread: (usize, usize),
    opts: &PropagationOptions,
) -> (String, Vec<String>, Option<String>) {
    let (lost_to, lost_from) = spread;
    let n = occs.len();
    let calls = plural(n, "call", "calls");
    let out_ok = index.out_linked.get(caller).copied().unwrap_or(0);
    let in_ok = index.in_linked.get(callee).copied().unwrap_or(0);
    let mut evidence = Vec::new();
    let first = &occs[0];
    let (c, r) = (index.node(first.caller).span, index.node(first.callee).span);
    match cause {
        LikelyCause::HeaderStripped | LikelyCause::FormatMismatch => {
            evidence.push(format!(
                "{n} root spans of {callee} have no parent and a trace id seen nowhere else, \
                 each starting while a client span of {caller} to {callee} was waiting for an \
                 answer"
            ));
        }
        LikelyCause::Truncated64BitTraceId | LikelyCause::TraceIdReplaced => {
            evidence.push(format!(
                "{callee}'s root span names {caller}'s client span {} as its parent, but under \
                 trace id {} instead of {}",
                c.span_id, r.trace_id, c.trace_id
            ));
        }
        LikelyCause::UnexportedParent | LikelyCause::LateExport => {
            let parent = r.parent_span_id.map(|p| p.to_hex()).unwrap_or_default();
            evidence.push(format!(
                "{callee}'s root span names parent span {parent}, which no stored span has"
            ));
            if r.trace_id == c.trace_id {
                evidence.push(format!(
                    "it carries the same trace id as {caller}'s span, so the trace context \
                     itself arrived"
                ));
            } else {
                evidence.push(format!(
                    "its trace id {} differs from {caller}'s {}",
                    r.trace_id, c.trace_id
                ));
            }
        }
    }
    if out_ok > 0 {
        evidence.push(format!(
            "{caller} kept the trace context on {} to other services",
            plural(out_ok, "call", "calls")
        ));
    } else {
        evidence.push(format!(
            "none of {caller}'s calls in these traces kept the trace context"
        ));
    }
    if in_ok > 0 {
        evidence.push(format!(
            "{callee} joined its callers' traces on {}",
            plural(in_ok, "other call", "other calls")
        ));
    } else {
        evidence.push(format!(
            "{callee} never joined a caller's trace in these traces"
        ));
    }
    let mut blamed = None;
    let message = match cause {
        LikelyCause::HeaderStripped => {
            let mut msg = format!(
                "{caller} → {callee}: {calls} reached {callee} without trace context, so each \
                 of those traces split in two ({callee} started a new trace). The `traceparent` \
                 header was stripped on the way — by {caller}'s HTTP client or a proxy between \
                 them — or never injected."
            );
            let caller_suspect = out_ok == 0 && (in_ok > 0 || lost_to >= 2);
            let callee_suspect = in_ok == 0 && (out_ok > 0 || lost_from >= 2);
            if lost_to >= 2 {
                evidence.push(format!(
                    "{caller} loses the context on its calls to {lost_to} different services"
                ));
            }
            if lost_from >= 2 {
                evidence.push(format!(
                    "calls from {lost_from} different services lose the context on their way \
                     to {callee}"
                ));
            }
            if caller_suspect && !callee_suspect {
                blamed = Some(caller.to_owned());
                let why = if in_ok > 0 {
                    format!("{callee} joins traces from other callers")
                } else {
                    format!("{caller} loses it on its calls to {lost_to} services")
                };
                msg.push_str(&format!(
                    " {why}, and no call of {caller} keeps its context: {caller} is the service \
                     that breaks the trace (check its HTTP client's interceptors and header \
                     allow-lists)."
                ));
            } else if callee_suspect && !caller_suspect {
                blamed = Some(callee.to_owned());
                let why = if out_ok > 0 {
                    format!("{caller} propagates on its other calls")
                } else {
                    format!("calls from {lost_from} services lose it on their way to {callee}")
                };
                msg.push_str(&format!(
                    " {why}, and {callee} never joins an incoming trace: {callee} probably does \
                     not extract the context (or expects another header format)."
                ));
            } else if out_ok > 0 && in_ok > 0 {
                msg.push_str(&format!(
                    " Both propagate on other hops, so look at what is special about this one: \
                     a proxy, gateway or per-route client configuration between {caller} and \
                     {callee}."
                ));
            } else {
                msg.push_str(&format!(
                    " These traces cannot tell whether {caller} failed to send the header or \
                     {callee} failed to read it; `stitch check-propagation` against {callee} \
                     tells them apart."
                ));
            }
            msg
        }
        LikelyCause::FormatMismatch => {
            let m = first.mismatch.clone().unwrap_or(Mismatch {
                received: None,
                evidence: Vec::new(),
            });
            evidence.extend(m.evidence.iter().cloned());
            match m.received {
                Some(format) => {
                    blamed = Some(callee.to_owned());
                    format!(
                        "{caller} → {callee}: {calls} arrived at {callee} with a {format} header \
                         ({callee} recorded it), yet {callee} started a new trace each time, so \
                         each of those traces split in two: {callee} does not read {format}. \
                         Configure {callee} with a propagator that accepts it (a composite \
                         W3C + B3 propagator), or make {caller} send the format {callee} reads."
                    )
                }
                None => format!(
                    "{caller} → {callee}: {calls} reached {callee} without context it \
                     understood, so each of those traces split in two. One side looks B3 \
                     (Zipkin) instrumented and the other W3C (`traceparent`): {}. If they speak \
                     different header formats, the callee finds no context and starts a new \
                     trace. This is inferred from the tracers in use, not from the headers on \
                     the wire: configure both sides with the same propagators (or a composite \
                     W3C + B3 propagator) and verify with `stitch check-propagation`.",
                    m.evidence.join("; ")
                ),
            }
        }
        LikelyCause::Truncated64BitTraceId => {
            blamed = Some(callee.to_owned());
            format!(
                "{caller} → {callee}: {calls} arrived with the right parent span but a trace id \
                 cut to its low 64 bits ({} became {}), so {callee}'s spans form a separate \
                 trace. {callee} (or a proxy in front of it) handles only 64-bit trace ids: \
                 configure its tracer or propagator for 128-bit ids.",
                c.trace_id, r.trace_id
            )
        }
        LikelyCause::TraceIdReplaced => format!(
            "{caller} → {callee}: {calls} arrived with the right parent span but an unrelated \
             trace id ({} became {}): something between them — a proxy or gateway — replaces \
             trace ids while keeping span ids.",
            c.trace_id, r.trace_id
        ),
        LikelyCause::UnexportedParent if enclosing => format!(
            "{caller} → {callee}: {calls} carried the trace context, but the client span of \
             {caller} that {callee} names as parent was never stored, so {callee}'s spans hang \
             loose in the trace. {caller} propagates context on a call it does not trace, or \
             the span was dropped on export (exporter queue full, export failed, or sent to \
             another collector)."
        ),
        LikelyCause::UnexportedParent if r.trace_id == c.trace_id => format!(
            "{caller} → {callee}: {calls} carried the trace context, but the span {callee} \
             names as parent is not {caller}'s client span and was never stored. A hop between \
             them — a proxy, a mesh sidecar, an uninstrumented service or an inner client span \
             — propagated the context under its own span id without exporting its span, or \
             the span was dropped on export."
        ),
        LikelyCause::UnexportedParent => format!(
            "{caller} → {callee}: {calls} reached {callee} with a parent from a trace that was \
             never stored: something between them (a proxy or mesh with its own tracer, or a \
             service exporting elsewhere) started its own trace, and its spans never arrived. \
             The header reached {callee}; the parent span was never exported."
        ),
        LikelyCause::LateExport => format!(
            "{caller} → {callee}: {calls} ended less than {} before this analysis and name a \
             parent span that has not arrived yet; it may still be in an exporter's queue. \
             Run the analysis again later: if the parent is still missing, it was never \
             exported.",
            format_duration(opts.late_export_grace_nanos)
        ),
    };
    (message, evidence, blamed)
}
