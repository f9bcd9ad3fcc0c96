//! Property tests: every formatter's output parses back to the same value, and no parser
//! panics on arbitrary input.

use proptest::collection::vec;
use proptest::prelude::*;
use stitch_propagation::{
    B3, B3Context, Baggage, BaggageMember, BaggageProperty, Carrier, Format, JaegerContext,
    JaegerFlags, Propagator, Sampling, SpanContext, SpanId, TraceFlags, TraceId, TraceParent,
    TraceState, translate,
};

fn trace_id() -> impl Strategy<Value = TraceId> {
    prop_oneof![
        (1..=u128::MAX).prop_map(TraceId::from_u128),
        (1..=u64::MAX).prop_map(TraceId::from_u64),
    ]
}

fn span_id() -> impl Strategy<Value = SpanId> {
    (1..=u64::MAX).prop_map(SpanId::from_u64)
}

fn sampling() -> impl Strategy<Value = Option<Sampling>> {
    prop_oneof![
        Just(None),
        Just(Some(Sampling::Deny)),
        Just(Some(Sampling::Accept)),
        Just(Some(Sampling::Debug)),
    ]
}

fn ts_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z0-9][a-z0-9_*/@-]{0,40}",
        4 => "[a-z0-9][a-z0-9_*/-]{0,20}@[a-z][a-z0-9_*/-]{0,13}",
        1 => "[a-z]{256}",
    ]
}

fn ts_value() -> impl Strategy<Value = String> {
    // Printable ASCII except ',' and '=', not ending with a space.
    prop_oneof![
        12 => "[ -+\\--<>-~]{0,40}[!-+\\--<>-~]",
        1 => "[!-+\\--<>-~]{256}",
    ]
}

fn trace_state() -> impl Strategy<Value = TraceState> {
    vec((ts_key(), ts_value()), 0..=40).prop_map(|members| {
        let mut ts = TraceState::new();
        for (k, v) in members.into_iter().rev() {
            ts.insert(&k, &v).expect("generated members are valid");
        }
        ts
    })
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}"
}

fn baggage() -> impl Strategy<Value = Baggage> {
    let property = (token(), proptest::option::of(any::<String>()))
        .prop_map(|(k, v)| BaggageProperty::new(&k, v.as_deref()).expect("token key"));
    let member = (token(), any::<String>(), vec(property, 0..3)).prop_map(|(k, v, props)| {
        props.into_iter().fold(
            BaggageMember::new(&k, &v).expect("token key"),
            BaggageMember::with_property,
        )
    });
    vec(member, 0..12).prop_map(|members| {
        let mut bag = Baggage::new();
        for m in members {
            bag.push(m);
        }
        bag
    })
}

fn b3_context() -> impl Strategy<Value = B3Context> {
    (
        trace_id(),
        span_id(),
        proptest::option::of(span_id()),
        sampling(),
    )
        .prop_map(|(trace_id, span_id, parent_span_id, sampling)| B3Context {
            trace_id,
            span_id,
            parent_span_id,
            sampling,
        })
}

fn span_context() -> impl Strategy<Value = SpanContext> {
    (
        trace_id(),
        span_id(),
        proptest::option::of(span_id()),
        sampling(),
        any::<bool>(),
        trace_state(),
    )
        .prop_map(
            |(trace_id, span_id, parent_span_id, sampling, random, trace_state)| SpanContext {
                trace_id,
                span_id,
                parent_span_id,
                sampling,
                random_trace_id: random,
                trace_state,
            },
        )
}

