//! The shipped example programs (`examples/agents/`, the programs of GRAMMAR.md §7) run
//! through the real binary — `symbi dsl check`, `symbi dsl fmt`, `symbi run` — with the
//! results GRAMMAR.md §7 documents, and their actions land in the signed audit log.
//!
//! Examples 10 (command tools in Tier1 and Tier2 sandboxes) and 11 (agents talking over the
//! bus, exercised under `symbi up` in `api_up.rs`) are ours, not GRAMMAR.md's.
//! Examples 05, 06 and 08 need the context and LLM components and are exercised in
//! `examples_context.rs`; 09 (the extensions) is checked here.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agents")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

fn symbi(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_symbi"))
        .args(args)
        .env("SYMBI_DATA_DIR", data)
        .env_remove("SYMBI_CONFIG_PATH")
        .output()
        .expect("run symbi")
}

/// `symbi run FILE [--agent A] --input JSON --format json` → (exit code, report).
fn run(data: &Path, file: &str, agent: Option<&str>, input: Value) -> (i32, Value) {
    let path = example(file);
    let input = input.to_string();
    let mut args = vec![
        "run",
        path.as_str(),
        "--input",
        input.as_str(),
        "--format",
        "json",
    ];
    if let Some(a) = agent {
        args.extend(["--agent", a]);
    }
    let out = symbi(data, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{file}: no JSON report ({e}); stdout: {stdout}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn ok(data: &Path, file: &str, agent: Option<&str>, input: Value) -> Value {
    let (code, report) = run(data, file, agent, input);
    assert_eq!(
        (code, &report["status"]),
        (0, &json!("ok")),
        "{file}: {report}"
    );
    report["result"].clone()
}

fn failed_kind(data: &Path, file: &str, agent: Option<&str>, input: Value) -> String {
    let (code, report) = run(data, file, agent, input);
    assert_eq!(code, 1, "{file}: {report}");
    assert_eq!(report["status"], "failed", "{report}");
    report["error"]["kind"].as_str().unwrap().to_string()
}

/// The audit events of one agent (by name), after the run's log was sealed.
fn audit_events(data: &Path, agent: &str) -> Vec<Value> {
    let out = symbi(
        data,
        &["audit", "query", "--agent", agent, "--format", "json"],
    );
    assert!(
        out.status.success(),
        "audit query: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn decisions<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["details"]["phase"] == "decision" && e["details"]["action"] == action)
        .collect()
}

fn verify(data: &Path) {
    let out = symbi(data, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_example_checks_clean_and_formats_idempotently() {
    let d = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("symbi") {
            continue;
        }
        n += 1;
        let p = path.display().to_string();
        let out = symbi(d.path(), &["dsl", "check", &p]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Formatting: the canonical form still checks clean and is a fixed point.
        let copy = d.path().join(path.file_name().unwrap());
        std::fs::copy(&path, &copy).unwrap();
        let c = copy.display().to_string();
        assert!(
            symbi(d.path(), &["dsl", "fmt", &c]).status.success(),
            "{p}: fmt"
        );
        let once = std::fs::read_to_string(&copy).unwrap();
        assert_eq!(
            symbi(d.path(), &["dsl", "check", &c]).status.code(),
            Some(0),
            "{p}: formatted form must check"
        );
        let out = symbi(d.path(), &["dsl", "fmt", "--check", &c]);
        assert_eq!(out.status.code(), Some(0), "{p}: fmt is not idempotent");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), once);
    }
    assert_eq!(
        n, 12,
        "the nine examples of GRAMMAR.md §7, 10-sandboxed-tools, 11-message-exchange and 12-knowledge-qa"
    );
}

#[test]
fn example_01_greeter() {
    let d = tempfile::tempdir().unwrap();
    let f = "01-greeter.symbi";
    assert_eq!(
        ok(d.path(), f, None, json!({"name": " Ada ", "lang": "FR"})),
        json!({"text": "Bonjour, Ada!", "length": 13})
    );
    assert_eq!(
        ok(d.path(), f, None, json!({"name": "Bo"})),
        json!({"text": "Hello, Bo!", "length": 10})
    );
    assert_eq!(
        failed_kind(d.path(), f, None, json!({"lang": "fr"})),
        "InputError"
    );
    // No action: the trail holds only lifecycle and execution start/end events.
    let events = audit_events(d.path(), "greeter");
    let kinds: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().all(|k| [
            "agent_state",
            "execution_started",
            "execution_completed",
            "execution_failed"
        ]
        .contains(k)),
        "{kinds:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event_type"] == "execution_started")
            .count(),
        3
    );
    verify(d.path());
}

