//! The model-provider client against a local server that speaks OpenAI's wire format.

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use symbi_llm::testing::{TEST_EMBEDDING_DIM, TestServer, test_embedding};
use symbi_llm::*;

fn client(server: &TestServer, model: &str) -> LlmClient {
    client_with(server, model, Some("test-key"), 2)
}

fn client_with(server: &TestServer, model: &str, key: Option<&str>, retries: u32) -> LlmClient {
    LlmClient::new(LlmClientConfig {
        base_url: server.base_url(),
        api_key: key.map(str::to_string),
        model: model.into(),
        embedding_model: "text-embedding-3-small".into(),
        timeout: Duration::from_millis(800),
        max_retries: retries,
        backoff_base: Duration::from_millis(10),
    })
    .unwrap()
}

#[tokio::test]
async fn chat_round_trip_with_usage_and_audit_record() {
    let server = TestServer::start(Some("test-key")).await;
    let c = client(&server, "gpt-test");
    let out = c
        .chat(ChatRequest::simple(Some("be brief"), "hello there"))
        .await
        .unwrap();
    assert_eq!(out.text(), "echo: hello there");
    assert_eq!(out.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        out.usage,
        Usage {
            prompt_tokens: 4,
            completion_tokens: 3,
            total_tokens: 7
        }
    );
    let r = &out.record;
    assert_eq!(
        (r.model.as_str(), r.attempts, r.streamed),
        ("gpt-test", 1, false)
    );
    assert_eq!(
        r.prompt_sha256,
        digest(&vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("hello there")
        ])
    );
    assert_eq!(r.answer_sha256, digest(&out.message));
    assert_eq!(r.prompt_sha256.len(), 64);
    // The request on the wire is OpenAI's shape.
    let sent = &server.requests()[0];
    assert_eq!(sent["model"], "gpt-test");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(sent["messages"][1]["role"], "user");
    // Token accounting accumulates.
    c.chat(ChatRequest::simple(None, "again")).await.unwrap();
    assert_eq!(c.meter().calls(), 2);
    assert_eq!(c.meter().usage().total_tokens, 7 + 1 + 2);
}

#[tokio::test]
async fn wrong_key_is_a_non_retried_api_error() {
    let server = TestServer::start(Some("test-key")).await;
    let c = client_with(&server, "gpt-test", Some("wrong"), 3);
    let err = c.chat(ChatRequest::simple(None, "hi")).await.unwrap_err();
    match &err {
        LlmError::Api {
            status: 401, kind, ..
        } => assert_eq!(kind.as_deref(), Some("invalid_api_key")),
        other => panic!("expected 401, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(server.requests().len(), 0, "rejected before being recorded");
}

#[tokio::test]
async fn bad_request_is_reported_with_the_servers_message() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "bad-request", None, 3);
    let err = c.chat(ChatRequest::simple(None, "hi")).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("maximum context length"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn transient_server_errors_are_retried() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "flaky", None, 3);
    let out = c.chat(ChatRequest::simple(None, "persist")).await.unwrap();
    assert_eq!(out.text(), "echo: persist");
    assert_eq!(out.record.attempts, 3, "two 500s, then success");
}

#[tokio::test]
async fn rate_limits_exhaust_the_retries() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "rate-limited", None, 2);
    let err = c.chat(ChatRequest::simple(None, "hi")).await.unwrap_err();
    match err {
        LlmError::RetriesExhausted { attempts: 3, last } => {
            assert!(matches!(*last, LlmError::Api { status: 429, .. }))
        }
        other => panic!("expected exhausted retries, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "slow", None, 0);
    let started = std::time::Instant::now();
    let err = c.chat(ChatRequest::simple(None, "hi")).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up at the timeout, not the server's 3 s"
    );
}

