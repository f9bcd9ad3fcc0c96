//! `stitch demo` as a newcomer runs it (briefly): the real binary starts Stitch and the fleet,
//! and Stitch's own analysis names every planted problem.

use std::process::Command;

#[test]
fn demo_finds_every_planted_problem() {
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
}
