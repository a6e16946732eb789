//! Sandbox orchestrator: command tools run in Tier1 (Docker, runtime runc) or Tier2
//! (Docker, runtime runsc = gVisor) containers chosen by risk assessment.
//!
//! * [`manifest`] — TOML command-tool manifests and the [`ToolRegistry`].
//! * [`template`] — the command template language (one element = one argv element, no
//!   shell, option-injection rule).
//! * [`risk`] — the risk score and tier selection (demands only raise the tier).
//! * [`limits`] — the agent's budget and the tool's limits become cgroup limits.
//! * [`images`] — locally built, content-addressed, verified images.
//! * [`sandbox`] — the [`Sandbox`] that runs a tool: hardened container, limits, timeout,
//!   output cap, fail closed when a tier is unavailable.
//! * [`doctor`] — does each tier really work on this host.
//! * [`bench`] — the `symbi bench sandbox` load test.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use symbi_sandbox::{RunRequest, Sandbox, SandboxConfig, ToolRegistry};
//! let sandbox = Sandbox::new(SandboxConfig::new("/var/lib/symbi"))?;
//! let tools = ToolRegistry::load(std::path::Path::new("tools"))?;
//! let wc = tools.get("word_count").expect("shipped example");
//! let outcome = sandbox
//!     .run_tool(wc, &serde_json::json!({"text": "one two three"}), &RunRequest::default())
//!     .await?;
//! println!("{} in {}", outcome.output.to_json(), outcome.selection.tier);
//! # Ok(()) }
//! ```
//!
//! See `docs/sandbox.md` for tiers, hardening, risk weights, manifest format and the
//! fail-closed rules.

pub mod bench;
pub mod doctor;
pub mod error;
pub mod images;
pub mod limits;
pub mod manifest;
pub mod risk;
pub mod sandbox;
pub mod template;

pub use error::{LimitKind, Result, SandboxError};
pub use images::{ImageRecord, ImageStore};
pub use limits::AppliedLimits;
pub use manifest::{
    ManifestError, ManifestErrors, OutputFormat, Rendered, ToolManifest, ToolRegistry,
};
pub use risk::{RiskAssessment, RiskInputs, TierDemands, TierSelection};
pub use sandbox::{
    ContainerSpec, ExitStatus, RawRun, RunRequest, Sandbox, SandboxConfig, ToolOutcome, ToolOutput,
};
