//! Watching the policy directory (`notify`): every change to a `*.cedar` file reloads the
//! set after a short quiet period, so an editor's write-temp-then-rename lands as one reload.

use crate::engine::{PolicyEngine, ReloadCause};
use crate::error::PolicyError;
use notify::{Event, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Quiet period after the last file event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// A running watcher. Dropping it stops the watch and its thread.
pub(crate) struct WatchHandle {
    // Dropping the watcher drops its event callback, which closes the channel and ends the
    // reload thread.
    _watcher: notify::RecommendedWatcher,
}

pub(crate) fn start(engine: Weak<PolicyEngine>, dir: &Path) -> Result<WatchHandle, PolicyError> {
    let (tx, rx) = mpsc::channel::<notify::Result<Event>>();
    let err = |source| PolicyError::Watch {
        path: dir.to_path_buf(),
        source,
    };
    let mut watcher = notify::recommended_watcher(move |ev| {
        let _ = tx.send(ev);
    })
    .map_err(err)?;
    watcher.watch(dir, RecursiveMode::Recursive).map_err(err)?;
    std::thread::Builder::new()
        .name("symbi-policy-watch".into())
        .spawn(move || run(engine, rx))
        .map_err(|e| PolicyError::Io {
            path: "<thread>".into(),
            source: e,
        })?;
    Ok(WatchHandle { _watcher: watcher })
}

fn relevant(ev: &notify::Result<Event>) -> bool {
    match ev {
        // An overflow or watch error: reload to be safe.
        Err(_) => true,
        Ok(ev) => {
            if ev.kind.is_access() {
                return false;
            }
            // Directory events (a subdirectory added or removed) and policy files count.
            ev.paths.is_empty()
                || ev.paths.iter().any(|p| {
                    crate::load::is_policy_path(p) || p.is_dir() || p.extension().is_none()
                })
        }
    }
}

fn run(engine: Weak<PolicyEngine>, rx: mpsc::Receiver<notify::Result<Event>>) {
    while let Ok(ev) = rx.recv() {
        if !relevant(&ev) {
            continue;
        }
        // Debounce: wait until the directory has been quiet for DEBOUNCE.
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        match engine.reload_with(ReloadCause::Watch) {
            Ok(r) if r.changed => tracing::info!(
                generation = r.generation,
                policies = r.policies,
                "policy directory change applied"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "policy directory change rejected; the previous policy set stays active")
            }
        }
    }
}
