//! Running the cases: the callback listener, sending each case, evaluating what arrived, and
//! the report.

use super::*;

pub(super) type Headers = Vec<(String, String)>;

#[derive(Default)]
pub(super) struct Callbacks {
    pub(super) received: Mutex<HashMap<String, Headers>>,
    pub(super) arrived: Notify,
}

pub(super) async fn callback_handler(
    State(state): State<Arc<Callbacks>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<Value> {
    let list: Headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    state
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id, list);
    state.arrived.notify_waiters();
    Json(Value::Null)
}

pub(super) struct CaseResult {
    pub(super) case: Case,
    pub(super) failures: Vec<String>,
    pub(super) callbacks: Vec<Option<Headers>>,
}

pub(super) struct Report {
    pub(super) target: String,
    pub(super) harness: SocketAddr,
    pub(super) results: Vec<CaseResult>,
}

impl Report {
    pub(super) fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !r.failures.is_empty())
            .count()
    }

    pub(super) fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "stitch check-propagation: {} (harness listening on {})",
            self.target, self.harness
        );
        for r in &self.results {
            let status = if r.failures.is_empty() {
                "PASS"
            } else {
                "FAIL"
            };
            let _ = writeln!(
                out,
                "{status}  {}/{}: {}",
                r.case.suite.name(),
                r.case.name,
                r.case.about
            );
            if r.failures.is_empty() {
                continue;
            }
            for f in &r.failures {
                let _ = writeln!(out, "        - {f}");
            }
            for (k, v) in &r.case.headers {
                let _ = writeln!(out, "        sent      {k}: {v}");
            }
            for (i, cb) in r.callbacks.iter().enumerate() {
                match cb {
                    None => {
                        let _ = writeln!(out, "        callback {i}: none");
                    }
                    Some(headers) => {
                        let trace: Vec<_> =
                            headers.iter().filter(|(k, _)| is_trace_header(k)).collect();
                        if trace.is_empty() {
                            let _ = writeln!(out, "        callback {i}: no trace headers");
                        }
                        for (k, v) in trace {
                            let _ = writeln!(out, "        callback {i}: {k}: {v}");
                        }
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "stitch check-propagation: {} of {} cases passed, {} failed",
            self.results.len() - self.failed(),
            self.results.len(),
            self.failed()
        );
        out
    }

    pub(super) fn to_json(&self) -> Value {
        let cases: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "suite": r.case.suite.name(),
                    "name": r.case.name,
                    "description": r.case.about,
                    "passed": r.failures.is_empty(),
                    "failures": r.failures,
                    "sent": r.case.headers,
                    "callbacks": r.callbacks.iter().map(|cb| cb.as_ref().map(|h| {
                        h.iter().filter(|(k, _)| is_trace_header(k)).cloned().collect::<Vec<_>>()
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "target": self.target,
            "harness": self.harness.to_string(),
            "total": self.results.len(),
            "passed": self.results.len() - self.failed(),
            "failed": self.failed(),
            "cases": cases,
        })
    }
}

pub(super) fn is_trace_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "traceparent" | "tracestate" | "baggage" | "b3" | "uber-trace-id"
    ) || n.starts_with("x-b3-")
        || n.starts_with("uberctx-")
}

pub(super) async fn check(
    target: &str,
    suites: &[Suite],
    timeout: Duration,
    listen: SocketAddr,
) -> anyhow::Result<Report> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the harness listener to {listen}"))?;
    let harness = listener.local_addr()?;
    let callbacks = Arc::new(Callbacks::default());
    let app = Router::new()
        .route("/callback/{id}", post(callback_handler))
        .with_state(callbacks.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().timeout(timeout).build()?;

    let result = async {
        // Reachability first, so that a wrong URL is one clear error, not 90 failed cases.
        let probe = client
            .post(target)
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await
            .with_context(|| format!("cannot reach the service under test at {target}"))?;
        if probe.status().is_server_error() || probe.status() == StatusCode::NOT_FOUND {
            anyhow::bail!(
                "the service under test at {target} answered an empty instruction list with HTTP {}",
                probe.status()
            );
        }
        let run = SpanId::generate();
        let mut results = Vec::new();
        for (i, case) in cases().into_iter().filter(|c| suites.contains(&c.suite)).enumerate() {
            results.push(run_case(&client, target, harness, &callbacks, &format!("{run}-{i}"), case, timeout).await);
        }
        Ok(Report {
            target: target.to_owned(),
            harness,
            results,
        })
    }
    .await;
    server.abort();
    result
}

