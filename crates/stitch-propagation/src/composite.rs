//! One context type for every format, a composite propagator, and translation between
//! formats.
//!
//! # Extraction precedence
//!
//! A request may carry several formats at once (a proxy adds B3 next to W3C, a migration
//! sends both). [`Propagator::extract`] takes the first format, in this order, that yields a
//! valid context:
//!
//! 1. **W3C `traceparent`** (+ `tracestate`). It is the standard, it carries the most
//!    (tracestate, the random-trace-id flag), and a tracer that writes several formats is in
//!    practice a W3C tracer writing legacy headers for compatibility; OpenTelemetry also
//!    defaults to it.
//! 2. **B3 single `b3`**, then 3. **B3 multiple `X-B3-*`**: the B3 spec says the single header
//!    takes precedence over the multiple headers. When a `b3` header is present (even one that
//!    only carries a sampling decision, or an invalid one) the `X-B3-*` headers are not read.
//! 4. **Jaeger `uber-trace-id`**: the oldest and least used of the four.
//!
//! A format that is present but invalid is skipped (and reported in
//! [`Extracted::rejected`]), so a broken `traceparent` next to a valid `b3` still continues
//! the trace. When no format yields a context, W3C's rule applies: the receiver starts a new
//! trace. A B3 sampling decision sent without identifiers (`b3: 0`) is kept in
//! [`Extracted::sampling`] for the new trace to honour.
//!
//! Baggage is merged: W3C `baggage` members first, then `uberctx-*` members whose key is not
//! already present.

use std::fmt;
use std::str::FromStr;

use crate::b3::{self, B3, B3Context};
use crate::baggage::{self, Baggage};
use crate::carrier::Carrier;
use crate::error::{ParseError, Reason};
use crate::ids::{Sampling, SpanId, TraceId};
use crate::jaeger::{self, JaegerContext, JaegerFlags};
use crate::traceparent::{TRACEPARENT, TraceFlags, TraceParent};
use crate::tracestate::{TRACESTATE, TraceState};

/// A propagation format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// W3C Trace Context: `traceparent` and `tracestate`.
    TraceContext,
    /// B3 single header `b3`.
    B3Single,
    /// B3 multiple headers `X-B3-*`.
    B3Multi,
    /// Jaeger `uber-trace-id`.
    Jaeger,
    /// W3C `baggage`.
    Baggage,
    /// Jaeger `uberctx-*` baggage.
    JaegerBaggage,
}

impl Format {
    /// Every format, trace-context formats in extraction precedence, then baggage formats.
    pub const ALL: [Format; 6] = [
        Format::TraceContext,
        Format::B3Single,
        Format::B3Multi,
        Format::Jaeger,
        Format::Baggage,
        Format::JaegerBaggage,
    ];

    /// The name used by [`Format::from_str`] and in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Format::TraceContext => "tracecontext",
            Format::B3Single => "b3",
            Format::B3Multi => "b3multi",
            Format::Jaeger => "jaeger",
            Format::Baggage => "baggage",
            Format::JaegerBaggage => "jaeger-baggage",
        }
    }

    /// Whether this format carries a trace context (as opposed to baggage).
    pub const fn is_trace_context(self) -> bool {
        !matches!(self, Format::Baggage | Format::JaegerBaggage)
    }

    /// The header names the format writes (`uberctx-` is a prefix).
    pub const fn fields(self) -> &'static [&'static str] {
        match self {
            Format::TraceContext => &[TRACEPARENT, TRACESTATE],
            Format::B3Single => &[b3::B3],
            Format::B3Multi => &b3::MULTI_HEADERS,
            Format::Jaeger => &[jaeger::UBER_TRACE_ID],
            Format::Baggage => &[baggage::BAGGAGE],
            Format::JaegerBaggage => &[jaeger::UBERCTX_PREFIX],
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ParseError;
    /// Accepts the [`Format::name`]s and the usual aliases (`w3c`, `b3single`, `b3-multi`,
    /// `uber`, `uberctx`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "tracecontext" | "w3c" | "traceparent" => Format::TraceContext,
            "b3" | "b3single" | "b3-single" => Format::B3Single,
            "b3multi" | "b3-multi" => Format::B3Multi,
            "jaeger" | "uber" | "uber-trace-id" => Format::Jaeger,
            "baggage" => Format::Baggage,
            "jaeger-baggage" | "uberctx" => Format::JaegerBaggage,
            _ => {
                return Err(ParseError::new(
                    "format",
                    "",
                    Reason::Invalid(
                        "unknown format (expected tracecontext, b3, b3multi, jaeger, baggage or jaeger-baggage)",
                    ),
                ));
            }
        })
    }
}

