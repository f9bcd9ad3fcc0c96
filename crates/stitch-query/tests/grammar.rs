//! Stitch's TraceQL parser against Grafana's own TraceQL grammar (`@grafana/lezer-traceql`,
//! the grammar Grafana's query editor parses with): every query Stitch accepts parses without
//! error there, and every query it rejects Stitch rejects too. Stitch may refuse more (type
//! errors, features it does not evaluate), never less.
//!
//! The grammar is installed from npm into `tests/lezer/` (`npm ci`, which `./test.sh` runs
//! first; this test runs it when `node_modules` is missing). Without Node and npm this test
//! fails with a message saying so.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use stitch_query::traceql::metrics::MetricsQuery;
use stitch_query::traceql::{QueryError, TraceQl};

/// Queries Stitch accepts, covering every part of the language it implements.
const ACCEPTED: &[&str] = &[
    "{}",
    "{ }",
    r#"{ name = "GET /cart" }"#,
    r#"{ span:name = "GET /cart" }"#,
    "{ status = error }",
    "{ span:status = ok }",
    "{ status != unset }",
    r#"{ statusMessage = "timeout" }"#,
    "{ kind = server }",
    "{ span:kind = client || kind = producer || kind = consumer || kind = internal || kind = unspecified }",
    "{ duration > 1s }",
    "{ span:duration >= 1.5s && duration < 2m }",
    "{ duration > 100ms && duration <= 2h }",
    "{ duration > 10us }",
    "{ duration > 500ns }",
    "{ trace:duration > 5s }",
    "{ traceDuration > 5s }",
    r#"{ trace:rootName = "checkout" }"#,
    r#"{ rootName = "checkout" }"#,
    r#"{ trace:rootService = "frontend" }"#,
    r#"{ rootServiceName = "frontend" }"#,
    r#"{ trace:id = "4bf92f3577b34da6a3ce929d0e0e4736" }"#,
    r#"{ span:id = "00f067aa0ba902b7" }"#,
    r#"{ span:parentID = "00f067aa0ba902b7" }"#,
    r#"{ event:name = "exception" }"#,
    "{ event:timeSinceStart > 10ms }",
    r#"{ link:traceID = "4bf92f3577b34da6a3ce929d0e0e4736" }"#,
    r#"{ link:spanID = "00f067aa0ba902b7" }"#,
    r#"{ instrumentation:name = "io.opentelemetry.http" }"#,
    r#"{ instrumentation:version = "1.2.0" }"#,
    "{ span.http.status_code >= 500 }",
    r#"{ resource.service.name = "db" }"#,
    r#"{ .service.name = "db" }"#,
    "{ .http.response.status_code = 200 }",
    r#"{ event.exception.type = "Timeout" }"#,
    r#"{ link.reason = "retry" }"#,
    r#"{ instrumentation.flavour = "vanilla" }"#,
    r#"{ resource.k8s.pod.name =~ "cart-.*" }"#,
    r#"{ span.db.statement !~ "SELECT.*" }"#,
    r#"{ name =~ `GET /api/.+` }"#,
    "{ span.retries > 2 && span.ratio < 0.5 }",
    "{ span.cache.hit = true }",
    "{ span.cache.hit != false }",
    "{ span.user.id = nil }",
    "{ span.user.id != nil }",
    "{ span.amount = -3 }",
    "{ span.amount > -2.5 }",
    "{ !(status = error) }",
    "{ (kind = server || kind = client) && status = error }",
    "{ duration - 1s > 400ms }",
    "{ duration * 2 > 3s }",
    "{ span.a + span.b > 10 }",
    "{ span.a * 2 ^ 3 % 5 > 1 }",
    "{ span.bytes / 1024 > 10 }",
    r#"{ name = "a" } && { name = "b" }"#,
    r#"{ name = "a" } || { name = "b" }"#,
    r#"{ name = "a" } > { name = "b" }"#,
    r#"{ name = "a" } < { name = "b" }"#,
    r#"{ name = "a" } >> { name = "b" }"#,
    r#"{ name = "a" } << { name = "b" }"#,
    r#"{ name = "a" } ~ { name = "b" }"#,
    r#"{ name = "a" } !> { name = "b" }"#,
    r#"{ name = "a" } !< { name = "b" }"#,
    r#"{ name = "a" } !>> { name = "b" }"#,
    r#"{ name = "a" } !<< { name = "b" }"#,
    r#"{ name = "a" } &> { name = "b" }"#,
    r#"{ name = "a" } &< { name = "b" }"#,
    r#"{ name = "a" } &>> { name = "b" }"#,
    r#"{ name = "a" } &<< { name = "b" }"#,
    r#"{ name = "a" } &~ { name = "b" }"#,
    r#"{ name = "a" } !~ { name = "b" }"#,
    r#"{ span.http.status_code >= 500 } >> { resource.service.name = "db" }"#,
    r#"({ name = "a" } > { name = "b" }) >> { name = "c" }"#,
    r#"{ name = "a" } && { name = "b" } > { name = "c" }"#,
    "{ status = error } | count() > 2",
    "{ } | count() >= 10",
    "{ } | avg(duration) > 100ms",
    "{ } | min(duration) < 1ms",
    "{ } | max(span.retries) = 3",
    "{ } | sum(span.bytes) > 1000000",
    "{ } | (count() + 1) * 2 = 16",
    "{ } | count() > 1 | by(name)",
    r#"{ .a = 1 } >> { .b = 2 } | avg(duration) > 1s"#,
    "{ } | by(resource.service.name)",
    "{ } | by(name, kind)",
    "{ } | by(resource.service.name) | count() > 1",
    "{ } | select(span.http.method)",
    "{ } | select(span.http.method, duration, resource.service.name)",
    "{ } | by(kind) | coalesce()",
    "{ status = error } | { duration > 1s }",
    "({ status = error } | count() > 1) && { kind = server }",
    "{ } with(most_recent=true)",
    "{ } | count() > 1 with(most_recent=false)",
    "{ status = error } | rate()",
    "{ } | rate() by (resource.service.name)",
    "{ } | rate() by (span.x) | topk(2)",
    "{ } | count_over_time() by (name) | bottomk(3)",
    "{ } | min_over_time(duration) by (name)",
    "{ } | avg_over_time(span.x)",
    "{ } | sum_over_time(duration)",
    "{ } | quantile_over_time(duration, 0.5, 0.9) by (name)",
    "{ } | histogram_over_time(duration)",
    "{ duration > 1s } // slow spans",
    "/* errors */ { status = error }",
];