pub(super) async fn run_case(
    client: &reqwest::Client,
    target: &str,
    harness: SocketAddr,
    callbacks: &Callbacks,
    id: &str,
    case: Case,
    timeout: Duration,
) -> CaseResult {
    let deadline = tokio::time::Instant::now() + timeout;
    let ids: Vec<String> = (0..case.callbacks).map(|n| format!("{id}.{n}")).collect();
    let body: Vec<Value> = ids
        .iter()
        .map(|cb| json!({"url": format!("http://{harness}/callback/{cb}"), "arguments": []}))
        .collect();
    let mut failures = Vec::new();
    let mut request = client.post(target).json(&body);
    for (k, v) in &case.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    match request.send().await {
        Ok(resp) if !resp.status().is_success() => {
            failures.push(format!("the service answered HTTP {}", resp.status()));
        }
        Ok(_) => {}
        Err(e) => failures.push(format!("the request to the service failed: {e}")),
    }
    // Callbacks normally arrive before the service answers; allow a short grace for services
    // that call back asynchronously.
    let grace = tokio::time::Instant::now() + timeout.min(Duration::from_secs(1));
    let until = deadline.min(grace).max(tokio::time::Instant::now());
    loop {
        let notified = callbacks.arrived.notified();
        {
            let got = callbacks
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if ids.iter().all(|i| got.contains_key(i)) {
                break;
            }
        }
        if tokio::time::timeout_at(until, notified).await.is_err() {
            break;
        }
    }
    let received: Vec<Option<Headers>> = {
        let mut got = callbacks
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ids.iter().map(|i| got.remove(i)).collect()
    };
    failures.extend(evaluate(&case, &received));
    CaseResult {
        case,
        failures,
        callbacks: received,
    }
}

/// What one callback carried, as far as the checks are concerned.
pub(super) struct Observed {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) sampled: bool,
    pub(super) random: Option<bool>,
}

