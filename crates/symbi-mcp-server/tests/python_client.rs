//! `symbi mcp` served over streamable HTTP to a real MCP client (the Python `mcp` SDK):
//! every tool listed and called, bearer authentication enforced, every call audited.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbi_api::auth::Authority;
use symbi_mcp_server::{McpServerContext, serve_http};
use symbi_types::MemoryEventLog;

fn python() -> PathBuf {
    let deps =
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
    let p = Path::new(&deps).join("mcp-venv/bin/python");
    assert!(
        p.exists(),
        "missing {} — run scripts/setup-test-deps.sh (Python venv with the `mcp` SDK)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_client_lists_and_calls_every_tool_over_http() {
    let log = MemoryEventLog::default();
    let sink: Arc<dyn symbi_types::EventSink> = Arc::new(log.clone());
    let runtime = Arc::new(
        symbi_runtime::Runtime::new(&symbi_config::Config::default(), sink.clone()).unwrap(),
    );
    let id = runtime
        .create_agent(
            symbi_runtime::AgentSpec::new("greeter"),
            symbi_runtime::Validation::Valid,
        )
        .await
        .unwrap();
    let ctx = McpServerContext {
        runtime,
        pdp: Arc::new(symbi_types::policy::DenyAll),
        sink,
        executor: None,
        audit: None,
        dsl_mode: symbi_dsl::Mode::Production,
    };
    let authority = Arc::new(Authority::new(Some("s3cret-token"), None, None).unwrap());
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(serve_http(ctx, authority, addr, stop.clone()));
    let url = format!("http://127.0.0.1:{port}/mcp");
    // Wait for the listener.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client.py");
    let out = tokio::task::spawn_blocking({
        let (script, url) = (script.clone(), url.clone());
        move || {
            std::process::Command::new(python())
                .arg(&script)
                .arg("--url")
                .arg(&url)
                .arg("--token")
                .arg("s3cret-token")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["tools"],
        serde_json::json!([
            "check_dsl",
            "evaluate_policy",
            "get_agent_status",
            "list_agents"
        ])
    );
    let r = &v["results"];
    assert_eq!(
        r["list_agents"]["structured"]["agents"][0]["name"],
        "greeter"
    );
    assert_eq!(
        r["list_agents"]["structured"]["agents"][0]["id"],
        id.to_string()
    );
    assert_eq!(
        r["get_agent_status"]["structured"]["state"], "Ready",
        "{}",
        r["get_agent_status"]
    );
    assert_eq!(r["check_dsl"]["is_error"], false);
    assert_eq!(
        r["check_dsl"]["structured"]["ok"], true,
        "{}",
        r["check_dsl"]
    );
    assert_eq!(r["check_dsl_bad"]["structured"]["ok"], false);
    assert!(
        r["check_dsl_bad"]["structured"]["diagnostics"][0]["line"].is_number(),
        "{}",
        r["check_dsl_bad"]
    );
    // No policy engine is assembled into this server: the decision point fails closed.
    assert_eq!(
        r["evaluate_policy"]["structured"]["decision"], "Deny",
        "{}",
        r["evaluate_policy"]
    );

    // Every call is audited with the identity (never the token).
    let calls: Vec<_> = log
        .events()
        .into_iter()
        .filter(|e| e.event.event_type == "mcp_call")
        .collect();
    assert_eq!(calls.len(), 5);
    assert!(
        calls
            .iter()
            .all(|e| e.event.details["identity"] == "api-token"
                && e.event.details["transport"] == "http")
    );
    assert!(!format!("{:?}", log.events()).contains("s3cret-token"));

    // A wrong token is refused with 401 and an auth_failure event.
    let url2 = url.clone();
    let resp = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-H",
                "Authorization: Bearer wrong",
                "-H",
                "Content-Type: application/json",
                "-d",
                "{}",
                &url2,
            ])
            .output()
    })
    .await
    .unwrap();
    if let Ok(o) = resp {
        assert_eq!(String::from_utf8_lossy(&o.stdout), "401");
    }
    let out = tokio::task::spawn_blocking({
        let script = script.clone();
        let url = url.clone();
        move || {
            std::process::Command::new(python())
                .arg(&script)
                .arg("--url")
                .arg(&url)
                .arg("--token")
                .arg("wrong")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "a wrong token must not get through");
    assert!(
        log.events()
            .iter()
            .any(|e| e.event.event_type == "auth_failure" && e.event.details["interface"] == "mcp")
    );

    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unauthenticated_network_listener_is_refused() {
    let sink: Arc<dyn symbi_types::EventSink> = Arc::new(MemoryEventLog::default());
    let runtime = Arc::new(
        symbi_runtime::Runtime::new(&symbi_config::Config::default(), sink.clone()).unwrap(),
    );
    let ctx = McpServerContext {
        runtime,
        pdp: Arc::new(symbi_types::policy::DenyAll),
        sink,
        executor: None,
        audit: None,
        dsl_mode: symbi_dsl::Mode::Production,
    };
    let authority = Arc::new(Authority::new(None, None, None).unwrap());
    let e = serve_http(
        ctx,
        authority,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("without an API token"), "{e}");
}
