//! HTTP query APIs of Stitch.
//!
//! [`router`] serves the Jaeger-compatible query API: the JSON API of Jaeger's query service
//! (port 16686) that the Jaeger UI and Grafana's Jaeger data source consume. Every response is
//! wrapped in Jaeger's envelope `{"data", "total", "limit", "offset", "errors"}`; a failure has
//! `"data": null` and one error `{"code": <status>, "msg": <reason>}`.
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/traces/{traceID}` | `data` = `[trace]`. The id is 1 to 32 hex digits, left-padded with zeros; anything else (or all zeros) is a 400. An unknown trace is a 404 with `msg` = `trace not found`. Written span by span while the client reads it, so a trace of a million spans is never held as JSON whole. |
//! | `GET /api/services` | `data` = service names, sorted; `total` = their number. |
//! | `GET /api/services/{service}/operations` | `data` = the service's unique operation names; `total` = their number. |
//! | `GET /api/operations?service=&spanKind=` | `data` = `[{"name", "spanKind"}]`, optionally only of one kind; `total` = their number. `service` is required. |
//! | `GET /api/traces?...` | `data` = matching traces, newest first; `total` = 0, as Jaeger reports it. |
//!
//! Search parameters (an empty value counts as absent):
//!
//! - `service` (required unless `traceID` is given), `operation`, `spanKind`;
//! - `start`, `end`: Unix microseconds, bounds on the start of the matching span;
//! - `minDuration`, `maxDuration`: Go-style durations (`1.5s`, `100ms`, `250us`, `1h30m`);
//! - `tags`: a JSON object whose values are strings, numbers or bools, compared as text;
//!   `tag=key:value` (repeatable) is the legacy form; a later value for a key wins;
//! - `limit`: the most traces to return, 20 when absent or 0;
//! - `lookback`: a duration such as `1h` or `2d`; when `start` is absent it becomes
//!   `end - lookback` (with `end` defaulting to now); `custom` is ignored;
//! - `traceID` (repeatable): fetch exactly these traces instead of searching. Unknown ids are
//!   reported in `errors` as `{"msg": "trace not found", "traceID": <id>}` with status 200.
//!
//! A malformed or missing parameter is a 400 whose message names the parameter and the value.
//! A store failure is a 500 carrying the store's message. Every API family shares one error
//! type: [`ApiError::status`] is the one place that maps errors to status codes, and
//! [`ApiError::respond`] writes an error in the family's own form ([`Dialect`]): Jaeger's
//! envelope here, `{"error": {"code", "message"}}` on `/api/v1`, grpc-gateway's
//! `{"error": {"httpCode", "message"}}` on `/api/v3`, plain text on Zipkin's `/api/v2`.
//!
//! The native API, `GET /api/v1/traces/{traceID}`, returns the trace as OTLP JSON (see
//! the `native` module); `GET /api/v1/traces/{traceID}/analysis` its critical path, statistics
//! and ranked findings; `GET /api/v1/analysis/broken-propagation?since=` the hops where trace
//! context was lost across the traces of a window.
//!
//! Analyses of one endpoint across traces (see the [`analysis`] module):
//!
//! | Route | Answer |
//! | --- | --- |
//! | `GET /api/v1/analysis/breakdown?service=&operation=&lookback=&start=&end=&limit=` | The endpoint's latency breakdown: the share of critical-path time and the mean time per trace of each service and operation. |
//! | `GET /api/v1/analysis/cohort?service=&operation=&lookback=&start=&end=&limit=` | The endpoint's cohort diff: where slow traces (≥ p99) spend their extra time compared with typical ones (p40–p60), by service, operation and finding kind. |
//!
//! Both read at most `limit` traces (default 5,000, at most 20,000) and say how many they read
//! (`tracesScanned`) and used (`tracesUsed`).
//!
//! TraceQL search, `GET /api/v1/search?q=&start=&end=&limit=&spss=`: the traces a TraceQL query
//! matches with their matching spans (see the [`search`] module; the language is
//! `stitch_query::traceql`).
//!
//! Service views (`GET /api/v1/services/{service}/red`, `GET /api/v1/dependencies`): RED time
//! series and the dependency graph computed from the stored traces of a window (see the
//! [`services`] module). The web UI is served at `/` (see the [`ui`] module) and opens traces
//! through compact views (`GET /api/v1/traces/{traceID}/waterfall`, `.../spans/{spanID}`; see
//! the [`waterfall`] module).
//!
//! The Zipkin v2 query API (`/api/v2/...`) is a separate router, [`zipkin::router`], served on
//! Zipkin's port beside the Zipkin collector; its module lists the routes.
//!
//! Jaeger's service performance monitoring API (`/api/metrics/latencies|calls|errors|minstep`,
//! the Jaeger UI's Monitor tab) answers from the live RED aggregates (see the `spm` module).
//!
//! Tempo's query API (`/api/echo`, `/api/traces/{id}`, `/api/search`, tag names and values) is
//! another, [`tempo::router`], served on Tempo's port (3200) for Grafana's Tempo data source.
//!
//! Jaeger's api_v3 (`/api/v3/traces/{id}`, `/api/v3/traces?query.*`, `/api/v3/services`,
//! `/api/v3/operations`) answers with OTLP JSON as Jaeger v2 does (see the `api_v3` module), and
//! `GET /api/dependencies?endTs=&lookback=` with Jaeger's dependency links computed from the
//! stored traces (see the [`dependencies`] module).
//!
//! Traces are rendered in the Jaeger UI's JSON model by [`jaeger::trace_to_jaeger`], a pure
//! function other code can reuse; its module documents the mapping.

pub mod analysis;
mod api_v3;
pub mod calendar;
pub mod dependencies;
mod duration;
mod error;
mod handlers;
mod native;
mod params;
pub mod search;
pub mod services;
mod spm;
mod streamed;
pub mod tempo;
pub mod ui;
pub mod waterfall;
pub mod zipkin;

use std::sync::Arc;

use stitch_query::{Live, TraceReader};

pub use error::{ApiError, Dialect, Envelope, EnvelopeError};
pub use params::DEFAULT_SEARCH_LIMIT;
/// The Jaeger UI's JSON trace model (it lives with the other codecs in `stitch-wire`).
pub use stitch_wire::jaeger::ui_json as jaeger;

/// The query APIs and the web UI over `reader`; the service views answer from `live` when it is
/// given and covers the window asked for. See the crate docs for the routes.
pub fn router(reader: Arc<dyn TraceReader>, live: Option<Arc<Live>>) -> axum::Router {
    handlers::router(reader.clone())
        .merge(native::router(reader.clone()))
        .merge(api_v3::router(reader.clone()))
        .merge(
            axum::Router::new()
                .route(
                    "/api/dependencies",
                    axum::routing::get(dependencies::jaeger_dependencies),
                )
                .with_state(reader.clone()),
        )
        .merge(services::router(reader.clone(), live.clone()))
        .merge(spm::router(services::Views {
            reader: reader.clone(),
            live,
        }))
        .merge(analysis::router(reader.clone()))
        .merge(search::router(reader.clone()))
        .merge(waterfall::router(reader))
        .merge(ui::router())
}