proptest! {
    #[test]
    fn traceparent_parses_what_it_formats(t in trace_id(), p in span_id(), flags in any::<u8>()) {
        let tp = TraceParent::new(t, p, TraceFlags::new(flags));
        let text = tp.to_string();
        prop_assert_eq!(text.len(), 55);
        prop_assert_eq!(TraceParent::parse(&text).unwrap(), tp);
    }

    #[test]
    fn a_future_version_with_extra_fields_parses_to_the_same_ids(
        t in trace_id(), p in span_id(), flags in any::<u8>(), version in 1u8..0xff, extra in "(-[a-z0-9.]{0,10}){0,3}"
    ) {
        let text = format!("{version:02x}-{t}-{p}-{flags:02x}{extra}");
        let tp = TraceParent::parse(&text).unwrap();
        prop_assert_eq!(tp.trace_id, t);
        prop_assert_eq!(tp.parent_id, p);
        prop_assert_eq!(tp.flags, TraceFlags::new(flags).known_only());
    }

    #[test]
    fn tracestate_parses_what_it_formats(ts in trace_state()) {
        prop_assert!(ts.len() <= 32);
        let text = ts.to_string();
        prop_assert_eq!(&TraceState::parse_strict(&text).unwrap(), &ts);
        prop_assert_eq!(TraceState::parse(&text).unwrap(), ts);
    }

    #[test]
    fn tracestate_split_across_headers_combines_to_the_same_list(ts in trace_state(), split in any::<prop::sample::Index>()) {
        let members: Vec<String> = ts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let at = if members.is_empty() { 0 } else { split.index(members.len() + 1) };
        let (a, b) = members.split_at(at);
        let (a, b) = (a.join(","), b.join(","));
        prop_assert_eq!(TraceState::from_header_values([a.as_str(), b.as_str()]).unwrap(), ts);
    }

    #[test]
    fn tracestate_truncation_keeps_whole_members_within_the_limit(ts in trace_state(), max in 0usize..2000) {
        let mut t = ts.clone();
        t.truncate_to_len(max);
        prop_assert!(t.to_string().len() <= max);
        for (k, v) in t.iter() {
            prop_assert_eq!(ts.get(k), Some(v));
        }
    }

    #[test]
    fn baggage_parses_what_it_formats(bag in baggage()) {
        let text = bag.to_string();
        prop_assert!(text.is_ascii());
        prop_assert_eq!(&Baggage::parse(&text).unwrap(), &bag);
        prop_assert_eq!(Baggage::parse_lenient(&text), bag);
    }

    #[test]
    fn b3_single_parses_what_it_formats(ctx in b3_context()) {
        let b3 = B3::Context(ctx);
        prop_assert_eq!(B3::parse_single(&b3.to_string()).unwrap(), b3);
    }

    #[test]
    fn b3_multi_extracts_what_it_injects(ctx in b3_context()) {
        let b3 = B3::Context(ctx);
        let mut headers: Vec<(String, String)> = Vec::new();
        b3.inject_multi(&mut headers);
        prop_assert_eq!(B3::extract_multi(&headers).unwrap(), Some(b3));
    }

    #[test]
    fn jaeger_parses_what_it_formats(
        t in trace_id(), s in span_id(), p in proptest::option::of(span_id()), flags in any::<u8>()
    ) {
        let ctx = JaegerContext { trace_id: t, span_id: s, parent_span_id: p, flags: JaegerFlags::new(flags) };
        let text = ctx.to_string();
        prop_assert_eq!(JaegerContext::parse(&text).unwrap(), ctx);
        // Some clients URL-encode the colons.
        prop_assert_eq!(JaegerContext::parse(&text.replace(':', "%3A")).unwrap(), ctx);
        // Others omit leading zeros.
        let short = format!("{:x}:{:x}:{:x}:{:x}", t.to_u128(), s.to_u64(), p.map_or(0, SpanId::to_u64), flags);
        prop_assert_eq!(JaegerContext::parse(&short).unwrap(), ctx);
    }

    #[test]
    fn the_propagator_extracts_what_it_injects_in_each_format(ctx in span_context(), bag in baggage()) {
        // W3C carries everything but the parent span id and a deferred decision.
        let mut h: Vec<(String, String)> = Vec::new();
        Propagator::default().inject(&ctx, &bag, &mut h);
        let found = Propagator::default().extract(&h);
        let got = found.context.unwrap();
        prop_assert_eq!(got.trace_id, ctx.trace_id);
        prop_assert_eq!(got.span_id, ctx.span_id);
        prop_assert_eq!(got.is_sampled(), ctx.is_sampled());
        prop_assert_eq!(got.random_trace_id, ctx.random_trace_id);
        prop_assert_eq!(&got.trace_state, &ctx.trace_state);
        prop_assert_eq!(&found.baggage, &bag);

        // B3 carries the parent and the exact decision, including defer.
        for format in [Format::B3Single, Format::B3Multi] {
            let mut h: Vec<(String, String)> = Vec::new();
            Propagator::default().with_inject(&[format]).inject(&ctx, &bag, &mut h);
            let found = Propagator::default().extract(&h);
            prop_assert_eq!(found.source, Some(format));
            let got = found.context.unwrap();
            prop_assert_eq!((got.trace_id, got.span_id, got.parent_span_id, got.sampling),
                (ctx.trace_id, ctx.span_id, ctx.parent_span_id, ctx.sampling));
        }

        // Jaeger carries the parent; defer becomes deny.
        let mut h: Vec<(String, String)> = Vec::new();
        Propagator::default().with_inject(&[Format::Jaeger]).inject(&ctx, &bag, &mut h);
        let got = Propagator::default().extract(&h).context.unwrap();
        prop_assert_eq!((got.trace_id, got.span_id, got.parent_span_id), (ctx.trace_id, ctx.span_id, ctx.parent_span_id));
        prop_assert_eq!(got.sampling, Some(ctx.sampling.unwrap_or(Sampling::Deny)));
    }

    #[test]
    fn translating_b3_to_w3c_and_back_keeps_ids_and_the_sampled_decision(ctx in b3_context()) {
        let mut h: Vec<(String, String)> = Vec::new();
        B3::Context(ctx).inject_single(&mut h);
        let w3c = translate(&h, &[Format::TraceContext]);
        let back = translate(&w3c, &[Format::B3Single]);
        let B3::Context(got) = B3::parse_single(back.get("b3").unwrap()).unwrap() else {
            return Err(TestCaseError::fail("expected identifiers"));
        };
        prop_assert_eq!((got.trace_id, got.span_id), (ctx.trace_id, ctx.span_id));
        let sampled = ctx.sampling.is_some_and(Sampling::is_sampled);
        prop_assert_eq!(got.sampling, Some(Sampling::from_sampled(sampled)));
    }

    #[test]
    fn no_parser_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = TraceParent::parse(&s);
        let _ = TraceState::parse(&s);
        let _ = TraceState::parse_strict(&s);
        let _ = Baggage::parse(&s);
        let _ = Baggage::parse_lenient(&s);
        let _ = B3::parse_single(&s);
        let _ = JaegerContext::parse(&s);
    }

    #[test]
    fn no_parser_panics_on_header_like_text(s in "[0-9a-fA-F:;,=%@ \t.-]{0,80}") {
        let _ = TraceParent::parse(&s);
        let _ = TraceState::parse(&s);
        let _ = Baggage::parse_lenient(&s);
        let _ = B3::parse_single(&s);
        let _ = JaegerContext::parse(&s);
        let headers: Vec<(String, String)> = ["traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "uber-trace-id", "baggage", "uberctx-k"]
            .iter()
            .map(|n| ((*n).to_owned(), s.clone()))
            .collect();
        let _ = Propagator::default().extract(&headers);
    }
}

#[test]
fn a_header_map_carrier_works_with_the_propagator_when_the_http_feature_is_on() {
    #[cfg(feature = "http")]
    {
        let mut map = http::HeaderMap::new();
        map.insert(
            "TraceParent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let found = Propagator::default().extract(&map);
        let child = found.context.unwrap().child();
        let mut out = http::HeaderMap::new();
        Propagator::default().inject(&child, &found.baggage, &mut out);
        assert_eq!(
            Carrier::get(&out, "traceparent"),
            Some(child.to_traceparent().to_string().as_str())
        );
    }
}
