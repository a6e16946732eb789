//! A streamable-HTTP server written with the Python `mcp` SDK (tests/peers/http_server.py),
//! and the same server over stdio for crash-and-reconnect: list (several pages), call,
//! structured output, tool errors, timeouts with cancellation on the server, caller
//! cancellation, progress, resources, prompts, a server crash mid-call and the reconnect.

mod common;

use common::*;
use serde_json::{Map, Value, json};
use std::time::Duration;
use symbi_mcp::{CallOptions, McpError, RequestOptions};
use symbi_types::decision::VerificationMode;
use tokio_util::sync::CancellationToken;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_list_call_errors_timeouts_cancel_progress() {
    let state = tempfile::tempdir().unwrap();
    let peer = HttpPeer::start(state.path());
    let env = manager(vec![http("py", &peer.url())], VerificationMode::Warn);
    let n = *env.mcp.start().await[0]
        .1
        .as_ref()
        .expect("connects over streamable HTTP");
    // 11 tools in pages of 3: the cursor was followed to the end.
    assert_eq!(n, 11);
    assert_eq!(
        env.mcp
            .tools()
            .iter()
            .filter(|t| t.name.starts_with("t0"))
            .count(),
        5
    );

    let out = env
        .mcp
        .call_tool(
            "py.echo",
            obj(json!({"text": "über"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.value, json!("über"));
    let out = env
        .mcp
        .call_tool(
            "add",
            obj(json!({"a": 1.5, "b": 2})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        out.value,
        json!({"sum": 3.5}),
        "structured content is the value"
    );

    match env
        .mcp
        .call_tool(
            "fail",
            obj(json!({"message": "disk on fire"})),
            CallOptions::default(),
        )
        .await
    {
        Err(McpError::ToolFailed { tool, message, .. }) => {
            assert_eq!(tool, "py.fail");
            assert_eq!(message, "disk on fire");
        }
        other => panic!("expected ToolFailed, got {other:?}"),
    }

    // Timeout: the call gives up and the server sees the cancellation.
    let opts = CallOptions {
        timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let e = env
        .mcp
        .call_tool("slow", obj(json!({"seconds": 20, "steps": 40})), opts)
        .await
        .unwrap_err();
    assert!(matches!(e, McpError::Timeout { .. }), "{e}");
    let cancelled = state.path().join("cancelled");
    wait_until(
        "the server to record the cancellation",
        Duration::from_secs(20),
        || cancelled.exists(),
    )
    .await;

    // Caller cancellation.
    let ct = CancellationToken::new();
    let c2 = ct.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let opts = CallOptions {
        cancel: Some(ct),
        ..Default::default()
    };
    let e = env
        .mcp
        .call_tool("slow", obj(json!({"seconds": 20, "steps": 40})), opts)
        .await
        .unwrap_err();
    assert!(matches!(e, McpError::Cancelled { .. }), "{e}");
    wait_until(
        "two cancellations on the server",
        Duration::from_secs(20),
        || std::fs::read_to_string(&cancelled).is_ok_and(|s| s.lines().count() >= 2),
    )
    .await;

    // Progress.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = CallOptions {
        progress: Some(tx),
        ..Default::default()
    };
    let out = env
        .mcp
        .call_tool("slow", obj(json!({"seconds": 0.3, "steps": 3})), opts)
        .await
        .unwrap();
    assert_eq!(out.value, json!("done"));
    let mut msgs = Vec::new();
    while let Ok(p) = rx.try_recv() {
        msgs.push((p.progress, p.total, p.message));
    }
    // The last notification may race the result (see stdio_servers.rs); the earlier ones
    // arrive in order with total and message.
    assert_eq!(
        msgs.first(),
        Some(&(1.0, Some(3.0), Some("step 1".to_string()))),
        "{msgs:?}"
    );
    assert!(msgs.windows(2).all(|w| w[0].0 < w[1].0), "{msgs:?}");

    // Resources (paged) and prompts.
    let res = env.mcp.list_resources("py").await.unwrap();
    assert_eq!(res.len(), 5);
    let c = env
        .mcp
        .read_resource("py", "test://doc/3", RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(c[0]["text"], "contents of test://doc/3");
    let e = env
        .mcp
        .read_resource("py", "test://nope", RequestOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, McpError::Protocol { .. }), "{e}");
    let p = env
        .mcp
        .get_prompt(
            "py",
            "greet",
            obj(json!({"name": "Ada"})),
            RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(p["messages"][0]["content"]["text"], "Say hello to Ada.");
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_server_gone_mid_call_is_reported() {
    let state = tempfile::tempdir().unwrap();
    let peer = HttpPeer::start(state.path());
    let env = manager(vec![http("py", &peer.url())], VerificationMode::Warn);
    env.mcp.start().await[0].1.as_ref().unwrap();
    let e = env
        .mcp
        .call_tool(
            "crash",
            Map::new(),
            CallOptions {
                timeout: Some(Duration::from_secs(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            McpError::ServerGone { .. } | McpError::Other { .. } | McpError::Timeout { .. }
        ),
        "{e}"
    );
    // The server is down for good: the next call fails to connect, clearly.
    drop(peer);
    let e = env
        .mcp
        .call_tool("echo", obj(json!({"text": "x"})), CallOptions::default())
        .await
        .unwrap_err();
    assert!(!e.to_string().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_crash_mid_call_then_reconnect() {
    let state = tempfile::tempdir().unwrap();
    let env = manager(
        vec![python_stdio("py", state.path())],
        VerificationMode::Warn,
    );
    env.mcp.start().await[0]
        .1
        .as_ref()
        .expect("python peer over stdio");
    let out = env
        .mcp
        .call_tool("count_calls", Map::new(), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(out.value, json!("1"));

    let e = env
        .mcp
        .call_tool("crash", Map::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, McpError::ServerGone { .. }),
        "a crash mid-call is ServerGone, got {e}"
    );

    // The next call starts a fresh process (its call counter starts again) after listing
    // and verifying its tools again.
    let before = env.log.events().len();
    let out = env
        .mcp
        .call_tool("count_calls", Map::new(), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(out.value, json!("1"), "a new server process answered");
    assert!(
        env.log.events().len() > before,
        "tools re-verified after the reconnect"
    );
    assert_eq!(env.mcp.servers()[0].connects, 2);
    env.mcp.shutdown().await;
}
