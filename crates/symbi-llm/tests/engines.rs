//! The DSL's model builtins over the real client and a local OpenAI-format server.

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::time::Duration;
use symbi_llm::testing::TestServer;
use symbi_llm::*;

fn engines(server: &TestServer, model: &str) -> Engines {
    Engines::new(
        LlmClient::new(LlmClientConfig {
            base_url: server.base_url(),
            api_key: None,
            model: model.into(),
            embedding_model: "e".into(),
            timeout: Duration::from_secs(5),
            max_retries: 0,
            backoff_base: Duration::from_millis(1),
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn llm_call_returns_the_text_and_one_record() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "gpt-test");
    let out = e
        .llm_call(LlmCallArgs {
            prompt: "write notes".into(),
            system: Some("you are terse".into()),
            temperature: Some(0.2),
            max_tokens: Some(400),
            model: Some("other-model".into()),
        })
        .await
        .unwrap();
    assert_eq!(out.value, json!("echo: write notes"));
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].model, "other-model");
    let sent = &server.requests()[0];
    assert_eq!(
        (sent["temperature"].as_f64(), sent["max_tokens"].as_u64()),
        (Some(0.2), Some(400))
    );
    let mut seen = String::new();
    let streamed = e
        .llm_call_streaming(
            LlmCallArgs {
                prompt: "x y".into(),
                ..Default::default()
            },
            |t| seen.push_str(t),
        )
        .await
        .unwrap();
    assert_eq!(streamed.value, json!("echo: x y"));
    assert_eq!(seen, "echo: x y");
}

struct Lookup {
    calls: Mutex<Vec<Value>>,
    fatal: bool,
}

#[async_trait]
impl ToolHost for Lookup {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![ToolDefinition::function(
            "lookup",
            "Looks a query up",
            json!({"type": "object", "properties": {"q": {"type": "string"}}}),
        )]
    }
    async fn call(&self, name: &str, arguments: Value) -> Result<Value, ToolFailure> {
        assert_eq!(name, "lookup");
        self.calls.lock().push(arguments.clone());
        if self.fatal {
            return Err(ToolFailure::Fatal(
                "PolicyDenied: lookup not allowed".into(),
            ));
        }
        Ok(json!({"answer": 42}))
    }
}

#[tokio::test]
async fn reason_runs_tools_through_the_host_and_completes() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "tool-user");
    let host = Lookup {
        calls: Mutex::new(vec![]),
        fatal: false,
    };
    let out = e
        .reason("solve it", "what is the answer", 10, 100_000, &host)
        .await
        .unwrap();
    assert_eq!(out.value["termination_reason"], "completed");
    assert_eq!(out.value["iterations"], 2);
    assert_eq!(out.value["response"], "final: {\"answer\":42}");
    assert_eq!(
        out.value["total_tokens"].as_u64().unwrap(),
        out.total_tokens()
    );
    assert_eq!(
        host.calls.lock().clone(),
        vec![json!({"q": "what is the answer"})]
    );
    // The second request carried the assistant's tool call and the tool's answer.
    let second = &server.requests()[1];
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(msgs[3]["role"], "tool");
    assert_eq!(msgs[3]["tool_call_id"], "call_1");
    assert_eq!(second["tools"][0]["function"]["name"], "lookup");
}

