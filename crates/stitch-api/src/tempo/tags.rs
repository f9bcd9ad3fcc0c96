//! Tag names and values for Grafana's autocompletion: `/api/search/tags`,
//! `/api/v2/search/tags`, `/api/search/tag/{tag}/values`, `/api/v2/search/tag/{identifier}/values`.

use super::*;

/// The intrinsics Tempo offers for autocompletion; Stitch's TraceQL reads each of them.
const INTRINSICS: &[&str] = &[
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "link:spanID",
    "link:traceID",
    "name",
    "nestedSetLeft",
    "nestedSetParent",
    "nestedSetRight",
    "rootName",
    "rootServiceName",
    "span:childCount",
    "span:duration",
    "span:id",
    "span:kind",
    "span:name",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:id",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

/// The traces tag names and values are read from, and with `q`, the spans of each that match
/// it (all spans without `q`).
struct Sample {
    traces: Vec<Trace>,
    matched: Vec<Option<BTreeSet<SpanId>>>,
}

impl Sample {
    async fn read(reader: &Reader, params: &Params) -> Result<Sample, TempoError> {
        let q = params
            .get("q")
            .filter(|q| !q.trim().is_empty() && q.trim() != "{}")
            .map(TraceQl::parse)
            .transpose()?;
        let (start, end) = window(params)?;
        let traces = reader
            .search(&SearchQuery {
                start_unix_nanos: Some(start),
                end_unix_nanos: Some(end),
                limit: SCAN_TRACES,
                ..q.as_ref().and_then(TraceQl::prefilter).unwrap_or_default()
            })
            .await?;
        let matched = traces
            .iter()
            .map(|t| {
                q.as_ref().map(|q| {
                    q.evaluate(t, usize::MAX)
                        .map(|m| {
                            m.spansets
                                .iter()
                                .flat_map(|s| s.spans.iter().map(|s| s.span_id))
                                .collect()
                        })
                        .unwrap_or_default()
                })
            })
            .collect();
        Ok(Sample { traces, matched })
    }

    fn spans(&self) -> impl Iterator<Item = SpanRef<'_>> {
        self.traces.iter().zip(&self.matched).flat_map(|(t, m)| {
            t.spans()
                .filter(move |s| m.as_ref().is_none_or(|m| m.contains(&s.span.span_id)))
        })
    }
}

fn limit_of(params: &Params) -> Result<usize, TempoError> {
    count(params, "limit", MAX_VALUES, usize::MAX)
}

/// Attribute names per scope in the sample.
fn names_by_scope(sample: &Sample) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut by: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut add = |scope: &'static str, kvs: &[KeyValue]| {
        by.entry(scope)
            .or_default()
            .extend(kvs.iter().map(|kv| kv.key.clone()));
    };
    for s in sample.spans() {
        add("resource", &s.resource.attributes);
        add("span", &s.span.attributes);
        add("instrumentation", &s.scope.attributes);
        for e in &s.span.events {
            add("event", &e.attributes);
        }
        for l in &s.span.links {
            add("link", &l.attributes);
        }
    }
    by.retain(|_, names| !names.is_empty());
    by
}

const SCOPES: &[&str] = &[
    "resource",
    "span",
    "event",
    "link",
    "instrumentation",
    "trace",
    "intrinsic",
    "none",
];

fn scope_param(params: &Params) -> Result<Option<&str>, TempoError> {
    match params.get("scope") {
        Some(s) if !SCOPES.contains(&s) => Err(TempoError::bad(format!(
            "invalid scope: {s} (one of {})",
            SCOPES.join(", ")
        ))),
        s => Ok(s.filter(|s| *s != "none")),
    }
}

pub(super) async fn tags_v1(State(reader): State<Reader>, query: Q) -> Answer {
    let params = params(query)?;
    let scope = scope_param(&params)?;
    let limit = limit_of(&params)?;
    let names: BTreeSet<String> = if scope == Some("intrinsic") {
        INTRINSICS.iter().map(|s| s.to_string()).collect()
    } else {
        let sample = Sample::read(&reader, &params).await?;
        names_by_scope(&sample)
            .into_iter()
            .filter(|(s, _)| match scope {
                None => matches!(*s, "resource" | "span"),
                Some(want) => *s == want,
            })
            .flat_map(|(_, names)| names)
            .collect()
    };
    Ok(
        axum::Json(json!({ "tagNames": names.into_iter().take(limit).collect::<Vec<_>>() }))
            .into_response(),
    )
}

