//! Fixtures shared by the store's integration tests.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stitch_model::{
    AnyValue, Batch, Event, KeyValue, Link, Resource, ResourceSpans, Scope, ScopeSpans, Span,
    SpanKind, Status, StatusCode, Trace, TraceId,
};
use stitch_query::TraceReader;
use stitch_store::disk::{FaultInjector, Injected, IoStep};
use stitch_store::{Store, StoreConfig};

pub use stitch_testkit::{MS as MILLI, SECOND};

/// A configuration for tests: no `fdatasync` (tests that need it turn it back on), and
/// background retention far enough away that it never runs during a test.
pub fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.fsync = false;
    c.retention_interval = Duration::from_secs(3600);
    c
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub use stitch_testkit::{batch_of, resource, scope, span, span_id, trace_id};

/// Appends a batch the way the receivers do: the WAL payload is its OTLP encoding. Checks first
/// that the batch survives that encoding, so that what recovery decodes is what was appended.
pub async fn append(store: &Store, batch: &Batch) {
    let payload = stitch_wire::otlp::encode_batch(batch);
    let decoded = stitch_wire::otlp::decode_export_request(&payload).unwrap();
    assert_eq!(decoded.rejected_spans, 0, "{}", decoded.error_message);
    assert_eq!(&decoded.batch, batch, "test batch is not in canonical form");
    store.append(payload, batch.clone()).await.unwrap();
}

/// What `trace()` must return for `id` after these batches were appended: their spans of that
/// trace, normalised.
pub fn expected(id: TraceId, batches: &[&Batch]) -> Trace {
    let mut trace = Trace::new(id);
    for b in batches {
        for (tid, fragment) in b.split_by_trace() {
            if tid == id {
                trace.extend(fragment);
            }
        }
    }
    trace.normalize();
    trace
}

pub async fn get(store: &Store, id: TraceId) -> Option<Trace> {
    store.trace(id).await.unwrap()
}

pub fn wal_dir(data: &Path) -> PathBuf {
    data.join("wal")
}

/// The WAL segment files, ascending by id.
pub fn wal_segments(data: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(wal_dir(data))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    out.sort();
    out
}

