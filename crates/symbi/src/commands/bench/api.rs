//! `symbi bench api`: the HTTP API under closed-loop load on loopback, against a bare axum
//! server started in the same run (`symbi_api::bench`).
//!
//! The system is assembled exactly as `symbi up` does (signed audit log, policy engine,
//! bus, runtime, API with authentication and every layer), on a throw-away data directory,
//! with the per-IP rate limit off (it would otherwise answer 429 after 100 requests).
//! Measured: `GET /api/v1/health` (public), `GET /api/v1/agents/{id}/status` (token) and
//! `POST /api/v1/agents/{id}/execute` of a trivial agent (token; answered when the
//! execution is admitted, the run itself is asynchronous and lands in the audit log).

use crate::cli::Format;
use crate::commands::Globals;
use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use symbi_api::bench::{LoadOptions, LoadResult, baseline_server, load, reqwest};
use symbi_api::{ApiMetrics, MeteredSink, serve_api};
use symbi_runtime::engine::assembly::{AssemblyOptions, Extensions, assemble};
use symbi_types::EventSink;

/// `symbi bench api`.
#[derive(Args, Debug)]
pub struct ApiBenchArgs {
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measured seconds per endpoint.
    #[arg(long, default_value_t = 5)]
    pub secs: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Only serve the bare axum baseline (health and execute routes) until Ctrl-C and print
    /// its address — for an external load generator (`scripts/bench-api-wrk.sh`).
    #[arg(long)]
    pub serve_baseline: bool,
}

const ECHO: &str = "agent echo(msg: String) -> String {\n    with timeout = 5s {\n        return \"echo: \" + msg;\n    }\n}\n";