/// Queries both refuse: not TraceQL at all.
const REJECTED: &[&str] = &[
    "",
    "{",
    "}",
    "{ name = }",
    r#"{ name = "a" "#,
    r#"name = "a""#,
    "{ } |",
    "{ } | count()",
    "{ } }",
    "{ duration > 5d }",
    "{ } >>",
    "{ } | by()",
    "{ } | select()",
    r#"{ name = "a" } { name = "b" }"#,
    "{ = 1 }",
    "{ .a = }",
    "{ } with(fastest=true)",
    r#"{ name = "unterminated }"#,
    "{ } | count ( ) > 1",
    "{ } | coalesce ( )",
];

/// Queries Tempo takes and Grafana's current clients send (Traces Drilldown's sampling hints
/// and its root-span filter on the nested-set intrinsics) that the published grammar (1.0.0,
/// the newest on npm) rejects. Stitch accepts them.
const NEWER_THAN_THE_GRAMMAR: &[&str] = &[
    "{ nestedSetParent < 0 && true }",
    "{ nestedSetLeft > 1 && nestedSetRight < 9 }",
    "{ span:childCount = 0 }",
    "{ } | rate() with(sample=true)",
    "{ } | histogram_over_time(duration) with(sample=true, exemplars=true)",
    "{ } with(most_recent=true, span_sample=0.1)",
];

