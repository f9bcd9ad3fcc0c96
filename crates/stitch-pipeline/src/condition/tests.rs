use super::*;
use stitch_model::{KeyValue, SpanId};

struct T {
    duration: u64,
    spans: Vec<(String, String, StatusCode, Vec<KeyValue>)>,
}

impl TraceFacts for T {
    fn duration_nanos(&self) -> u64 {
        self.duration
    }
    fn span_count(&self) -> u64 {
        self.spans.len() as u64
    }
    fn any_span(&self, f: &mut dyn FnMut(&SpanView<'_>) -> bool) -> bool {
        self.spans.iter().any(|(service, name, status, attrs)| {
            f(&SpanView {
                span_id: SpanId([1; 8]),
                is_root: false,
                service,
                name,
                kind: SpanKind::Server,
                start_unix_nano: 0,
                end_unix_nano: 10,
                status: *status,
                trace_state: "",
                flags: 1,
                attributes: attrs,
                resource_attributes: &[],
            })
        })
    }
}

fn trace(duration_ms: u64, spans: &[(&str, StatusCode, Option<i64>)]) -> T {
    T {
        duration: duration_ms * 1_000_000,
        spans: spans
            .iter()
            .map(|(svc, st, code)| {
                (
                    svc.to_string(),
                    "op".to_string(),
                    *st,
                    code.map(|c| vec![KeyValue::new("http.status_code", c)])
                        .unwrap_or_default(),
                )
            })
            .collect(),
    }
}

fn eval(src: &str, t: &T) -> bool {
    Condition::parse(src).unwrap().matches(t)
}

const EXAMPLE: &str = r#"duration > 1s or status = error or (service = "payment" and attr["http.status_code"] >= 500)"#;

#[test]
fn the_example_condition_keeps_slow_failed_and_payment_5xx_traces() {
    use StatusCode::*;
    assert!(eval(EXAMPLE, &trace(1500, &[("web", Ok, None)])));
    assert!(eval(
        EXAMPLE,
        &trace(10, &[("web", Ok, None), ("db", Error, None)])
    ));
    assert!(eval(
        EXAMPLE,
        &trace(10, &[("web", Ok, None), ("payment", Unset, Some(503))])
    ));
    assert!(!eval(
        EXAMPLE,
        &trace(10, &[("web", Ok, Some(503)), ("payment", Unset, Some(200))])
    ));
    assert!(!eval(EXAMPLE, &trace(999, &[("web", Ok, None)])));
}

#[test]
fn and_binds_span_predicates_to_the_same_span_while_or_and_not_act_on_the_trace() {
    use StatusCode::*;
    let t = trace(10, &[("cart", Ok, None), ("db", Error, None)]);
    assert!(!eval(r#"service = "cart" and status = error"#, &t));
    assert!(eval(r#"service = "db" and status = error"#, &t));
    assert!(!eval("not status = error", &t));
    assert!(eval(r#"service = "cart" and not status = error"#, &t));
    assert!(eval(
        r#"(service = "cart" or service = "x") and status = ok"#,
        &t
    ));
    assert!(eval("duration < 20ms and span_count = 2", &t));
    assert!(eval(r#"duration < 20ms and service =~ "^d""#, &t));
    assert!(!eval(r#"duration > 20ms and service =~ "^d""#, &t));
    assert!(eval(r#"attr["http.status_code"] exists or true"#, &t));
    assert!(!eval(r#"attr["http.status_code"] exists"#, &t));
    assert!(!eval(r#"attr["missing"] != "x""#, &t));
    assert!(eval(r#"status = error && !(service = "cart")"#, &t));
}

#[test]
fn parse_errors_name_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("duration > ", 12, "expected a value after `>`"),
        ("duration > 5", 12, "a duration needs a unit"),
        (
            "status = broken",
            10,
            "`status` compares with error, ok or unset",
        ),
        ("latency > 1s", 1, "unknown field `latency`"),
        (r#"service = payment"#, 11, "put the service in quotes"),
        (
            r#"(status = error"#,
            16,
            "expected `)` to close the `(` at column 1",
        ),
        (r#"attr[http.route] = "x""#, 6, "expected a quoted key"),
        (r#"name =~ "(""#, 9, "not a valid regular expression"),
        (
            "status = error service",
            16,
            "unexpected `service` after a complete condition",
        ),
        (
            "duration > 3parsecs",
            13,
            "`parsecs` is not a duration unit",
        ),
        (r#"service = "open"#, 11, "this string is not closed"),
        ("status > ok", 8, "supports only `=` and `!=`"),
        ("", 1, "expected a condition"),
    ];
    for (src, column, message) in cases {
        let err = Condition::parse(src).unwrap_err();
        assert_eq!(err.column, *column, "{src}: {err}");
        assert!(err.message.contains(message), "{src}: {err}");
    }
    let err = Condition::parse("duration > 5").unwrap_err();
    assert_eq!(
        err.render("duration > 5"),
        "duration > 5\n           ^ a duration needs a unit, e.g. `1s`, `250ms` or `1.5s`"
    );
}
