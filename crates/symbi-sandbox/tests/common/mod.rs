//! Shared set-up of the behavioural suites: a real Docker daemon with runc and runsc,
//! images built by the crate itself. `./scripts/test.sh` starts Docker; when it is not
//! running the tests fail with a message saying so (they never pass silently).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbi_sandbox::{RunRequest, Sandbox, SandboxConfig, ToolManifest, ToolRegistry};
use symbi_types::SandboxTier;
use tokio::sync::OnceCell;

/// A data directory shared by the tests of one process (images are recorded there).
pub fn data_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("symbi-sandbox-test")
            .tempdir()
            .expect("temp dir")
    })
    .path()
}

/// Config with no floor, so the risk assessment and demands decide.
pub fn config() -> SandboxConfig {
    let mut c = SandboxConfig::new(data_dir());
    c.default_floor = None;
    c
}

async fn require_docker(s: &Sandbox) {
    let ping = match s.docker() {
        Ok(d) => d.ping().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = ping {
        panic!(
            "Docker is not running ({e}). These tests need the real daemon with the runc and runsc runtimes: \
             run ./scripts/test.sh, or `sudo ./scripts/setup-host.sh` first"
        );
    }
}

static IMAGES: OnceCell<()> = OnceCell::const_new();

/// Builds the images once per process.
pub async fn ensure_images(s: &Sandbox, names: &[&str]) {
    IMAGES
        .get_or_init(|| async {
            require_docker(s).await;
            s.images()
                .build(&s.docker().unwrap(), "busybox")
                .await
                .expect("building the busybox image");
        })
        .await;
    if names.contains(&"debian") {
        static DEBIAN: OnceCell<()> = OnceCell::const_new();
        DEBIAN
            .get_or_init(|| async {
                s.images()
                    .build(&s.docker().unwrap(), "debian")
                    .await
                    .expect("building the debian image (debootstrap)");
            })
            .await;
    }
}

/// A ready sandbox (Docker checked, busybox built) with `max_concurrent` slots.
pub async fn sandbox_with(config: SandboxConfig) -> Arc<Sandbox> {
    let s = Arc::new(Sandbox::new(config).expect("sandbox"));
    ensure_images(&s, &["busybox"]).await;
    s
}

pub async fn sandbox() -> Arc<Sandbox> {
    sandbox_with(config()).await
}

/// The repository's example tools.
pub fn repo_tools() -> ToolRegistry {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools");
    ToolRegistry::load(&dir).expect("the example tools load")
}

/// A manifest from text (written to a temp file so positions are real).
pub fn manifest(text: &str) -> ToolManifest {
    ToolManifest::parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// A tool that runs an agent-supplied busybox shell script: the "untrusted code" of the
/// escape tests.
pub fn shell_tool(timeout: &str, memory: &str, pids: u32, output: &str) -> ToolManifest {
    manifest(&format!(
        r#"name = "sh"
description = "runs untrusted shell code"
category = "execute_code"
image = "busybox"
command = ["sh", "-c", "{{{{script}}}}"]
output = "text"
[input]
type = "object"
required = ["script"]
properties.script = {{ type = "string" }}
[limits]
timeout = "{timeout}"
memory = "{memory}"
pids = {pids}
output = "{output}"
cpus = 1.0
"#
    ))
}

/// A request pinned to `tier` (the shell tool is execute_code, so Tier2 by risk; Tier1
/// tests use a config whose floor is none and a manifest the risk puts in Tier1 — see
/// `run_in`).
pub fn request(tier: SandboxTier) -> RunRequest {
    RunRequest {
        agent_min_tier: Some(tier),
        ..RunRequest::default()
    }
}

/// Runs the shell tool in exactly `tier`: for Tier1 the tool's code trust is overridden
/// to trusted so that the risk assessment does not raise it.
pub async fn run_in(
    s: &Sandbox,
    tier: SandboxTier,
    tool: &ToolManifest,
    script: &str,
) -> symbi_sandbox::Result<symbi_sandbox::ToolOutcome> {
    let mut t = tool.clone();
    if tier == SandboxTier::Tier1 {
        t.risk.code_trust = symbi_sandbox::risk::CodeTrust::Trusted;
    }
    let out = s
        .run_tool(&t, &serde_json::json!({ "script": script }), &request(tier))
        .await;
    if let Ok(o) = &out {
        assert_eq!(o.selection.tier, tier, "ran in the wrong tier");
    }
    out
}

/// Containers of this sandbox instance still present (must be none after each call).
pub async fn leftover_containers(s: &Sandbox) -> usize {
    use bollard::query_parameters::ListContainersOptions;
    let mut filters = std::collections::HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!(
            "{}={}",
            symbi_sandbox::sandbox::LABEL_SANDBOX,
            s.instance_id()
        )],
    );
    let list = s
        .docker()
        .unwrap()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .expect("list containers");
    list.len()
}