/// A remote span context in a format-neutral form.
///
/// ```
/// use stitch_propagation::{Format, Propagator, SpanContext};
///
/// // A service that receives a request continues the trace with a child span...
/// let incoming = vec![(
///     "traceparent".to_string(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
/// )];
/// let extracted = Propagator::default().extract(&incoming);
/// let parent = extracted.context.unwrap_or_else(|| SpanContext::new_root(true));
/// let span = parent.child();
///
/// // ...and sends it downstream in the formats it was asked to.
/// let mut outgoing: Vec<(String, String)> = Vec::new();
/// Propagator::default()
///     .with_inject(&[Format::TraceContext, Format::B3Single])
///     .inject(&span, &extracted.baggage, &mut outgoing);
/// assert_eq!(outgoing[0].1, format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", span.span_id));
/// assert_eq!(outgoing[1].1, format!("4bf92f3577b34da6a3ce929d0e0e4736-{}-1-00f067aa0ba902b7", span.span_id));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// The trace id.
    pub trace_id: TraceId,
    /// The span id (for an extracted context: the caller's span, W3C's `parent-id`).
    pub span_id: SpanId,
    /// The parent of `span_id`, when known (B3 and Jaeger carry it; W3C does not).
    pub parent_span_id: Option<SpanId>,
    /// The upstream sampling decision; `None` defers it (B3 only).
    pub sampling: Option<Sampling>,
    /// The W3C random-trace-id flag.
    pub random_trace_id: bool,
    /// The W3C `tracestate` (empty when the context came from another format).
    pub trace_state: TraceState,
}

impl SpanContext {
    /// A context from two ids, with no sampling decision and no tracestate.
    pub fn new(trace_id: TraceId, span_id: SpanId) -> Self {
        SpanContext {
            trace_id,
            span_id,
            parent_span_id: None,
            sampling: None,
            random_trace_id: false,
            trace_state: TraceState::new(),
        }
    }

    /// A new trace: random trace and span ids (so the random-trace-id flag is set) and the
    /// given sampling decision.
    pub fn new_root(sampled: bool) -> Self {
        SpanContext {
            sampling: Some(Sampling::from_sampled(sampled)),
            random_trace_id: true,
            ..SpanContext::new(TraceId::generate(), SpanId::generate())
        }
    }

    /// A child span with a new random span id (see [`SpanContext::child_with_id`]).
    pub fn child(&self) -> Self {
        self.child_with_id(SpanId::generate())
    }

    /// A child span: same trace id, sampling decision, random flag and tracestate; this
    /// context's span becomes the parent.
    pub fn child_with_id(&self, span_id: SpanId) -> Self {
        SpanContext {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: Some(self.span_id),
            sampling: self.sampling,
            random_trace_id: self.random_trace_id,
            trace_state: self.trace_state.clone(),
        }
    }

    /// Whether the upstream decision is to record (accept or debug).
    pub fn is_sampled(&self) -> bool {
        self.sampling.is_some_and(Sampling::is_sampled)
    }

