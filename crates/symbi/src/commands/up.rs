//! `symbi up`: the runtime daemon.
//!
//! Start-up order (each step logs `component ready` or `component not ready` with the fix):
//!
//! 1. `assemble()` — signed audit log, policy engine (hot reload on), bus, sandbox, command
//!    tools, runtime. These are required: when one cannot start, `up` exits 1 naming it
//!    (fail closed: nothing runs without audit or policy).
//! 2. Sandbox tiers are probed (`docker info`, registered runtimes). A missing Docker daemon
//!    or gVisor is *reported* (the actions that need the tier fail closed when called), it
//!    does not stop the daemon.
//! 3. Every `*.symbi` under the agents directories (`<data dir>/agents` and `[runtime]
//!    agents_dir`) is loaded; a file with errors is reported with its positioned
//!    diagnostics and its agents are registered as `Failed` (visible through the API).
//! 4. The HTTP API, the schedule engine and the webhook listener (`symbi_api::serve_api`).
//! 5. `symbi ready`.
//!
//! On SIGINT/SIGTERM: the API stops accepting requests (in-flight ones finish), the
//! schedule engine stops, running work drains within `[runtime] shutdown_grace`, and the
//! audit log is sealed with a final checkpoint (`Assembled::shutdown`). Exit 0.

use super::Globals;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_api::{ApiMetrics, MeteredSink, serve_api};
use symbi_runtime::engine::assembly::{AssemblyOptions, Extensions, assemble};
use symbi_runtime::engine::{Engine, EngineError};
use symbi_types::{EventSink, SandboxTier};

/// `symbi up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Listen address of the HTTP API (default 127.0.0.1:8080; `[api] listen`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
}

pub fn run(g: &Globals, a: UpArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(a.listen.clone())?;
    crate::logging::init(&loaded.config.log, "info");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(daemon(loaded));
    crate::logging::shutdown();
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn daemon(loaded: symbi_config::LoadedConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = Arc::new(loaded.config.clone());
    let data_dir = loaded.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    // Handlers are installed first, so a signal sent during start-up or right after the
    // readiness line is never lost.
    let stop = ShutdownSignal::install()?;

    // Every event the runtime records is counted for /metrics on its way to the audit log.
    let metrics = Arc::new(ApiMetrics::new());
    let m = metrics.clone();
    let ext = Extensions {
        sink_layer: Some(Box::new(
            move |inner: Arc<dyn EventSink>| -> Arc<dyn EventSink> {
                Arc::new(MeteredSink::new(inner, m))
            },
        )),
        ..Extensions::default()
    };
    let system = assemble(
        cfg.clone(),
        data_dir.clone(),
        AssemblyOptions {
            bus: true,
            watch_policies: true,
        },
        ext,
    )
    .await
    .context("symbi up: a required component could not start")?;
    match &system.audit {
        Some(_) => {
            tracing::info!(component = "audit", dir = %data_dir.join("audit").display(), "component ready")
        }
        None => tracing::warn!(
            component = "audit",
            "component disabled by configuration ([security] audit_enabled = false)"
        ),
    }
    tracing::info!(
        component = "policy",
        watch = cfg.policy.watch,
        "component ready"
    );
    if system.engine.bus().is_some() {
        tracing::info!(component = "bus", backend = ?cfg.bus.backend, "component ready");
    }
    tracing::info!(component = "tools", dir = %cfg.under_data_dir(cfg.sandbox.tools_dir.as_deref(), "tools").display(), "component ready");
    report_sandbox(&system.sandbox, cfg.security.default_sandbox_tier).await;
    let o = system.engine.runtime().options();
    tracing::info!(
        component = "runtime",
        shards = o.scheduler.shards,
        strategy = ?o.scheduler.strategy,
        admission = ?o.scheduler.admission,
        max_agents = o.max_agents,
        "component ready"
    );

    let engine = Arc::new(system.engine.clone());
    let programs = load_agents(&engine, &agent_dirs(&cfg)).await;

    let api = match serve_api(engine.clone(), &cfg, &data_dir, metrics, &programs).await {
        Ok(api) => api,
        Err(e) => {
            // The API is how `up` is used: without it the daemon is of no use. Stop what
            // was started (the audit log is sealed) and report.
            system.shutdown(Duration::from_secs(5)).await;
            return Err(match e {
                // Configuration problems are usage errors (exit code 2).
                symbi_api::ServeError::NoTokenOnPublicAddress(_)
                | symbi_api::ServeError::Config(_)
                | symbi_api::ServeError::Auth(_) => crate::exit::usage(format!("symbi up: {e}")),
                other => {
                    anyhow::Error::new(other).context("symbi up: the HTTP API could not start")
                }
            });
        }
    };
    tracing::info!(component = "api", listen = %api.addr, openapi = "/api-docs/openapi.json", "component ready");
    tracing::info!(
        component = "schedules",
        jobs = api.state.schedules.len(),
        "component ready"
    );
    match api.webhook_addr {
        Some(w) => tracing::info!(component = "webhooks", listen = %w, "component ready"),
        None => tracing::info!(
            component = "webhooks",
            "no webhooks defined; listener not started"
        ),
    }
    if let Some(f) = &api.generated_token_file {
        tracing::info!(token_file = %f.display(), "API token: send `Authorization: Bearer $(cat {})`", f.display());
    }
    tracing::info!(
        data_dir = %data_dir.display(),
        listen = %api.addr,
        agents = engine.runtime().agent_count(),
        startup_ms = started.elapsed().as_millis() as u64,
        "symbi ready"
    );

    stop.wait().await;
    let grace = cfg.runtime.shutdown_grace.0;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutdown requested; draining running work"
    );
    api.shutdown().await;
    let report = system.shutdown(grace).await;
    tracing::info!(
        drained = report.drained,
        queued_cancelled = report.queued_cancelled,
        running_cancelled = report.running_cancelled,
        agents_terminated = report.agents_terminated,
        elapsed_ms = report.elapsed_ms,
        audit_sealed = system.audit.is_some(),
        "symbi stopped"
    );
    Ok(())
}