pub(super) async fn tags_v2(State(reader): State<Reader>, query: Q) -> Answer {
    let params = params(query)?;
    let scope = scope_param(&params)?;
    let limit = limit_of(&params)?;
    let mut scopes = Vec::new();
    if scope != Some("intrinsic") {
        let sample = Sample::read(&reader, &params).await?;
        for (name, tags) in names_by_scope(&sample) {
            if scope.is_none_or(|s| s == name) {
                scopes.push(
                    json!({"name": name, "tags": tags.into_iter().take(limit).collect::<Vec<_>>()}),
                );
            }
        }
    }
    if scope.is_none_or(|s| s == "intrinsic") {
        scopes.push(
            json!({"name": "intrinsic", "tags": INTRINSICS.iter().take(limit).collect::<Vec<_>>()}),
        );
    }
    Ok(axum::Json(json!({ "scopes": scopes })).into_response())
}

fn path_text(path: Result<Path<String>, PathRejection>) -> Result<String, TempoError> {
    let Path(text) = path.map_err(|e| TempoError::bad(format!("malformed path: {e}")))?;
    Ok(text)
}

/// A tag value and its TraceQL type name.
fn typed(v: &AnyValue) -> Option<(&'static str, String)> {
    Some(match v {
        AnyValue::String(s) => ("string", s.clone()),
        AnyValue::Int(i) => ("int", i.to_string()),
        AnyValue::Double(d) => ("float", d.to_string()),
        AnyValue::Bool(b) => ("bool", b.to_string()),
        _ => return None,
    })
}