    /// Whether both ids are valid.
    pub fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }

    /// From a W3C `traceparent` and `tracestate`.
    pub fn from_trace_context(tp: &TraceParent, ts: TraceState) -> Self {
        SpanContext {
            sampling: Some(Sampling::from_sampled(tp.flags.is_sampled())),
            random_trace_id: tp.flags.is_random(),
            trace_state: ts,
            ..SpanContext::new(tp.trace_id, tp.parent_id)
        }
    }

    /// The W3C `traceparent` (only the defined flags; a deferred decision is "not sampled",
    /// the spec's default).
    pub fn to_traceparent(&self) -> TraceParent {
        let flags = TraceFlags::NONE
            .with_sampled(self.is_sampled())
            .with_random(self.random_trace_id);
        TraceParent::new(self.trace_id, self.span_id, flags)
    }

    /// From B3 identifiers.
    pub fn from_b3(ctx: &B3Context) -> Self {
        SpanContext {
            parent_span_id: ctx.parent_span_id,
            sampling: ctx.sampling,
            ..SpanContext::new(ctx.trace_id, ctx.span_id)
        }
    }

    /// The B3 identifiers.
    pub fn to_b3(&self) -> B3 {
        B3::Context(B3Context {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            sampling: self.sampling,
        })
    }

    /// From a Jaeger `uber-trace-id`.
    pub fn from_jaeger(ctx: &JaegerContext) -> Self {
        let sampling = if ctx.flags.is_debug() {
            Sampling::Debug
        } else {
            Sampling::from_sampled(ctx.flags.is_sampled())
        };
        SpanContext {
            parent_span_id: ctx.parent_span_id,
            sampling: Some(sampling),
            ..SpanContext::new(ctx.trace_id, ctx.span_id)
        }
    }

    /// The Jaeger `uber-trace-id` (debug is written as sampled + debug; a deferred decision
    /// as not sampled).
    pub fn to_jaeger(&self) -> JaegerContext {
        let bits = match self.sampling {
            Some(Sampling::Debug) => JaegerFlags::SAMPLED.bits() | JaegerFlags::DEBUG.bits(),
            Some(Sampling::Accept) => JaegerFlags::SAMPLED.bits(),
            Some(Sampling::Deny) | None => 0,
        };
        JaegerContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            flags: JaegerFlags::new(bits),
        }
    }
}

/// What [`Propagator::extract`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The remote parent, from the first format (by precedence) that had a valid one. `None`
    /// means the receiver starts a new trace.
    pub context: Option<SpanContext>,
    /// The format `context` came from.
    pub source: Option<Format>,
    /// A sampling decision sent without identifiers (B3 `b3: 0`, `X-B3-Sampled: 1` alone),
    /// reported only when `context` is `None`.
    pub sampling: Option<Sampling>,
    /// The baggage, W3C first, then Jaeger's.
    pub baggage: Baggage,
    /// Formats that were present but invalid, with the reason (diagnostics). A `tracestate`
    /// that was discarded while its `traceparent` was used is reported here too.
    pub rejected: Vec<(Format, ParseError)>,
}

/// Extracts and injects several formats at once.
///
/// The default extracts every format (precedence in the [module docs](self)) and injects W3C
/// Trace Context and W3C baggage.
///
/// ```
/// use stitch_propagation::{Format, Propagator};
///
/// let headers = vec![
///     ("b3".to_string(), "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1".to_string()),
///     ("X-B3-TraceId".to_string(), "463ac35c9f6413ad".to_string()),
///     ("X-B3-SpanId".to_string(), "a2fb4a1d1a96d312".to_string()),
/// ];
/// let found = Propagator::default().extract(&headers);
/// assert_eq!(found.source, Some(Format::B3Single)); // the single header wins
/// assert_eq!(found.context.unwrap().trace_id.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Propagator {
    extract: Vec<Format>,
    inject: Vec<Format>,
}

impl Default for Propagator {
    fn default() -> Self {
        Propagator {
            extract: Format::ALL.to_vec(),
            inject: vec![Format::TraceContext, Format::Baggage],
        }
    }
}

impl Propagator {
    /// A propagator that extracts `extract` (trace-context formats in the order given, except
    /// that B3 single always comes before B3 multi) and injects `inject`.
    pub fn new(extract: &[Format], inject: &[Format]) -> Self {
        Propagator::default()
            .with_extract(extract)
            .with_inject(inject)
    }

    /// This propagator extracting only `formats`.
    pub fn with_extract(mut self, formats: &[Format]) -> Self {
        let mut list: Vec<Format> = Vec::new();
        for f in formats {
            if !list.contains(f) {
                list.push(*f);
            }
        }
        // B3's own rule: the single header takes precedence over the multiple headers.
        if let (Some(s), Some(m)) = (
            list.iter().position(|f| *f == Format::B3Single),
            list.iter().position(|f| *f == Format::B3Multi),
        ) && m < s
        {
            list.swap(s, m);
        }
        self.extract = list;
        self
    }

    /// This propagator injecting `formats`.
    pub fn with_inject(mut self, formats: &[Format]) -> Self {
        let mut list: Vec<Format> = Vec::new();
        for f in formats {
            if !list.contains(f) {
                list.push(*f);
            }
        }
        self.inject = list;
        self
    }

