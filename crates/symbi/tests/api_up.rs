//! End-to-end over a real `symbi up` process: agents loaded from the agents directory,
//! per-component readiness, the README flow (a token, create an agent from DSL, execute it,
//! read its history, scrape /metrics, fetch the OpenAPI document), a broken program
//! reported without stopping the daemon, and a SIGTERM that drains and seals the audit log.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOKEN: &str = "up-test-token-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request (Connection: close); returns status and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (len, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(len.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

fn json_of(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (st, b) = http(port, method, path, Some(TOKEN), body);
    (st, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

struct Up {
    child: Child,
    lines: Vec<String>,
    rx: mpsc::Receiver<String>,
}

impl Up {
    fn start(data: &Path, port: u16) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_symbi"))
            .env_remove("SYMBI_CONFIG_PATH")
            .env_remove("SYMBIONT_API_TOKEN")
            .env("SYMBI_LOG_FORMAT", "json")
            .env("SYMBI_API_TOKEN", TOKEN)
            .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data)
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
        let mut up = Up {
            child,
            lines: Vec::new(),
            rx,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !up.lines.iter().any(|l| l.contains("symbi ready")) {
            match up
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(l) => up.lines.push(l),
                Err(_) => {
                    let _ = up.child.kill();
                    panic!(
                        "no readiness line within 90 s; stderr:\n{}",
                        up.lines.join("\n")
                    );
                }
            }
        }
        up
    }

    fn ready_line(&self, component: &str) -> Option<&String> {
        self.lines
            .iter()
            .find(|l| l.contains(&format!("\"component\":\"{component}\"")))
    }

    /// SIGTERM, wait for exit; returns (success, all stderr lines).
    fn stop(mut self) -> (bool, Vec<String>) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) },
            0
        );
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(40) {
                let _ = self.child.kill();
                panic!(
                    "symbi up did not stop within the grace period:\n{}",
                    self.lines.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(2)) {
            self.lines.push(l);
        }
        (status.success(), std::mem::take(&mut self.lines))
    }
}

/// A failing test must not leave a daemon behind.
impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const GREETER: &str = r#"
schedule greet_daily {
    cron: "0 0 8 * * *"
    agent: greeter
}

agent greeter(name: String) -> String {
    with timeout = 5s {
        return "hello " + name;
    }
}
"#;

const ECHO: &str = "agent echo(msg: String) -> String {\n    with timeout = 5s {\n        return \"echo: \" + msg;\n    }\n}\n";

