//! `stitch demo` as a newcomer runs it (briefly): the real binary starts Stitch, with the
//! demo's tail sampling, and the fleet; Stitch's own analysis names every planted problem, and
//! the rare-timeout scenario's slow trace is kept while most of its normal traffic is not.
//! The demo keeps its data (`--data-dir`), so the test then serves that data with
//! `stitch serve` and checks the sampling outcome through the query API.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Stitch, get_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_finds_every_planted_problem_and_keeps_the_rare_timeout() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo-data");
    let out = Command::new(env!("CARGO_BIN_EXE_stitch"))
        .args([
            "demo",
            "--duration",
            "4s",
            "--rate",
            "10",
            "--exit",
            "--json",
            "--query-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("run stitch demo");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stitch demo failed:\n{stdout}\n{stderr}"
    );
    let json_start = stdout.find('{').expect("a JSON report");
    let report: serde_json::Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 8, "every scenario runs by default");
    for s in scenarios {
        assert_eq!(
            s["foundPlanted"], true,
            "{}: expected {}, Stitch found {}",
            s["scenario"], s["expected"], s["findings"]
        );
    }
    let broken = scenarios
        .iter()
        .find(|s| s["scenario"] == "broken-propagation")
        .unwrap();
    assert_eq!(broken["brokenHops"][0]["callerService"], "legacy-billing");

    // Tail sampling was on, and every trace was decided before the report.
    let tail = &report["tailSampling"];
    assert_eq!(tail["enabled"], true, "{tail}");
    assert_eq!(tail["bufferedTraces"], 0, "{tail}");
    assert!(tail["tracesNotSampled"].as_u64().unwrap() > 0, "{tail}");

    // Rare timeout: ~10,000 requests, one of them slow; the slow one kept by `slow`, the
    // normal ones sampled.
    let rare = scenarios
        .iter()
        .find(|s| s["scenario"] == "rare-timeout")
        .unwrap();
    let requests = rare["requests"].as_u64().unwrap();
    assert!(requests >= 10_000, "{requests} requests");
    assert_eq!(rare["failedRequests"], 1);
    let sampling = &rare["sampling"];
    // (A normal request the machine delayed past 1 s would be kept by `slow` too.)
    let slow_kept = sampling["slowKept"].as_array().unwrap();
    let slow: Vec<_> = slow_kept.iter().filter(|k| k["failed"] == true).collect();
    assert_eq!(slow.len(), 1, "the slow trace was kept: {sampling}");
    assert_eq!(slow[0]["policy"], "slow", "{sampling}");
    assert!(slow[0]["durationNanos"].as_u64().unwrap() >= 30_000_000_000);
    let slow_id = slow[0]["traceId"].as_str().unwrap().to_owned();
    assert_eq!(
        rare["trace"]["traceId"],
        slow_id.as_str(),
        "the analysed one"
    );
    let normal = sampling["normalRequests"].as_u64().unwrap();
    let normal_kept = sampling["normalKept"].as_u64().unwrap();
    assert_eq!(normal, requests - 1);
    assert!(
        normal_kept > 0 && normal_kept * 10 < normal,
        "{normal_kept} of {normal} normal traces kept"
    );
    let kept = sampling["keptTraces"].as_u64().unwrap();
    assert_eq!(kept, normal_kept + slow_kept.len() as u64);

    // The same, through the query API of a server on the demo's data.
    let server = Stitch::start(&data_dir, &[]);
    let api = server.api();
    let (status, trace) = get_json(&format!("{api}/api/traces/{slow_id}")).await;
    assert_eq!(status, 200, "{trace}");
    let spans = trace["data"][0]["spans"].as_array().unwrap();
    assert!(spans.len() >= 4, "the whole slow trace: {trace}");
    for span in spans {
        let tags = span["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|t| t["key"] == "stitch.sampling.policy" && t["value"] == "slow"),
            "every span says which policy kept it: {span}"
        );
    }
    // At most 1,500 traces per search (the cap): they all fit.
    assert!(kept <= 1_500, "{kept} traces kept");
    let (status, found) = get_json(&format!(
        "{api}/api/traces?service=catalog-api&operation=GET%20%2Fsearch&lookback=1h&limit=1500"
    ))
    .await;
    assert_eq!(status, 200, "{found}");
    let found = found["data"].as_array().unwrap().len() as u64;
    assert_eq!(found, kept, "the API returns the traces the report counted");
    assert!(found < requests / 10, "{found} of {requests} traces kept");

    // Every scenario's analysed trace, through the query API: the planted problem is the top
    // finding there too (the same span and kind the report names).
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        let id = s["trace"]["traceId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no trace analysed: {s}"));
        let (status, analysis) = get_json(&format!("{api}/api/v1/traces/{id}/analysis")).await;
        assert_eq!(status, 200, "{name}: {analysis}");
        let (top, reported) = (&analysis["findings"][0], &s["findings"][0]);
        assert_eq!(top["kind"], reported["kind"], "{name}: {analysis}");
        assert_eq!(
            top["spans"][0], reported["spanIds"][0],
            "{name}: {analysis}"
        );
        if name != "broken-propagation" {
            assert_eq!(
                reported["mainSpan"]["service"].as_str(),
                s["expected"].as_str().unwrap().split(' ').next(),
                "{name}"
            );
        }
    }

    // Broken propagation: the hop across the window, the finding on the analysed trace, and
    // the same from the command line.
    let (status, body) = get_json(&format!(
        "{api}/api/v1/analysis/broken-propagation?since=1h"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let hop = &body["hops"][0];
    assert_eq!(hop["callerService"], "legacy-billing", "{body}");
    assert_eq!(hop["calleeService"], "tax-service", "{body}");
    assert_eq!(hop["cause"], "headerStripped", "{body}");
    let broken_id = broken["trace"]["traceId"].as_str().unwrap();
    let (_, analysis) = get_json(&format!("{api}/api/v1/traces/{broken_id}/analysis")).await;
    let finding = analysis["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "brokenPropagation")
        .unwrap_or_else(|| panic!("no broken-propagation finding: {analysis}"));
    assert_eq!(finding["service"], "legacy-billing", "{finding}");
    assert_eq!(finding["target"], "tax-service", "{finding}");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_stitch"))
            .args(args)
            .args(["--server", &api])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "stitch {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let text = run(&["analyze", "--broken-propagation", "--since", "1h"]);
    assert!(
        text.contains("legacy-billing") && text.contains("tax-service"),
        "{text}"
    );
    let text = run(&["trace", broken_id, "--width", "160"]);
    assert!(text.contains("did not receive the trace context"), "{text}");
    assert!(text.contains("tax-service"), "{text}");
    drop(server);

    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the demo test took {:?}",
        started.elapsed()
    );
}
