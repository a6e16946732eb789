//! A real server on a free loopback port: the engine (runtime, DSL, gateway, Cedar policy
//! engine with the shipped defaults, in-process bus) plus `serve_api`, driven over HTTP.
#![allow(dead_code)]

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use symbi_api::{ApiHandle, ApiMetrics, MeteredSink, serve_api};
use symbi_runtime::engine::{Engine, EngineParts};
use symbi_types::{EventSink, MemoryEventLog};

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub programs: Vec<(String, String)>,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    pub token: Option<String>,
    pub key_store: Option<PathBuf>,
    pub listen: String,
    pub configure: Option<Box<dyn FnOnce(&mut symbi_config::Config)>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: None,
            programs: Vec::new(),
            rate_limit_per_minute: 0,
            rate_limit_burst: 0,
            token: Some(TOKEN.into()),
            key_store: None,
            listen: "127.0.0.1:0".into(),
            configure: None,
        }
    }
}

pub struct Server {
    pub api: Option<ApiHandle>,
    pub engine: Arc<Engine>,
    pub log: MemoryEventLog,
    pub base: String,
    pub webhook_base: Option<String>,
    pub client: Client,
    pub token: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

pub async fn start(mut o: Options) -> Server {
    let (tmp, dir) = match o.data_dir.take() {
        Some(d) => (None, d),
        None => {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().to_path_buf();
            (Some(t), d)
        }
    };
    let mut cfg = symbi_config::Config::default();
    cfg.runtime.data_dir = Some(dir.clone());
    cfg.runtime.scheduler_threads = 2;
    cfg.api.listen = o.listen.clone();
    cfg.api.webhook_listen = "127.0.0.1:0".into();
    cfg.api.token = o.token.clone();
    cfg.api.key_store = o.key_store.clone();
    cfg.api.rate_limit_per_minute = o.rate_limit_per_minute;
    cfg.api.rate_limit_burst = o.rate_limit_burst;
    if let Some(f) = o.configure.take() {
        f(&mut cfg);
    }
    let log = MemoryEventLog::default();
    let metrics = Arc::new(ApiMetrics::new());
    let sink: Arc<dyn EventSink> =
        Arc::new(MeteredSink::new(Arc::new(log.clone()), metrics.clone()));
    let pdp = Arc::new(
        symbi_policy::PolicyEngine::from_sources(
            symbi_policy::defaults::default_sources(),
            symbi_policy::EngineOptions::enforcing(),
        )
        .unwrap(),
    );
    let bus = symbi_bus::Bus::from_config(&cfg, &dir, pdp.clone(), sink.clone())
        .await
        .unwrap();
    let engine = Arc::new(
        Engine::new(EngineParts {
            config: Arc::new(cfg.clone()),
            data_dir: dir.clone(),
            sink,
            pdp,
            bus: Some(bus),
            tools: Vec::new(),
            executors: Vec::new(),
        })
        .unwrap(),
    );
    let mut programs = Vec::new();
    for (file, src) in &o.programs {
        engine.load_source(file, src).await.unwrap();
        programs.push((file.clone(), engine.check_source(file, src).unwrap()));
    }
    let api = serve_api(engine.clone(), &cfg, &dir, metrics, &programs)
        .await
        .unwrap();
    let token = match (&o.token, &api.generated_token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).unwrap(),
        _ => String::new(),
    };
    Server {
        base: format!("http://{}", api.addr),
        webhook_base: api.webhook_addr.map(|a| format!("http://{a}")),
        api: Some(api),
        engine,
        log,
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token,
        data_dir: dir,
        _tmp: tmp,
    }
}

impl Server {
    pub fn req(&self, m: Method, path: &str) -> RequestBuilder {
        self.client
            .request(m, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub fn anon(&self, m: Method, path: &str) -> RequestBuilder {
        self.client.request(m, format!("{}{}", self.base, path))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        json(self.req(Method::GET, path).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        json(
            self.req(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        json(
            self.req(Method::PUT, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        json(self.req(Method::DELETE, path).send().await.unwrap()).await
    }

    /// Creates an agent from DSL; returns its id.
    pub async fn create_agent(&self, name: &str, dsl: &str) -> String {
        let (st, b) = self
            .post(
                "/api/v1/agents",
                serde_json::json!({"name": name, "dsl": dsl}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// Waits until the agent's history shows a terminal record for `execution`.
    pub async fn wait_execution(&self, agent: &str, execution: &str) -> String {
        for _ in 0..600 {
            let (_, h) = self.get(&format!("/api/v1/agents/{agent}/history")).await;
            for r in h["history"].as_array().unwrap() {
                if r["execution_id"] == execution
                    && (r["status"] == "completed" || r["status"] == "failed")
                {
                    return r["status"].as_str().unwrap().to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("execution {execution} did not finish");
    }

    pub async fn stop(&mut self) {
        if let Some(a) = self.api.take() {
            a.shutdown().await;
        }
        self.engine.shutdown(Duration::from_secs(2)).await;
    }

    pub fn events_of(&self, ty: &str) -> Vec<Value> {
        self.log
            .of_type(ty)
            .into_iter()
            .map(|e| e.event.details)
            .collect()
    }
}

pub async fn json(r: Response) -> (u16, Value) {
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (st, v)
}

pub fn deps_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into()),
    )
}

/// The API test virtualenv's executable `name`, or a panic saying how to install it.
pub fn venv_tool(name: &str) -> PathBuf {
    let p = deps_dir().join("api-venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-deps.sh (it installs schemathesis, kubernetes-validate and symbiont-sdk)",
        p.display()
    );
    p
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

pub const ECHO: &str = r#"
agent echo(msg: String) -> String {
    with timeout = 5s {
        return "echo: " + msg;
    }
}
"#;