#[tokio::test]
async fn reason_stops_at_max_iterations_and_on_fatal_tool_errors() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "tool-user");
    let host = Lookup {
        calls: Mutex::new(vec![]),
        fatal: false,
    };
    let out = e.reason("s", "q", 1, 100_000, &host).await.unwrap();
    assert_eq!(out.value["termination_reason"], "max_iterations");
    assert_eq!(out.value["iterations"], 1);
    let out = e.reason("s", "q", 10, 1, &host).await.unwrap();
    assert_eq!(out.value["termination_reason"], "max_tokens");
    let fatal = Lookup {
        calls: Mutex::new(vec![]),
        fatal: true,
    };
    let err = e.reason("s", "q", 10, 100_000, &fatal).await.unwrap_err();
    assert!(err.to_string().contains("PolicyDenied"), "{err}");
    assert!(matches!(
        e.reason("s", "q", 0, 1, &NoTools).await,
        Err(LlmError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn chain_feeds_each_step_the_previous_output() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "scripted");
    server.script(["outline", "draft", "polished"]);
    let out = e
        .chain(&[
            json!("make an outline"),
            json!({"system": "writer", "prompt": "write it"}),
            json!("polish"),
        ])
        .await
        .unwrap();
    assert_eq!(out.value["output"], "polished");
    assert_eq!(out.value["steps"].as_array().unwrap().len(), 3);
    assert_eq!(
        out.value["steps"][1],
        json!({"prompt": "write it", "output": "draft"})
    );
    let reqs = server.requests();
    assert_eq!(
        reqs[1]["messages"][0],
        json!({"role": "system", "content": "writer"})
    );
    assert!(
        reqs[2]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .ends_with("Previous step output:\ndraft")
    );
    assert_eq!(out.records.len(), 3);
    assert!(matches!(
        e.chain(&[json!(3)]).await,
        Err(LlmError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn debate_alternates_and_stops_on_approval() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "scripted");
    server.script(["draft 1", "too vague", "draft 2", "APPROVED, good"]);
    let out = e
        .debate("write", "criticise", "tabs vs spaces", 5)
        .await
        .unwrap();
    assert_eq!(out.value["final_answer"], "draft 2");
    assert_eq!(out.value["rounds_completed"], 2);
    assert_eq!(
        out.value["history"][0],
        json!({"round": 1, "draft": "draft 1", "critique": "too vague"})
    );
    let reqs = server.requests();
    assert!(
        reqs[2]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("too vague"),
        "writer sees the critique"
    );
    assert!(matches!(
        e.debate("w", "c", "t", 21).await,
        Err(LlmError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn map_reduce_maps_every_input_then_reduces() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "gpt-test");
    let out = e
        .map_reduce(
            &[json!("first doc"), json!({"k": 1})],
            "summarise",
            "combine",
        )
        .await
        .unwrap();
    assert_eq!(
        out.value["mapped_results"],
        json!(["echo: first doc", "echo: {\"k\":1}"])
    );
    assert_eq!(
        out.value["result"],
        "echo: [1] echo: first doc\n[2] echo: {\"k\":1}"
    );
    assert_eq!(out.records.len(), 3);
}

#[tokio::test]
async fn director_plans_runs_workers_and_synthesises() {
    let server = TestServer::start(None).await;
    let e = engines(&server, "scripted");
    server.script([
        r#"Plan: [{"worker": "researcher", "instruction": "find facts"}, {"worker": "writer", "instruction": "write"}]"#,
        "facts found",
        "text written",
        "final report",
    ]);
    let workers = [
        json!({"name": "researcher", "prompt": "you research"}),
        json!({"name": "writer", "prompt": "you write"}),
    ];
    let out = e
        .director("you direct", &workers, "report on X")
        .await
        .unwrap();
    assert_eq!(out.value["result"], "final report");
    assert_eq!(
        out.value["plan"],
        json!([{"worker": "researcher", "instruction": "find facts"}, {"worker": "writer", "instruction": "write"}])
    );
    // Workers run concurrently, so which scripted answer each got depends on arrival order.
    let mut outputs: Vec<String> = out.value["worker_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["output"].as_str().unwrap().to_string())
        .collect();
    outputs.sort();
    assert_eq!(outputs, vec!["facts found", "text written"]);
    assert_eq!(out.value["worker_results"][1]["worker"], "writer");
    assert_eq!(out.records.len(), 4);

    // A plan that names unknown workers falls back to giving everyone the task.
    server.script([
        "[{\"worker\": \"ghost\", \"instruction\": \"boo\"}]",
        "a",
        "b",
        "done",
    ]);
    let out = e
        .director("d", &[json!("p1"), json!("p2")], "task T")
        .await
        .unwrap();
    assert_eq!(
        out.value["plan"],
        json!([{"worker": "worker1", "instruction": "task T"}, {"worker": "worker2", "instruction": "task T"}])
    );
}