#[test]
fn up_loads_agents_serves_the_api_and_seals_the_audit_log_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join("greeter.symbi"), GREETER).unwrap();
    std::fs::write(
        agents.join("broken.symbi"),
        "agent broken() -> String {\n    return 1 +;\n}\n",
    )
    .unwrap();
    std::fs::write(agents.join("notes.txt"), "not a program").unwrap();
    let port = free_port();
    let up = Up::start(dir.path(), port);

    for c in ["audit", "policy", "bus", "runtime", "api", "schedules"] {
        let l = up
            .ready_line(c)
            .unwrap_or_else(|| panic!("no readiness line for {c}:\n{}", up.lines.join("\n")));
        assert!(l.contains("component ready"), "{l}");
    }
    // The sandbox tiers are reported either way (ready, or not ready with the fix).
    let tier1 = up
        .ready_line("sandbox Tier1")
        .expect("sandbox Tier1 reported");
    assert!(
        tier1.contains("component ready") || tier1.contains("\"fix\""),
        "{tier1}"
    );
    // The broken program is reported with file:line:column, the daemon keeps going.
    let broken = up
        .lines
        .iter()
        .find(|l| l.contains("broken.symbi") && l.contains("program has errors"))
        .expect("broken program reported");
    assert!(broken.contains("broken.symbi:2:"), "{broken}");
    let agents_status = up
        .lines
        .iter()
        .find(|l| l.contains("\"component\":\"agents\"") && l.contains("component "));
    assert!(
        agents_status.is_some_and(|l| l.contains("component degraded")),
        "{agents_status:?}"
    );

    // Public health; everything else needs the token.
    let (st, h) = http(port, "GET", "/api/v1/health", None, None);
    assert_eq!(st, 200, "{h}");
    assert_eq!(http(port, "GET", "/api/v1/health/ready", None, None).0, 200);
    assert_eq!(http(port, "GET", "/api/v1/agents", None, None).0, 401);
    assert_eq!(
        http(port, "GET", "/api/v1/agents", Some("nope"), None).0,
        401
    );

    // Loaded from the agents directory: greeter (Ready) and broken (Failed).
    let (st, list) = json_of(port, "GET", "/api/v1/agents", None);
    assert_eq!(st, 200);
    let greeter = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "greeter")
        .expect("greeter loaded")
        .clone();
    let broken = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "broken")
        .expect("broken listed");
    assert_eq!(broken["state"], "Failed");
    // Its schedule item is served by the schedule engine.
    let (_, sched) = json_of(port, "GET", "/api/v1/schedules", None);
    assert!(
        sched
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "greet_daily"),
        "{sched}"
    );

    // The README flow: create from DSL, execute, history.
    let (st, c) = json_of(
        port,
        "POST",
        "/api/v1/agents",
        Some(&json!({"name": "echo", "dsl": ECHO})),
    );
    assert_eq!(st, 200, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let (st, ex) = json_of(
        port,
        "POST",
        &format!("/api/v1/agents/{id}/execute"),
        Some(&json!({"input": {"msg": "up"}})),
    );
    assert_eq!(st, 200, "{ex}");
    let exec = ex["execution_id"].as_str().unwrap().to_string();
    let gid = greeter["id"].as_str().unwrap();
    let (st, gex) = json_of(
        port,
        "POST",
        &format!("/api/v1/agents/{gid}/execute"),
        Some(&json!({"input": "ops"})),
    );
    assert_eq!(st, 200, "{gex}");
    let mut completed = false;
    for _ in 0..500 {
        let (_, h) = json_of(port, "GET", &format!("/api/v1/agents/{id}/history"), None);
        if h["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["execution_id"] == exec.as_str() && r["status"] == "completed")
        {
            completed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(completed, "the execution did not complete");

    let (st, metrics) = http(port, "GET", "/metrics", Some(TOKEN), None);
    assert_eq!(st, 200);
    assert!(
        metrics.contains("# TYPE") && metrics.contains("symbi_"),
        "{metrics}"
    );
    assert!(
        metrics.contains("symbi_audit"),
        "audit appends are counted through the metered sink:\n{metrics}"
    );
    let (st, doc) = json_of(port, "GET", "/api-docs/openapi.json", None);
    assert_eq!(st, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    let (ok, lines) = up.stop();
    assert!(ok, "exit status not 0:\n{}", lines.join("\n"));
    let stopped = lines
        .iter()
        .find(|l| l.contains("symbi stopped"))
        .unwrap_or_else(|| panic!("{}", lines.join("\n")));
    assert!(stopped.contains("\"audit_sealed\":true"), "{stopped}");

    // The audit log verifies, contains the executions, and ends with the stop record.
    let out = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .env_remove("SYMBI_CONFIG_PATH")
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn up_refuses_a_public_address_without_a_token_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .env_remove("SYMBI_CONFIG_PATH")
        .env_remove("SYMBI_API_TOKEN")
        .env_remove("SYMBIONT_API_TOKEN")
        .env("SYMBI_LOG_FORMAT", "json")
        .args([
            "up",
            "--listen",
            &format!("0.0.0.0:{}", free_port()),
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SYMBI_API_TOKEN"),
        "the error says how to fix it: {err}"
    );
    // Whatever started was stopped cleanly: the audit log verifies.
    let v = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .env_remove("SYMBI_CONFIG_PATH")
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

/// Issue 5's acceptance: a running `symbi up` changes behaviour when a policy file is
/// edited — no restart. A Cedar `forbid` on `execute_agent` dropped into the watched policy
/// directory refuses the next run (403, audited); removing it allows runs again.
#[test]
fn up_applies_edited_policy_files_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let up = Up::start(dir.path(), port);
    let (st, c) = json_of(
        port,
        "POST",
        "/api/v1/agents",
        Some(&json!({"name": "echo", "dsl": ECHO})),
    );
    assert_eq!(st, 200, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let execute = || {
        http(
            port,
            "POST",
            &format!("/api/v1/agents/{id}/execute"),
            Some(TOKEN),
            Some(&json!({"input": {"msg": "x"}})),
        )
    };
    assert_eq!(execute().0, 200, "allowed by the shipped defaults");

    // Written the way an editor would not: a hidden temp file renamed into place.
    let freeze = dir.path().join("policies/local/50-freeze.cedar");
    std::fs::create_dir_all(freeze.parent().unwrap()).unwrap();
    let tmp = dir.path().join("policies/local/.50-freeze.cedar.tmp");
    std::fs::write(
        &tmp,
        "@id(\"freeze-echo\")\n@reason(\"echo is frozen for maintenance\")\nforbid(principal, action == Action::\"execute_agent\", resource == Agent::\"echo\");\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &freeze).unwrap();
    let wait_for = |want: u16| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (st, body) = execute();
            if st == want {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "still {st} (want {want}) 10 s after the edit: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let denied = wait_for(403);
    assert!(denied.contains("denied by policy"), "{denied}");

    std::fs::remove_file(&freeze).unwrap();
    wait_for(200);

    let (ok, lines) = up.stop();
    assert!(ok, "{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("policy set reloaded"))
            .count()
            >= 2,
        "{}",
        lines.join("\n")
    );
    // The refusal is in the signed audit log.
    let out = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .env_remove("SYMBI_CONFIG_PATH")
        .args([
            "audit",
            "query",
            "--type",
            "policy_decision",
            "--format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.contains("\"enforcement_point\":\"execute_agent\"")
                && l.contains("frozen for maintenance")),
        "no audited refusal:\n{text}"
    );
}

/// The history records of agent `id` (newest first).
fn history(port: u16, id: &str) -> Vec<Value> {
    let (_, h) = json_of(port, "GET", &format!("/api/v1/agents/{id}/history"), None);
    h["history"].as_array().cloned().unwrap_or_default()
}

fn completed_runs(port: u16, id: &str) -> usize {
    history(port, id)
        .iter()
        .filter(|r| r["status"] == "completed")
        .count()
}

/// Issue 8's acceptance: under `symbi up`, DSL agents exchange messages — a direct message,
/// a request answered by a persistent agent, and a published event delivered to a
/// subscriber — with policy and audit in the path (examples/agents/11-message-exchange).
#[test]
fn up_agents_exchange_direct_request_and_published_messages() {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/agents/11-message-exchange.symbi");
    std::fs::copy(example, agents.join("11-message-exchange.symbi")).unwrap();
    let port = free_port();
    let up = Up::start(dir.path(), port);
    assert!(
        up.lines
            .iter()
            .any(|l| l.contains("\"message\":\"subscribed\"") && l.contains("incidents/>")),
        "{}",
        up.lines.join("\n")
    );

    let (_, list) = json_of(port, "GET", "/api/v1/agents", None);
    let id_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not loaded: {list}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (reporter, keeper, incidents) = (
        id_of("reporter"),
        id_of("note_keeper"),
        id_of("incident_log"),
    );
    let (st, ex) = json_of(
        port,
        "POST",
        &format!("/api/v1/agents/{reporter}/execute"),
        Some(&json!({"input": {"title": "db down", "severity": "p1"}})),
    );
    assert_eq!(st, 200, "{ex}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while completed_runs(port, &reporter) < 1
        || completed_runs(port, &keeper) < 2
        || completed_runs(port, &incidents) < 1
    {
        assert!(
            Instant::now() < deadline,
            "not every agent ran: reporter {:?}, note_keeper {:?}, incident_log {:?}",
            history(port, &reporter),
            history(port, &keeper),
            history(port, &incidents)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, lines) = up.stop();
    assert!(ok, "{}", lines.join("\n"));

    let query = |agent: &str| -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_symbi"))
            .env_remove("SYMBI_CONFIG_PATH")
            .args([
                "audit",
                "query",
                "--agent",
                agent,
                "--format",
                "json",
                "--data-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The reporter's three actions were decided (allowed by its policy) and carried out.
    let rep = query("reporter");
    for action in ["send_to", "ask", "publish"] {
        let decided = rep
            .iter()
            .find(|e| e["details"]["phase"] == "decision" && e["details"]["action"] == action);
        assert!(
            decided.is_some_and(|e| e["details"]["decision"] == "Allow"),
            "{action}: {rep:#?}"
        );
        let done = rep
            .iter()
            .find(|e| e["details"]["phase"] == "outcome" && e["details"]["action"] == action);
        assert!(
            done.is_some_and(|e| e["details"]["outcome"] == "ok"),
            "{action} outcome: {rep:#?}"
        );
    }
    let result = rep
        .iter()
        .find(|e| e["event_type"] == "execution_completed")
        .expect("reporter completed");
    let want = symbi_runtime::gateway::digest(
        &json!({"answer": "note 2 kept: severity p1", "published": true}),
    );
    assert_eq!(
        result["details"]["output_digest"],
        want.as_str(),
        "the request was answered by the second note"
    );
    // The keeper ran for the direct message and for the request, both triggered by messages.
    let keeper_runs: Vec<Value> = query("note_keeper")
        .into_iter()
        .filter(|e| e["event_type"] == "execution_started")
        .collect();
    assert_eq!(keeper_runs.len(), 2, "{keeper_runs:#?}");
    assert!(
        keeper_runs
            .iter()
            .all(|e| e["details"]["trigger"]["kind"] == "message"
                && e["details"]["trigger"]["from"] == "reporter")
    );
    // The subscriber ran once, for the event on incidents/p1.
    let inc: Vec<Value> = query("incident_log")
        .into_iter()
        .filter(|e| e["event_type"] == "execution_started")
        .collect();
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0]["details"]["trigger"]["topic"], "incidents/p1");
}