#[tokio::test]
async fn streaming_delivers_text_in_pieces_and_a_final_outcome() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "gpt-test", None, 0);
    let mut stream = c
        .chat_stream(ChatRequest::simple(None, "one two three"))
        .await
        .unwrap();
    let mut pieces = Vec::new();
    let mut done = None;
    while let Some(ev) = stream.next().await {
        match ev.unwrap() {
            StreamEvent::Text(t) => pieces.push(t),
            StreamEvent::ToolCall(c) => panic!("no tool call expected: {c:?}"),
            StreamEvent::Done(o) => done = Some(*o),
        }
    }
    assert_eq!(pieces, vec!["echo:", " one", " two", " three"]);
    let done = done.expect("final event");
    assert_eq!(done.text(), "echo: one two three");
    assert_eq!(done.usage.total_tokens, 3 + 4);
    assert!(done.record.streamed);
    let sent = &server.requests()[0];
    assert_eq!(sent["stream"], true);
}

#[tokio::test]
async fn streamed_tool_call_fragments_are_assembled() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "tool-user", None, 0);
    let mut req = ChatRequest::simple(None, "weather in Oslo");
    req.tools = vec![ToolDefinition::function(
        "lookup",
        "look things up",
        json!({"type": "object"}),
    )];
    let stream = c.chat_stream(req).await.unwrap();
    let out = stream.collect_with(|_| {}).await.unwrap();
    assert_eq!(out.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(out.message.tool_calls.len(), 1);
    let call = &out.message.tool_calls[0];
    assert_eq!(
        (call.id.as_str(), call.function.name.as_str()),
        ("call_1", "lookup")
    );
    let args: Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert_eq!(args, json!({"q": "weather in Oslo"}));
    assert_eq!(out.message.content, None);
}

#[tokio::test]
async fn a_stalled_stream_times_out() {
    let server = TestServer::start(None).await;
    let c = client_with(&server, "stall", None, 0);
    let err = c
        .chat_stream(ChatRequest::simple(None, "a b c"))
        .await
        .unwrap()
        .collect_with(|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn embeddings_come_back_in_input_order() {
    let server = TestServer::start(Some("test-key")).await;
    let c = client(&server, "gpt-test");
    let inputs = vec![
        "alpha beta".to_string(),
        "gamma".to_string(),
        "delta epsilon".to_string(),
    ];
    let (vectors, record) = c.embed(&inputs).await.unwrap();
    assert_eq!(vectors.len(), 3);
    assert_eq!(vectors[0].len(), TEST_EMBEDDING_DIM);
    for (v, s) in vectors.iter().zip(&inputs) {
        assert_eq!(
            v,
            &test_embedding(s),
            "server sent them reversed; client must reorder by index"
        );
    }
    assert_eq!(
        (record.operation.as_str(), record.model.as_str()),
        ("embeddings", "text-embedding-3-small")
    );
    assert_eq!(record.usage.total_tokens, 5);
}

#[tokio::test]
async fn unconfigured_provider_is_none_and_bad_url_is_an_error() {
    let s = symbi_config::LlmSection::default();
    assert!(LlmClient::from_section(&s).unwrap().is_none());
    let local = symbi_config::LlmSection {
        base_url: "http://127.0.0.1:1/v1".into(),
        ..s.clone()
    };
    assert!(
        LlmClient::from_section(&local).unwrap().is_some(),
        "self-hosted servers need no key"
    );
    let bad = symbi_config::LlmSection {
        base_url: "ftp://x".into(),
        api_key: Some("k".into()),
        ..s
    };
    assert!(matches!(
        LlmClient::from_section(&bad),
        Err(LlmError::Config(_))
    ));
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error_after_retries() {
    // A port nobody listens on: bind, learn the port, close.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let c = LlmClient::new(LlmClientConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
        model: "m".into(),
        embedding_model: "e".into(),
        timeout: Duration::from_millis(500),
        max_retries: 1,
        backoff_base: Duration::from_millis(1),
    })
    .unwrap();
    let err = c.chat(ChatRequest::simple(None, "hi")).await.unwrap_err();
    assert!(
        matches!(err, LlmError::RetriesExhausted { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}
