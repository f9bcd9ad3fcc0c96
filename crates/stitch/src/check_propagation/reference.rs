//! The reference service: passes every case, or misbehaves on purpose with `--break`.

use super::*;

pub(super) struct Reference {
    pub(super) client: reqwest::Client,
    pub(super) break_mode: Option<BreakMode>,
}

/// The vendor key the reference service writes into `tracestate`.
pub(super) const VENDOR_KEY: &str = "stitch";

pub(super) async fn serve_reference(
    listener: tokio::net::TcpListener,
    break_mode: Option<BreakMode>,
) -> anyhow::Result<()> {
    let state = Arc::new(Reference {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        break_mode,
    });
    let app = Router::new()
        .fallback(post(reference_handler))
        .with_state(state);
    axum::serve(listener, app).await?;
    Ok(())
}

/// One instruction of the harness protocol.
pub(super) struct Action {
    pub(super) url: String,
    pub(super) arguments: Value,
}

pub(super) fn parse_actions(body: &[u8]) -> Result<Vec<Action>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other @ Value::Object(_) => vec![other],
        _ => return Err("the body must be a list of {\"url\", \"arguments\"} objects".into()),
    };
    items
        .into_iter()
        .map(|item| {
            let url = item
                .get("url")
                .and_then(Value::as_str)
                .ok_or("every element needs a \"url\" string")?
                .to_owned();
            let arguments = item.get("arguments").cloned().unwrap_or_else(|| json!([]));
            Ok(Action { url, arguments })
        })
        .collect()
}

pub(super) async fn reference_handler(
    State(state): State<Arc<Reference>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let actions = match parse_actions(&body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let mode = state.break_mode;
    let extracted = Propagator::default().extract(&headers);
    let incoming = extracted
        .context
        .clone()
        .filter(|_| mode != Some(BreakMode::Restart));

    // The server span: a child of the caller's span, or the root of a new trace.
    let server = match &incoming {
        Some(parent) => parent.child(),
        None => {
            let mut root = SpanContext::new_root(true);
            root.sampling = Some(extracted.sampling.unwrap_or(Sampling::Accept));
            root
        }
    };

    let mut formats = vec![Format::TraceContext, Format::Baggage];
    match extracted.source.filter(|_| incoming.is_some()) {
        Some(Format::B3Single) => formats.push(Format::B3Single),
        Some(Format::B3Multi) => formats.push(Format::B3Multi),
        Some(Format::Jaeger) => formats.extend([Format::Jaeger, Format::JaegerBaggage]),
        _ => {}
    }
    if mode == Some(BreakMode::StripTraceparent) {
        formats.retain(|f| *f != Format::TraceContext);
    }
    let baggage = if mode == Some(BreakMode::DropBaggage) {
        Baggage::new()
    } else {
        extracted.baggage.clone()
    };
    let propagator = Propagator::default().with_inject(&formats);

    let mut results = Vec::new();
    for action in actions {
        // Each outgoing call is a client span of its own, child of the server span.
        let mut client_span = server.child();
        if mode == Some(BreakMode::KeepParentId)
            && let Some(parent) = &incoming
        {
            client_span.span_id = parent.span_id;
        }
        if mode == Some(BreakMode::IgnoreSampled) {
            client_span.sampling = Some(Sampling::Accept);
        }
        if mode == Some(BreakMode::DropTracestate) {
            client_span.trace_state = TraceState::new();
        } else {
            // Our own member goes in front; the value is the parent-id we send, like the spec's
            // "rojo" example. Inserting cannot fail: the key and a hex value are valid.
            let _ = client_span
                .trace_state
                .insert(VENDOR_KEY, &client_span.span_id.to_string());
        }
        let mut out = reqwest::header::HeaderMap::new();
        propagator.inject(&client_span, &baggage, &mut out);
        let result = state
            .client
            .post(&action.url)
            .headers(out)
            .json(&action.arguments)
            .send()
            .await;
        results.push(match result {
            Ok(resp) => json!({"url": action.url, "status": resp.status().as_u16()}),
            Err(e) => json!({"url": action.url, "error": e.to_string()}),
        });
    }
    Json(json!({ "results": results })).into_response()
}