/// Checks one case's callbacks; returns the failures in words.
pub(super) fn evaluate(case: &Case, callbacks: &[Option<Headers>]) -> Vec<String> {
    let mut failures = Vec::new();
    let several = callbacks.len() > 1;
    let label = |i: usize| {
        if several {
            format!("callback {i}: ")
        } else {
            String::new()
        }
    };
    let sent_tp = sent_traceparent(case);
    let sent_ts = sent_tp.as_ref().and_then(|_| {
        TraceState::from_header_values(
            case.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
                .map(|(_, v)| v.as_str()),
        )
        .ok()
    });

    let mut observed: Vec<Option<Observed>> = Vec::new();
    for (i, cb) in callbacks.iter().enumerate() {
        let Some(headers) = cb else {
            failures.push(format!(
                "{}the service made no call to the harness",
                label(i)
            ));
            observed.push(None);
            continue;
        };
        let (obs, mut problems) = observe(case, headers, sent_ts.as_ref());
        for p in problems.drain(..) {
            failures.push(format!("{}{p}", label(i)));
        }
        if let Some(o) = &obs {
            for e in &case.expect {
                if let Some(p) = check_one(e, o, headers) {
                    failures.push(format!("{}{p}", label(i)));
                }
            }
        } else {
            // Without a context only the header-content checks can run.
            for e in &case.expect {
                if matches!(e, Expect::TsLacks(_) | Expect::BaggageHas(_)) {
                    let dummy = Observed {
                        trace_id: TraceId::INVALID,
                        span_id: SpanId::INVALID,
                        sampled: false,
                        random: None,
                    };
                    if let Some(p) = check_one(e, &dummy, headers) {
                        failures.push(format!("{}{p}", label(i)));
                    }
                }
            }
        }
        observed.push(obs);
    }

    let seen: Vec<&Observed> = observed.iter().flatten().collect();
    if case.expect.iter().any(|e| matches!(e, Expect::SameTraceId)) && seen.len() > 1 {
        let first = seen[0].trace_id;
        if seen.iter().any(|o| o.trace_id != first) {
            failures.push(format!(
                "the outgoing calls belong to different traces ({}): one incoming request must stay one trace",
                seen.iter().map(|o| o.trace_id.to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if case
        .expect
        .iter()
        .any(|e| matches!(e, Expect::DistinctSpanIds))
    {
        let mut ids: Vec<SpanId> = seen.iter().map(|o| o.span_id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != seen.len() {
            failures.push(
                "several outgoing calls share a parent id: each call needs its own span id".into(),
            );
        }
    }
    failures
}

/// The valid traceparent the case sends, if it sends exactly one.
pub(super) fn sent_traceparent(case: &Case) -> Option<TraceParent> {
    let values: Vec<&str> = case
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .map(|(_, v)| v.as_str())
        .collect();
    match values.as_slice() {
        [one] => TraceParent::parse(one).ok(),
        _ => None,
    }
}

/// Reads the context of one callback and runs the checks every case shares.
pub(super) fn observe(
    case: &Case,
    headers: &Headers,
    sent_ts: Option<&TraceState>,
) -> (Option<Observed>, Vec<String>) {
    let mut problems = Vec::new();
    let traceparents: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .map(|(_, v)| v.as_str())
        .collect();
    let tp = match traceparents.as_slice() {
        [] => None,
        [one] => match TraceParent::parse_with_version(one) {
            Ok((0, tp)) if one.trim() == tp.to_string() => Some(tp),
            Ok((0, _)) => {
                problems.push(format!("the traceparent {one:?} is not in canonical form"));
                None
            }
            Ok((v, _)) => {
                problems.push(format!(
                    "the service sent traceparent version {v:02x}; it must send the version it implements (00)"
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "the service sent an invalid traceparent {one:?}: {e}"
                ));
                None
            }
        },
        _ => {
            problems.push(format!(
                "the service sent {} traceparent headers; expected one",
                traceparents.len()
            ));
            None
        }
    };
    if let Some(tp) = &tp
        && tp.flags.bits() & !0x03 != 0
    {
        problems.push(format!(
            "the service sent reserved trace-flags bits ({:02x}); they must be zero",
            tp.flags.bits()
        ));
    }

    // What the service sent must itself be a valid tracestate, updated by the spec's rules.
    let ts_values: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
        .map(|(_, v)| v.as_str())
        .collect();
    if !ts_values.is_empty() {
        match TraceState::from_header_values_strict(ts_values.iter().copied()) {
            Err(e) => problems.push(format!("the service sent an invalid tracestate: {e}")),
            Ok(out) => {
                let continued = tp
                    .as_ref()
                    .zip(sent_traceparent(case))
                    .is_some_and(|(o, s)| o.trace_id == s.trace_id);
                if let (Some(input), true) = (sent_ts, continued)
                    && let Some(p) = tracestate_mutation_problem(input, &out)
                {
                    problems.push(p);
                }
            }
        }
    }

    if case.suite.requires_traceparent() {
        if tp.is_none() && traceparents.is_empty() {
            problems.push("the service sent no traceparent header".into());
        }
        return (
            tp.map(|tp| Observed {
                trace_id: tp.trace_id,
                span_id: tp.parent_id,
                sampled: tp.flags.is_sampled(),
                random: Some(tp.flags.is_random()),
            }),
            problems,
        );
    }
    // Other suites accept a context in any format the harness knows.
    let found = Propagator::default().extract(headers);
    let Some(ctx) = found.context else {
        if matches!(case.suite, Suite::B3 | Suite::Jaeger) {
            problems.push("the service sent no trace context in any known format".into());
        }
        return (None, problems);
    };
    (
        Some(Observed {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            sampled: ctx.is_sampled(),
            random: (found.source == Some(Format::TraceContext)).then_some(ctx.random_trace_id),
        }),
        problems,
    )
}

/// Members the service did not touch keep their relative order and come after every member it
/// added or modified.
pub(super) fn tracestate_mutation_problem(
    input: &TraceState,
    output: &TraceState,
) -> Option<String> {
    let unmodified: Vec<&str> = output
        .iter()
        .filter(|(k, v)| input.get(k) == Some(*v))
        .map(|(k, _)| k)
        .collect();
    let input_order: Vec<&str> = input
        .iter()
        .map(|(k, _)| k)
        .filter(|k| unmodified.contains(k))
        .collect();
    if unmodified != input_order {
        return Some(format!(
            "tracestate members were reordered: received order {input_order:?}, sent {unmodified:?}"
        ));
    }
    let first_unmodified = output.iter().position(|(k, v)| input.get(k) == Some(v));
    let last_modified = output.iter().rposition(|(k, v)| input.get(k) != Some(v));
    if let (Some(u), Some(m)) = (first_unmodified, last_modified)
        && m > u
    {
        let key = output.iter().nth(m).map(|(k, _)| k).unwrap_or_default();
        return Some(format!(
            "the new or updated tracestate member {key:?} is not at the front (new and modified members go left)"
        ));
    }
    None
}

pub(super) fn check_one(expect: &Expect, o: &Observed, headers: &Headers) -> Option<String> {
    match expect {
        Expect::Continue { trace_id, parent } => {
            if o.trace_id != *trace_id {
                return Some(format!(
                    "the trace was not continued: expected trace id {trace_id}, the service sent {}",
                    o.trace_id
                ));
            }
            if o.span_id == *parent {
                return Some(format!(
                    "the parent id {parent} was passed on unchanged; the service must send its own span id"
                ));
            }
            None
        }
        Expect::Restart { avoid } => {
            if !o.trace_id.is_valid() {
                return Some("the service sent an all-zero trace id".into());
            }
            if avoid.contains(&o.trace_id) {
                return Some(format!(
                    "the invalid context was used: trace id {} should have been replaced by a new one",
                    o.trace_id
                ));
            }
            None
        }
        Expect::Sampled(s) => (o.sampled != *s).then(|| {
            format!(
                "the sampling decision was not honoured: expected {}, the service sent {}",
                if *s { "sampled" } else { "not sampled" },
                if o.sampled { "sampled" } else { "not sampled" }
            )
        }),
        Expect::Random(r) => match o.random {
            Some(got) if got != *r => Some(format!(
                "the random-trace-id flag was {} (it must be kept when the trace continues)",
                if got { "set" } else { "dropped" }
            )),
            _ => None,
        },
        Expect::TsHas(members) => {
            let ts = sent_tracestate(headers);
            let missing: Vec<String> = members
                .iter()
                .filter(|(k, v)| ts.get(k) != Some(v.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "tracestate members were not passed on: {} (the service sent {:?})",
                    shorten(&missing.join(",")),
                    shorten(&ts.to_string())
                )
            })
        }
        Expect::TsHasKey(key) => {
            let ts = sent_tracestate(headers);
            ts.get(key).is_none().then(|| {
                format!(
                    "the tracestate key {key:?} was not passed on (the service sent {:?})",
                    ts.to_string()
                )
            })
        }
        Expect::TsLacks(keys) => {
            let ts = sent_tracestate(headers);
            let present: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| ts.get(k).is_some())
                .collect();
            (!present.is_empty()).then(|| {
                format!(
                    "an invalid or unusable tracestate was passed on (keys {present:?}); it must be discarded"
                )
            })
        }
        Expect::TsLen(n) => {
            let ts = sent_tracestate(headers);
            (ts.len() != *n).then(|| {
                format!(
                    "expected {n} tracestate members, the service sent {}",
                    ts.len()
                )
            })
        }
        Expect::BaggageHas(members) => {
            let got = Propagator::default().extract(headers).baggage;
            let want = Baggage::parse(members).unwrap_or_default();
            let missing: Vec<String> = want
                .iter()
                .filter(|m| !got.iter().any(|g| same_member(g, m)))
                .map(ToString::to_string)
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "baggage was not passed on: {} (the service sent {:?})",
                    missing.join(","),
                    got.to_string()
                )
            })
        }
        Expect::SameTraceId | Expect::DistinctSpanIds => None,
    }
}

pub(super) fn same_member(a: &BaggageMember, b: &BaggageMember) -> bool {
    a.key() == b.key() && a.value() == b.value() && a.properties() == b.properties()
}

pub(super) fn sent_tracestate(headers: &Headers) -> TraceState {
    TraceState::from_header_values(
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("tracestate"))
            .map(|(_, v)| v.as_str()),
    )
    .unwrap_or_default()
}

