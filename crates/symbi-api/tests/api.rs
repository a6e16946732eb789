//! The HTTP API over real HTTP on a free loopback port, against the real engine (runtime,
//! DSL, gateway, Cedar policy engine with the shipped defaults, in-process bus): every
//! route group of API-CONTRACT.md with its status codes and JSON fields.

mod common;

use common::{ECHO, Options, TOKEN, start};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

/// Whether an `execution_completed` event carries the digest of `output`.
fn completed_with(s: &common::Server, output: &Value) -> bool {
    let want = symbi_runtime::gateway::digest(output);
    s.events_of("execution_completed")
        .iter()
        .any(|d| d["output_digest"] == want.as_str())
}

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok() && s == s.to_lowercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_health_endpoints_and_auth_on_everything_else() {
    let mut s = start(Options::default()).await;
    let (st, h) = common::json(s.anon(Method::GET, "/api/v1/health").send().await.unwrap()).await;
    assert_eq!(st, 200);
    for k in ["status", "uptime_seconds", "timestamp", "version"] {
        assert!(h.get(k).is_some(), "health lacks {k}: {h}");
    }
    assert!(
        ["healthy", "degraded", "unhealthy"].contains(&h["status"].as_str().unwrap()),
        "{h}"
    );
    assert!(h["uptime_seconds"].is_u64());
    chrono::DateTime::parse_from_rfc3339(h["timestamp"].as_str().unwrap()).unwrap();
    for p in ["/api/v1/health/live", "/api/v1/health/ready"] {
        let r = s.anon(Method::GET, p).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{p}");
        assert!(r.text().await.unwrap().is_empty(), "{p} has a body");
    }
    let protected: &[(Method, &str)] = &[
        (Method::GET, "/api/v1/agents"),
        (Method::POST, "/api/v1/agents"),
        (Method::GET, "/api/v1/status"),
        (Method::GET, "/api/v1/metrics"),
        (Method::GET, "/api/v1/health/scheduler"),
        (Method::GET, "/api/v1/schedules"),
        (Method::POST, "/api/v1/workflows/execute"),
        (Method::GET, "/api/v1/approvals"),
        (Method::GET, "/api-docs/openapi.json"),
        (Method::GET, "/metrics"),
    ];
    for (m, p) in protected {
        let (st, b) = common::json(s.anon(m.clone(), p).send().await.unwrap()).await;
        assert_eq!(st, 401, "{m} {p} without a token: {b}");
        assert_eq!(b["code"], "UNAUTHORIZED", "{m} {p}: {b}");
        assert!(b.get("details").is_some() && b["error"].is_string(), "{b}");
        assert!(!b.to_string().to_lowercase().contains("expired"), "{b}");
        let (st, _) = common::json(
            s.anon(m.clone(), p)
                .bearer_auth("wrong-token")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, 401, "{m} {p} with a wrong token");
        let (st, _) = common::json(
            s.anon(m.clone(), p)
                .header("authorization", format!("Basic {TOKEN}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, 401, "{m} {p} with the wrong scheme");
    }
    // Each failed authentication is an audit event, and the token never appears in it.
    let failures = s.log.len();
    assert!(failures > 0);
    assert!(!format!("{:?}", s.log.events()).contains(TOKEN));
    // Security headers on every response.
    let r = s.anon(Method::GET, "/api/v1/health").send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_from_dsl_execute_history_update_delete() {
    let mut s = start(Options::default()).await;
    let (st, b) = s
        .post(
            "/api/v1/agents",
            json!({"name": "echo", "dsl": ECHO, "description": "ignored extra field"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(keys(&b), ["id", "status"]);
    assert_eq!(b["status"], "scheduled");
    assert!(is_uuid(&b["id"]), "{b}");
    let id = b["id"].as_str().unwrap().to_string();

    let (st, list) = s.get("/api/v1/agents").await;
    assert_eq!(st, 200);
    let me = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .expect("listed");
    assert_eq!(me["name"], "echo");
    assert!(me["state"].is_string());

    let (st, status) = s.get(&format!("/api/v1/agents/{id}/status")).await;
    assert_eq!(st, 200, "{status}");
    assert_eq!(status["agent_id"], id.as_str());
    for k in ["state", "last_activity", "resource_usage"] {
        assert!(status.get(k).is_some(), "status lacks {k}: {status}");
    }
    for k in ["memory_bytes", "cpu_percent", "active_tasks"] {
        assert!(status["resource_usage"][k].is_number(), "{status}");
    }
    assert!(
        status.get("metadata").is_none() && status.get("recent_events").is_none(),
        "internal agents omit external fields"
    );

    let (st, ex) = s
        .post(
            &format!("/api/v1/agents/{id}/execute"),
            json!({"input": {"msg": "hi"}}),
        )
        .await;
    assert_eq!(st, 200, "{ex}");
    assert_eq!(ex["status"], "execution_started");
    assert!(is_uuid(&ex["execution_id"]), "{ex}");
    let exec = ex["execution_id"].as_str().unwrap();
    assert_eq!(s.wait_execution(&id, exec).await, "completed");

    // No body at all is `{}` (then `msg` is missing: the execution fails with InputError).
    let r = s
        .req(Method::POST, &format!("/api/v1/agents/{id}/execute"))
        .send()
        .await
        .unwrap();
    let (st, ex2) = common::json(r).await;
    assert_eq!(st, 200, "{ex2}");
    s.wait_execution(&id, ex2["execution_id"].as_str().unwrap())
        .await;

    // Idempotency-Key: a repeat returns the first execution id.
    let key = uuid::Uuid::new_v4().to_string();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = s
            .req(Method::POST, &format!("/api/v1/agents/{id}/execute"))
            .header("Idempotency-Key", &key)
            .json(&json!({"input": {"msg": "once"}}))
            .send()
            .await
            .unwrap();
        let (st, b) = common::json(r).await;
        assert_eq!(st, 200);
        ids.push(b["execution_id"].clone());
    }
    assert_eq!(ids[0], ids[1]);

    let (st, h) = s.get(&format!("/api/v1/agents/{id}/history")).await;
    assert_eq!(st, 200);
    let h = h["history"].as_array().unwrap().clone();
    let statuses: Vec<&str> = h.iter().map(|r| r["status"].as_str().unwrap()).collect();
    for want in ["created", "execution_started", "completed"] {
        assert!(
            statuses.contains(&want),
            "history lacks {want}: {statuses:?}"
        );
    }
    assert_eq!(
        statuses.last(),
        Some(&"created"),
        "newest first: {statuses:?}"
    );
    for r in &h {
        assert_eq!(keys(r), ["execution_id", "status", "timestamp"]);
        chrono::DateTime::parse_from_rfc3339(r["timestamp"].as_str().unwrap()).unwrap();
    }
    // The execution really ran through the engine: its completion (with the digest of the
    // result) is in the audit stream.
    assert!(
        completed_with(&s, &json!("echo: hi")),
        "no execution_completed event with the expected output digest"
    );

    // Unknown agent: history is an empty list (upstream), status 404.
    let other = uuid::Uuid::new_v4();
    let (st, b) = s.get(&format!("/api/v1/agents/{other}/history")).await;
    assert_eq!((st, b), (200, json!({"history": []})));
    let (st, b) = s.get(&format!("/api/v1/agents/{other}/status")).await;
    assert_eq!((st, b["code"].as_str()), (404, Some("AGENT_NOT_FOUND")));
    let (st, b) = s
        .post(&format!("/api/v1/agents/{other}/execute"), json!({}))
        .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("AGENT_NOT_FOUND")));
    let (st, b) = s.get("/api/v1/agents/not-a-uuid/status").await;
    assert_eq!((st, b["code"].as_str()), (400, Some("INVALID_ID")));
    // There is no GET on /agents/{id}.
    let (st, b) = s.get(&format!("/api/v1/agents/{id}")).await;
    assert_eq!((st, b["code"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));

    // Update: rename, then a DSL with an error → 400 with positioned diagnostics.
    let (st, b) = s
        .put(&format!("/api/v1/agents/{id}"), json!({"name": "echo2"}))
        .await;
    assert_eq!(
        (st, b.clone()),
        (200, json!({"id": id, "status": "updated"})),
        "{b}"
    );
    let (st, b) = s
        .put(
            &format!("/api/v1/agents/{id}"),
            json!({"dsl": "agent broken( {"}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["code"], "AGENT_UPDATE_FAILED");
    let (st, b) = s
        .put(&format!("/api/v1/agents/{other}"), json!({"name": "x"}))
        .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("AGENT_NOT_FOUND")));

    let (st, b) = s.delete(&format!("/api/v1/agents/{id}")).await;
    assert_eq!((st, b), (200, json!({"id": id, "status": "deleted"})));
    let (st, _) = s.get(&format!("/api/v1/agents/{id}/status")).await;
    assert_eq!(st, 404);
    let (_, list) = s.get("/api/v1/agents").await;
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str())
    );
    let (st, b) = s.delete(&format!("/api/v1/agents/{id}")).await;
    assert_eq!((st, b["code"].as_str()), (404, Some("AGENT_NOT_FOUND")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dsl_and_bad_requests_get_structured_errors() {
    let mut s = start(Options::default()).await;
    let (st, b) = s
        .post(
            "/api/v1/agents",
            json!({"name": "bad", "dsl": "agent bad() -> String {\n    return 1 +;\n}\n"}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["code"], "AGENT_CREATION_FAILED");
    let d = b["details"]["diagnostics"].as_array().expect("diagnostics");
    assert!(!d.is_empty());
    assert_eq!(d[0]["line"], 2, "{b}");
    assert!(
        d[0]["column"].as_u64().unwrap() > 0
            && d[0]["severity"] == "error"
            && d[0]["message"].is_string(),
        "{b}"
    );

    let (st, b) = s
        .post("/api/v1/agents", json!({"name": "", "dsl": ECHO}))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("AGENT_CREATION_FAILED"))
    );
    let (st, b) = s.post("/api/v1/agents", json!({"name": "nodsl"})).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("AGENT_CREATION_FAILED"))
    );

    let r = s
        .req(Method::POST, "/api/v1/agents")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (st, b) = common::json(r).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("INVALID_REQUEST")),
        "{b}"
    );
    let r = s
        .req(Method::POST, "/api/v1/agents")
        .body(json!({"name": "x", "dsl": ECHO}).to_string())
        .send()
        .await
        .unwrap();
    let (st, b) = common::json(r).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE")),
        "{b}"
    );
    let (st, b) = s
        .post("/api/v1/agents", json!({"name": 5, "dsl": ECHO}))
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (422, Some("INVALID_REQUEST")),
        "{b}"
    );
    let big = "x".repeat(3 << 20);
    // The server answers before reading the whole body and closes that connection, so this
    // request must not leave it in the client's pool for the next one.
    let r = s
        .req(Method::POST, "/api/v1/agents")
        .header("connection", "close")
        .json(&json!({"name": "big", "dsl": big}))
        .send()
        .await
        .unwrap();
    let (st, b) = common::json(r).await;
    assert_eq!(
        (st, b["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{b}"
    );
    let (st, b) = s.get("/api/v1/nothing-here").await;
    assert_eq!((st, b["code"].as_str()), (404, Some("NOT_FOUND")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_status_metrics_scheduler_health_and_openapi() {
    let mut s = start(Options::default()).await;
    s.create_agent("echo", ECHO).await;
    let (st, b) = s.get("/api/v1/status").await;
    assert_eq!(st, 200);
    assert_eq!(
        keys(&b),
        [
            "agent_count",
            "channel_count",
            "healthy",
            "schedule_count",
            "version"
        ]
    );
    assert_eq!(b["agent_count"], 1);

    let (st, m) = s.get("/api/v1/metrics").await;
    assert_eq!(st, 200, "{m}");
    for k in ["total", "running", "idle", "error"] {
        assert!(m["agents"][k].is_u64(), "{m}");
    }
    for k in ["uptime_seconds", "memory_usage", "cpu_usage"] {
        assert!(m["system"][k].is_number(), "{m}");
    }
    for k in [
        "uptime_seconds",
        "memory_usage_bytes",
        "memory_usage_percent",
        "cpu_usage_percent",
        "disk_usage_bytes",
        "disk_usage_percent",
        "active_agents",
        "total_agents",
        "secrets_count",
        "mcp_connections",
        "vector_db_items",
    ] {
        assert!(m[k].is_number(), "flat key {k} missing: {m}");
    }
    assert!(m["memory_usage_bytes"].as_u64().unwrap() > 0);
    assert_eq!(m["total_agents"], 1);

    let (st, h) = s.get("/api/v1/health/scheduler").await;
    assert_eq!(st, 200);
    assert_eq!(
        keys(&h),
        [
            "average_execution_time_ms",
            "global_active_runs",
            "is_running",
            "jobs_active",
            "jobs_dead_letter",
            "jobs_paused",
            "jobs_total",
            "longest_run_ms",
            "max_concurrent",
            "runs_failed",
            "runs_succeeded",
            "runs_total",
            "store_accessible",
        ]
    );
    assert_eq!(h["is_running"], true);

    let r = s.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("# TYPE") && text.contains("# HELP"), "{text}");
    assert!(text.contains("symbi_agents"), "no agent gauge:\n{text}");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );

    let (st, doc) = s.get("/api-docs/openapi.json").await;
    assert_eq!(st, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/health",
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/execute",
        "/api/v1/agents/{id}/history",
        "/api/v1/schedules",
        "/api/v1/schedules/{id}",
        "/api/v1/workflows/execute",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    assert!(
        doc["components"]["securitySchemes"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "no security scheme"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_crud_pause_resume_trigger_history_next_runs() {
    let mut s = start(Options::default()).await;
    s.create_agent("echo", ECHO).await;
    let (st, b) = s.get("/api/v1/schedules").await;
    assert_eq!((st, b), (200, json!([])));

    let (st, c) = s
        .post("/api/v1/schedules", json!({"name": "hourly", "cron_expression": "0 0 * * * *", "agent_name": "echo", "timezone": "Europe/Paris"}))
        .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(keys(&c), ["job_id", "next_run", "status"]);
    assert_eq!(c["status"], "created");
    let job = c["job_id"].as_str().unwrap().to_string();
    assert!(is_uuid(&c["job_id"]));

    let (_, list) = s.get("/api/v1/schedules").await;
    let l = &list.as_array().unwrap()[0];
    assert_eq!(
        keys(l),
        [
            "cron_expression",
            "enabled",
            "job_id",
            "name",
            "next_run",
            "run_count",
            "status",
            "timezone"
        ]
    );
    assert_eq!(l["status"], "Active");
    assert_eq!(l["timezone"], "Europe/Paris");

    let (st, d) = s.get(&format!("/api/v1/schedules/{job}")).await;
    assert_eq!(st, 200);
    assert_eq!(
        keys(&d),
        [
            "created_at",
            "cron_expression",
            "enabled",
            "failure_count",
            "job_id",
            "last_run",
            "name",
            "next_run",
            "one_shot",
            "run_count",
            "status",
            "timezone",
            "updated_at",
        ]
    );
    let (st, d) = s
        .put(
            &format!("/api/v1/schedules/{job}"),
            json!({"cron_expression": "0 30 * * * *"}),
        )
        .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(d["cron_expression"], "0 30 * * * *");
    assert_eq!(d["timezone"], "Europe/Paris", "only given keys change");
    let (st, b) = s
        .put(
            &format!("/api/v1/schedules/{job}"),
            json!({"timezone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("UPDATE_SCHEDULE_FAILED"))
    );

    let r = s
        .req(Method::POST, &format!("/api/v1/schedules/{job}/pause"))
        .send()
        .await
        .unwrap();
    let (st, b) = common::json(r).await;
    assert_eq!(
        (st, b),
        (
            200,
            json!({"job_id": job, "action": "pause", "status": "paused"})
        )
    );
    assert_eq!(
        s.get(&format!("/api/v1/schedules/{job}")).await.1["status"],
        "Paused"
    );
    let r = s
        .req(Method::POST, &format!("/api/v1/schedules/{job}/resume"))
        .send()
        .await
        .unwrap();
    let (st, b) = common::json(r).await;
    assert_eq!(
        (st, b),
        (
            200,
            json!({"job_id": job, "action": "resume", "status": "active"})
        )
    );
    assert_eq!(
        s.get(&format!("/api/v1/schedules/{job}")).await.1["status"],
        "Active"
    );

    let (st, n) = s
        .get(&format!("/api/v1/schedules/{job}/next-runs?count=3"))
        .await;
    assert_eq!(st, 200);
    let runs: Vec<chrono::DateTime<chrono::FixedOffset>> = n["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(runs.len(), 3);
    assert!(
        runs.windows(2)
            .all(|w| w[1] - w[0] == chrono::Duration::hours(1)),
        "{runs:?}"
    );

    let r = s
        .req(Method::POST, &format!("/api/v1/schedules/{job}/trigger"))
        .send()
        .await
        .unwrap();
    let (st, b) = common::json(r).await;
    assert_eq!(
        (st, b),
        (
            200,
            json!({"job_id": job, "action": "trigger", "status": "triggered"})
        )
    );
    let mut history = Value::Null;
    for _ in 0..250 {
        let (_, h) = s
            .get(&format!("/api/v1/schedules/{job}/history?limit=5"))
            .await;
        if h["history"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| !r["completed_at"].is_null()))
        {
            history = h;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let run = &history["history"][0];
    assert_eq!(
        keys(run),
        [
            "completed_at",
            "error",
            "execution_time_ms",
            "run_id",
            "started_at",
            "status"
        ],
        "{history}"
    );
    assert!(is_uuid(&run["run_id"]));

    // Errors.
    let (st, b) = s
        .post(
            "/api/v1/schedules",
            json!({"name": "x", "cron_expression": "not cron", "agent_name": "echo"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("CREATE_SCHEDULE_FAILED"))
    );
    let (st, b) = s
        .post(
            "/api/v1/schedules",
            json!({"name": "x", "cron_expression": "0 0 * * * *", "agent_name": "nobody"}),
        )
        .await;
    assert_eq!(
        (st, b["code"].as_str()),
        (400, Some("CREATE_SCHEDULE_FAILED"))
    );
    let unknown = uuid::Uuid::new_v4();
    for (m, p, code) in [
        (
            Method::GET,
            format!("/api/v1/schedules/{unknown}"),
            "SCHEDULE_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{unknown}/pause"),
            "SCHEDULE_PAUSE_FAILED",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{unknown}/resume"),
            "SCHEDULE_RESUME_FAILED",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{unknown}/trigger"),
            "SCHEDULE_TRIGGER_FAILED",
        ),
        (
            Method::GET,
            format!("/api/v1/schedules/{unknown}/history"),
            "SCHEDULE_HISTORY_FAILED",
        ),
        (
            Method::GET,
            format!("/api/v1/schedules/{unknown}/next-runs"),
            "SCHEDULE_NEXT_RUNS_FAILED",
        ),
        (
            Method::GET,
            "/api/v1/schedules/not-a-uuid".to_string(),
            "SCHEDULE_NOT_FOUND",
        ),
    ] {
        let (st, b) = common::json(s.req(m.clone(), &p).send().await.unwrap()).await;
        assert_eq!((st, b["code"].as_str()), (404, Some(code)), "{m} {p}: {b}");
    }

    let (st, b) = s.delete(&format!("/api/v1/schedules/{job}")).await;
    assert_eq!((st, b), (200, json!({"job_id": job, "deleted": true})));
    let (st, _) = s.get(&format!("/api/v1/schedules/{job}")).await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_fires_on_time_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(Options {
        data_dir: Some(dir.path().into()),
        ..Options::default()
    })
    .await;
    s.create_agent("echo", ECHO).await;
    let (st, c) = s
        .post(
            "/api/v1/schedules",
            json!({"name": "every-second", "cron_expression": "* * * * * *", "agent_name": "echo"}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let job = c["job_id"].as_str().unwrap().to_string();
    let mut fired = 0;
    for _ in 0..100 {
        fired = s.get(&format!("/api/v1/schedules/{job}")).await.1["run_count"]
            .as_u64()
            .unwrap();
        if fired >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(fired >= 2, "a per-second schedule ran {fired} times in 5 s");
    s.stop().await;
    drop(s);

    // Same data directory: the job is still there and keeps firing (the agent is created
    // again under the same name, as `symbi up` reloads it from the agents directory).
    let mut s = start(Options {
        data_dir: Some(dir.path().into()),
        ..Options::default()
    })
    .await;
    s.create_agent("echo", ECHO).await;
    let (st, d) = s.get(&format!("/api/v1/schedules/{job}")).await;
    assert_eq!(st, 200, "the schedule did not survive the restart: {d}");
    let before = d["run_count"].as_u64().unwrap();
    assert!(before >= fired);
    let mut after = before;
    for _ in 0..100 {
        after = s.get(&format!("/api/v1/schedules/{job}")).await.1["run_count"]
            .as_u64()
            .unwrap();
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        after > before,
        "the schedule did not fire after the restart"
    );
    s.stop().await;
}

const HOOKED: &str = r#"
webhook intake {
    path     "/hooks/intake"
    provider custom
    secret   "s3cret-hmac-key"
    agent    intake
}

agent intake(event: String) -> String {
    with timeout = 5s {
        return "got " + event;
    }
}
"#;

fn sign(body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(b"s3cret-hmac-key").unwrap();
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_accepts_a_good_signature_and_rejects_bad_and_replayed_ones() {
    let mut s = start(Options {
        programs: vec![("hooked.symbi".into(), HOOKED.into())],
        ..Options::default()
    })
    .await;
    let base = s.webhook_base.clone().expect("the webhook listener runs");
    let url = format!("{base}/hooks/intake");
    let body = json!({"event": "ticket.created"}).to_string();

    let r = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-signature", sign(body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());

    // The same signed request again is a replay.
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-signature", sign(body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "replay accepted");

    let other = json!({"event": "x"}).to_string();
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-signature", sign(b"something else"))
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "bad signature accepted");
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "missing signature accepted");

    // The accepted request ran the agent through the engine.
    let id = s.engine.agent_named("intake").unwrap().to_string();
    let mut done = false;
    for _ in 0..250 {
        let (_, h) = s.get(&format!("/api/v1/agents/{id}/history")).await;
        if h["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "completed")
        {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(done, "the webhook did not run the agent");
    assert!(
        completed_with(&s, &json!("got ticket.created")),
        "the webhook's execution result is not the expected one"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_parallel_executes_all_complete() {
    let s = std::sync::Arc::new(start(Options::default()).await);
    let id = s.create_agent("echo", ECHO).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let s = s.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let (st, b) = s
                .post(
                    &format!("/api/v1/agents/{id}/execute"),
                    json!({"input": {"msg": format!("n{i}")}}),
                )
                .await;
            assert_eq!(st, 200, "{b}");
            b["execution_id"].as_str().unwrap().to_string()
        }));
    }
    let mut execs = Vec::new();
    for t in tasks {
        execs.push(t.await.unwrap());
    }
    let unique: std::collections::HashSet<String> = execs.iter().cloned().collect();
    assert_eq!(unique.len(), 100);
    // Every one of them completed, as the audit stream shows (the history keeps at most
    // 100 records, contract 5.7, so 200 records evict the oldest).
    let mut done = std::collections::HashSet::new();
    for _ in 0..500 {
        done = s
            .events_of("execution_completed")
            .iter()
            .filter_map(|d| d["execution_id"].as_str().map(str::to_string))
            .collect();
        if unique.is_subset(&done) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        unique.is_subset(&done),
        "{} of 100 executions completed",
        unique.intersection(&done).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_send_drain_and_status() {
    let mut s = start(Options::default()).await;
    // Agents act only on grants: the sender's policy allows message_send.
    let sender = "agent echo(msg: String) -> String {\n    capabilities = [\"message_send\"]\n    policy talk {\n        allow: [\"message_send\"]\n    }\n    with timeout = 5s {\n        return \"echo: \" + msg;\n    }\n}\n";
    let a = s.create_agent("echo", sender).await;
    let b = s
        .create_agent("echo_b", &ECHO.replace("agent echo", "agent echo_b"))
        .await;
    let (st, m) = s
        .post(
            &format!("/api/v1/agents/{b}/messages"),
            json!({"sender": a, "payload": "hello"}),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["status"], "pending");
    assert!(is_uuid(&m["message_id"]));
    let (st, st_body) = s
        .get(&format!(
            "/api/v1/messages/{}/status",
            m["message_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st, 200, "{st_body}");
    assert!(["pending", "delivered"].contains(&st_body["status"].as_str().unwrap()));
    let (st, inbox) = s.get(&format!("/api/v1/agents/{b}/messages")).await;
    assert_eq!(st, 200);
    let msgs = inbox["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "{inbox}");
    assert_eq!(msgs[0]["payload"], "hello");
    assert_eq!(msgs[0]["sender"], a.as_str());
    let (_, again) = s.get(&format!("/api/v1/agents/{b}/messages")).await;
    assert_eq!(again["messages"], json!([]), "drained");
    // Without a grant the bus refuses (default deny), and nothing is delivered.
    let (st, denied) = s
        .post(
            &format!("/api/v1/agents/{a}/messages"),
            json!({"sender": b, "payload": "nope"}),
        )
        .await;
    assert_eq!(st, 400, "{denied}");
    assert!(
        denied["error"]
            .as_str()
            .is_some_and(|e| e.contains("denied by policy")),
        "{denied}"
    );
    let (_, inbox_a) = s.get(&format!("/api/v1/agents/{a}/messages")).await;
    assert_eq!(inbox_a["messages"], json!([]));
    let (st, b2) = s.get("/api/v1/messages/not-a-uuid/status").await;
    assert_eq!((st, b2["code"].as_str()), (400, Some("INVALID_MESSAGE_ID")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_from_dsl_source() {
    let mut s = start(Options::default()).await;
    let (st, w) = s
        .post(
            "/api/v1/workflows/execute",
            json!({"workflow_id": ECHO, "parameters": {"msg": "wf"}}),
        )
        .await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(w["status"], "success");
    assert_eq!(w["execution_started"], true);
    assert!(is_uuid(&w["agent_id"]), "{w}");
    assert!(w["system_status"]["total_agents"].is_number(), "{w}");
    assert_eq!(w["parameters"], json!({"msg": "wf"}));
    let (st, b) = s
        .post(
            "/api/v1/workflows/execute",
            json!({"workflow_id": "agent x( {", "parameters": null}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(
        b["details"]["diagnostics"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    s.stop().await;
}