/// A run refused by policy is on record when `symbi run` exits: the refusal's audit event
/// is written before the engine reports the denial, not left to a background task that the
/// exiting process may never run.
#[test]
fn a_refused_run_is_audited_before_symbi_run_exits() {
    let d = tempfile::tempdir().unwrap();
    let f = "01-greeter.symbi";
    // The first start seeds <data>/policies with the shipped defaults.
    ok(d.path(), f, None, json!({"name": "Ada"}));
    let local = d.path().join("policies/local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(
        local.join("50-freeze.cedar"),
        "@id(\"freeze-greeter\")\n@reason(\"greeter is frozen\")\nforbid(principal, action == Action::\"execute_agent\", resource == Agent::\"greeter\");\n",
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            failed_kind(d.path(), f, None, json!({"name": "Bo"})),
            "PolicyDenied"
        );
    }
    let refusals = audit_events(d.path(), "greeter")
        .into_iter()
        .filter(|e| {
            e["event_type"] == "policy_decision"
                && e["details"]["enforcement_point"] == "execute_agent"
                && e["details"]["decision"] == "Deny"
        })
        .count();
    assert_eq!(refusals, 3, "every refused run is on record");
    verify(d.path());
}

#[test]
fn example_02_scores() {
    let d = tempfile::tempdir().unwrap();
    let f = "02-scores.symbi";
    let r = ok(
        d.path(),
        f,
        None,
        json!({"scores": [35, 80, 64], "pass_mark": 50}),
    );
    assert_eq!(
        r,
        json!({"count": 3, "passed": 2, "mean": 59.666666666666664, "best": 80,
               "buckets": {"low": 1, "mid": 1, "high": 1}, "labels": ["fail", "pass", "pass"]})
    );
    // Key order as written in the program.
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["count", "passed", "mean", "best", "buckets", "labels"]
    );
    let empty = ok(d.path(), f, None, json!({"scores": [], "pass_mark": 50}));
    assert_eq!(
        (&empty["mean"], &empty["best"]),
        (&json!(0.0), &Value::Null)
    );
    assert_eq!(
        failed_kind(
            d.path(),
            f,
            None,
            json!({"scores": [1, "x"], "pass_mark": 50})
        ),
        "InputError"
    );
}

#[test]
fn example_04_order_validator() {
    let d = tempfile::tempdir().unwrap();
    let f = "04-order-validator.symbi";
    let item = |qty: i64| json!({"sku": "A", "qty": qty, "unit_price": 1.25});
    assert_eq!(
        ok(
            d.path(),
            f,
            None,
            json!({"items": [item(2)], "coupon": "HALF10"})
        ),
        json!({"valid": true, "total": 1.25})
    );
    assert_eq!(
        ok(d.path(), f, None, json!({"items": [item(0)]})),
        json!({"valid": false, "problems": ["quantity must be positive for A"]})
    );
    assert_eq!(
        failed_kind(
            d.path(),
            f,
            None,
            json!({"items": [{"sku": "A", "qty": 2}]})
        ),
        "InputError"
    );
}

#[test]
fn example_07_triage_pair_delegates_and_publishes_only_when_critical() {
    let d = tempfile::tempdir().unwrap();
    let f = "07-triage-pair.symbi";
    let router = Some("triage_router");
    assert_eq!(
        ok(
            d.path(),
            f,
            router,
            json!({"message": "API down in eu-1", "reporter": "kim"})
        ),
        json!({"severity": "critical", "paged": true})
    );
    let events = audit_events(d.path(), "triage_router");
    assert_eq!(decisions(&events, "delegate").len(), 1);
    let published = decisions(&events, "publish");
    assert_eq!(published.len(), 1, "{events:#?}");
    assert_eq!(published[0]["details"]["decision"], "Allow");

    let d2 = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(
            d2.path(),
            f,
            router,
            json!({"message": "page loads are slow", "reporter": "kim"})
        ),
        json!({"severity": "major", "paged": false})
    );
    let events = audit_events(d2.path(), "triage_router");
    assert_eq!(decisions(&events, "delegate").len(), 1);
    assert!(
        decisions(&events, "publish").is_empty(),
        "nothing is published"
    );
    // Several agents in the file: running without --agent is a usage error.
    let out = symbi(d2.path(), &["run", &example(f), "--input", "{}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agent"));
    verify(d.path());
    verify(d2.path());
}

