//! End-to-end: `symbi up` reaches readiness on defaults and stops cleanly on SIGTERM;
//! `symbi bench agents` and `symbi bench scheduler` run and report JSON.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn symbi() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_symbi"));
    c.env_remove("SYMBI_CONFIG_PATH")
        .env_remove("SYMBI_DATA_DIR")
        .env("SYMBI_LOG_FORMAT", "json");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn up_becomes_ready_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = symbi()
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.iter().any(|l: &String| l.contains("symbi ready")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no readiness line within 60 s; stderr so far:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("component ready") && l.contains("runtime")),
        "{lines:?}"
    );
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(35) {
            let _ = child.kill();
            panic!("symbi up did not stop within the 30 s grace period");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(l);
    }
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("symbi stopped")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn bench_agents_reports_json_with_a_baseline() {
    let out = symbi()
        .args([
            "bench",
            "agents",
            "--count",
            "2000",
            "--queued",
            "200",
            "--idle-secs",
            "1",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["symbi"]["created"], 2000);
    assert_eq!(v["symbi"]["ready"], 2000);
    assert_eq!(v["tokio"]["created"], 2000);
    assert!(
        v["symbi"]["scheduling"]["decision"]["count"]
            .as_u64()
            .unwrap()
            >= 200
    );
    assert!(
        v["symbi"]["scheduling"]["min_queued"].as_u64().unwrap() >= 200,
        "{v}"
    );
    assert!(v["ratios"]["creation_p99"].as_f64().is_some());
    assert!(v["goals"]["agents_ready"].as_bool().unwrap());
}

#[test]
fn bench_scheduler_reports_text() {
    let out = symbi()
        .args(["bench", "scheduler", "--queued", "500"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.contains("symbi decision") && s.contains("tokio::spawn") && s.contains("p99 ratio"),
        "{s}"
    );
}
