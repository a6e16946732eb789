//! Everything the handlers share.

use crate::auth::Authority;
use crate::external::ExternalAgents;
use crate::metrics::ApiMetrics;
use crate::schedules::Schedules;
use crate::server::IpRateLimit;
use crate::sysinfo::CpuMeter;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use symbi_runtime::engine::Engine;
use symbi_types::EventSink;
use uuid::Uuid;

/// Server settings (from `[api]`).
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Request timeout.
    pub request_timeout: Duration,
    /// Default body limit (2 MiB).
    pub body_limit: usize,
    /// Body limit of `POST /agents/{id}/messages` (256 KiB).
    pub message_body_limit: usize,
    /// CORS origins.
    pub cors_origins: Vec<String>,
    /// Serve `/api-docs/openapi.json`.
    pub openapi: bool,
    /// File served at `/agents.md` (opt-in).
    pub agents_md: Option<PathBuf>,
    /// Largest message TTL accepted (seconds).
    pub max_message_ttl_secs: u64,
}

impl ApiSettings {
    /// From the configuration.
    pub fn from_config(c: &symbi_config::Config) -> Self {
        ApiSettings {
            request_timeout: c.api.request_timeout.0,
            body_limit: c.api.body_limit.0 as usize,
            message_body_limit: 256 << 10,
            cors_origins: c.api.cors_origins.clone(),
            openapi: c.api.openapi,
            agents_md: c.api.agents_md.clone(),
            max_message_ttl_secs: c.bus.max_ttl.0.as_secs().clamp(1, 86_400),
        }
    }
}

/// One recent error of a component (health `components`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RecentError {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub message: String,
}

/// Ring buffers of recent errors per component.
#[derive(Default)]
pub struct RecentErrors {
    by_component: Mutex<std::collections::BTreeMap<&'static str, VecDeque<RecentError>>>,
}

impl RecentErrors {
    /// Keeps the last 20 errors of each component.
    pub fn push(&self, component: &'static str, message: impl Into<String>) {
        let mut m = self.by_component.lock();
        let q = m.entry(component).or_default();
        q.push_back(RecentError {
            at: Utc::now(),
            message: message.into(),
        });
        while q.len() > 20 {
            q.pop_front();
        }
    }

    /// Errors of the last `window`, newest last.
    pub fn recent(&self, component: &str, window: Duration) -> Vec<RecentError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
        self.by_component
            .lock()
            .get(component)
            .map(|q| q.iter().filter(|e| e.at > cutoff).cloned().collect())
            .unwrap_or_default()
    }
}

/// One record of `GET /agents/{id}/history`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryRecord {
    /// Execution id (the agent id for `created`).
    pub execution_id: Uuid,
    /// `created`, `execution_started`, `workflow_started`, `completed`, `failed`.
    pub status: String,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Per-agent history, newest last, at most 100 records.
#[derive(Default)]
pub struct HistoryLog {
    by_agent: DashMap<Uuid, VecDeque<HistoryRecord>>,
}

impl HistoryLog {
    /// Appends a record.
    pub fn push(&self, agent: Uuid, execution_id: Uuid, status: &str) {
        let mut q = self.by_agent.entry(agent).or_default();
        q.push_back(HistoryRecord {
            execution_id,
            status: status.to_string(),
            timestamp: Utc::now(),
        });
        while q.len() > 100 {
            q.pop_front();
        }
    }

    /// Newest first.
    pub fn newest_first(&self, agent: &Uuid) -> Vec<HistoryRecord> {
        self.by_agent
            .get(agent)
            .map(|q| q.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets an agent.
    pub fn remove(&self, agent: &Uuid) {
        self.by_agent.remove(agent);
    }
}

/// Idempotency keys of `POST /agents/{id}/execute`: (agent, key) → execution id, kept 24 h.
/// Concurrent requests with the same key wait for the first one: exactly one execution
/// starts; if starting fails, the next request with the key tries again.
#[derive(Default)]
pub struct Idempotency {
    map: DashMap<(Uuid, String), (Arc<tokio::sync::OnceCell<Uuid>>, Instant)>,
}

impl Idempotency {
    /// Keys kept at most (older and expired keys are dropped beyond it).
    pub const CAPACITY: usize = 100_000;
    /// How long a key is remembered.
    pub const TTL: Duration = Duration::from_secs(24 * 3600);

    /// The execution of `(agent, key)`: the one already started, or the one `start` starts.
    pub async fn get_or_start<F, Fut, E>(&self, agent: Uuid, key: &str, start: F) -> Result<Uuid, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Uuid, E>>,
    {
        if self.map.len() >= Self::CAPACITY {
            self.map.retain(|_, v| v.1.elapsed() < Self::TTL);
        }
        let cell = {
            let mut e = self
                .map
                .entry((agent, key.to_string()))
                .or_insert_with(|| (Arc::default(), Instant::now()));
            if e.1.elapsed() >= Self::TTL {
                *e = (Arc::default(), Instant::now());
            }
            e.0.clone()
        };
        cell.get_or_try_init(start).await.copied()
    }

    /// Forgets an agent's keys.
    pub fn remove_agent(&self, agent: Uuid) {
        self.map.retain(|k, _| k.0 != agent);
    }
}

/// The shared state of the API.
pub struct ApiState {
    /// The runtime engine (runtime, DSL, gateway, policy, audit, bus).
    pub engine: Arc<Engine>,
    /// The schedule engine.
    pub schedules: Schedules,
    /// Who may call.
    pub authority: Authority,
    /// Where API events (auth failures) go.
    pub sink: Arc<dyn EventSink>,
    /// Metrics registry.
    pub metrics: Arc<ApiMetrics>,
    /// Per-IP rate limit.
    pub rate_limit: IpRateLimit,
    /// Settings.
    pub settings: ApiSettings,
    /// External agents.
    pub external: ExternalAgents,
    /// History of External agents (runtime agents' history is the engine's).
    pub history: HistoryLog,
    /// Execution mode variant of agents created through the API.
    pub modes: DashMap<Uuid, &'static str>,
    /// Execute idempotency keys.
    pub idempotency: Idempotency,
    /// Recent errors per component.
    pub errors: RecentErrors,
    /// Start-up complete and the runtime accepts work.
    pub ready: AtomicBool,
    /// Process start.
    pub started: Instant,
    /// Data directory (disk usage figures).
    pub data_dir: PathBuf,
    /// CPU meter.
    pub cpu: CpuMeter,
}

impl ApiState {
    /// Whether `/health/ready` says 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.engine.runtime().is_accepting()
    }

    /// Marks start-up complete.
    pub fn set_ready(&self, yes: bool) {
        self.ready.store(yes, Ordering::Release);
    }
}