    /// The formats extracted, in precedence order.
    pub fn extract_formats(&self) -> &[Format] {
        &self.extract
    }

    /// The formats injected.
    pub fn inject_formats(&self) -> &[Format] {
        &self.inject
    }

    /// Reads a context and baggage from `carrier`.
    pub fn extract<C: Carrier + ?Sized>(&self, carrier: &C) -> Extracted {
        let mut out = Extracted::default();
        let mut b3_single_seen = false;
        for &format in &self.extract {
            if out.context.is_some() && format.is_trace_context() {
                continue;
            }
            match format {
                Format::TraceContext => {
                    let values = carrier.get_all(TRACEPARENT);
                    let tp = match values.as_slice() {
                        [] => continue,
                        [one] => TraceParent::parse(one),
                        _ => Err(ParseError::new(TRACEPARENT, "", Reason::DuplicateHeader)),
                    };
                    match tp {
                        Ok(tp) => {
                            // Only now may tracestate be parsed; its failure does not affect
                            // traceparent.
                            let ts =
                                match TraceState::from_header_values(carrier.get_all(TRACESTATE)) {
                                    Ok(ts) => ts,
                                    Err(e) => {
                                        out.rejected.push((format, e));
                                        TraceState::new()
                                    }
                                };
                            out.context = Some(SpanContext::from_trace_context(&tp, ts));
                            out.source = Some(format);
                        }
                        Err(e) => out.rejected.push((format, e)),
                    }
                }
                Format::B3Single => match B3::extract_single(carrier) {
                    Ok(None) => {}
                    Ok(Some(b3)) => {
                        b3_single_seen = true;
                        self.take_b3(b3, format, &mut out);
                    }
                    Err(e) => {
                        b3_single_seen = true;
                        out.rejected.push((format, e));
                    }
                },
                Format::B3Multi => {
                    if b3_single_seen {
                        continue;
                    }
                    match B3::extract_multi(carrier) {
                        Ok(None) => {}
                        Ok(Some(b3)) => self.take_b3(b3, format, &mut out),
                        Err(e) => out.rejected.push((format, e)),
                    }
                }
                Format::Jaeger => match JaegerContext::extract(carrier) {
                    Ok(None) => {}
                    Ok(Some(ctx)) => {
                        out.context = Some(SpanContext::from_jaeger(&ctx));
                        out.source = Some(format);
                    }
                    Err(e) => out.rejected.push((format, e)),
                },
                Format::Baggage => {
                    let values = carrier.get_all(baggage::BAGGAGE);
                    if values.is_empty() {
                        continue;
                    }
                    let joined = values.join(",");
                    if let Err(e) = Baggage::parse(&joined) {
                        out.rejected.push((format, e));
                    }
                    for m in &Baggage::parse_lenient(&joined) {
                        out.baggage.push(m.clone());
                    }
                }
                Format::JaegerBaggage => {
                    for m in &jaeger::extract_baggage(carrier) {
                        if out.baggage.member(m.key()).is_none() {
                            out.baggage.push(m.clone());
                        }
                    }
                }
            }
        }
        if out.context.is_some() {
            out.sampling = None;
        }
        out.baggage
            .truncate_to_limits(baggage::MAX_MEMBERS, baggage::MAX_BYTES);
        out
    }

    fn take_b3(&self, b3: B3, format: Format, out: &mut Extracted) {
        match b3 {
            B3::Context(ctx) => {
                out.context = Some(SpanContext::from_b3(&ctx));
                out.source = Some(format);
            }
            B3::SamplingOnly(s) => {
                if out.sampling.is_none() {
                    out.sampling = Some(s);
                }
            }
        }
    }

    /// Writes `context` and `baggage` into `carrier` in every inject format. Empty tracestate
    /// and empty baggage are not written; stale headers of the injected formats are removed.
    pub fn inject<C: Carrier + ?Sized>(
        &self,
        context: &SpanContext,
        baggage: &Baggage,
        carrier: &mut C,
    ) {
        for &format in &self.inject {
            match format {
                Format::TraceContext => {
                    carrier.set(TRACEPARENT, &context.to_traceparent().to_string());
                    if context.trace_state.is_empty() {
                        carrier.remove(TRACESTATE);
                    } else {
                        carrier.set(TRACESTATE, &context.trace_state.to_string());
                    }
                }
                Format::B3Single => context.to_b3().inject_single(carrier),
                Format::B3Multi => context.to_b3().inject_multi(carrier),
                Format::Jaeger => context.to_jaeger().inject(carrier),
                Format::Baggage => {
                    let mut bag = baggage.clone();
                    bag.truncate_to_limits(baggage::MAX_MEMBERS, baggage::MAX_BYTES);
                    if bag.is_empty() {
                        carrier.remove(baggage::BAGGAGE);
                    } else {
                        carrier.set(baggage::BAGGAGE, &bag.to_string());
                    }
                }
                Format::JaegerBaggage => jaeger::inject_baggage(baggage, carrier),
            }
        }
    }
}

