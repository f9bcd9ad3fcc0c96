//! The cases: what is sent to the service under test and what must come back (a table).

use super::*;

pub(super) const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(super) const T2: &str = "0af7651916cd43dd8448eb211c80319c";
pub(super) const T64: &str = "463ac35c9f6413ad";
pub(super) const P: &str = "00f067aa0ba902b7";
pub(super) const PP: &str = "05e3ac9a4f6e3b90";

pub(super) fn tid(hex: &str) -> TraceId {
    if hex.len() == 16 {
        TraceId::from_u64(u64::from_str_radix(hex, 16).expect("a constant"))
    } else {
        hex.parse().expect("a constant")
    }
}

pub(super) fn sid(hex: &str) -> SpanId {
    hex.parse().expect("a constant")
}

pub(super) fn tp(flags: &str) -> String {
    format!("00-{T}-{P}-{flags}")
}

#[derive(Clone, Debug)]
pub(super) enum Expect {
    /// Same trace id, a new parent/span id.
    Continue { trace_id: TraceId, parent: SpanId },
    /// A new, valid trace id, none of `avoid`.
    Restart { avoid: Vec<TraceId> },
    /// The sampled decision.
    Sampled(bool),
    /// The W3C random-trace-id flag.
    Random(bool),
    /// These tracestate members, exactly.
    TsHas(Vec<(String, String)>),
    /// This tracestate key, any value.
    TsHasKey(String),
    /// None of these tracestate keys.
    TsLacks(Vec<String>),
    /// This many tracestate members.
    TsLen(usize),
    /// Every member of this baggage string (key, decoded value, properties).
    BaggageHas(String),
    /// Every callback has the same trace id.
    SameTraceId,
    /// Every callback has a different span id.
    DistinctSpanIds,
}

#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) suite: Suite,
    pub(super) name: String,
    pub(super) about: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) callbacks: usize,
    pub(super) expect: Vec<Expect>,
}

pub(super) struct CaseBuilder(pub(super) Case);

pub(super) fn case(suite: Suite, name: &str, about: &str) -> CaseBuilder {
    CaseBuilder(Case {
        suite,
        name: name.to_owned(),
        about: about.to_owned(),
        headers: Vec::new(),
        callbacks: 1,
        expect: Vec::new(),
    })
}

