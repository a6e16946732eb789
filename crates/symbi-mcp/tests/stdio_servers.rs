//! The npm reference servers over stdio: `@modelcontextprotocol/server-everything` (tools,
//! resources with pagination, prompts, progress) and `@modelcontextprotocol/server-filesystem`.
//! Verification is `warn` here: these servers publish no SchemaPin signatures (strict mode is
//! covered in schemapin_interop.rs).

mod common;

use common::*;
use serde_json::{Map, Value, json};
use std::time::Duration;
use symbi_mcp::{CallOptions, McpError, RequestOptions, VerificationStatus};
use symbi_types::decision::VerificationMode;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_tools_resources_prompts_progress() {
    let env = manager(vec![everything("ev")], VerificationMode::Warn);
    let started = env.mcp.start().await;
    let n = started[0].1.as_ref().expect("server-everything connects");
    assert!(*n >= 8, "server-everything lists its tools, got {n}");

    let tools = env.mcp.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for t in [
        "echo",
        "get-sum",
        "trigger-long-running-operation",
        "get-tiny-image",
    ] {
        assert!(names.contains(&t), "{t} listed: {names:?}");
    }
    assert!(
        tools
            .iter()
            .all(|t| t.verification == VerificationStatus::Unsigned && t.accepted)
    );
    // One audit event per verified tool.
    let events = env.log.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.event_type == "tool_verification")
            .count(),
        tools.len()
    );
    assert_eq!(events[0].event.details["status"], "unsigned");

    // Bare and qualified names.
    let out = env
        .mcp
        .call_tool(
            "echo",
            obj(json!({"message": "hello"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.value, json!("Echo: hello"));
    let out = env
        .mcp
        .call_tool(
            "ev.get-sum",
            obj(json!({"a": 2, "b": 40})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(out.value.as_str().unwrap().contains("42"), "{}", out.value);

    // Image content becomes a typed map.
    let out = env
        .mcp
        .call_tool("get-tiny-image", Map::new(), CallOptions::default())
        .await
        .unwrap();
    let items = out
        .value
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![out.value.clone()]);
    assert!(
        items
            .iter()
            .any(|v| v["type"] == "image" && v["mimeType"] == "image/png"),
        "{}",
        out.value
    );

    // Progress notifications reach the caller.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = CallOptions {
        progress: Some(tx),
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let out = env
        .mcp
        .call_tool(
            "trigger-long-running-operation",
            obj(json!({"duration": 0.6, "steps": 3})),
            opts,
        )
        .await
        .unwrap();
    assert!(
        out.value.as_str().unwrap().contains("completed"),
        "{}",
        out.value
    );
    let mut seen = Vec::new();
    while let Ok(p) = rx.try_recv() {
        seen.push(p.progress);
    }
    // Notifications sent before the result arrive in order; the last one races the result
    // inside the SDK (notifications are dispatched on their own task), so it may be missed.
    assert!(
        seen.starts_with(&[1.0]) && seen.len() <= 3 && seen.windows(2).all(|w| w[0] < w[1]),
        "progress notifications in order: {seen:?}"
    );

    // Invalid arguments: the server's error comes back as a tool failure or protocol error.
    let e = env
        .mcp
        .call_tool("get-sum", obj(json!({"a": "x"})), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, McpError::ToolFailed { .. } | McpError::Protocol { .. }),
        "{e}"
    );

    // Resources (pagination itself is covered against the Python peer, which pages).
    let resources = env.mcp.list_resources("ev").await.unwrap();
    assert!(!resources.is_empty(), "server-everything lists resources");
    let uri = resources[0]["uri"].as_str().unwrap().to_string();
    let contents = env
        .mcp
        .read_resource("ev", &uri, RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(contents[0]["uri"], json!(uri));

    // Prompts.
    let prompts = env.mcp.list_prompts("ev").await.unwrap();
    let names: Vec<&str> = prompts.iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"simple-prompt"), "{names:?}");
    let p = env
        .mcp
        .get_prompt("ev", "simple-prompt", Map::new(), RequestOptions::default())
        .await
        .unwrap();
    assert!(
        p["messages"].as_array().is_some_and(|m| !m.is_empty()),
        "{p}"
    );

    // Unknown tool and server.
    assert!(matches!(
        env.mcp
            .call_tool("no-such-tool", Map::new(), CallOptions::default())
            .await,
        Err(McpError::UnknownTool(_))
    ));
    assert!(matches!(
        env.mcp.list_prompts("nope").await,
        Err(McpError::UnknownServer(_))
    ));
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_server_reads_writes_and_refuses_outside_paths() {
    let root = tempfile::tempdir().unwrap();
    let root_s = root
        .path()
        .canonicalize()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let env = manager(
        vec![stdio(
            "fs",
            &node(),
            &[filesystem_js().to_str().unwrap(), &root_s],
        )],
        VerificationMode::Warn,
    );
    env.mcp.start().await[0]
        .1
        .as_ref()
        .expect("server-filesystem connects");

    let file = format!("{root_s}/note.txt");
    env.mcp
        .call_tool(
            "fs.write_file",
            obj(json!({"path": file, "content": "from symbi"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from symbi");
    let out = env
        .mcp
        .call_tool(
            "read_text_file",
            obj(json!({"path": file})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let text = out
        .value
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| out.value.to_string());
    assert!(text.contains("from symbi"), "{}", out.value);

    let e = env
        .mcp
        .call_tool(
            "read_text_file",
            obj(json!({"path": "/etc/passwd"})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    match &e {
        McpError::ToolFailed { message, .. } => assert!(
            message.to_lowercase().contains("denied") || message.contains("outside"),
            "{message}"
        ),
        other => panic!("expected a tool failure, got {other}"),
    }
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_command_and_a_silent_server_fail_clearly() {
    let env = manager_with(
        vec![
            stdio("ghost", "/nonexistent/mcp-server", &[]),
            stdio("mute", "sleep", &["30"]),
        ],
        VerificationMode::Warn,
        |s| s.connection_timeout_s = 2,
    );
    let r = env.mcp.start().await;
    let ghost = r[0].1.as_ref().unwrap_err();
    assert!(
        matches!(ghost, McpError::Connect { .. })
            && ghost.to_string().contains("/nonexistent/mcp-server"),
        "{ghost}"
    );
    let mute = r[1].1.as_ref().unwrap_err();
    assert!(matches!(mute, McpError::ConnectTimeout { .. }), "{mute}");
    let st = env.mcp.servers();
    assert!(st.iter().all(|s| !s.connected && s.last_error.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_connections_caps_live_sessions() {
    let env = manager_with(
        vec![everything("a"), everything("b")],
        VerificationMode::Warn,
        |s| {
            s.max_concurrent_connections = 1;
            s.connection_timeout_s = 2;
        },
    );
    let r = env.mcp.start().await;
    let ok = r.iter().filter(|(_, r)| r.is_ok()).count();
    assert_eq!(ok, 1, "only one of two servers may be connected: {r:?}");
    let (failed, e) = r.iter().find(|(_, r)| r.is_err()).unwrap();
    assert!(
        matches!(e, Err(McpError::ConnectionLimit { limit: 1, .. })),
        "{e:?}"
    );
    // Closing the live one frees the slot.
    let live = if failed == "a" { "b" } else { "a" };
    env.mcp.disconnect(live).await.unwrap();
    env.mcp
        .refresh(failed)
        .await
        .expect("the slot is free again");
    env.mcp.shutdown().await;
}