/// Re-encodes the context and baggage found in `headers` (by the default precedence) in the
/// formats `to`. The span is not changed: this is a translation, not a hop. Returns the new
/// headers, lowercase names; empty when `headers` carry nothing.
///
/// ```
/// use stitch_propagation::{translate, Format};
///
/// let b3 = vec![("b3".to_string(), "463ac35c9f6413ad-a2fb4a1d1a96d312-1".to_string())];
/// let w3c = translate(&b3, &[Format::TraceContext]);
/// assert_eq!(
///     w3c,
///     vec![("traceparent".to_string(), "00-0000000000000000463ac35c9f6413ad-a2fb4a1d1a96d312-01".to_string())]
/// );
/// ```
pub fn translate<C: Carrier + ?Sized>(headers: &C, to: &[Format]) -> Vec<(String, String)> {
    let found = Propagator::default().extract(headers);
    let propagator = Propagator::default().with_inject(to);
    let mut out: Vec<(String, String)> = Vec::new();
    match (&found.context, found.sampling) {
        (Some(ctx), _) => propagator.inject(ctx, &found.baggage, &mut out),
        (None, sampling) => {
            // No identifiers: only baggage and a B3 sampling decision can be carried over.
            let only_baggage: Vec<Format> = to
                .iter()
                .copied()
                .filter(|f| !f.is_trace_context())
                .collect();
            if let Some(s) = sampling {
                for f in to {
                    match f {
                        Format::B3Single => B3::SamplingOnly(s).inject_single(&mut out),
                        Format::B3Multi => B3::SamplingOnly(s).inject_multi(&mut out),
                        _ => {}
                    }
                }
            }
            let placeholder = SpanContext::new(TraceId::INVALID, SpanId::INVALID);
            Propagator::default().with_inject(&only_baggage).inject(
                &placeholder,
                &found.baggage,
                &mut out,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn traceparent_wins_over_every_other_format() {
        let h = headers(&[
            ("uber-trace-id", "1:2:0:1"),
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
            ("traceparent", TP),
        ]);
        let found = Propagator::default().extract(&h);
        assert_eq!(found.source, Some(Format::TraceContext));
        assert_eq!(
            found.context.unwrap().trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn an_invalid_traceparent_falls_back_to_the_next_format_and_is_reported() {
        let h = headers(&[("traceparent", "00-xyz"), ("uber-trace-id", "abc:1:0:1")]);
        let found = Propagator::default().extract(&h);
        assert_eq!(found.source, Some(Format::Jaeger));
        assert_eq!(found.rejected.len(), 1);
        assert_eq!(found.rejected[0].0, Format::TraceContext);
    }

    #[test]
    fn two_traceparent_headers_are_invalid() {
        let h = headers(&[("traceparent", TP), ("traceparent", TP)]);
        let found = Propagator::default().extract(&h);
        assert!(found.context.is_none());
        assert_eq!(found.rejected[0].1.reason(), &Reason::DuplicateHeader);
    }

    #[test]
    fn tracestate_is_ignored_without_a_valid_traceparent() {
        let h = headers(&[("tracestate", "foo=1")]);
        assert!(Propagator::default().extract(&h).context.is_none());
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_without_affecting_traceparent() {
        let h = headers(&[("traceparent", TP), ("tracestate", "FOO=1")]);
        let found = Propagator::default().extract(&h);
        let ctx = found.context.unwrap();
        assert!(ctx.trace_state.is_empty());
        assert_eq!(found.rejected.len(), 1);
    }

    #[test]
    fn a_b3_single_header_hides_the_multi_headers_even_when_it_only_carries_sampling() {
        let h = headers(&[
            ("b3", "0"),
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
        ]);
        let found = Propagator::default().extract(&h);
        assert!(found.context.is_none());
        assert_eq!(found.sampling, Some(Sampling::Deny));
    }

    #[test]
    fn the_extract_order_keeps_b3_single_before_b3_multi() {
        let p = Propagator::default().with_extract(&[
            Format::B3Multi,
            Format::TraceContext,
            Format::B3Single,
        ]);
        assert_eq!(
            p.extract_formats(),
            &[Format::B3Single, Format::TraceContext, Format::B3Multi]
        );
    }

    #[test]
    fn baggage_from_w3c_and_jaeger_is_merged_w3c_first() {
        let h = headers(&[
            ("uberctx-a", "jaeger"),
            ("uberctx-b", "2"),
            ("baggage", "a=w3c"),
        ]);
        let bag = Propagator::default().extract(&h).baggage;
        assert_eq!(bag.to_string(), "a=w3c,b=2");
    }

    #[test]
    fn a_child_keeps_trace_id_sampling_random_flag_and_tracestate() {
        let h = headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            ),
            ("tracestate", "a=1"),
        ]);
        let parent = Propagator::default().extract(&h).context.unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(child.parent_span_id, Some(parent.span_id));
        assert_eq!(child.to_traceparent().flags.bits(), 0x03);
        assert_eq!(child.trace_state.get("a"), Some("1"));
    }

    #[test]
    fn translation_from_w3c_to_b3_multi_and_jaeger_keeps_ids_and_sampling() {
        let h = headers(&[("traceparent", TP), ("baggage", "user=alice")]);
        let out = translate(
            &h,
            &[Format::B3Multi, Format::Jaeger, Format::JaegerBaggage],
        );
        assert_eq!(
            out.get("x-b3-traceid"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(out.get("x-b3-spanid"), Some("00f067aa0ba902b7"));
        assert_eq!(out.get("x-b3-sampled"), Some("1"));
        assert_eq!(
            out.get("uber-trace-id"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:01")
        );
        assert_eq!(out.get("uberctx-user"), Some("alice"));
    }

    #[test]
    fn translation_from_b3_debug_to_jaeger_sets_sampled_and_debug() {
        let h = headers(&[
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-Flags", "1"),
        ]);
        let out = translate(&h, &[Format::Jaeger, Format::TraceContext]);
        assert_eq!(
            out.get("uber-trace-id"),
            Some("463ac35c9f6413ad:a2fb4a1d1a96d312:0:03")
        );
        assert_eq!(
            out.get("traceparent"),
            Some("00-0000000000000000463ac35c9f6413ad-a2fb4a1d1a96d312-01")
        );
    }

    #[test]
    fn a_deferred_b3_decision_becomes_not_sampled_in_w3c() {
        let h = headers(&[("b3", "463ac35c9f6413ad-a2fb4a1d1a96d312")]);
        let out = translate(&h, &[Format::TraceContext]);
        assert!(out.get("traceparent").unwrap().ends_with("-00"));
    }

    #[test]
    fn translating_a_sampling_only_decision_carries_it_to_b3_and_nothing_else() {
        let h = headers(&[("b3", "0"), ("baggage", "k=v")]);
        let out = translate(
            &h,
            &[Format::TraceContext, Format::B3Multi, Format::Baggage],
        );
        assert_eq!(out, headers(&[("x-b3-sampled", "0"), ("baggage", "k=v")]));
    }

    #[test]
    fn nothing_to_translate_gives_no_headers() {
        assert!(translate(&headers(&[("other", "x")]), &[Format::TraceContext]).is_empty());
    }

    #[test]
    fn injection_replaces_stale_headers_and_omits_empty_tracestate_and_baggage() {
        let mut h = headers(&[
            ("tracestate", "old=1"),
            ("baggage", "old=1"),
            ("traceparent", "stale"),
        ]);
        let ctx = SpanContext::new_root(true);
        Propagator::default().inject(&ctx, &Baggage::new(), &mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(
            h.get("traceparent"),
            Some(ctx.to_traceparent().to_string().as_str())
        );
    }

    #[test]
    fn formats_parse_from_their_names_and_aliases() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert_eq!("W3C".parse::<Format>().unwrap(), Format::TraceContext);
        assert!("zipkin".parse::<Format>().is_err());
    }
}
