//! `GET /api/search`: TraceQL or logfmt tags, duration bounds, Tempo's search answer.

use super::*;

pub(super) async fn search(State(reader): State<Reader>, query: Q) -> Answer {
    let params = params(query)?;
    let (start, end) = window(&params)?;
    let limit = count(&params, "limit", DEFAULT_LIMIT, MAX_SEARCH_LIMIT)?;
    let spss = count(&params, "spss", DEFAULT_SPSS, MAX_SPSS)?;
    let (min, max) = (
        duration(&params, "minDuration")?,
        duration(&params, "maxDuration")?,
    );
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(TempoError::bad(
            "invalid maxDuration: it must be at least minDuration",
        ));
    }
    let text = match (params.get("q"), params.get("tags")) {
        (Some(_), Some(_)) => {
            return Err(TempoError::bad(
                "invalid request: give either q (TraceQL) or tags (logfmt), not both",
            ));
        }
        (Some(q), None) => q.to_owned(),
        (None, Some(tags)) => tags_to_traceql(tags)?,
        (None, None) => "{ }".to_owned(),
    };
    let text = with_trace_duration(&text, min, max);
    let q = TraceQl::parse(&text)?;
    let found = traceql::search(&*reader, &q, start, end, limit, spss).await?;
    Ok(axum::Json(json!({
        "traces": found.traces.iter().map(crate::search::trace_json).collect::<Vec<_>>(),
        "metrics": { "inspectedTraces": found.inspected_traces },
    }))
    .into_response())
}

/// `query` followed by a stage keeping traces whose duration is within the bounds.
fn with_trace_duration(query: &str, min: Option<u64>, max: Option<u64>) -> String {
    let bounds: Vec<String> = [(min, ">="), (max, "<=")]
        .into_iter()
        .filter_map(|(d, op)| d.map(|d| format!("trace:duration {op} {d}ns")))
        .collect();
    if bounds.is_empty() {
        return query.to_owned();
    }
    // The stage goes on a line of its own (a `//` comment in the query ends at the line's
    // end) and before a trailing `with(...)` hint, which must stay last.
    let trimmed = query.trim_end();
    let (body, hint) = match trimmed.rfind("with") {
        Some(i)
            if trimmed.ends_with(')')
                && trimmed[i + 4..].trim_start().starts_with('(')
                && !trimmed[i..].contains(['{', '}', '|']) =>
        {
            (&trimmed[..i], &trimmed[i..])
        }
        _ => (trimmed, ""),
    };
    format!("{body}\n| {{ {} }}\n{hint}", bounds.join(" && "))
}

/// TraceQL for Tempo's `tags` parameter: logfmt `key=value` pairs, every one required of one
/// span. `service.name` is the resource's service, `name` the span name, `status.code` the
/// status, `error=true` an error status; other keys are span or resource attributes, whose
/// value may be written as text or as the number or boolean it is.
fn tags_to_traceql(tags: &str) -> Result<String, TempoError> {
    let pairs = logfmt(tags).map_err(TempoError::bad)?;
    if pairs.is_empty() {
        return Ok("{ }".to_owned());
    }
    crate::params::check_tags("tags", pairs.len())?;
    let conditions: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            Ok(match (k.as_str(), v.as_deref()) {
                (key, None) => format!(".{} != nil", quoted(key)),
                ("service.name", Some(v)) => format!("resource.service.name = {}", quoted(v)),
                ("name", Some(v)) => format!("name = {}", quoted(v)),
                ("status.code", Some(v)) => {
                    let v = v.to_ascii_lowercase();
                    match v.strip_prefix("status_code_").unwrap_or(&v) {
                        "unset" | "0" => "status = unset".to_owned(),
                        "ok" | "1" => "status = ok".to_owned(),
                        "error" | "2" => "status = error".to_owned(),
                        _ => {
                            return Err(TempoError::bad(format!(
                                "invalid tags: status.code is {v:?}; it must be ok, error or unset"
                            )));
                        }
                    }
                }
                ("error", Some("true")) => "status = error".to_owned(),
                (key, Some(v)) => {
                    let attr = format!(".{}", quoted(key));
                    let mut forms = vec![format!("{attr} = {}", quoted(v))];
                    if v.parse::<i64>().is_ok()
                        || v.parse::<f64>().is_ok_and(f64::is_finite)
                        || v == "true"
                        || v == "false"
                    {
                        forms.push(format!("{attr} = {v}"));
                    }
                    format!("({})", forms.join(" || "))
                }
            })
        })
        .collect::<Result<_, TempoError>>()?;
    Ok(format!("{{ {} }}", conditions.join(" && ")))
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Parses logfmt: space-separated `key=value`, `key="quoted value"` (with `\"` and `\\`
/// escapes) or a bare `key`.
fn logfmt(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return Err("invalid tags: a pair has no key".into());
        }
        if chars.next_if_eq(&'=').is_none() {
            out.push((key, None));
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("invalid tags: the value of {key} is cut off")),
                    },
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "invalid tags: the value of {key} has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(format!("invalid tags: {key} is given twice"));
        }
        out.push((key, Some(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_pairs_become_one_spanset_filter() {
        assert_eq!(
            tags_to_traceql(
                r#"service.name=checkout http.status_code=500 note="a \"b\"" error=true"#
            )
            .unwrap(),
            r#"{ resource.service.name = "checkout" && (."http.status_code" = "500" || ."http.status_code" = 500) && (."note" = "a \"b\"") && status = error }"#
        );
        assert_eq!(tags_to_traceql("  ").unwrap(), "{ }");
        assert!(tags_to_traceql("a=1 a=2").is_err());
        assert!(tags_to_traceql(r#"a="open"#).is_err());
        for text in [
            tags_to_traceql("service.name=x name=GET status.code=error retry").unwrap(),
            with_trace_duration("{ }", Some(1_000), Some(2_000)),
        ] {
            assert!(TraceQl::parse(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn duration_bounds_survive_comments_and_hints() {
        for query in [
            "{ } // the slow ones",
            "{ status = error } with(most_recent=true)",
            "{ name = \"with(x)\" }",
        ] {
            let text = with_trace_duration(query, Some(1_000), None);
            let q = TraceQl::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                q.to_text().contains("trace:duration"),
                "{text} -> {}",
                q.to_text()
            );
        }
        assert!(
            tags_to_traceql("status.code=STATUS_CODE_ERROR")
                .unwrap()
                .contains("status = error")
        );
        assert!(
            tags_to_traceql("status.code=2")
                .unwrap()
                .contains("status = error")
        );
        assert!(tags_to_traceql("status.code=bad").is_err());
        assert!(tags_to_traceql("ratio=1.5").unwrap().contains(" = 1.5"));
    }
}
