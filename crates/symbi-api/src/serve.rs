//! Starting the API: what `symbi up` calls ([`serve_api`]).
//!
//! ```text
//! let metrics = Arc::new(ApiMetrics::new());
//! let sink = Arc::new(MeteredSink::new(audit_sink, metrics.clone()));   // before the engine
//! let engine = Engine::new(..., sink, ...);
//! let api = serve_api(engine, &config, &data_dir, metrics, programs).await?;
//! ... wait for SIGTERM ...
//! api.shutdown().await;
//! ```

use crate::auth::{AuthConfigError, Authority};
use crate::backend::EngineInvoker;
use crate::metrics::{ApiMetrics, RuntimeCollector};
use crate::schedules::{ScheduleOptions, Schedules};
use crate::server::IpRateLimit;
use crate::state::{ApiSettings, ApiState, HistoryLog, Idempotency, RecentErrors};
use crate::sysinfo::CpuMeter;
use crate::webhook_server::Webhooks;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use symbi_runtime::engine::Engine;
use tokio_util::sync::CancellationToken;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Token, token file or key store problem.
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    /// Non-loopback listener without a configured credential.
    #[error(
        "refusing to listen on {0} without an API token: set SYMBI_API_TOKEN, `[api] token_file` or `[api] key_store` \
         (only loopback addresses may run with the generated token)"
    )]
    NoTokenOnPublicAddress(SocketAddr),
    /// Bad configuration value.
    #[error("{0}")]
    Config(String),
    /// The schedule store could not be opened.
    #[error(transparent)]
    Schedules(#[from] crate::schedules::ScheduleError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Error.
        source: std::io::Error,
    },
    /// Generated token file problem.
    #[error("API token file {path}: {source}")]
    TokenFile {
        /// File.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
}