pub(super) fn shorten(s: &str) -> String {
    if s.len() <= 120 {
        return s.to_owned();
    }
    let mut end = 117;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_within_a_suite() {
        let all = cases();
        let mut names: Vec<String> = all
            .iter()
            .map(|c| format!("{}/{}", c.suite.name(), c.name))
            .collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn a_tracestate_whose_new_member_is_not_in_front_is_reported() {
        let input: TraceState = "a=1,b=2".parse().unwrap();
        assert!(tracestate_mutation_problem(&input, &"x=1,a=1,b=2".parse().unwrap()).is_none());
        assert!(tracestate_mutation_problem(&input, &"a=9,b=2".parse().unwrap()).is_none());
        assert!(tracestate_mutation_problem(&input, &"a=1,x=1,b=2".parse().unwrap()).is_some());
        assert!(tracestate_mutation_problem(&input, &"b=2,a=1".parse().unwrap()).is_some());
    }

    #[test]
    fn the_protocol_body_accepts_a_list_an_object_or_nothing() {
        assert_eq!(parse_actions(b"").unwrap().len(), 0);
        assert_eq!(parse_actions(b"[]").unwrap().len(), 0);
        let a = parse_actions(
            br#"[{"url": "http://x/1", "arguments": [{"url": "http://y", "arguments": []}]}]"#,
        )
        .unwrap();
        assert_eq!(a[0].url, "http://x/1");
        assert!(a[0].arguments.is_array());
        assert_eq!(parse_actions(br#"{"url": "http://x"}"#).unwrap().len(), 1);
        assert!(parse_actions(b"[1]").is_err());
        assert!(parse_actions(b"{").is_err());
    }
}
