//! The read contract: what callers can ask of stored traces and how a span is matched.

use async_trait::async_trait;
use stitch_model::{SpanKind, SpanRef, Trace, TraceId};

/// A search for traces, with the semantics of Jaeger's trace search: a trace matches when at
/// least one of its spans satisfies every condition at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchQuery {
    /// `service.name` of the matching span.
    pub service: Option<String>,
    /// Name of the matching span.
    pub operation: Option<String>,
    /// Kind of the matching span.
    pub span_kind: Option<SpanKind>,
    /// Every pair must equal (as text) a span attribute, a resource attribute or an event
    /// attribute of the matching span.
    pub tags: Vec<(String, String)>,
    /// Inclusive lower bound on the matching span's duration, in nanoseconds.
    pub min_duration_nanos: Option<u64>,
    /// Inclusive upper bound on the matching span's duration, in nanoseconds.
    pub max_duration_nanos: Option<u64>,
    /// The matching span starts at or after this time (Unix nanoseconds).
    pub start_unix_nanos: Option<u64>,
    /// The matching span starts at or before this time (Unix nanoseconds).
    pub end_unix_nanos: Option<u64>,
    /// Most traces to return; the newest are returned first.
    pub limit: usize,
}

/// Span-level tags that are not attributes but can still be searched, as Jaeger allows.
const STATUS_ERROR_TAG: &str = "error";

impl SearchQuery {
    /// Whether one span satisfies every condition of the query.
    pub fn matches(&self, s: &SpanRef<'_>) -> bool {
        let span = s.span;
        if let Some(service) = &self.service
            && s.service_name() != service
        {
            return false;
        }
        if let Some(op) = &self.operation
            && &span.name != op
        {
            return false;
        }
        if let Some(kind) = self.span_kind
            && span.kind != kind
        {
            return false;
        }
        let duration = span.duration_nanos();
        if self.min_duration_nanos.is_some_and(|min| duration < min)
            || self.max_duration_nanos.is_some_and(|max| duration > max)
        {
            return false;
        }
        let start = span.start_time_unix_nano;
        if self.start_unix_nanos.is_some_and(|t| start < t)
            || self.end_unix_nanos.is_some_and(|t| start > t)
        {
            return false;
        }
        self.tags.iter().all(|(k, v)| tag_matches(s, k, v))
    }

    /// Whether the query can only match spans in `[min_start, max_start]` of a block.
    pub fn overlaps_time(&self, min_start: u64, max_start: u64) -> bool {
        !(self.start_unix_nanos.is_some_and(|t| max_start < t)
            || self.end_unix_nanos.is_some_and(|t| min_start > t))
    }
}

fn tag_matches(s: &SpanRef<'_>, key: &str, want: &str) -> bool {
    let in_list = |attrs: &[stitch_model::KeyValue]| {
        attrs
            .iter()
            .any(|kv| kv.key == key && kv.value.to_text() == want)
    };
    if key == STATUS_ERROR_TAG && want == "true" && s.span.is_error() {
        return true;
    }
    if key == "span.kind" && s.span.kind.as_str() == want {
        return true;
    }
    in_list(&s.span.attributes)
        || in_list(&s.resource.attributes)
        || s.span.events.iter().any(|e| in_list(&e.attributes))
}

/// An operation (span name) of a service, with the kind of span it was seen as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    pub kind: SpanKind,
}

/// Why a reader could not answer. The message says what failed; the source chain is kept.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The storage behind the reader failed (an I/O error, a damaged block).
    #[error(transparent)]
    Storage(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ReadError {
    /// A storage failure described by `message`.
    pub fn storage(message: impl Into<String>) -> ReadError {
        ReadError::Storage(message.into().into())
    }
}

/// Read access to stored traces.
///
/// Implementations see every span that was acknowledged, whether it is still in memory or
/// already in a block. A trace whose spans arrived in several batches is returned whole, with
/// duplicates (the same span delivered twice) removed. [`crate::conformance`] holds every
/// implementation to this contract.
#[async_trait]
pub trait TraceReader: Send + Sync + 'static {
    /// The trace with this id, or `None` when no span of it is stored.
    async fn trace(&self, id: TraceId) -> Result<Option<Trace>, ReadError>;

    /// The traces `ids` (sorted, without repeats) in that order, leaving out those with no
    /// span stored. Each holds at least every stored span of its trace that starts at or after
    /// `min_start_unix_nanos` (with 0, the whole trace, as [`TraceReader::trace`] returns it);
    /// it may hold earlier spans too. A reader that keeps spans by time uses the bound to skip
    /// what holds only earlier spans, and reads what is left once for all the ids.
    async fn traces_from(
        &self,
        ids: &[TraceId],
        min_start_unix_nanos: u64,
    ) -> Result<Vec<Trace>, ReadError> {
        let _ = min_start_unix_nanos;
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            found.extend(self.trace(id).await?);
        }
        Ok(found)
    }

    /// Traces that match `query`, newest first (by the start of their latest matching span,
    /// ties by trace id), at most `query.limit` of them.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Trace>, ReadError>;

    /// Every service name seen, sorted.
    async fn services(&self) -> Result<Vec<String>, ReadError>;

    /// The operations of one service, sorted by name then kind.
    async fn operations(&self, service: &str) -> Result<Vec<Operation>, ReadError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use stitch_model::{KeyValue, Resource, Scope, Span, SpanKind, Status, StatusCode};

    fn check(query: &SearchQuery, span: &Span, resource: &Resource) -> bool {
        let scope = Scope::default();
        query.matches(&SpanRef {
            resource,
            scope: &scope,
            span,
        })
    }

    #[test]
    fn a_span_matches_only_when_every_condition_holds() {
        let resource = Resource {
            attributes: vec![
                KeyValue::new("service.name", "checkout"),
                KeyValue::new("host.name", "h1"),
            ],
            ..Default::default()
        };
        let span = Span {
            name: "GET /cart".into(),
            kind: SpanKind::Server,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000_001_000,
            attributes: vec![KeyValue::new("http.response.status_code", 500i64)],
            status: Status {
                code: StatusCode::Error,
                message: String::new(),
            },
            ..Default::default()
        };
        let base = SearchQuery {
            service: Some("checkout".into()),
            ..Default::default()
        };
        assert!(check(&base, &span, &resource));
        let with = |f: &dyn Fn(&mut SearchQuery)| {
            let mut q = base.clone();
            f(&mut q);
            check(&q, &span, &resource)
        };
        assert!(!with(&|q| q.service = Some("cart".into())));
        assert!(with(&|q| q.operation = Some("GET /cart".into())));
        assert!(!with(&|q| q.operation = Some("GET /".into())));
        assert!(with(&|q| q.min_duration_nanos = Some(2_000_000_000)));
        assert!(!with(&|q| q.min_duration_nanos = Some(2_000_000_001)));
        assert!(!with(&|q| q.max_duration_nanos = Some(1_000_000_000)));
        assert!(with(
            &|q| q.tags = vec![("http.response.status_code".into(), "500".into())]
        ));
        assert!(with(&|q| q.tags = vec![("host.name".into(), "h1".into())]));
        assert!(with(&|q| q.tags = vec![("error".into(), "true".into())]));
        assert!(!with(&|q| q.tags = vec![("host.name".into(), "h2".into())]));
        assert!(!with(&|q| q.start_unix_nanos = Some(1_001)));
        assert!(!with(&|q| q.span_kind = Some(SpanKind::Client)));
    }
}
