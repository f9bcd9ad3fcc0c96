//! End to end: `stitch check-propagation` against the real binary's reference service, a
//! correct one (every case passes) and a broken one (the harness names what broke).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `stitch check-propagation --serve-reference` process, killed when dropped.
struct Reference {
    child: Child,
    addr: String,
}

impl Reference {
    fn start(extra_args: &[&str]) -> Reference {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stitch"))
            .args(["check-propagation", "--serve-reference", "127.0.0.1:0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the stitch binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining after the first line so the process never blocks on the pipe.
                let _ = tx.send(line);
            }
        });
        let mut reference = Reference {
            child,
            addr: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the reference service prints its address");
        reference.addr = line
            .strip_prefix("stitch: reference service listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        reference
    }

    fn check(&self, extra_args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stitch"))
            .arg("check-propagation")
            .arg(format!("http://{}/test", self.addr))
            .args(extra_args)
            .stdin(Stdio::null())
            .output()
            .expect("run the harness")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_reference_service_passes_every_case_and_the_report_lists_them() {
    let reference = Reference::start(&[]);
    let out = reference.check(&[]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "the harness failed:\n{stdout}\n{stderr}"
    );
    for case in [
        "PASS  tracecontext/continues-sampled",
        "PASS  tracecontext/keeps-random-flag",
        "PASS  tracecontext/future-version-extra-fields",
        "PASS  tracecontext/version-ff",
        "PASS  tracecontext/trace-id-all-zero",
        "PASS  tracecontext/several-calls-continue",
        "PASS  tracestate/kept",
        "PASS  tracestate/33-members",
        "PASS  tracestate/multi-tenant-keys",
        "PASS  baggage/utf8-value",
        "PASS  b3/single-64-bit-trace-id",
        "PASS  b3/multi-debug-flag",
        "PASS  b3/single-wins-over-multi",
        "PASS  jaeger/url-encoded",
    ] {
        assert!(
            stdout.contains(case),
            "{case:?} missing from the report:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains("cases passed, 0 failed"), "{summary}");
}

#[test]
fn the_json_report_has_every_case_passed() {
    let reference = Reference::start(&[]);
    let out = reference.check(&["--json", "--suite", "tracecontext,b3"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let cases = report["cases"].as_array().expect("a list of cases");
    assert!(cases.len() > 40, "{}", cases.len());
    assert_eq!(report["failed"], 0);
    assert!(cases.iter().all(|c| c["passed"] == true));
    assert!(
        cases
            .iter()
            .all(|c| c["suite"] == "tracecontext" || c["suite"] == "b3")
    );
}

#[test]
fn a_service_that_strips_traceparent_fails_and_the_failing_cases_are_named() {
    let reference = Reference::start(&["--break", "strip-traceparent"]);
    let out = reference.check(&[]);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "the harness passed a broken service:\n{stdout}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("FAIL  tracecontext/continues-sampled"),
        "the failing case is not named:\n{stdout}"
    );
    assert!(
        stdout.contains("the service sent no traceparent header"),
        "{stdout}"
    );
    assert!(stderr.contains("propagation cases failed"), "{stderr}");
    // What does not depend on traceparent still passes.
    assert!(stdout.contains("PASS  b3/single-sampled"), "{stdout}");
}

#[test]
fn a_service_that_reuses_the_parent_id_or_drops_tracestate_is_caught() {
    let reference = Reference::start(&["--break", "keep-parent-id"]);
    let (stdout, _) = text(&reference.check(&["--suite", "tracecontext"]));
    assert!(
        stdout.contains("FAIL  tracecontext/continues-sampled"),
        "{stdout}"
    );
    assert!(stdout.contains("was passed on unchanged"), "{stdout}");
    drop(reference);

    let reference = Reference::start(&["--break", "drop-tracestate"]);
    let out = reference.check(&["--suite", "tracestate"]);
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    assert!(stdout.contains("FAIL  tracestate/kept"), "{stdout}");
    assert!(
        stdout.contains("PASS  tracestate/dropped-without-traceparent"),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_service_is_one_clear_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_stitch"))
        .args([
            "check-propagation",
            &format!("http://127.0.0.1:{port}/test"),
            "--timeout",
            "2s",
        ])
        .output()
        .expect("run the harness");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the service under test"),
        "{stderr}"
    );
}