/// Queries Grafana's grammar parses that Stitch refuses, on purpose (type errors and forms
/// that can never match).
const STRICTER: &[&str] = &[
    "{ status = 500 }",
    r#"{ duration > "slow" }"#,
    "{ kind > server }",
    r#"{ name =~ "(" }"#,
    "{ 1 + 2 }",
    "{ } | 1 > 2",
    "{ } | count() > 1s",
];

fn lezer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lezer")
}

/// What Grafana's grammar says of each query: parses without error or not.
fn grafana_parses(queries: &[&str]) -> Vec<bool> {
    let dir = lezer_dir();
    if !dir.join("node_modules/@grafana/lezer-traceql").is_dir() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run npm to install @grafana/lezer-traceql in {}: {e}; install Node.js and npm", dir.display())
            });
        assert!(
            out.status.success(),
            "`npm ci` in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut child = Command::new("node")
        .arg("check.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (install Node.js)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(queries).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "check.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON array of booleans")
}

/// Whether Stitch takes the query, as a search or as a metrics query.
fn stitch_parses(q: &str) -> Result<(), QueryError> {
    TraceQl::parse(q)
        .map(|_| ())
        .or_else(|e| MetricsQuery::parse(q).map(|_| ()).map_err(|_| e))
}

#[test]
fn stitch_accepts_only_what_grafanas_grammar_parses() {
    let all: Vec<&str> = ACCEPTED
        .iter()
        .chain(REJECTED)
        .chain(STRICTER)
        .chain(NEWER_THAN_THE_GRAMMAR)
        .copied()
        .collect();
    let grafana = grafana_parses(&all);
    assert_eq!(grafana.len(), all.len());
    let mut problems = Vec::new();
    for (q, &theirs) in all.iter().zip(&grafana) {
        let ours = stitch_parses(q);
        if NEWER_THAN_THE_GRAMMAR.contains(q) {
            if ours.is_err() || theirs {
                problems.push(format!(
                    "{q}: Stitch {:?}, the pinned grammar parses it: {theirs}",
                    ours.err()
                ));
            }
            continue;
        }
        if ours.is_ok() && !theirs {
            problems.push(format!(
                "Stitch accepts what Grafana's grammar rejects: {q}"
            ));
        }
        let expect_ours = ACCEPTED.contains(q);
        if ours.is_ok() != expect_ours {
            problems.push(format!(
                "Stitch {} {q}: {:?}",
                if expect_ours { "rejects" } else { "accepts" },
                ours.err()
            ));
        }
        let expect_theirs = !REJECTED.contains(q);
        if theirs != expect_theirs {
            problems.push(format!(
                "Grafana's grammar {} {q}",
                if theirs { "accepts" } else { "rejects" }
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A small random generator of (mostly) well-formed queries.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn field(&mut self, depth: u32) -> String {
        const LHS: &[&str] = &[
            "span.http.status_code",
            ".x",
            "resource.service.name",
            "event.e",
            "link.l",
            "instrumentation.i",
            "span.\"a b\"",
            "name",
            "statusMessage",
            "trace:rootName",
        ];
        const VALUES: &[&str] = &["1", "-2", "2.5", "\"v\"", "`raw`", "true", "nil", "500"];
        match if depth > 2 { 0 } else { self.next() % 7 } {
            0 | 1 => {
                let lhs = self.pick(LHS);
                let op = self.pick(&["=", "!=", ">", ">=", "<", "<=", "=~", "!~"]);
                let rhs = if op.contains('~') {
                    "\"a.*\""
                } else {
                    self.pick(VALUES)
                };
                format!("{lhs} {op} {rhs}")
            }
            2 => format!(
                "{} {} {}",
                self.pick(&["duration", "trace:duration", "event:timeSinceStart"]),
                self.pick(&[">", "<=", "="]),
                self.pick(&["1s", "10ms", "1.5h", "3us"])
            ),
            3 => format!(
                "{} = {}",
                self.pick(&["status", "span:status"]),
                self.pick(&["ok", "error", "unset"])
            ),
            4 => format!(
                "({}) {} ({})",
                self.field(depth + 1),
                self.pick(&["&&", "||"]),
                self.field(depth + 1)
            ),
            5 => format!("!({})", self.field(depth + 1)),
            _ => format!(
                "{} * 2 {} 10",
                self.pick(&["span.n", "duration"]),
                self.pick(&[">", "<"])
            ),
        }
    }

    fn spanset(&mut self, depth: u32) -> String {
        match if depth > 1 {
            self.next() % 2
        } else {
            self.next() % 4
        } {
            0 => "{ }".into(),
            1 => format!("{{ {} }}", self.field(0)),
            2 => {
                let op = self.pick(&[
                    "&&", "||", ">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>",
                    "&<", "&>>", "&<<", "&~",
                ]);
                format!(
                    "{} {op} {}",
                    self.spanset(depth + 1),
                    self.spanset(depth + 1)
                )
            }
            _ => format!("({})", self.spanset(depth + 1)),
        }
    }

    fn query(&mut self) -> String {
        let mut q = self.spanset(0);
        for _ in 0..self.next() % 3 {
            let stage = match self.next() % 6 {
                0 => format!(
                    "count() {} {}",
                    self.pick(&[">", "=", "<="]),
                    self.next() % 5
                ),
                1 => format!(
                    "{}(duration) > {}",
                    self.pick(&["avg", "min", "max", "sum"]),
                    self.pick(&["1s", "5ms"])
                ),
                2 => format!(
                    "by({})",
                    self.pick(&["name", "resource.service.name", "kind, status"])
                ),
                3 => format!("select({})", self.pick(&["span.x", "duration, .y"])),
                4 => "coalesce()".into(),
                _ => format!("{{ {} }}", self.field(1)),
            };
            q = format!("{q} | {stage}");
        }
        q
    }

    /// `q` with one random edit: a character dropped or doubled, or a piece inserted.
    fn mutate(&mut self, q: &str) -> String {
        let chars: Vec<char> = q.chars().collect();
        let at = (self.next() % chars.len() as u64) as usize;
        let mut out: Vec<char> = chars.clone();
        match self.next() % 3 {
            0 => {
                out.remove(at);
            }
            1 => out.insert(at, chars[at]),
            _ => {
                let piece = self.pick(&[
                    "{", "}", "(", ")", "|", "&&", ">", "=", ",", ".", "\"", "1s", "name",
                ]);
                for (k, c) in piece.chars().enumerate() {
                    out.insert(at + k, c);
                }
            }
        }
        out.into_iter().collect()
    }
}

/// Random queries, well formed and with random edits: whatever Stitch accepts among them,
/// Grafana's grammar parses too.
#[test]
fn random_queries_never_find_one_only_stitch_accepts() {
    let mut g = Gen(0x2545_f491_4f6c_dd1d);
    let mut queries = Vec::new();
    for _ in 0..3000 {
        let q = g.query();
        queries.push(g.mutate(&q));
        queries.push(q);
    }
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    let grafana = grafana_parses(&refs);
    let ours: Vec<bool> = refs.iter().map(|q| stitch_parses(q).is_ok()).collect();
    let only_ours: Vec<&str> = refs
        .iter()
        .zip(grafana.iter().zip(&ours))
        .filter(|(_, (theirs, ours))| **ours && !**theirs)
        .map(|(q, _)| *q)
        .collect();
    let accepted = ours.iter().filter(|&&x| x).count();
    let rejected = ours.len() - accepted;
    assert!(
        accepted > 2000 && rejected > 500,
        "the corpus should hold many of both ({accepted} accepted, {rejected} rejected)"
    );
    assert!(
        only_ours.is_empty(),
        "Stitch accepts {} queries Grafana's grammar rejects, e.g.:\n{}",
        only_ours.len(),
        only_ours[..only_ours.len().min(15)].join("\n")
    );
}
