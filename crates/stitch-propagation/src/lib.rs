//! Standards-exact trace context propagation.
//!
//! A trace survives a network hop only if the caller writes its context into the request
//! headers and the callee reads it back, by the same rules. This crate implements those rules
//! for the formats in use today, with no dependency (the optional `http` feature adds
//! [`Carrier`] for `http::HeaderMap`):
//!
//! | format | module | headers |
//! |---|---|---|
//! | W3C Trace Context Level 2 | [`traceparent`], [`tracestate`] | `traceparent`, `tracestate` |
//! | W3C Baggage | [`baggage`] | `baggage` |
//! | Zipkin B3 | [`b3`] | `b3`, `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`, `X-B3-Sampled`, `X-B3-Flags` |
//! | Jaeger | [`jaeger`] | `uber-trace-id`, `uberctx-*` |
//!
//! Each format has a parser and a formatter (`parse(format(x)) == x` is property-tested, and
//! every parser is fuzzed). On top, a [`Propagator`] extracts whichever formats a request
//! carries, with a documented precedence (see [`composite`]), and injects one or several;
//! [`translate`] re-encodes headers from one format into another.
//!
//! ```
//! use stitch_propagation::{Format, Propagator, SpanContext};
//!
//! // Incoming request headers (any [`Carrier`]: a Vec of pairs, a map, an http::HeaderMap).
//! let incoming = vec![
//!     ("traceparent".to_string(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string()),
//!     ("tracestate".to_string(), "congo=t61rcWkgMzE".to_string()),
//!     ("baggage".to_string(), "userId=alice".to_string()),
//! ];
//! let propagator = Propagator::default();
//! let extracted = propagator.extract(&incoming);
//!
//! // Continue the trace (or start one if the request carried no valid context).
//! let mut span = match &extracted.context {
//!     Some(parent) => parent.child(),
//!     None => SpanContext::new_root(true),
//! };
//! span.trace_state.insert("rojo", &span.span_id.to_string())?;
//!
//! // Outgoing request headers.
//! let mut outgoing: Vec<(String, String)> = Vec::new();
//! propagator.inject(&span, &extracted.baggage, &mut outgoing);
//! assert_eq!(outgoing[0].1, format!("00-0af7651916cd43dd8448eb211c80319c-{}-01", span.span_id));
//! assert_eq!(outgoing[1].1, format!("rojo={},congo=t61rcWkgMzE", span.span_id));
//! assert_eq!(outgoing[2].1, "userId=alice");
//! # Ok::<(), stitch_propagation::ParseError>(())
//! ```

#![warn(missing_docs)]

pub mod b3;
pub mod baggage;
pub mod carrier;
pub mod composite;
mod error;
mod ids;
pub mod jaeger;
mod percent;
mod random;
pub mod traceparent;
pub mod tracestate;

pub use b3::{B3, B3Context};
pub use baggage::{Baggage, BaggageMember, BaggageProperty};
pub use carrier::Carrier;
pub use composite::{Extracted, Format, Propagator, SpanContext, translate};
pub use error::{ParseError, Reason};
pub use ids::{Sampling, SpanId, TraceId};
pub use jaeger::{JaegerContext, JaegerFlags};
pub use traceparent::{TraceFlags, TraceParent};
pub use tracestate::TraceState;