pub fn bench_api(g: &Globals, a: ApiBenchArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(Some("127.0.0.1:0".into()))?;
    crate::logging::init(&loaded.config.log, "warn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if a.serve_baseline {
        return rt.block_on(async {
            let base = baseline_server()
                .await
                .context("starting the baseline server")?;
            println!("http://{}", base.addr);
            tokio::signal::ctrl_c().await?;
            base.shutdown().await;
            Ok(ExitCode::SUCCESS)
        });
    }
    rt.block_on(async move {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().to_path_buf();
        let mut cfg = loaded.config.clone();
        cfg.runtime.data_dir = Some(data_dir.clone());
        cfg.api.listen = "127.0.0.1:0".into();
        cfg.api.rate_limit_per_minute = 0;
        let token = hex::encode(rand::random::<[u8; 24]>());
        cfg.api.token = Some(token.clone());
        cfg.api.token_file = None;
        cfg.api.key_store = None;
        let cfg = Arc::new(cfg);
        let metrics = Arc::new(ApiMetrics::new());
        let m = metrics.clone();
        let ext = Extensions {
            sink_layer: Some(Box::new(move |inner: Arc<dyn EventSink>| -> Arc<dyn EventSink> { Arc::new(MeteredSink::new(inner, m)) })),
            ..Extensions::default()
        };
        let system = assemble(cfg.clone(), data_dir.clone(), AssemblyOptions { bus: true, watch_policies: false }, ext)
            .await
            .context("assembling the system")?;
        let engine = Arc::new(system.engine.clone());
        let api = serve_api(engine, &cfg, &data_dir, metrics, &[]).await.context("starting the API")?;
        let base = baseline_server().await.context("starting the baseline server")?;
        let client = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency.max(1)).build()?;
        let symbi = format!("http://{}", api.addr);
        let bare = format!("http://{}", base.addr);

        let r = client.post(format!("{symbi}/api/v1/agents")).bearer_auth(&token).json(&json!({"name": "echo", "dsl": ECHO})).send().await?;
        let created: serde_json::Value = r.error_for_status()?.json().await?;
        let id = created["id"].as_str().context("no agent id")?.to_string();

        let opts = LoadOptions { concurrency: a.concurrency, duration: Duration::from_secs(a.secs), warmup: Duration::from_secs(1) };
        let body = json!({"input": {"msg": "bench"}});
        let run = |url: String, post: bool, auth: bool| {
            let c = client.clone();
            let t = token.clone();
            let body = body.clone();
            let opts = opts.clone();
            async move {
                load(&opts, move || {
                    let r = if post { c.post(&url).json(&body) } else { c.get(&url) };
                    if auth { r.bearer_auth(&t) } else { r }
                })
                .await
            }
        };
        let bare_health = run(format!("{bare}/api/v1/health"), false, false).await;
        let health = run(format!("{symbi}/api/v1/health"), false, false).await;
        let status = run(format!("{symbi}/api/v1/agents/{id}/status"), false, true).await;
        let bare_exec = run(format!("{bare}/api/v1/agents/{id}/execute"), true, false).await;
        let exec = run(format!("{symbi}/api/v1/agents/{id}/execute"), true, true).await;
        let completed = engine_completed(&client, &symbi, &token, &id).await;

        api.shutdown().await;
        system.shutdown(Duration::from_secs(30)).await;
        base.shutdown().await;

        let ratio = |s: &LoadResult, b: &LoadResult| {
            json!({
                "throughput": s.requests_per_sec / b.requests_per_sec.max(1e-9),
                "p50": s.p50_us as f64 / b.p50_us.max(1) as f64,
                "p99": s.p99_us as f64 / b.p99_us.max(1) as f64,
            })
        };
        let report = json!({
            "concurrency": a.concurrency,
            "secs": a.secs,
            "baseline": { "health": bare_health, "execute": bare_exec },
            "symbi": { "health": health, "status": status, "execute": exec, "executions_completed_in_history": completed },
            "ratios_vs_baseline": {
                "health": ratio(&health, &bare_health),
                "status": ratio(&status, &bare_health),
                "execute": ratio(&exec, &bare_exec),
            },
        });
        match a.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            Format::Text => {
                println!("symbi bench api: {} closed-loop clients, {} s per endpoint, loopback", a.concurrency, a.secs);
                println!("{:<34} {:>10} {:>9} {:>9} {:>9} {:>7}", "endpoint", "req/s", "p50 µs", "p99 µs", "max µs", "errors");
                for (name, r) in [
                    ("bare axum GET health", &bare_health),
                    ("symbi GET /api/v1/health", &health),
                    ("symbi GET /agents/{id}/status", &status),
                    ("bare axum POST execute", &bare_exec),
                    ("symbi POST /agents/{id}/execute", &exec),
                ] {
                    println!(
                        "{:<34} {:>10.0} {:>9} {:>9} {:>9} {:>7}",
                        name, r.requests_per_sec, r.p50_us, r.p99_us, r.max_us, r.errors
                    );
                }
                for (name, s, b) in [("health", &health, &bare_health), ("status", &status, &bare_health), ("execute", &exec, &bare_exec)] {
                    println!(
                        "ratio {name:<8} vs bare: throughput {:.2}  p50 {:.2}  p99 {:.2}",
                        s.requests_per_sec / b.requests_per_sec.max(1e-9),
                        s.p50_us as f64 / b.p50_us.max(1) as f64,
                        s.p99_us as f64 / b.p99_us.max(1) as f64
                    );
                }
                println!("executions completed (history records of the last 100): {completed}");
            }
        }
        let failed = [&bare_health, &health, &status, &bare_exec, &exec].iter().any(|r| r.requests == 0 || r.errors > 0);
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}

/// How many of the agent's last history records are completions (shows the executes ran).
async fn engine_completed(client: &reqwest::Client, base: &str, token: &str, id: &str) -> usize {
    // Give the queued executions a moment to finish before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let Ok(r) = client
        .get(format!("{base}/api/v1/agents/{id}/history"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return 0;
    };
    let Ok(v) = r.json::<serde_json::Value>().await else {
        return 0;
    };
    v["history"]
        .as_array()
        .map(|h| h.iter().filter(|r| r["status"] == "completed").count())
        .unwrap_or(0)
}