/// A TLS server on 127.0.0.1 answering 200, with a certificate for `localhost` issued by a
/// throw-away CA; the runtime trusts that CA through `SSL_CERT_FILE` (the host trust store
/// is used otherwise).
struct TlsDouble {
    child: Child,
    port: u16,
    ca: PathBuf,
}

impl TlsDouble {
    fn start(dir: &Path) -> TlsDouble {
        let sh = |script: &str| {
            let st = Command::new("sh")
                .arg("-ec")
                .arg(script)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "openssl failed: {script}");
        };
        sh(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=symbi-test-ca",
        );
        sh(
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost",
        );
        std::fs::write(dir.join("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
        sh(
            "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 1 -extfile leaf.ext",
        );
        let server = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain('leaf.pem', 'leaf.key')
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(server)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect(
                "python3 is needed for the TLS test double (scripts/setup-host.sh installs it)",
            );
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("TLS double port");
        TlsDouble {
            child,
            port,
            ca: dir.join("ca.pem"),
        }
    }
}

impl Drop for TlsDouble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn example_03_guarded_fetch_allows_listed_hosts_and_catches_the_denial() {
    let d = tempfile::tempdir().unwrap();
    let f = "03-guarded-fetch.symbi";
    let path = example(f);
    let certs = tempfile::tempdir().unwrap();
    let double = TlsDouble::start(certs.path());
    let url = format!("https://localhost:{}/", double.port);

    // Allowed: the guard matches, the decision carries the rate-limit and TLS conditions,
    // the double answers 200 over verified TLS.
    let input = json!({"url": url, "allowed_hosts": ["localhost"]}).to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .args(["run", &path, "--input", &input, "--format", "json"])
        .env("SYMBI_DATA_DIR", d.path())
        .env("SSL_CERT_FILE", &double.ca)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        report["result"],
        json!({"url": url, "status": 200, "ok": true}),
        "{report}"
    );

    // Not trusted (no SSL_CERT_FILE): TLS verification fails, the call raises, nothing is
    // sent unverified.
    let out = symbi(
        d.path(),
        &["run", &path, "--input", &input, "--format", "json"],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "failed", "{report}");

    // Plain http under `tls_verification: true` is refused (a downgrade), caught as a denial.
    let plain = format!("http://localhost:{}/", double.port);
    let r = ok(
        d.path(),
        f,
        None,
        json!({"url": plain, "allowed_hosts": ["localhost"]}),
    );
    assert_eq!(r["blocked"], true, "{r}");

    // Not listed: no allow rule matches, the default Deny is caught.
    let r = ok(
        d.path(),
        f,
        None,
        json!({"url": "https://example.org/", "allowed_hosts": []}),
    );
    assert_eq!(
        r,
        json!({"url": "https://example.org/", "status": 0, "ok": false, "blocked": true})
    );

    // Both decisions are in the trail with the rule or default that produced them.
    let events = audit_events(d.path(), "page_probe");
    let decided = decisions(&events, "http.get");
    let allow: Vec<_> = decided
        .iter()
        .filter(|e| e["details"]["decision"] == "AllowWithConditions")
        .collect();
    let deny: Vec<_> = decided
        .iter()
        .filter(|e| e["details"]["decision"] == "Deny")
        .collect();
    assert!(!allow.is_empty(), "{decided:#?}");
    assert!(!deny.is_empty(), "{decided:#?}");
    assert!(
        deny.last().unwrap()["details"]["reasons"]
            .to_string()
            .contains("no rule allows"),
        "{deny:#?}"
    );
    // The WARNING the catch clause logs is part of the execution's record.
    assert!(
        events
            .iter()
            .any(|e| e["details"].to_string().contains("blocked: ")),
        "log line missing"
    );
    verify(d.path());
}

