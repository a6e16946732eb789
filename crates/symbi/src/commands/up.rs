//! `symbi up`: the runtime daemon.

use super::Globals;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use symbi_runtime::Runtime;
use symbi_types::event::NullSink;
use symbi_types::{EventSink, MemoryEventLog};

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
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let cfg = &loaded.config;
        let data_dir = loaded.data_dir();
        std::fs::create_dir_all(&data_dir)?;
        // Until the audit log is wired in, events go to an in-memory log (or nowhere when
        // audit is disabled by configuration).
        let sink: Arc<dyn EventSink> =
            if cfg.security.audit_enabled { Arc::new(MemoryEventLog::default()) } else { Arc::new(NullSink) };
        let runtime = Runtime::new(cfg, sink)?;
        let o = runtime.options();
        tracing::info!(
            component = "runtime",
            shards = o.scheduler.shards,
            strategy = ?o.scheduler.strategy,
            admission = ?o.scheduler.admission,
            max_agents = o.max_agents,
            "component ready"
        );
        // Handlers are installed before readiness is announced, so a signal sent right
        // after the readiness line is never lost.
        let stop = ShutdownSignal::install()?;
        tracing::info!(data_dir = %data_dir.display(), listen = %cfg.api.listen, "symbi ready");
        stop.wait().await;
        let grace = cfg.runtime.shutdown_grace.0;
        tracing::info!(grace_ms = grace.as_millis() as u64, "shutdown requested; draining running work");
        let report = runtime.shutdown(grace).await;
        tracing::info!(
            drained = report.drained,
            queued_cancelled = report.queued_cancelled,
            running_cancelled = report.running_cancelled,
            agents_terminated = report.agents_terminated,
            elapsed_ms = report.elapsed_ms,
            "symbi stopped"
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
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
        Ok(ShutdownSignal { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