impl CaseBuilder {
    pub(super) fn header(mut self, name: &str, value: &str) -> Self {
        self.0.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub(super) fn callbacks(mut self, n: usize) -> Self {
        self.0.callbacks = n;
        self
    }
    pub(super) fn expect(mut self, e: Expect) -> Self {
        self.0.expect.push(e);
        self
    }
    pub(super) fn continues(self, trace_id: &str, parent: &str) -> Self {
        self.expect(Expect::Continue {
            trace_id: tid(trace_id),
            parent: sid(parent),
        })
    }
    pub(super) fn restarts(self, avoid: &[&str]) -> Self {
        self.expect(Expect::Restart {
            avoid: avoid.iter().map(|t| tid(t)).collect(),
        })
    }
    pub(super) fn sampled(self, s: bool) -> Self {
        self.expect(Expect::Sampled(s))
    }
    pub(super) fn ts_has(self, members: &[(&str, &str)]) -> Self {
        self.expect(Expect::TsHas(
            members
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
    }
    pub(super) fn ts_lacks(self, keys: &[&str]) -> Self {
        self.expect(Expect::TsLacks(
            keys.iter().map(|k| (*k).to_owned()).collect(),
        ))
    }
    pub(super) fn baggage_has(self, members: &str) -> Self {
        self.expect(Expect::BaggageHas(members.to_owned()))
    }
    pub(super) fn done(self) -> Case {
        self.0
    }
}

/// Every case, in the order they run.
pub(super) fn cases() -> Vec<Case> {
    use Suite::{B3, Baggage as Bag, Jaeger, Tracecontext as Tc, Tracestate as Ts};
    let zero = "0".repeat(32);
    let mut c = vec![
        // ---- traceparent: valid input is continued --------------------------------------
        case(
            Tc,
            "starts-a-trace-without-context",
            "no trace headers: the service starts a trace and sends a valid traceparent",
        )
        .done(),
        case(
            Tc,
            "continues-sampled",
            "a valid sampled traceparent: same trace id, new parent id, sampled",
        )
        .header("traceparent", &tp("01"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            Tc,
            "continues-not-sampled",
            "a valid unsampled traceparent: same trace id, new parent id, not sampled",
        )
        .header("traceparent", &tp("00"))
        .continues(T, P)
        .sampled(false)
        .done(),
        case(
            Tc,
            "keeps-random-flag",
            "Level 2 random-trace-id flag (02) is kept when continuing the trace",
        )
        .header("traceparent", &tp("02"))
        .continues(T, P)
        .expect(Expect::Random(true))
        .sampled(false)
        .done(),
        case(
            Tc,
            "keeps-sampled-and-random-flags",
            "flags 03: sampled and random are both kept",
        )
        .header("traceparent", &tp("03"))
        .continues(T, P)
        .expect(Expect::Random(true))
        .sampled(true)
        .done(),
        case(
            Tc,
            "clears-reserved-flags",
            "flags 09: sampled is kept, the reserved bit is not passed on",
        )
        .header("traceparent", &tp("09"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            Tc,
            "header-name-uppercase",
            "the header name TRACEPARENT is the same header",
        )
        .header("TRACEPARENT", &tp("01"))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "header-name-mixed-case",
            "the header name TrAcEpArEnT is the same header",
        )
        .header("TrAcEpArEnT", &tp("01"))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "optional-whitespace",
            "spaces and tabs around the value are optional whitespace",
        )
        .header("traceparent", &format!(" \t{} \t", tp("01")))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "future-version",
            "version cc (a future version) is parsed by its first four fields",
        )
        .header("traceparent", &format!("cc-{T}-{P}-01"))
        .continues(T, P)
        .done(),
        case(
            Tc,
            "future-version-extra-fields",
            "version cc with extra fields: continued, and sent on as version 00",
        )
        .header(
            "traceparent",
            &format!("cc-{T}-{P}-01-what-the-future-will-be-like"),
        )
        .continues(T, P)
        .done(),
        // ---- traceparent: invalid input restarts the trace ------------------------------
        case(
            Tc,
            "header-name-with-dash",
            "trace-parent is not traceparent: a new trace",
        )
        .header("trace-parent", &tp("01"))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "header-name-with-dot",
            "trace.parent is not traceparent: a new trace",
        )
        .header("trace.parent", &tp("01"))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "duplicated-header",
            "two traceparent headers: a new trace",
        )
        .header("traceparent", &format!("00-{T2}-{P}-01"))
        .header("traceparent", &tp("01"))
        .restarts(&[T, T2])
        .done(),
        case(
            Tc,
            "version-00-trailing-fields",
            "version 00 followed by more fields is invalid",
        )
        .header(
            "traceparent",
            &format!("{}-what-the-future-will-be-like", tp("01")),
        )
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "version-00-trailing-character",
            "version 00 followed by a character is invalid",
        )
        .header("traceparent", &format!("{}.", tp("01")))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "future-version-bad-delimiter",
            "a future version whose flags are followed by something else than '-' is invalid",
        )
        .header(
            "traceparent",
            &format!("cc-{T}-{P}-01.what-the-future-will-be-like"),
        )
        .restarts(&[T])
        .done(),
        case(Tc, "version-ff", "version ff is forbidden")
            .header("traceparent", &format!("ff-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "version-illegal-character", "version .0 is invalid")
            .header("traceparent", &format!(".0-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "version-too-long", "a 3-digit version is invalid")
            .header("traceparent", &format!("000-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "version-too-short", "a 1-digit version is invalid")
            .header("traceparent", &format!("0-{T}-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "trace-id-all-zero", "an all-zero trace id is invalid")
            .header("traceparent", &format!("00-{zero}-{P}-01"))
            .restarts(&[])
            .done(),
        case(
            Tc,
            "trace-id-illegal-character",
            "a trace id with a '.' is invalid",
        )
        .header("traceparent", &format!("00-.{}-{P}-01", &T[1..]))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "trace-id-uppercase",
            "a trace id in uppercase hex is invalid",
        )
        .header("traceparent", &format!("00-{}-{P}-01", T.to_uppercase()))
        .restarts(&[T])
        .done(),
        case(Tc, "trace-id-too-long", "a 33-digit trace id is invalid")
            .header("traceparent", &format!("00-{T}3-{P}-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "trace-id-too-short", "a 31-digit trace id is invalid")
            .header("traceparent", &format!("00-{}-{P}-01", &T[1..]))
            .restarts(&[T])
            .done(),
        case(Tc, "parent-id-all-zero", "an all-zero parent id is invalid")
            .header("traceparent", &format!("00-{T}-0000000000000000-01"))
            .restarts(&[T])
            .done(),
        case(
            Tc,
            "parent-id-illegal-character",
            "a parent id with a '.' is invalid",
        )
        .header("traceparent", &format!("00-{T}-{}.-01", &P[..15]))
        .restarts(&[T])
        .done(),
        case(
            Tc,
            "parent-id-uppercase",
            "a parent id in uppercase hex is invalid",
        )
        .header("traceparent", &format!("00-{T}-00F067AA0BA902B7-01"))
        .restarts(&[T])
        .done(),
        case(Tc, "parent-id-too-long", "a 17-digit parent id is invalid")
            .header("traceparent", &format!("00-{T}-{P}7-01"))
            .restarts(&[T])
            .done(),
        case(Tc, "parent-id-too-short", "a 15-digit parent id is invalid")
            .header("traceparent", &format!("00-{T}-{}-01", &P[1..]))
            .restarts(&[T])
            .done(),
        case(Tc, "flags-illegal-character", "trace-flags 0. are invalid")
            .header("traceparent", &tp("0."))
            .restarts(&[T])
            .done(),
        case(Tc, "flags-too-long", "3-digit trace-flags are invalid")
            .header("traceparent", &tp("001"))
            .restarts(&[T])
            .done(),
        case(Tc, "flags-too-short", "1-digit trace-flags are invalid")
            .header("traceparent", &tp("1"))
            .restarts(&[T])
            .done(),
        // ---- several outgoing calls ---------------------------------------------------------
        case(
            Tc,
            "several-calls-continue",
            "three outgoing calls: one trace id, three different parent ids",
        )
        .header("traceparent", &tp("01"))
        .callbacks(3)
        .continues(T, P)
        .expect(Expect::SameTraceId)
        .expect(Expect::DistinctSpanIds)
        .done(),
        case(
            Tc,
            "several-calls-new-trace",
            "three outgoing calls without incoming context: one new trace, three parent ids",
        )
        .callbacks(3)
        .expect(Expect::SameTraceId)
        .expect(Expect::DistinctSpanIds)
        .done(),
        case(
            Tc,
            "several-calls-invalid-context",
            "three outgoing calls after an invalid traceparent: one new trace, three parent ids",
        )
        .header("traceparent", &format!("00-{zero}-{P}-01"))
        .callbacks(3)
        .restarts(&[])
        .expect(Expect::SameTraceId)
        .expect(Expect::DistinctSpanIds)
        .done(),
        // ---- tracestate ------------------------------------------------------------------------
        case(
            Ts,
            "kept",
            "tracestate is passed on with the trace, members and order kept",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1,bar=2")
        .continues(T, P)
        .ts_has(&[("foo", "1"), ("bar", "2")])
        .done(),
        case(
            Ts,
            "dropped-without-traceparent",
            "tracestate without traceparent is not used",
        )
        .header("tracestate", "foo=1,bar=2")
        .ts_lacks(&["foo", "bar"])
        .done(),
        case(
            Ts,
            "dropped-with-invalid-traceparent",
            "tracestate next to an invalid traceparent is not used",
        )
        .header("traceparent", &format!("00-{zero}-{P}-01"))
        .header("tracestate", "foo=1")
        .restarts(&[])
        .ts_lacks(&["foo"])
        .done(),
        case(
            Ts,
            "header-name-mixed-case",
            "the header name TrAcEsTaTe is the same header",
        )
        .header("traceparent", &tp("00"))
        .header("TrAcEsTaTe", "foo=1")
        .ts_has(&[("foo", "1")])
        .done(),
        case(Ts, "header-name-with-dash", "trace-state is not tracestate")
            .header("traceparent", &tp("00"))
            .header("trace-state", "foo=1")
            .ts_lacks(&["foo"])
            .done(),
        case(Ts, "empty-header", "an empty tracestate is accepted")
            .header("traceparent", &tp("00"))
            .header("tracestate", "")
            .continues(T, P)
            .done(),
        case(
            Ts,
            "empty-and-valid-headers",
            "an empty tracestate header next to a valid one",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "")
        .header("tracestate", "foo=1")
        .continues(T, P)
        .ts_has(&[("foo", "1")])
        .done(),
        case(
            Ts,
            "several-headers-combined",
            "several tracestate headers are combined in order",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1,bar=2")
        .header("tracestate", "rojo=1,congo=2")
        .header("tracestate", "baz=3")
        .ts_has(&[
            ("foo", "1"),
            ("bar", "2"),
            ("rojo", "1"),
            ("congo", "2"),
            ("baz", "3"),
        ])
        .done(),
        case(
            Ts,
            "duplicated-keys",
            "a repeated key: the trace continues and the key is sent once",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1,foo=2")
        .continues(T, P)
        .expect(Expect::TsHasKey("foo".into()))
        .done(),
        case(
            Ts,
            "duplicated-keys-across-headers",
            "a key repeated across headers is sent once",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1")
        .header("tracestate", "foo=2")
        .continues(T, P)
        .expect(Expect::TsHasKey("foo".into()))
        .done(),
        case(
            Ts,
            "optional-whitespace",
            "spaces and tabs around members are optional whitespace",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1 \t , \t bar=2, \t baz=3")
        .ts_has(&[("foo", "1"), ("bar", "2"), ("baz", "3")])
        .done(),
        case(
            Ts,
            "key-illegal-space",
            "a key with a space invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo =1")
        .ts_lacks(&["foo"])
        .done(),
        case(
            Ts,
            "key-illegal-uppercase",
            "an uppercase key invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "FOO=1,bar=2")
        .ts_lacks(&["bar"])
        .done(),
        case(
            Ts,
            "key-illegal-dot",
            "a key with a '.' invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo.bar=1,bar=2")
        .ts_lacks(&["bar"])
        .done(),
        case(
            Ts,
            "multi-tenant-keys",
            "tenant@system keys and keys with several '@' are valid",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "t61@congo=1,foo@=2,foo@@bar=3,foo@bar@baz=4")
        .ts_has(&[
            ("t61@congo", "1"),
            ("foo@", "2"),
            ("foo@@bar", "3"),
            ("foo@bar@baz", "4"),
        ])
        .done(),
        case(
            Ts,
            "key-starting-with-at",
            "a key starting with '@' invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "@foo=1,bar=2")
        .ts_lacks(&["bar"])
        .done(),
        case(
            Ts,
            "value-with-equals",
            "a value with '=' invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=bar=baz,bar=2")
        .ts_lacks(&["foo", "bar"])
        .done(),
        case(Ts, "value-empty", "an empty value invalidates the header")
            .header("traceparent", &tp("00"))
            .header("tracestate", "foo=,bar=3")
            .ts_lacks(&["foo", "bar"])
            .done(),
        case(Ts, "key-256-characters", "a 256-character key is valid")
            .header("traceparent", &tp("00"))
            .header("tracestate", "foo=1")
            .header("tracestate", &format!("{}=1", "z".repeat(256)))
            .ts_has(&[("foo", "1")])
            .done(),
        case(
            Ts,
            "key-257-characters",
            "a 257-character key invalidates the header",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", "foo=1")
        .header("tracestate", &format!("{}=1", "z".repeat(257)))
        .ts_lacks(&["foo"])
        .done(),
    ];

    let key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let value_chars: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    c.push(
        case(
            Ts,
            "all-allowed-characters",
            "every character the grammar allows, in a key and a value",
        )
        .header("traceparent", &tp("00"))
        .header("tracestate", &format!("{key_chars}={value_chars}"))
        .ts_has(&[(key_chars, value_chars.as_str())])
        .done(),
    );
    let members32: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
    let mut b = case(
        Ts,
        "32-members",
        "32 members are valid: kept (the right-most may make room for the service's own)",
    )
    .header("traceparent", &tp("00"));
    for chunk in members32.chunks(10) {
        b = b.header("tracestate", &chunk.join(","));
    }
    c.push(
        b.ts_has(&[("bar01", "01")])
            .expect(Expect::TsLen(32))
            .done(),
    );
    let mut b =
        case(Ts, "33-members", "33 members invalidate the header").header("traceparent", &tp("00"));
    for chunk in members32.chunks(10) {
        b = b.header("tracestate", &chunk.join(","));
    }
    c.push(
        b.header("tracestate", "bar33=33")
            .ts_lacks(&["bar01"])
            .done(),
    );

    c.extend([
        // ---- baggage ----------------------------------------------------------------------------
        case(
            Bag,
            "kept",
            "baggage is passed on, values percent-decoded as the spec's example",
        )
        .header("traceparent", &tp("01"))
        .header(
            "baggage",
            "userId=alice,serverNode=DF%2028,isProduction=false",
        )
        .baggage_has("userId=alice,serverNode=DF%2028,isProduction=false")
        .done(),
        case(Bag, "utf8-value", "a percent-encoded UTF-8 value survives")
            .header("traceparent", &tp("01"))
            .header("baggage", "userId=Am%C3%A9lie")
            .baggage_has("userId=Am%C3%A9lie")
            .done(),
        case(
            Bag,
            "several-headers",
            "several baggage headers are combined",
        )
        .header("traceparent", &tp("01"))
        .header("baggage", "userId=alice")
        .header("baggage", "serverNode=DF%2028,isProduction=false")
        .baggage_has("userId=alice,serverNode=DF%2028,isProduction=false")
        .done(),
        case(
            Bag,
            "optional-whitespace",
            "spaces around keys, values and '=' are optional whitespace",
        )
        .header("traceparent", &tp("01"))
        .header("baggage", "userId =   alice")
        .header("baggage", "serverNode = DF%2028, isProduction = false")
        .baggage_has("userId=alice,serverNode=DF%2028,isProduction=false")
        .done(),
        case(
            Bag,
            "properties",
            "member properties (;k=v and ;k) are kept",
        )
        .header("traceparent", &tp("01"))
        .header(
            "baggage",
            "key1=value1;property1;property2, key3=value3; propertyKey=propertyValue",
        )
        .baggage_has("key1=value1;property1;property2,key3=value3;propertyKey=propertyValue")
        .done(),
        case(Bag, "value-with-equals", "a value may contain '='")
            .header("traceparent", &tp("01"))
            .header("baggage", "k=a=b")
            .baggage_has("k=a=b")
            .done(),
        case(
            Bag,
            "without-trace-context",
            "baggage is passed on even when the trace starts here",
        )
        .header("baggage", "userId=alice")
        .baggage_has("userId=alice")
        .done(),
        // ---- B3 -----------------------------------------------------------------------------------
        case(
            B3,
            "single-sampled",
            "b3 single header, sampled: same trace id, new span id, sampled",
        )
        .header("b3", &format!("{T}-{P}-1"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(B3, "single-with-parent", "b3 with all four fields")
            .header("b3", &format!("{T}-{P}-1-{PP}"))
            .continues(T, P)
            .sampled(true)
            .done(),
        case(B3, "single-not-sampled", "b3 deny decision is honoured")
            .header("b3", &format!("{T}-{P}-0"))
            .continues(T, P)
            .sampled(false)
            .done(),
        case(B3, "single-debug", "b3 debug (d) implies sampled")
            .header("b3", &format!("{T}-{P}-d"))
            .continues(T, P)
            .sampled(true)
            .done(),
        case(
            B3,
            "single-64-bit-trace-id",
            "a 64-bit trace id continues (left-padded to 128 bits in W3C)",
        )
        .header("b3", &format!("{T64}-{P}-1"))
        .continues(T64, P)
        .sampled(true)
        .done(),
        case(
            B3,
            "single-deferred",
            "b3 without sampling state: the trace continues",
        )
        .header("b3", &format!("{T}-{P}"))
        .continues(T, P)
        .done(),
        case(
            B3,
            "sampling-only-deny",
            "b3: 0 alone: a new trace that is not sampled",
        )
        .header("b3", "0")
        .restarts(&[])
        .sampled(false)
        .done(),
        case(
            B3,
            "multi-sampled",
            "X-B3-* headers, 128-bit trace id, sampled",
        )
        .header("X-B3-TraceId", T)
        .header("X-B3-SpanId", P)
        .header("X-B3-ParentSpanId", PP)
        .header("X-B3-Sampled", "1")
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            B3,
            "multi-64-bit-trace-id",
            "X-B3-* headers with a 64-bit trace id",
        )
        .header("X-B3-TraceId", T64)
        .header("X-B3-SpanId", P)
        .header("X-B3-Sampled", "1")
        .continues(T64, P)
        .sampled(true)
        .done(),
        case(B3, "multi-not-sampled", "X-B3-Sampled: 0 is honoured")
            .header("X-B3-TraceId", T)
            .header("X-B3-SpanId", P)
            .header("X-B3-Sampled", "0")
            .continues(T, P)
            .sampled(false)
            .done(),
        case(
            B3,
            "multi-debug-flag",
            "X-B3-Flags: 1 (debug) implies sampled",
        )
        .header("X-B3-TraceId", T)
        .header("X-B3-SpanId", P)
        .header("X-B3-Flags", "1")
        .continues(T, P)
        .sampled(true)
        .done(),
        case(
            B3,
            "multi-lowercase-names",
            "lowercase x-b3-* names are the same headers",
        )
        .header("x-b3-traceid", T)
        .header("x-b3-spanid", P)
        .header("x-b3-sampled", "1")
        .continues(T, P)
        .done(),
        case(
            B3,
            "single-wins-over-multi",
            "when b3 and X-B3-* disagree, the single header wins",
        )
        .header("b3", &format!("{T}-{P}-1"))
        .header("X-B3-TraceId", T2)
        .header("X-B3-SpanId", PP)
        .header("X-B3-Sampled", "1")
        .continues(T, P)
        .done(),
        case(
            B3,
            "single-all-zero-trace-id",
            "an all-zero B3 trace id starts a new trace",
        )
        .header("b3", &format!("{zero}-{P}-1"))
        .restarts(&[])
        .done(),
        case(
            B3,
            "single-uppercase",
            "uppercase hex in b3 starts a new trace",
        )
        .header("b3", &format!("{}-{P}-1", T.to_uppercase()))
        .restarts(&[T])
        .done(),
        case(
            B3,
            "multi-missing-span-id",
            "X-B3-TraceId without X-B3-SpanId starts a new trace",
        )
        .header("X-B3-TraceId", T)
        .header("X-B3-Sampled", "1")
        .restarts(&[T])
        .done(),
        // ---- Jaeger -------------------------------------------------------------------------------
        case(
            Jaeger,
            "sampled",
            "uber-trace-id, sampled: same trace id, new span id",
        )
        .header("uber-trace-id", &format!("{T}:{P}:0:1"))
        .continues(T, P)
        .sampled(true)
        .done(),
        case(Jaeger, "not-sampled", "uber-trace-id flags 0 are honoured")
            .header("uber-trace-id", &format!("{T}:{P}:0:0"))
            .continues(T, P)
            .sampled(false)
            .done(),
        case(Jaeger, "debug", "uber-trace-id flags 3 (sampled + debug)")
            .header("uber-trace-id", &format!("{T}:{P}:{PP}:3"))
            .continues(T, P)
            .sampled(true)
            .done(),
        case(Jaeger, "no-leading-zeros", "hex ids without leading zeros")
            .header(
                "uber-trace-id",
                &format!(
                    "{}:{}:0:1",
                    T64.trim_start_matches('0'),
                    P.trim_start_matches('0')
                ),
            )
            .continues(T64, P)
            .sampled(true)
            .done(),
        case(Jaeger, "url-encoded", "the URL-encoded form with %3A")
            .header("uber-trace-id", &format!("{T}%3A{P}%3A0%3A1"))
            .continues(T, P)
            .done(),
        case(Jaeger, "baggage", "uberctx-* baggage is passed on")
            .header("uber-trace-id", &format!("{T}:{P}:0:1"))
            .header("uberctx-user", "alice")
            .baggage_has("user=alice")
            .done(),
        case(
            Jaeger,
            "zero-trace-id",
            "a zero trace id starts a new trace",
        )
        .header("uber-trace-id", &format!("0:{P}:0:1"))
        .restarts(&[])
        .done(),
    ]);
    c
}
