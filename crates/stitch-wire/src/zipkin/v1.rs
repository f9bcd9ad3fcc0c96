//! Zipkin v1 JSON (`POST /api/v1/spans`): the older model where one span may hold both sides
//! of an RPC, the kind is implied by core annotations (`cs`, `sr`, `ss`, `cr`, `ms`, `mr`,
//! `ws`, `wr`) and endpoints ride on annotations and binary annotations.
//!
//! A v1 span is split into v2 spans by the rules Zipkin itself applies (its `V1SpanConverter`):
//! one v2 span per local service named by the annotations' endpoints; `cs`/`cr` make a CLIENT,
//! `sr`/`ss` a SERVER, `ms` a PRODUCER, `mr` a CONSUMER; when one v1 span holds both `cs` and
//! `sr` the server side becomes a separate, `shared` v2 span timed by `sr`/`ss` while the
//! client side keeps the span's timestamp and duration; `ca`/`sa`/`ma` address annotations
//! become remote endpoints; other annotations become annotations and string binary annotations
//! become tags (numbers and booleans as their text); a server span without its own timestamp is
//! taken as shared, as v1 implied it.

use serde_json::Value;
use stitch_model::SpanKind;

use super::ZipkinError;
use super::json::{
    child, endpoint_field, id_field, invalid, micros_field, object, parse_document, span_list,
    string_field, take, wrong_type,
};
use super::span::{Annotation, Endpoint, RawId, RawKind, RawSpan};

/// Parses a v1 span list. Each item gives one or more v2 spans, tagged with the index of the
/// v1 span they came from.
pub(crate) fn parse_v1(bytes: &[u8]) -> Result<Vec<(usize, RawSpan)>, ZipkinError> {
    let mut out = Vec::new();
    for (i, item) in span_list(parse_document(bytes)?)?.into_iter().enumerate() {
        let v1 = parse_span(item, &format!("[{i}]"))?;
        out.extend(convert(v1).into_iter().map(|s| (i, s)));
    }
    Ok(out)
}

struct V1Span {
    trace_id: RawId,
    parent_id: RawId,
    id: RawId,
    name: String,
    timestamp: Option<u64>,
    duration: Option<u64>,
    debug: bool,
    annotations: Vec<V1Annotation>,
    binary: Vec<V1Binary>,
}

#[derive(Clone)]
struct V1Annotation {
    timestamp: u64,
    value: String,
    endpoint: Option<Endpoint>,
}

struct V1Binary {
    key: String,
    /// `None` for an address annotation (`true` with an endpoint).
    value: Option<String>,
    endpoint: Option<Endpoint>,
}

fn parse_span(value: Value, path: &str) -> Result<V1Span, ZipkinError> {
    let mut o = object(value, path)?;
    let annotations = match take(&mut o, "annotations") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let base = child(path, "annotations");
            let mut list = Vec::with_capacity(items.len());
            for (i, a) in items.into_iter().enumerate() {
                let p = format!("{base}[{i}]");
                let mut a = object(a, &p)?;
                list.push(V1Annotation {
                    timestamp: micros_field(&mut a, &p, "timestamp")?.unwrap_or(0),
                    value: string_field(&mut a, &p, "value")?
                        .ok_or_else(|| invalid(&child(&p, "value"), "is required".into()))?,
                    endpoint: endpoint_field(&mut a, &p, "endpoint")?,
                });
            }
            list
        }
        Some(other) => return Err(wrong_type(&child(path, "annotations"), "an array", &other)),
    };
    let binary = match take(&mut o, "binaryAnnotations") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let base = child(path, "binaryAnnotations");
            let mut list = Vec::with_capacity(items.len());
            for (i, b) in items.into_iter().enumerate() {
                let p = format!("{base}[{i}]");
                let mut b = object(b, &p)?;
                let key = string_field(&mut b, &p, "key")?
                    .ok_or_else(|| invalid(&child(&p, "key"), "is required".into()))?;
                let endpoint = endpoint_field(&mut b, &p, "endpoint")?;
                let is_address = matches!(key.as_str(), "ca" | "sa" | "ma");
                let value = match take(&mut b, "value") {
                    Some(Value::Bool(true)) if is_address && endpoint.is_some() => None,
                    Some(Value::String(s)) => Some(s),
                    Some(Value::Bool(v)) => Some(v.to_string()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    None => Some(String::new()),
                    Some(other) => {
                        return Err(wrong_type(
                            &child(&p, "value"),
                            "a string, number or boolean",
                            &other,
                        ));
                    }
                };
                list.push(V1Binary {
                    key,
                    value,
                    endpoint,
                });
            }
            list
        }
        Some(other) => {
            return Err(wrong_type(
                &child(path, "binaryAnnotations"),
                "an array",
                &other,
            ));
        }
    };
    Ok(V1Span {
        trace_id: id_field(&mut o, path, "traceId")?,
        parent_id: id_field(&mut o, path, "parentId")?,
        id: id_field(&mut o, path, "id")?,
        name: string_field(&mut o, path, "name")?.unwrap_or_default(),
        timestamp: micros_field(&mut o, path, "timestamp")?,
        duration: micros_field(&mut o, path, "duration")?,
        debug: match take(&mut o, "debug") {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(other) => return Err(wrong_type(&child(path, "debug"), "true or false", &other)),
        },
        annotations,
        binary,
    })
}

