//! `[sandbox]`: container backends and command tools.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[sandbox]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSection {
    /// Docker Engine socket.
    pub docker_socket: String,
    /// Directory of command-tool manifests (`*.toml`); default `<data dir>/tools`.
    pub tools_dir: Option<PathBuf>,
    /// Concurrent sandboxed calls.
    pub max_concurrent: usize,
    /// Output cap per call in bytes.
    pub max_output_bytes: u64,
}

impl Default for SandboxSection {
    fn default() -> Self {
        Self {
            docker_socket: "/var/run/docker.sock".into(),
            tools_dir: None,
            max_concurrent: 20,
            max_output_bytes: 1 << 20,
        }
    }
}
