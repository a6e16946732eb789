//! `symbi up`: the runtime daemon.

use super::Globals;
use clap::Args;
use std::process::ExitCode;

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
        let data_dir = loaded.data_dir();
        std::fs::create_dir_all(&data_dir)?;
        tracing::info!(data_dir = %data_dir.display(), listen = %loaded.config.api.listen, "symbi ready");
        wait_for_shutdown().await;
        tracing::info!("shutdown requested; stopping");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