/// Example 10: command tools (the repository's `tools/`) called from DSL agents run in real
/// sandbox containers — Tier1 (runc) and Tier2 (gVisor) — and the network tool is refused
/// by policy. Needs Docker with runc and runsc (scripts/setup-host.sh).
#[test]
fn example_10_sandboxed_tools_run_in_tier1_and_tier2() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools")
        .canonicalize()
        .unwrap();
    let config = d.path().join("symbi.toml");
    // The shipped floor is Tier2 (`default_sandbox_tier = "gvisor"`); lowering it to Tier1
    // lets the first agent's `sandbox = "Tier1"` (and the tools' low risk) decide.
    std::fs::write(
        &config,
        format!(
            "[sandbox]\ntools_dir = {:?}\n\n[security]\ndefault_sandbox_tier = \"docker\"\n",
            tools.display().to_string()
        ),
    )
    .unwrap();
    let with_config = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_symbi"))
            .args(args)
            .env("SYMBI_DATA_DIR", &data)
            .env("SYMBI_CONFIG_PATH", &config)
            .output()
            .expect("run symbi")
    };
    let out = with_config(&["tools", "build-images"]);
    assert!(
        out.status.success(),
        "build-images: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let path = example("10-sandboxed-tools.symbi");
    for (agent, tier) in [("text_stats_runc", "Tier1"), ("text_stats_gvisor", "Tier2")] {
        let out = with_config(&[
            "run",
            &path,
            "--agent",
            agent,
            "--input",
            r#"{"text": "the quick brown fox"}"#,
            "--format",
            "json",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{agent}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            report["result"],
            json!({"words": 4, "summary": {"words": 4, "chars": 19, "first": "the"}, "network": "denied"}),
            "{agent}: {report}"
        );

        let events = audit_events(&data, agent);
        for tool in ["word_count", "json_transform"] {
            let outcome = events
                .iter()
                .find(|e| e["details"]["phase"] == "outcome" && e["details"]["action"] == tool)
                .unwrap_or_else(|| panic!("{agent}: no outcome of {tool}"));
            let ex = &outcome["details"]["execution"];
            assert_eq!(ex["selection"]["tier"], tier, "{agent}/{tool}: {ex}");
            assert_eq!(ex["network"], "none");
            assert_eq!(ex["exit_status"]["code"], 0);
            assert!(
                ex["output_digest"].as_str().is_some_and(|s| s.len() == 64),
                "{ex}"
            );
            assert!(
                ex["limits"]["memory_bytes"].as_u64().is_some_and(|m| m > 0),
                "{ex}"
            );
        }
        // The network tool: denied before any container exists.
        let probe = decisions(&events, "net_probe");
        assert_eq!(probe.len(), 1, "{agent}");
        assert_eq!(probe[0]["details"]["decision"], "Deny");
        assert!(
            !events.iter().any(
                |e| e["details"]["action"] == "net_probe" && e["details"]["phase"] == "outcome"
            )
        );
    }
    verify(&data);
}

/// GRAMMAR.md §7.9: the extensions run; a runaway loop fails uncatchably on its budget;
/// `--compat` names each extension (W230).
#[test]
fn example_09_extensions() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(
            d.path(),
            "09-extensions.symbi",
            None,
            json!({"attempts": 5, "base_delay_ms": 100})
        ),
        json!([100, 900, 2500])
    );
    let kind = failed_kind(
        d.path(),
        "09-extensions.symbi",
        None,
        json!({"attempts": 10_000_000, "base_delay_ms": 1}),
    );
    assert!(kind == "BudgetExhausted" || kind == "Timeout", "{kind}");
    let path = example("09-extensions.symbi");
    let out = symbi(d.path(), &["dsl", "check", "--compat", &path]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let w230: Vec<&str> = text.lines().filter(|l| l.contains("[W230]")).collect();
    assert_eq!(
        w230.len(),
        8,
        "block comment, while, break, continue, two typed lets, 500ms, 8MB:\n{text}"
    );
    assert!(
        w230.iter().all(|l| l.contains("09-extensions.symbi:")),
        "{text}"
    );
}
