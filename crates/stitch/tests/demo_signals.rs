//! `stitch demo` and Ctrl-C, as a newcomer uses them: interrupting the traffic still prints
//! the report, and without `--exit` the UI stays up until Ctrl-C, which then removes the
//! demo's temporary store.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Lines of a child's output, read on a thread.
fn lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`, returning it and every line read on the way.
fn wait_for(
    rx: &Receiver<String>,
    needle: &str,
    limit: Duration,
    seen: &mut Vec<String>,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => panic!(
                "no line with {needle:?} within {limit:?}; got:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn interrupt(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT");
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stitch demo did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn demo(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stitch"))
        .arg("demo")
        .args(args)
        .args(["--scenario", "login", "--query-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stitch demo")
}

#[test]
fn ctrl_c_stops_the_traffic_with_a_report_and_ends_the_ui() {
    // 1. Ctrl-C during two minutes of traffic: the traffic stops, the report is printed and
    //    the planted problem is found in what was sent.
    let started = Instant::now();
    let mut child = demo(&["--duration", "120s", "--exit", "--json"]);
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    wait_for(
        &err,
        "starting the fleet",
        Duration::from_secs(30),
        &mut seen,
    );
    std::thread::sleep(Duration::from_secs(5));
    interrupt(&child);
    wait_for(
        &err,
        "stopping the traffic",
        Duration::from_secs(10),
        &mut seen,
    );
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stdout: Vec<String> = out.try_iter().collect();
    let stdout = stdout.join("\n");
    assert!(status.success(), "{status}:\n{stdout}\n{}", seen.join("\n"));
    let report: serde_json::Value =
        serde_json::from_str(&stdout[stdout.find('{').expect("a JSON report")..]).unwrap();
    let login = &report["scenarios"][0];
    assert_eq!(login["scenario"], "login");
    let requests = login["requests"].as_u64().unwrap();
    assert!(requests > 0, "{login}");
    assert_eq!(login["foundPlanted"], true, "{login}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the traffic stopped early: {:?}",
        started.elapsed()
    );

    // 2. Without --exit the UI stays up after the report; Ctrl-C ends it and removes the
    //    temporary store.
    let mut child = demo(&["--duration", "2s"]);
    let pid = child.id();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let addr = wait_for(
        &out,
        "query listening on",
        Duration::from_secs(30),
        &mut seen,
    )
    .rsplit(' ')
    .next()
    .unwrap()
    .to_owned();
    wait_for(&err, "the UI stays up", Duration::from_secs(60), &mut seen);
    let data_dir = std::env::temp_dir().join(format!("stitch-demo-{pid}"));
    assert!(
        data_dir.exists(),
        "the demo's store is at {}",
        data_dir.display()
    );
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let page = get("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let services = get("/api/services");
    assert!(
        services.starts_with("HTTP/1.1 200") && services.contains("identity-service"),
        "{services}"
    );
    interrupt(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    assert!(!data_dir.exists(), "the temporary store was removed");
}