/// The agents directories: `<data dir>/agents` and `[runtime] agents_dir` (relative to the
/// data directory), each once.
pub fn agent_dirs(cfg: &symbi_config::Config) -> Vec<PathBuf> {
    let mut dirs = vec![cfg.data_dir().join("agents")];
    if let Some(d) = &cfg.runtime.agents_dir {
        let d = cfg.under_data_dir(Some(d.as_path()), "agents");
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// The `*.symbi` files of `dir`, sorted (non-recursive; a missing directory has none).
fn symbi_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let p = entry?.path();
        if p.extension().is_some_and(|x| x == "symbi") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every program of `dirs` into the engine. Returns the programs that loaded (their
/// schedules and webhooks are served); a program with errors is reported with its
/// diagnostics and its agents are registered as `Failed`.
pub(crate) async fn load_agents(
    engine: &Engine,
    dirs: &[PathBuf],
) -> Vec<(String, Arc<symbi_dsl::LoadedProgram>)> {
    let mut programs = Vec::new();
    let (mut agents, mut failed_files) = (0usize, 0usize);
    for dir in dirs {
        let files = match symbi_files(dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(component = "agents", dir = %dir.display(), error = %e, "cannot read the agents directory");
                failed_files += 1;
                continue;
            }
        };
        for path in files {
            let file = path.display().to_string();
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(component = "agents", file, error = %e, "cannot read the program");
                    failed_files += 1;
                    continue;
                }
            };
            match engine.load_source(&file, &source).await {
                Ok(loaded) => {
                    agents += loaded.len();
                    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
                    tracing::info!(component = "agents", file, agents = ?names, "program loaded");
                    match engine.check_source(&file, &source) {
                        Ok(p) => programs.push((file, p)),
                        Err(e) => {
                            tracing::error!(component = "agents", file, error = %e, "program could not be re-read")
                        }
                    }
                }
                Err(EngineError::Program {
                    rendered,
                    failed_agents,
                    ..
                }) => {
                    failed_files += 1;
                    tracing::error!(
                        component = "agents",
                        file,
                        failed_agents = failed_agents.len(),
                        diagnostics = %rendered.trim_end(),
                        "program has errors; its agents are registered as Failed"
                    );
                }
                Err(e) => {
                    failed_files += 1;
                    tracing::error!(component = "agents", file, error = %e, "program could not be loaded");
                }
            }
        }
    }
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if failed_files == 0 {
        tracing::info!(component = "agents", dirs = ?dirs, programs = programs.len(), agents, "component ready");
    } else {
        tracing::warn!(
            component = "agents",
            dirs = ?dirs,
            programs = programs.len(),
            agents,
            failed_files,
            "component degraded: some programs did not load (see the errors above)"
        );
    }
    programs
}

/// Probes the container tiers (`docker info` and the registered runtimes; no container is
/// started). An unavailable tier is reported with its fix; actions that need it fail
/// closed when called.
async fn report_sandbox(sandbox: &symbi_sandbox::Sandbox, default: SandboxTier) {
    for tier in [SandboxTier::Tier1, SandboxTier::Tier2] {
        let r = tokio::time::timeout(Duration::from_secs(10), sandbox.ensure_tier(tier)).await;
        let component = format!("sandbox {tier}");
        let needed = if tier == default {
            " (the configured default tier: sandboxed actions fail closed)"
        } else {
            ""
        };
        match r {
            Ok(Ok(())) => tracing::info!(component, "component ready"),
            Ok(Err(symbi_sandbox::SandboxError::Unavailable { reason, fix, .. })) => {
                tracing::warn!(component, reason, fix, "component not ready{needed}")
            }
            Ok(Err(e)) => tracing::warn!(component, reason = %e, "component not ready{needed}"),
            Err(_) => tracing::warn!(
                component,
                reason = "the Docker daemon did not answer within 10 s",
                fix = "check that dockerd is running (sudo ./scripts/setup-host.sh)",
                "component not ready{needed}"
            ),
        }
    }
    tracing::info!(
        component = "sandbox Tier3",
        reason = "Firecracker micro-VMs are not built into this symbi",
        "component not available"
    );
}

/// SIGINT and SIGTERM, caught from the moment [`ShutdownSignal::install`] returns.
pub struct ShutdownSignal {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignal {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
