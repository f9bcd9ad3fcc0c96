//! Parsing of the query API's parameters into store requests.

use stitch_model::{SpanKind, TraceId};
use stitch_query::SearchQuery;

use crate::duration::parse_duration_nanos;
use crate::error::ApiError;

/// Number of traces a search returns when `limit` is absent (the Jaeger UI's default).
pub const DEFAULT_SEARCH_LIMIT: usize = 20;

// Caps on the work one request may ask for, shared by every API family; a request over one is
// a 400 whose message states the cap.

/// The most traces one search returns (the Jaeger UI's own maximum).
pub const MAX_SEARCH_LIMIT: usize = 1_500;
/// The most trace ids one request names.
pub const MAX_TRACE_IDS: usize = 100;
/// The most tags (attribute conditions) one search holds.
pub const MAX_TAGS: usize = 32;
/// The longest `lookback` one search takes: 366 days. Explicit windows (`start`, `end`) are not
/// capped: clients compute them, and a window longer than the data held costs nothing more,
/// since blocks outside the data's time range are never read.
pub const MAX_WINDOW_NANOS: u64 = 366 * 86_400 * 1_000_000_000;
/// The most spans one search answer carries: the newest traces that fit are returned, and the
/// answer says how many were left out (see [`fit_answer`]).
pub const MAX_ANSWER_SPANS: usize = 20_000;

/// `n`, when it is within [`MAX_SEARCH_LIMIT`].
pub fn check_limit(param: &str, n: usize) -> Result<usize, ApiError> {
    if n > MAX_SEARCH_LIMIT {
        return Err(ApiError::bad_request(format!(
            "parameter '{param}' is {n}, over the cap of {MAX_SEARCH_LIMIT} traces per search"
        )));
    }
    Ok(n)
}

/// Refuses a window longer than [`MAX_WINDOW_NANOS`]; `what` names the parameters.
pub fn check_window(what: &str, nanos: u64) -> Result<(), ApiError> {
    if nanos > MAX_WINDOW_NANOS {
        return Err(ApiError::bad_request(format!(
            "{what} covers {} days, over the cap of {} days per search",
            nanos / 86_400_000_000_000,
            MAX_WINDOW_NANOS / 86_400_000_000_000
        )));
    }
    Ok(())
}

/// Refuses more than [`MAX_TAGS`] tags.
pub fn check_tags(param: &str, n: usize) -> Result<(), ApiError> {
    if n > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "'{param}' holds {n} conditions, over the cap of {MAX_TAGS}"
        )));
    }
    Ok(())
}

/// Refuses more than [`MAX_TRACE_IDS`] trace ids.
pub fn check_trace_ids(param: &str, n: usize) -> Result<(), ApiError> {
    if n > MAX_TRACE_IDS {
        return Err(ApiError::bad_request(format!(
            "'{param}' names {n} traces, over the cap of {MAX_TRACE_IDS} per request"
        )));
    }
    Ok(())
}

/// Cuts a search answer (newest first) to the traces that fit [`MAX_ANSWER_SPANS`] together,
/// always keeping the first. Returns what to tell the client when traces were left out.
pub fn fit_answer(traces: &mut Vec<stitch_model::Trace>) -> Option<String> {
    let mut spans = 0;
    let keep = traces
        .iter()
        .position(|t| {
            spans += t.span_count();
            spans > MAX_ANSWER_SPANS
        })
        .map(|i| i.max(1))?;
    let found = traces.len();
    traces.truncate(keep);
    (keep < found).then(|| {
        format!(
            "answer cut to the newest {keep} of {found} traces: together they hold more than \
             {MAX_ANSWER_SPANS} spans; narrow the search or lower 'limit'"
        )
    })
}

/// Parses a trace id of 1 to 32 hex digits (either case); shorter ids are left-padded with
/// zeros, as Jaeger accepts them.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid trace id {text:?}: expected 1 to 32 hex digits"
        ));
    }
    let padded = format!("{text:0>32}");
    TraceId::from_hex(&padded).map_err(|e| format!("invalid trace id {text:?}: {e}"))
}

/// The query parameters of a request, in order, as decoded from the URL.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Params {
        Params(pairs)
    }

    /// The first non-empty value of `name` (an empty value counts as absent, as in Jaeger).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

fn invalid(param: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse param '{param}': {value:?} is not {expected}"
    ))
}

/// The required `service` parameter.
pub fn required_service(params: &Params) -> Result<&str, ApiError> {
    params
        .get("service")
        .ok_or_else(|| ApiError::bad_request("parameter 'service' is required"))
}

