//! The head stage: what runs on every received batch before the write-ahead log.
//!
//! It counts root spans for Jaeger remote sampling ([`RemoteSampler::observe_root`]) and, when
//! the head sampler keeps less than everything, drops the spans of traces it rejects and
//! writes the effective threshold into each kept span's `tracestate` (`ot=th:…`, as
//! OpenTelemetry specifies) so that RED metrics can be scaled. When the rate limiter makes the
//! probability an estimate, the span also gets [`HEAD_PROBABILITY_ATTRIBUTE`].
//!
//! Pure like the rest of the crate: the caller owns the samplers (and any lock around them)
//! and passes the time.

use stitch_model::{AnyValue, Batch, KeyValue, Span};

use crate::adaptive::jaeger::RemoteSampler;
use crate::head::{HeadSampler, encode_threshold};
use crate::weight::HEAD_PROBABILITY_ATTRIBUTE;

/// Counts every root span of `batch` (a span without a parent) for remote sampling.
pub fn count_roots(remote: &mut RemoteSampler, batch: &Batch, now_nanos: u64) {
    for rs in &batch.resource_spans {
        let service = rs.resource.service_name();
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            if span.parent_span_id.is_none() {
                remote.observe_root(
                    service,
                    &span.name,
                    span.trace_id,
                    &span.trace_state,
                    now_nanos,
                );
            }
        }
    }
}

/// Applies head sampling to `batch`: removes the spans of rejected traces and records the
/// probability on the kept ones. True when the batch changed.
pub fn head_sample(head: &mut HeadSampler, batch: &mut Batch, now_nanos: u64) -> bool {
    let mut changed = false;
    batch.retain_spans(|span| {
        let d = head.decide(span.trace_id, &span.trace_state, now_nanos);
        if !d.sampled {
            changed = true;
            return false;
        }
        changed |= record_head_probability(span, d.threshold, d.exact, d.probability);
        true
    });
    changed
}

/// Writes the effective threshold into the span's `tracestate` and, for an estimated
/// probability, the attribute. True when the span changed.
fn record_head_probability(span: &mut Span, threshold: u64, exact: bool, probability: f64) -> bool {
    let mut changed = false;
    if threshold > 0
        && let Some(ts) = with_threshold(&span.trace_state, &encode_threshold(threshold))
    {
        span.trace_state = ts;
        changed = true;
    }
    if !exact {
        span.attributes
            .retain(|kv| kv.key != HEAD_PROBABILITY_ATTRIBUTE);
        span.attributes.push(KeyValue {
            key: HEAD_PROBABILITY_ATTRIBUTE.to_owned(),
            value: AnyValue::Double(probability),
        });
        changed = true;
    }
    changed
}

/// `tracestate` with the `th` sub-key of its `ot` member set to `th` (the modified member
/// first, as W3C Trace Context asks), or `None` when it already says so.
pub fn with_threshold(tracestate: &str, th: &str) -> Option<String> {
    let mut members: Vec<&str> = tracestate
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    let ot = members
        .iter()
        .position(|m| m.split_once('=').is_some_and(|(k, _)| k.trim() == "ot"));
    let member = match ot {
        Some(i) => {
            let value = members[i].split_once('=').map_or("", |(_, v)| v.trim());
            let mut fields: Vec<String> = Vec::new();
            let mut found = false;
            for f in value.split(';').filter(|f| !f.is_empty()) {
                match f.strip_prefix("th:") {
                    Some(v) if v == th => return None,
                    Some(_) if !found => {
                        found = true;
                        fields.push(format!("th:{th}"));
                    }
                    Some(_) => {}
                    None => fields.push(f.to_owned()),
                }
            }
            if !found {
                fields.insert(0, format!("th:{th}"));
            }
            members.remove(i);
            format!("ot={}", fields.join(";"))
        }
        None => format!("ot=th:{th}"),
    };
    let mut out = member;
    for m in members {
        out.push(',');
        out.push_str(m);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplingConfig;

    #[test]
    fn the_threshold_goes_into_the_ot_member_which_moves_first() {
        assert_eq!(with_threshold("", "c").as_deref(), Some("ot=th:c"));
        assert_eq!(
            with_threshold("vendor=x,ot=rv:abcdefabcdefab", "c").as_deref(),
            Some("ot=th:c;rv:abcdefabcdefab,vendor=x")
        );
        assert_eq!(
            with_threshold("a=1, ot=th:8;x:1 ,b=2", "c").as_deref(),
            Some("ot=th:c;x:1,a=1,b=2")
        );
        assert_eq!(with_threshold("ot=th:c", "c"), None);
    }

    #[test]
    fn head_sampling_drops_whole_traces_and_records_the_threshold() {
        use stitch_model::{ResourceSpans, ScopeSpans, TraceId};
        let config = SamplingConfig::from_yaml("head: {percentage: 25}").unwrap();
        let mut head = HeadSampler::new(&config.head);
        // Keep when the low 56 bits are >= 0xc0000000000000 (25%).
        let keep = TraceId::from_halves(1, 0xd0_0000_0000_0000);
        let drop = TraceId::from_halves(2, 0x10_0000_0000_0000);
        let span = |t: TraceId| Span {
            trace_id: t,
            span_id: stitch_model::SpanId::from_u64(1),
            ..Default::default()
        };
        let mut batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: Default::default(),
                scope_spans: vec![ScopeSpans {
                    scope: Default::default(),
                    spans: vec![span(keep), span(drop), span(keep)],
                }],
            }],
        };
        assert!(head_sample(&mut head, &mut batch, 0));
        let spans: Vec<&Span> = batch.spans().map(|s| s.span).collect();
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|s| s.trace_id == keep));
        assert!(spans.iter().all(|s| s.trace_state == "ot=th:c"));
        // A batch of rejected traces only becomes empty.
        let mut batch = Batch {
            resource_spans: vec![ResourceSpans {
                resource: Default::default(),
                scope_spans: vec![ScopeSpans {
                    scope: Default::default(),
                    spans: vec![span(drop)],
                }],
            }],
        };
        assert!(head_sample(&mut head, &mut batch, 0));
        assert_eq!(batch.span_count(), 0);
        assert!(batch.resource_spans.is_empty());
    }
}