/// The v2 spans one v1 span splits into; index 0 is the span that gets data without an
/// endpoint.
struct Split<'a> {
    source: &'a V1Span,
    spans: Vec<RawSpan>,
}

fn same_service(a: &Endpoint, b: &Endpoint) -> bool {
    a.service_name == b.service_name
}

impl<'a> Split<'a> {
    fn new(source: &'a V1Span) -> Split<'a> {
        let mut split = Split {
            source,
            spans: Vec::new(),
        };
        split.push(None);
        split
    }

    fn push(&mut self, local: Option<Endpoint>) -> usize {
        self.spans.push(RawSpan {
            trace_id: self.source.trace_id.clone(),
            parent_id: self.source.parent_id.clone(),
            id: self.source.id.clone(),
            name: self.source.name.clone(),
            debug: self.source.debug,
            local_endpoint: local,
            ..Default::default()
        });
        self.spans.len() - 1
    }

    /// The span whose local service is that of `endpoint` (the first span when there is no
    /// endpoint, or when the first span has no local endpoint yet).
    fn for_endpoint(&mut self, endpoint: Option<&Endpoint>) -> usize {
        let Some(e) = endpoint else { return 0 };
        for (i, span) in self.spans.iter_mut().enumerate() {
            match &span.local_endpoint {
                None => {
                    span.local_endpoint = Some(e.clone());
                    return i;
                }
                Some(local) if same_service(local, e) => return i,
                Some(_) => {}
            }
        }
        self.push(Some(e.clone()))
    }

    fn span(&mut self, endpoint: Option<&Endpoint>) -> &mut RawSpan {
        let i = self.for_endpoint(endpoint);
        &mut self.spans[i]
    }

    /// Timestamp and duration from the span when it has both, else from the annotations.
    fn time(&mut self, begin: &V1Annotation, end: Option<&V1Annotation>) {
        let (ts, dur) = (self.source.timestamp, self.source.duration);
        let span = self.span(begin.endpoint.as_ref());
        if ts.is_some() && dur.is_some() {
            span.timestamp = ts;
            span.duration = dur;
        } else {
            span.timestamp = Some(begin.timestamp).filter(|t| *t != 0);
            span.duration = end
                .map(|e| e.timestamp.saturating_sub(begin.timestamp))
                .filter(|d| *d != 0);
        }
    }
}

fn set_kind(span: &mut RawSpan, kind: SpanKind) {
    span.kind = RawKind::Known(kind);
}

fn convert(source: V1Span) -> Vec<RawSpan> {
    let mut split = Split::new(&source);
    let mut core: [Option<V1Annotation>; 8] = Default::default();
    const CORE: [&str; 8] = ["cs", "sr", "ss", "cr", "ms", "mr", "ws", "wr"];
    let [cs, sr, ss, cr, ms, mr, ws, wr] = [0, 1, 2, 3, 4, 5, 6, 7];

    for a in &source.annotations {
        let index = split.for_endpoint(a.endpoint.as_ref());
        let core_index = a
            .endpoint
            .as_ref()
            .and_then(|_| CORE.iter().position(|c| *c == a.value));
        match core_index {
            Some(c) => {
                let kind = match c {
                    0 | 3 => Some(SpanKind::Client),
                    1 | 2 => Some(SpanKind::Server),
                    4 => Some(SpanKind::Producer),
                    5 => Some(SpanKind::Consumer),
                    _ => None,
                };
                if let Some(kind) = kind {
                    set_kind(&mut split.spans[index], kind);
                }
                core[c] = Some(a.clone());
            }
            None => split.spans[index].annotations.push(Annotation {
                timestamp: a.timestamp,
                value: a.value.clone(),
            }),
        }
    }

    // An end annotation at exactly timestamp + duration stands for a missing start.
    let reflects = |end: &Option<V1Annotation>| {
        end.as_ref().is_some_and(|e| {
            matches!((source.timestamp, source.duration), (Some(t), Some(d)) if t.saturating_add(d) == e.timestamp)
        })
    };
    if core[cs].is_none() && reflects(&core[cr]) {
        let end = core[cr].clone().expect("checked by reflects");
        core[cs] = Some(V1Annotation {
            timestamp: source.timestamp.unwrap_or(0),
            value: "cs".into(),
            endpoint: end.endpoint,
        });
    }
    if core[sr].is_none() && reflects(&core[ss]) {
        let end = core[ss].clone().expect("checked by reflects");
        core[sr] = Some(V1Annotation {
            timestamp: source.timestamp.unwrap_or(0),
            value: "sr".into(),
            endpoint: end.endpoint,
        });
    }

    if let (Some(cs_a), Some(sr_a)) = (core[cs].clone(), core[sr].clone()) {
        // Both sides in one v1 span: the client owns the span's timing.
        split.time(&cs_a, core[cr].as_ref());
        let client = split.for_endpoint(cs_a.endpoint.as_ref());
        let loopback = match (&cs_a.endpoint, &sr_a.endpoint) {
            (Some(a), Some(b)) => same_service(a, b),
            _ => false,
        };
        let server = if loopback {
            set_kind(&mut split.spans[client], SpanKind::Client);
            let s = split.push(sr_a.endpoint.clone());
            set_kind(&mut split.spans[s], SpanKind::Server);
            s
        } else {
            split.for_endpoint(sr_a.endpoint.as_ref())
        };
        let s = &mut split.spans[server];
        s.shared = true;
        s.timestamp = Some(sr_a.timestamp).filter(|t| *t != 0);
        s.duration = core[ss]
            .as_ref()
            .map(|e| e.timestamp.saturating_sub(sr_a.timestamp))
            .filter(|d| *d != 0);
        if core[cr].is_none() && source.duration.is_none() {
            split.spans[client].duration = None;
        }
    } else if let (Some(b), Some(e)) = (core[cs].clone(), core[cr].clone()) {
        split.time(&b, Some(&e));
    } else if let (Some(b), Some(e)) = (core[sr].clone(), core[ss].clone()) {
        split.time(&b, Some(&e));
    } else {
        // Incomplete RPC: time what we can and keep the lone end as an annotation.
        for span in &mut split.spans {
            match span.kind {
                RawKind::Known(SpanKind::Client) => {
                    if let Some(a) = &core[cs] {
                        span.timestamp = Some(a.timestamp).filter(|t| *t != 0);
                    }
                    if let Some(a) = &core[cr] {
                        span.annotations.push(Annotation {
                            timestamp: a.timestamp,
                            value: a.value.clone(),
                        });
                    }
                }
                RawKind::Known(SpanKind::Server) => {
                    if let Some(a) = &core[sr] {
                        span.timestamp = Some(a.timestamp).filter(|t| *t != 0);
                    }
                    if let Some(a) = &core[ss] {
                        span.annotations.push(Annotation {
                            timestamp: a.timestamp,
                            value: a.value.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        if source.timestamp.is_some() {
            split.spans[0].timestamp = source.timestamp;
            split.spans[0].duration = source.duration;
        }
    }

    // v1 had no shared flag: a server side without the span's own timing was shared.
    if core[cs].is_none()
        && let Some(sr_a) = core[sr].clone()
        && (source.timestamp.is_none() || (core[ss].is_some() && source.duration.is_none()))
    {
        split.span(sr_a.endpoint.as_ref()).shared = true;
    }

    if let (Some(ms_a), Some(mr_a)) = (core[ms].clone(), core[mr].clone()) {
        let producer = split.for_endpoint(ms_a.endpoint.as_ref());
        let loopback = match (&ms_a.endpoint, &mr_a.endpoint) {
            (Some(a), Some(b)) => same_service(a, b),
            _ => false,
        };
        let consumer = if loopback {
            set_kind(&mut split.spans[producer], SpanKind::Producer);
            let c = split.push(mr_a.endpoint.clone());
            set_kind(&mut split.spans[c], SpanKind::Consumer);
            c
        } else {
            split.for_endpoint(mr_a.endpoint.as_ref())
        };
        let c = &mut split.spans[consumer];
        c.shared = true;
        match &core[wr] {
            Some(wr_a) => {
                c.timestamp = Some(wr_a.timestamp).filter(|t| *t != 0);
                c.duration =
                    Some(mr_a.timestamp.saturating_sub(wr_a.timestamp)).filter(|d| *d != 0);
            }
            None => c.timestamp = Some(mr_a.timestamp).filter(|t| *t != 0),
        }
        let ws_ts = core[ws].as_ref().map(|a| a.timestamp);
        let p = &mut split.spans[producer];
        p.timestamp = Some(ms_a.timestamp).filter(|t| *t != 0);
        p.duration = ws_ts
            .map(|t| t.saturating_sub(ms_a.timestamp))
            .filter(|d| *d != 0);
    } else if let Some(ms_a) = core[ms].clone() {
        split.time(&ms_a, core[ws].as_ref());
    } else if let Some(mr_a) = core[mr].clone() {
        match core[wr].clone() {
            Some(wr_a) => split.time(&wr_a, Some(&mr_a)),
            None => split.time(&mr_a, None),
        }
    } else {
        for a in [&core[ws], &core[wr]].into_iter().flatten() {
            split
                .span(a.endpoint.as_ref())
                .annotations
                .push(Annotation {
                    timestamp: a.timestamp,
                    value: a.value.clone(),
                });
        }
    }

    // Binary annotations: tags, and the ca/sa/ma addresses.
    let (mut ca, mut sa, mut ma) = (None, None, None);
    for b in &source.binary {
        match &b.value {
            None => match b.key.as_str() {
                "ca" => ca = b.endpoint.clone(),
                "sa" => sa = b.endpoint.clone(),
                _ => ma = b.endpoint.clone(),
            },
            Some(value) => {
                // "lc" with an empty value only marks a local span.
                if b.key == "lc" && value.is_empty() {
                    continue;
                }
                split
                    .span(b.endpoint.as_ref())
                    .tags
                    .insert(b.key.clone(), value.clone());
            }
        }
    }
    let no_core =
        core[cs].is_none() && core[cr].is_none() && core[ss].is_none() && core[sr].is_none();
    if no_core && (ca.is_some() || sa.is_some()) {
        match (ca, sa) {
            (Some(ca), Some(sa)) => split.span(Some(&ca)).remote_endpoint = Some(sa),
            (None, Some(sa)) => split.span(None).remote_endpoint = Some(sa),
            (Some(ca), None) => {
                let s = split.span(None);
                set_kind(s, SpanKind::Server);
                s.remote_endpoint = Some(ca);
            }
            (None, None) => {}
        }
    } else {
        let server = core[sr].clone().or_else(|| core[ss].clone());
        if let (Some(mut ca), Some(server)) = (ca, server)
            && Some(&ca) != server.endpoint.as_ref()
        {
            // A client address with the server's own service name is the socket's other end,
            // not another service: drop the name so no loopback link appears.
            if server
                .endpoint
                .as_ref()
                .is_some_and(|e| same_service(e, &ca))
            {
                ca.service_name.clear();
            }
            split.span(server.endpoint.as_ref()).remote_endpoint = Some(ca);
        }
        if let Some(sa) = sa
            && let Some(c) = core[cs].clone().or_else(|| core[cr].clone())
        {
            split.span(c.endpoint.as_ref()).remote_endpoint = Some(sa);
        }
        if let Some(ma) = ma {
            if let Some(a) = core[ms].clone() {
                split.span(a.endpoint.as_ref()).remote_endpoint = Some(ma.clone());
            }
            if let Some(a) = core[mr].clone() {
                split.span(a.endpoint.as_ref()).remote_endpoint = Some(ma);
            }
        }
    }
    split.spans
}
