//! End to end under `symbi run`: a DSL agent calls a tool of a real MCP server (the npm
//! reference server `@modelcontextprotocol/server-everything` over stdio, declared in
//! `[[mcp.servers]]`), with the Cedar policy decision and the signed audit log in the path:
//!
//! * a policy that permits `Tool::"ev.echo"` → the agent gets the tool's answer;
//! * no such permit → `PolicyDenied`, and the tool never runs;
//! * `tool_verification = "strict"` and the (unsigned) tool → refused;
//! * the audit log records every decision, outcome and verification.
//!
//! Needs the npm servers installed by `scripts/setup-test-deps.sh`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn everything_js() -> PathBuf {
    let deps =
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
    let js = Path::new(&deps)
        .join("mcp-node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        js.exists(),
        "missing {} — run scripts/setup-test-deps.sh (npm MCP reference servers)",
        js.display()
    );
    js
}

fn symbi(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_symbi"))
        .arg("--config")
        .arg(dir.join("symbi.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("SYMBI_CONFIG_PATH")
        .env_remove("SYMBI_DATA_DIR")
        .env_remove("SYMBI_AUDIT_STORAGE")
        .env_remove("MCP_SERVER_DISCOVERY")
        .output()
        .expect("run symbi")
}

const AGENT: &str = r#"agent mcp_echo(msg: String) -> String {
    capabilities = ["invoke_tool"]
    with timeout = 30s {
        return ev.echo(message: msg);
    }
}
"#;

/// A project directory: config with the server-everything stdio server in `mode`, a policy
/// directory holding `policy` (if any), the agent.
fn project(mode: &str, policy: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policies");
    std::fs::create_dir_all(&pol).unwrap();
    // The shipped runtime permits (who may start agents); they grant no tool.
    let runtime =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default/00-runtime.cedar");
    std::fs::copy(runtime, pol.join("00-runtime.cedar")).unwrap();
    if let Some(p) = policy {
        std::fs::write(pol.join("mcp.cedar"), p).unwrap();
    }
    let config = format!(
        r#"[policy]
dir = {pol:?}
watch = false

[mcp]
tool_verification = "{mode}"
connection_timeout_s = 60

[[mcp.servers]]
name = "ev"
command = "node"
args = [{js:?}, "stdio"]
"#,
        pol = pol.display().to_string(),
        js = everything_js().display().to_string(),
    );
    std::fs::write(dir.path().join("symbi.toml"), config).unwrap();
    std::fs::write(dir.path().join("echo.symbi"), AGENT).unwrap();
    dir
}

fn run_agent(dir: &Path) -> Value {
    let o = symbi(
        dir,
        &[
            "run",
            dir.join("echo.symbi").to_str().unwrap(),
            "--input",
            r#"{"msg": "hello mcp"}"#,
            "--format",
            "json",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "symbi run printed no JSON ({e}); status {:?}\nstdout: {stdout}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn audit(dir: &Path) -> Vec<Value> {
    let o = symbi(
        dir,
        &["audit", "query", "--format", "json", "--limit", "10000"],
    );
    assert!(
        o.status.success(),
        "audit query: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn verify_audit(dir: &Path) {
    let o = symbi(dir, &["audit", "verify"]);
    assert!(
        o.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tool_events<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == ty).collect()
}

const PERMIT_ECHO: &str = "permit(principal, action == Action::\"invoke_tool\", resource == Tool::\"ev.echo\")\nwhen { resource.kind == \"mcp\" && resource.server == \"ev\" };\n";

#[test]
fn a_permitted_mcp_tool_is_called_from_a_dsl_agent_and_audited() {
    let dir = project("warn", Some(PERMIT_ECHO));
    let v = run_agent(dir.path());
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["result"], "Echo: hello mcp", "{v}");

    let events = audit(dir.path());
    // The listing was verified (and, in warn mode, accepted unsigned) and audited.
    let ver = tool_events(&events, "tool_verification");
    let echo_ver = ver
        .iter()
        .find(|e| e["details"]["tool"] == "echo")
        .unwrap_or_else(|| panic!("no verification event for echo: {ver:?}"));
    assert_eq!(echo_ver["details"]["status"], "unsigned", "{echo_ver}");
    assert_eq!(echo_ver["details"]["accepted"], true);
    // The call was a policy decision (Allow) and then an outcome naming the MCP server.
    let calls = tool_events(&events, "invoke_tool");
    let text = serde_json::to_string(&calls).unwrap();
    assert!(
        calls.iter().any(|e| e["details"]["decision"] == "Allow"),
        "no Allow decision recorded: {text}"
    );
    assert!(
        text.contains("\"mcp_server\":\"ev\""),
        "no outcome naming the MCP server: {text}"
    );
    assert!(text.contains("ev.echo"), "{text}");
    verify_audit(dir.path());
}

#[test]
fn without_a_permit_the_call_is_denied_by_policy_and_audited() {
    let dir = project("warn", None);
    let v = run_agent(dir.path());
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["kind"], "PolicyDenied", "{v}");

    let events = audit(dir.path());
    let calls = tool_events(&events, "invoke_tool");
    let text = serde_json::to_string(&calls).unwrap();
    assert!(
        calls.iter().any(|e| e["details"]["decision"] == "Deny"),
        "no Deny decision recorded: {text}"
    );
    assert!(text.contains("ev.echo"), "{text}");
    assert!(
        !text.contains("\"mcp_server\""),
        "a denied tool must not run: {text}"
    );
    verify_audit(dir.path());
}

#[test]
fn strict_mode_refuses_an_unsigned_tool_even_when_policy_permits_it() {
    let dir = project("strict", Some(PERMIT_ECHO));
    let v = run_agent(dir.path());
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["kind"], "PolicyDenied", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("ev.echo") && msg.contains("unsigned"), "{v}");

    let events = audit(dir.path());
    let ver = tool_events(&events, "tool_verification");
    let echo_ver = ver
        .iter()
        .find(|e| e["details"]["tool"] == "echo")
        .expect("verification event for echo");
    assert_eq!(echo_ver["details"]["accepted"], false, "{echo_ver}");
    assert_eq!(echo_ver["details"]["mode"], "strict");
    let text = serde_json::to_string(&tool_events(&events, "invoke_tool")).unwrap();
    assert!(
        !text.contains("\"mcp_server\""),
        "a refused tool must not run: {text}"
    );
    verify_audit(dir.path());
}

/// `symbi mcp` serves the assembled runtime to a real MCP client (the Python `mcp` SDK over
/// stdio): `execute_agent` runs an agent of the agents directory through the engine,
/// `evaluate_policy` asks the real policy engine, `query_audit` / `verify_audit` read the
/// signed log — which verifies afterwards, sealed.
#[test]
fn symbi_mcp_serves_the_runtime_to_the_python_mcp_client() {
    let deps =
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
    let python = Path::new(&deps).join("mcp-venv/bin/python");
    assert!(
        python.exists(),
        "missing {} — run scripts/setup-test-deps.sh",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("agents")).unwrap();
    std::fs::write(
        data.join("agents/greeter.symbi"),
        "agent greeter(name: String) -> String {\n    with timeout = 5s {\n        return \"hello \" + name;\n    }\n}\n",
    )
    .unwrap();
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../symbi-mcp-server/tests/client.py");
    let out = Command::new(python)
        .arg(client)
        .arg("--stdio")
        .arg(env!("CARGO_BIN_EXE_symbi"))
        .arg("--data-dir")
        .arg(&data)
        .arg("mcp")
        .env_remove("SYMBI_CONFIG_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.trim()).unwrap();
    let tools: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "list_agents",
        "execute_agent",
        "evaluate_policy",
        "query_audit",
        "verify_audit",
        "check_dsl",
    ] {
        assert!(tools.contains(&t), "{t} not listed: {tools:?}");
    }
    let res = &r["results"];
    let ex = &res["execute_agent"];
    assert_eq!(ex["is_error"], false, "{ex}");
    assert!(ex.to_string().contains("hello mcp"), "{ex}");
    // The real engine: no permit for greeter's read_logs tool → Deny (default deny).
    assert!(
        res["evaluate_policy"].to_string().contains("Deny"),
        "{}",
        res["evaluate_policy"]
    );
    let q = &res["query_audit"];
    assert_eq!(q["is_error"], false, "{q}");
    assert!(
        q.to_string().contains("execution_completed"),
        "the run is in the signed log: {q}"
    );
    let v = &res["verify_audit"];
    assert_eq!(v["is_error"], false, "{v}");
    assert!(
        v["structured"]["ok"] == true
            || v["text"]
                .as_str()
                .is_some_and(|t| t.contains("\"ok\":true")),
        "{v}"
    );
    assert_eq!(
        res["check_dsl_bad"]["structured"]["ok"], false,
        "{}",
        res["check_dsl_bad"]
    );

    // After the session the log is sealed and verifies; it holds the MCP calls.
    let verify = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .env_remove("SYMBI_CONFIG_PATH")
        .arg("--data-dir")
        .arg(&data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let calls = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .env_remove("SYMBI_CONFIG_PATH")
        .arg("--data-dir")
        .arg(&data)
        .args(["audit", "query", "--type", "mcp_call", "--format", "json"])
        .output()
        .unwrap();
    let calls = String::from_utf8_lossy(&calls.stdout);
    assert!(
        calls.lines().count() >= tools.len(),
        "every MCP call is audited:\n{calls}"
    );
}