/// The block directories, ascending by id.
pub fn block_dirs(data: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

fn every_value() -> Vec<KeyValue> {
    vec![
        KeyValue::new("str", "text with ünïcode"),
        KeyValue::new("empty.str", ""),
        KeyValue::new("bool", true),
        KeyValue::new("int", -42i64),
        KeyValue::new("int.max", i64::MAX),
        KeyValue::new("double", 2.5f64),
        KeyValue::new("double.neg", -1.0e-300f64),
        KeyValue {
            key: "bytes".into(),
            value: AnyValue::Bytes(vec![0, 1, 0xfe, 0xff]),
        },
        KeyValue {
            key: "array".into(),
            value: AnyValue::Array(vec![
                AnyValue::Int(1),
                AnyValue::from("two"),
                AnyValue::Array(vec![AnyValue::Bool(false)]),
            ]),
        },
        KeyValue {
            key: "kvlist".into(),
            value: AnyValue::KvList(vec![
                KeyValue::new("inner", 3.25f64),
                KeyValue {
                    key: "nested".into(),
                    value: AnyValue::KvList(vec![KeyValue::new("deep", "yes")]),
                },
            ]),
        },
        KeyValue {
            key: "nothing".into(),
            value: AnyValue::Empty,
        },
    ]
}

/// A trace that uses every field of the model: two resources (one with a schema URL and
/// dropped attributes), several scopes, every attribute value type, events, links, statuses,
/// trace state, flags and dropped counts. The spans start at `t0` and later.
pub fn rich_batch(id: TraceId, t0: u64) -> Batch {
    let frontend = Arc::new(Resource {
        attributes: [
            vec![
                KeyValue::new("service.name", "frontend"),
                KeyValue::new("host.name", "web-1"),
            ],
            every_value(),
        ]
        .concat(),
        dropped_attributes_count: 2,
        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
    });
    let backend = Arc::new(Resource {
        attributes: vec![KeyValue::new("service.name", "backend")],
        dropped_attributes_count: 0,
        schema_url: String::new(),
    });
    let http = Arc::new(Scope {
        name: "io.opentelemetry.http".into(),
        version: "1.2.3".into(),
        attributes: every_value(),
        dropped_attributes_count: 1,
        schema_url: "https://opentelemetry.io/schemas/1.24.0".into(),
    });
    let custom = Arc::new(Scope {
        name: "custom".into(),
        ..Default::default()
    });
    let db = Arc::new(Scope {
        name: "db".into(),
        version: "0.1".into(),
        ..Default::default()
    });
    let root = Span {
        trace_id: id,
        span_id: span_id(1),
        parent_span_id: None,
        trace_state: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".into(),
        flags: 0x301,
        name: "GET /checkout".into(),
        kind: SpanKind::Server,
        start_time_unix_nano: t0,
        end_time_unix_nano: t0 + 900 * MILLI,
        attributes: every_value(),
        dropped_attributes_count: 3,
        events: vec![
            Event {
                time_unix_nano: t0 + 10 * MILLI,
                name: "exception".into(),
                attributes: vec![
                    KeyValue::new("exception.type", "TimeoutError"),
                    KeyValue::new("exception.message", "upstream timed out"),
                ],
                dropped_attributes_count: 1,
            },
            Event {
                time_unix_nano: 0,
                name: String::new(),
                attributes: every_value(),
                dropped_attributes_count: 0,
            },
        ],
        dropped_events_count: 4,
        links: vec![Link {
            trace_id: trace_id(999_999),
            span_id: span_id(999_999),
            trace_state: "k=v".into(),
            attributes: every_value(),
            dropped_attributes_count: 6,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Status {
            code: StatusCode::Error,
            message: "deadline exceeded".into(),
        },
    };
    let child = |n: u64, name: &str, kind: SpanKind, start: u64, code: StatusCode| Span {
        trace_id: id,
        span_id: span_id(n),
        parent_span_id: Some(span_id(1)),
        trace_state: String::new(),
        flags: 1,
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 100 * MILLI,
        attributes: vec![KeyValue::new("n", n as i64)],
        status: Status {
            code,
            message: String::new(),
        },
        ..Default::default()
    };
    Batch {
        resource_spans: vec![
            ResourceSpans {
                resource: frontend,
                scope_spans: vec![
                    ScopeSpans {
                        scope: http,
                        spans: vec![
                            root,
                            child(
                                2,
                                "render",
                                SpanKind::Internal,
                                t0 + 50 * MILLI,
                                StatusCode::Ok,
                            ),
                        ],
                    },
                    ScopeSpans {
                        scope: custom,
                        spans: vec![child(
                            3,
                            "publish",
                            SpanKind::Producer,
                            t0 + 20 * MILLI,
                            StatusCode::Unset,
                        )],
                    },
                ],
            },
            ResourceSpans {
                resource: backend,
                scope_spans: vec![ScopeSpans {
                    scope: db,
                    spans: vec![
                        child(
                            4,
                            "SELECT",
                            SpanKind::Client,
                            t0 + 30 * MILLI,
                            StatusCode::Ok,
                        ),
                        child(
                            5,
                            "consume",
                            SpanKind::Consumer,
                            t0 + 40 * MILLI,
                            StatusCode::Unset,
                        ),
                        child(
                            6,
                            "",
                            SpanKind::Unspecified,
                            t0 + 60 * MILLI,
                            StatusCode::Error,
                        ),
                    ],
                }],
            },
        ],
    }
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub step: IoStep,
    /// Occurrences of the step to let through first.
    pub skip: u8,
    pub no_space: bool,
    /// For writes: some of the bytes reach the file first.
    pub torn: bool,
}

#[derive(Debug, Default)]
pub struct SimState {
    /// Bytes that may still be written; `None`: plenty.
    pub room: Option<u64>,
    pub armed: Vec<Fault>,
    pub injected: u64,
}

/// A disk that fills up and fails chosen steps.
#[derive(Debug, Default)]
pub struct SimDisk {
    pub state: Mutex<SimState>,
}

pub fn io_error(no_space: bool) -> std::io::Error {
    if no_space {
        std::io::ErrorKind::StorageFull.into()
    } else {
        std::io::Error::other("injected I/O error")
    }
}

impl FaultInjector for SimDisk {
    fn inject(&self, step: IoStep, _path: &Path, bytes: u64) -> Injected {
        let mut st = self.state.lock().unwrap();
        if let Some(i) = st.armed.iter().position(|f| f.step == step) {
            if st.armed[i].skip > 0 {
                st.armed[i].skip -= 1;
            } else {
                let f = st.armed.remove(i);
                st.injected += 1;
                let e = io_error(f.no_space);
                return if f.torn && bytes > 1 {
                    Injected::Torn(bytes as usize / 2, e)
                } else {
                    Injected::Fail(e)
                };
            }
        }
        if let Some(room) = st.room.as_mut()
            && bytes > 0
        {
            if bytes > *room {
                let keep = *room as usize;
                *room = 0;
                st.injected += 1;
                return Injected::Torn(keep, io_error(true));
            }
            *room -= bytes;
        }
        Injected::Proceed
    }

    fn free_bytes(&self, measured: u64) -> u64 {
        self.state.lock().unwrap().room.unwrap_or(measured)
    }
}

impl SimDisk {
    pub fn arm(&self, step: IoStep, no_space: bool) {
        self.state.lock().unwrap().armed.push(Fault {
            step,
            skip: 0,
            no_space,
            torn: false,
        });
    }

    /// Leaves the disk `room` bytes (`None`: plenty).
    pub fn set_room(&self, room: Option<u64>) {
        self.state.lock().unwrap().room = room;
    }
}