pub(super) async fn values_v1(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Answer {
    let tag = path_text(path)?;
    let params = params(query)?;
    let limit = limit_of(&params)?;
    let values: BTreeSet<String> = match tag.as_str() {
        "status.code" => ["error", "ok", "unset"].map(String::from).into(),
        "error" => ["true".to_owned()].into(),
        "service.name" => reader.services().await?.into_iter().collect(),
        key => {
            let sample = Sample::read(&reader, &params).await?;
            sample
                .spans()
                .flat_map(|s| {
                    stitch_model::find_attribute(&s.span.attributes, key)
                        .or_else(|| stitch_model::find_attribute(&s.resource.attributes, key))
                        .and_then(typed)
                        .map(|(_, v)| v)
                })
                .collect()
        }
    };
    Ok(
        axum::Json(json!({ "tagValues": values.into_iter().take(limit).collect::<Vec<_>>() }))
            .into_response(),
    )
}

/// Where a v2 tag identifier reads its values.
enum Source {
    Fixed(&'static str, &'static [&'static str]),
    /// Durations and ids: no values are offered, as Tempo does.
    Nothing,
    Services,
    Attribute(traceql::Scope, String),
    SpanName,
    StatusMessage,
    RootService,
    RootName,
    EventName,
    ScopeName,
    ScopeVersion,
}

fn source(identifier: &str) -> Result<Source, TempoError> {
    const STATUSES: &[&str] = &["error", "ok", "unset"];
    const KINDS: &[&str] = &[
        "client",
        "consumer",
        "internal",
        "producer",
        "server",
        "unspecified",
    ];
    Ok(match identifier {
        "status" | "span:status" => Source::Fixed("keyword", STATUSES),
        "kind" | "span:kind" => Source::Fixed("keyword", KINDS),
        "duration"
        | "span:duration"
        | "traceDuration"
        | "trace:duration"
        | "trace:id"
        | "span:id"
        | "span:parentID"
        | "link:traceID"
        | "link:spanID"
        | "event:timeSinceStart" => Source::Nothing,
        "name" | "span:name" => Source::SpanName,
        "statusMessage" | "span:statusMessage" => Source::StatusMessage,
        "rootServiceName" | "trace:rootService" => Source::RootService,
        "rootName" | "trace:rootName" => Source::RootName,
        "event:name" => Source::EventName,
        "instrumentation:name" => Source::ScopeName,
        "instrumentation:version" => Source::ScopeVersion,
        "resource.service.name" => Source::Services,
        other => {
            let (scope, name) = if let Some(n) = other.strip_prefix("resource.") {
                (traceql::Scope::Resource, n)
            } else if let Some(n) = other.strip_prefix("span.") {
                (traceql::Scope::Span, n)
            } else if let Some(n) = other.strip_prefix("event.") {
                (traceql::Scope::Event, n)
            } else if let Some(n) = other.strip_prefix("link.") {
                (traceql::Scope::Link, n)
            } else if let Some(n) = other.strip_prefix("instrumentation.") {
                (traceql::Scope::Instrumentation, n)
            } else if let Some(n) = other.strip_prefix('.') {
                (traceql::Scope::Any, n)
            } else {
                return Err(TempoError::bad(format!(
                    "please provide a valid tag name: {other:?} is not a TraceQL attribute (span.x, resource.x, .x) or intrinsic (name, status, kind, ...)"
                )));
            };
            if name.is_empty() {
                return Err(TempoError::bad(format!(
                    "please provide a valid tag name: {other:?} names no attribute"
                )));
            }
            Source::Attribute(scope, name.trim_matches('"').to_owned())
        }
    })
}

pub(super) async fn values_v2(
    State(reader): State<Reader>,
    path: Result<Path<String>, PathRejection>,
    query: Q,
) -> Answer {
    let identifier = path_text(path)?;
    let params = params(query)?;
    let limit = limit_of(&params)?;
    let source = source(&identifier)?;
    let mut values: BTreeSet<(&'static str, String)> = BTreeSet::new();
    match source {
        Source::Fixed(kind, list) => values.extend(list.iter().map(|v| (kind, v.to_string()))),
        Source::Nothing => {}
        Source::Services if params.get("q").is_none() => {
            values.extend(reader.services().await?.into_iter().map(|s| ("string", s)));
        }
        source => {
            let sample = Sample::read(&reader, &params).await?;
            let mut add = |v: Option<(&'static str, String)>| {
                if let Some(v) = v {
                    values.insert(v);
                }
            };
            let text = |s: &str| (!s.is_empty()).then(|| ("string", s.to_owned()));
            for s in sample.spans() {
                let find = |kvs: &[KeyValue], key: &str| {
                    stitch_model::find_attribute(kvs, key).and_then(typed)
                };
                match &source {
                    Source::Services => add(text(s.resource.service_name())),
                    Source::SpanName => add(text(&s.span.name)),
                    Source::StatusMessage => add(text(&s.span.status.message)),
                    Source::RootService if s.span.parent_span_id.is_none() => {
                        add(text(s.resource.service_name()))
                    }
                    Source::RootName if s.span.parent_span_id.is_none() => add(text(&s.span.name)),
                    Source::EventName => s.span.events.iter().for_each(|e| add(text(&e.name))),
                    Source::ScopeName => add(text(&s.scope.name)),
                    Source::ScopeVersion => add(text(&s.scope.version)),
                    Source::Attribute(scope, key) => match scope {
                        traceql::Scope::Resource => add(find(&s.resource.attributes, key)),
                        traceql::Scope::Span => add(find(&s.span.attributes, key)),
                        traceql::Scope::Any => add(find(&s.span.attributes, key)
                            .or_else(|| find(&s.resource.attributes, key))),
                        traceql::Scope::Event => s
                            .span
                            .events
                            .iter()
                            .for_each(|e| add(find(&e.attributes, key))),
                        traceql::Scope::Link => s
                            .span
                            .links
                            .iter()
                            .for_each(|l| add(find(&l.attributes, key))),
                        traceql::Scope::Instrumentation => add(find(&s.scope.attributes, key)),
                    },
                    _ => {}
                }
            }
        }
    }
    let values: Vec<Json> = values
        .into_iter()
        .take(limit)
        .map(|(kind, value)| json!({"type": kind, "value": value}))
        .collect();
    Ok(axum::Json(json!({ "tagValues": values })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_intrinsic_offered_is_one_the_queries_read() {
        for name in INTRINSICS {
            let q = format!("{{ {name} != nil }}");
            assert!(TraceQl::parse(&q).is_ok(), "{q}");
        }
        assert!(INTRINSICS.windows(2).all(|w| w[0] < w[1]), "sorted");
    }

    #[test]
    fn identifiers_name_where_values_come_from() {
        assert!(matches!(
            source("status").unwrap(),
            Source::Fixed("keyword", _)
        ));
        assert!(matches!(
            source("resource.service.name").unwrap(),
            Source::Services
        ));
        assert!(matches!(
            source("span.http.route").unwrap(),
            Source::Attribute(traceql::Scope::Span, ref k) if k == "http.route"
        ));
        assert!(matches!(
            source(".x").unwrap(),
            Source::Attribute(traceql::Scope::Any, _)
        ));
        assert!(source("http.route").is_err());
        assert!(source("span.").is_err());
    }
}