/// The optional `spanKind` parameter (`server`, `client`, ...).
pub fn span_kind(params: &Params) -> Result<Option<SpanKind>, ApiError> {
    params
        .get("spanKind")
        .map(|text| {
            SpanKind::parse(text).ok_or_else(|| {
                invalid(
                    "spanKind",
                    text,
                    "a span kind (unspecified, internal, server, client, producer or consumer)",
                )
            })
        })
        .transpose()
}

/// What a `GET /api/traces` asks for.
#[derive(Debug, PartialEq)]
pub enum SearchRequest {
    /// Fetch these traces (from `traceID` parameters), in order, without duplicates.
    ByIds(Vec<TraceId>),
    /// Search.
    Query(SearchQuery),
}

/// Parses the parameters of `GET /api/traces`. `now_unix_nanos` is the end of a lookback
/// window when `end` is absent.
pub fn parse_search(params: &Params, now_unix_nanos: u64) -> Result<SearchRequest, ApiError> {
    let mut ids = Vec::new();
    check_trace_ids("traceID", params.all("traceID").count())?;
    for text in params.all("traceID") {
        let id = parse_trace_id(text)
            .map_err(|e| ApiError::bad_request(format!("unable to parse param 'traceID': {e}")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    let start = params
        .get("start")
        .map(|t| unix_micros("start", t))
        .transpose()?;
    let end = params
        .get("end")
        .map(|t| unix_micros("end", t))
        .transpose()?;
    let min_duration = duration(params, "minDuration")?;
    let max_duration = duration(params, "maxDuration")?;
    let limit = match params.get("limit") {
        None => DEFAULT_SEARCH_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(0) => DEFAULT_SEARCH_LIMIT,
            Ok(n) => check_limit("limit", n)?,
            Err(_) => return Err(invalid("limit", text, "a non-negative integer")),
        },
    };
    let lookback = match params.get("lookback") {
        None | Some("custom") => None,
        Some(text) => Some(
            parse_duration_nanos(text)
                .ok_or_else(|| invalid("lookback", text, "a duration such as 1h or 2d"))?,
        ),
    };
    if let Some(lookback) = lookback {
        check_window("'lookback'", lookback)?;
    }
    let tags = tags(params)?;
    check_tags("tags", tags.len())?;

    if !ids.is_empty() {
        return Ok(SearchRequest::ByIds(ids));
    }

    let service = required_service(params)?.to_owned();
    if let (Some(min), Some(max)) = (min_duration, max_duration)
        && max < min
    {
        return Err(ApiError::bad_request(
            "'maxDuration' should be greater than 'minDuration'",
        ));
    }
    let start = start.or_else(|| {
        lookback.map(|lookback| end.unwrap_or(now_unix_nanos).saturating_sub(lookback))
    });

    Ok(SearchRequest::Query(SearchQuery {
        service: Some(service),
        operation: params.get("operation").map(str::to_owned),
        span_kind: span_kind(params)?,
        tags,
        min_duration_nanos: min_duration,
        max_duration_nanos: max_duration,
        start_unix_nanos: start,
        end_unix_nanos: end,
        limit,
    }))
}

fn unix_micros(param: &str, text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .and_then(|micros| micros.checked_mul(1_000))
        .ok_or_else(|| invalid(param, text, "a time in Unix microseconds"))
}

fn duration(params: &Params, param: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(param)
        .map(|text| {
            parse_duration_nanos(text).ok_or_else(|| {
                invalid(
                    param,
                    text,
                    "a duration such as 1.5s, 100ms, 250us or 1h30m",
                )
            })
        })
        .transpose()
}

/// Tags from the legacy repeated `tag=key:value` parameters, then from the `tags` JSON
/// objects; a later value for the same key replaces an earlier one.
fn tags(params: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |key: String, value: String| match out.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => out.push((key, value)),
    };
    for text in params.all("tag") {
        let Some((key, value)) = text.split_once(':') else {
            return Err(ApiError::bad_request(format!(
                "malformed 'tag' parameter, expecting key:value, received: {text:?}"
            )));
        };
        put(key.to_owned(), value.to_owned());
    }
    for text in params.all("tags") {
        let malformed = |why: &str| {
            ApiError::bad_request(format!("malformed 'tags' parameter {text:?}: {why}"))
        };
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| malformed(&format!("expected a JSON object of tags: {e}")))?;
        for (key, value) in object {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(malformed(&format!(
                        "the value of {key:?} must be a string, number or bool, not {other}"
                    )));
                }
            };
            put(key, value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_trace_ids_are_left_padded() {
        assert_eq!(
            parse_trace_id("abc").unwrap(),
            TraceId::from_halves(0, 0xabc)
        );
        assert!(parse_trace_id("").is_err());
        assert!(parse_trace_id("0").is_err());
        assert!(parse_trace_id(&"a".repeat(33)).is_err());
        assert!(parse_trace_id("xyz").is_err());
    }
}