/// A running API (and webhook listener).
pub struct ApiHandle {
    /// Address of the API listener.
    pub addr: SocketAddr,
    /// Address of the webhook listener, when webhooks are exposed.
    pub webhook_addr: Option<SocketAddr>,
    /// The generated token file, when no token was configured (loopback only).
    pub generated_token_file: Option<PathBuf>,
    /// Shared state (tests and `symbi bench api` read it).
    pub state: Arc<ApiState>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ApiHandle {
    /// Stops accepting requests (in-flight ones finish), stops the schedule engine, and waits
    /// for the listeners to close.
    pub async fn shutdown(self) {
        self.state.set_ready(false);
        self.state.schedules.shutdown();
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Reads or creates `<data dir>/api-token` (0600, 32 random bytes hex).
pub fn generated_token(data_dir: &Path) -> Result<(PathBuf, String), ServeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("api-token");
    let err = |source| ServeError::TokenFile {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok((path.clone(), t.trim().to_string())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let tmp = data_dir.join(".api-token.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(token.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok((path, token))
}

/// Builds the authority from `[api]`: a configured token (env / file / `token_file`) or key
/// store; with none, on a loopback address, the generated token file; on any other
/// address, an error.
pub fn authority(
    cfg: &symbi_config::Config,
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<(Authority, Option<PathBuf>), ServeError> {
    let a = Authority::new(
        cfg.api.token.as_deref(),
        cfg.api.token_file.as_deref(),
        cfg.api.key_store.as_deref(),
    )?;
    if a.is_configured() {
        return Ok((a, None));
    }
    if !listen.ip().is_loopback() {
        return Err(ServeError::NoTokenOnPublicAddress(listen));
    }
    let (path, token) = generated_token(data_dir)?;
    Ok((Authority::new(Some(&token), None, None)?, Some(path)))
}

/// Starts the API on `[api] listen`, the webhook listener on `[api] webhook_listen` (when
/// the programs define webhooks), and the schedule engine (the programs' `schedule` items
/// plus the jobs stored under `<data dir>/schedules`). `programs` are the loaded program
/// files `(file name, program)` whose agents the engine already registered.
pub async fn serve_api(
    engine: Arc<Engine>,
    cfg: &symbi_config::Config,
    data_dir: &Path,
    metrics: Arc<ApiMetrics>,
    programs: &[(String, Arc<symbi_dsl::LoadedProgram>)],
) -> Result<ApiHandle, ServeError> {
    let listen: SocketAddr = cfg.api.listen.parse().map_err(|_| {
        ServeError::Config(format!("[api] listen `{}` is not IP:PORT", cfg.api.listen))
    })?;
    let (authority, generated) = authority(cfg, data_dir, listen)?;
    if let Some(p) = &generated {
        tracing::warn!(file = %p.display(), "no API token configured: using the generated token in this file (loopback only)");
    }
    let rate_limit = IpRateLimit::new(
        cfg.api.rate_limit_per_minute,
        cfg.api.rate_limit_burst,
        &cfg.api.trusted_proxies,
    )
    .map_err(|e| ServeError::Config(format!("[api] trusted_proxies: {e}")))?;
    let sink = engine.sink().clone();
    let invoker: Arc<dyn crate::invoke::AgentInvoker> =
        Arc::new(EngineInvoker::new(engine.clone()));
    let schedules = Schedules::open(
        &data_dir.join("schedules"),
        invoker.clone(),
        sink.clone(),
        ScheduleOptions {
            max_concurrent: cfg.api.schedule_max_concurrent,
            dead_letter_after: cfg.api.schedule_dead_letter_after,
        },
    )?;
    for (file, p) in programs {
        schedules.register_program(file, p).await?;
    }
    metrics.register_collector(Box::new(RuntimeCollector::new(
        engine.runtime().clone(),
        Some(schedules.clone()),
    )));
    let state = Arc::new(ApiState {
        engine: engine.clone(),
        schedules: schedules.clone(),
        authority,
        sink: sink.clone(),
        metrics: metrics.clone(),
        rate_limit,
        settings: ApiSettings::from_config(cfg),
        external: Default::default(),
        history: HistoryLog::default(),
        modes: Default::default(),
        idempotency: Idempotency::default(),
        errors: RecentErrors::default(),
        ready: AtomicBool::new(false),
        started: Instant::now(),
        data_dir: data_dir.to_path_buf(),
        cpu: CpuMeter::new(),
    });
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let app = crate::server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let s = stop.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(s.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "API listener failed");
        }
    }));

    let mut webhook_addr = None;
    let mut hooks = Webhooks::new(invoker, sink, metrics.clone());
    let vault = symbi_runtime::gateway::local::VaultExecutor::new(data_dir.join("vault"));
    let resolve = |r: &str| vault.read(r).map_err(|e| e.to_string());
    for (_, p) in programs {
        hooks.add_program(p, &resolve);
    }
    if !hooks.is_empty() {
        if cfg.api.webhook_listen.is_empty() {
            tracing::warn!(
                webhooks = hooks.len(),
                "webhooks are defined but `[api] webhook_listen` is empty; not exposed"
            );
        } else {
            let waddr: SocketAddr = cfg.api.webhook_listen.parse().map_err(|_| {
                ServeError::Config(format!(
                    "[api] webhook_listen `{}` is not IP:PORT",
                    cfg.api.webhook_listen
                ))
            })?;
            let l = tokio::net::TcpListener::bind(waddr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: waddr,
                    source,
                })?;
            webhook_addr = Some(l.local_addr().map_err(|source| ServeError::Bind {
                addr: waddr,
                source,
            })?);
            let app = hooks
                .router()
                .into_make_service_with_connect_info::<SocketAddr>();
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, app)
                    .with_graceful_shutdown(s.cancelled_owned())
                    .await
                {
                    tracing::error!(error = %e, "webhook listener failed");
                }
            }));
            tracing::info!(listen = %webhook_addr.unwrap(), "webhook listener ready");
        }
    }

    // Idle rate-limit buckets are dropped once a minute.
    let st = state.clone();
    let s = stop.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => st.rate_limit.sweep(),
                _ = s.cancelled() => return,
            }
        }
    }));

    schedules.start().await;
    state.set_ready(true);
    tracing::info!(listen = %addr, openapi = "/api-docs/openapi.json", "API ready");
    Ok(ApiHandle {
        addr,
        webhook_addr,
        generated_token_file: generated,
        state,
        stop,
        tasks,
    })
}
