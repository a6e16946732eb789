//! The orchestrator: picks the tier, checks that it is really available, and runs a
//! hardened container through the Docker Engine API (bollard).

use crate::error::{LimitKind, Result, SandboxError};
use crate::images::{ImageRecord, ImageStore};
use crate::limits::{self, AppliedLimits, CPU_PERIOD_US};
use crate::manifest::{OutputFormat, ToolManifest};
use crate::risk::{self, DataSensitivity, NetworkAccess, RiskInputs, TierDemands, TierSelection};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits, ThrottleDevice,
};
use bollard::query_parameters as qp;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_types::{Condition, ResourceBudget, SandboxTier};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

/// The label every sandbox container carries (value: the sandbox instance id).
pub const LABEL_SANDBOX: &str = "org.symbi.sandbox";
/// The label with the tool name.
pub const LABEL_TOOL: &str = "org.symbi.tool";
/// The label with the tier.
pub const LABEL_TIER: &str = "org.symbi.tier";

/// The Docker API version spoken: 1.41 is Docker 20.10's; newer daemons accept it too.
pub const DOCKER_API_VERSION: bollard::ClientVersion = bollard::ClientVersion {
    major_version: 1,
    minor_version: 41,
};

const FIX_DOCKER: &str = "start Docker: `sudo ./scripts/setup-host.sh` (installs docker.io and starts dockerd with symbi's daemon.json)";
const FIX_RUNSC: &str = "Tier2 requires gVisor: run `sudo ./scripts/setup-host.sh` (runs `apt-get install runsc` and registers runsc in /etc/docker/daemon.json with --network=none --platform=ptrace --oci-seccomp)";
const FIX_IMAGES: &str =
    "build the sandbox images: `symbi tools build-images` (or ./scripts/build-images.sh)";

/// Configuration of a [`Sandbox`].
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Docker Engine socket (`[sandbox] docker_socket`).
    pub docker_socket: String,
    /// The data directory; images are recorded under `<data_dir>/images`.
    pub data_dir: PathBuf,
    /// Concurrent sandboxed calls (`[sandbox] max_concurrent`).
    pub max_concurrent: usize,
    /// Output cap per stream (`[sandbox] max_output_bytes`).
    pub max_output_bytes: u64,
    /// Floor for every call (`[security] default_sandbox_tier`); `None` lets the risk
    /// assessment decide alone.
    pub default_floor: Option<SandboxTier>,
    /// Docker runtime name for Tier1.
    pub tier1_runtime: String,
    /// Docker runtime name for Tier2; it must be gVisor (checked).
    pub tier2_runtime: String,
    /// Parent cgroup of every sandbox container (each container gets its own leaf under it).
    pub cgroup_parent: String,
}

impl SandboxConfig {
    /// Defaults for `data_dir`: `/var/run/docker.sock`, 20 concurrent calls, 1 MiB output,
    /// floor Tier2 (as `[security] default_sandbox_tier = "gvisor"`), runtimes `runc` and
    /// `runsc`, cgroup parent `/symbi`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            docker_socket: "/var/run/docker.sock".into(),
            data_dir: data_dir.into(),
            max_concurrent: 20,
            max_output_bytes: 1 << 20,
            default_floor: Some(SandboxTier::Tier2),
            tier1_runtime: "runc".into(),
            tier2_runtime: "runsc".into(),
            cgroup_parent: "/symbi".into(),
        }
    }

    /// From the loaded configuration: `[sandbox]` and `[security] default_sandbox_tier`.
    pub fn from_config(config: &symbi_config::Config, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            docker_socket: config.sandbox.docker_socket.clone(),
            max_concurrent: config.sandbox.max_concurrent.max(1),
            max_output_bytes: config.sandbox.max_output_bytes.max(1),
            default_floor: Some(config.security.default_sandbox_tier),
            ..Self::new(data_dir)
        }
    }
}

/// What the caller (the action gateway) knows about one call.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// The agent's `with sandbox = …` for the running block (a minimum).
    pub agent_min_tier: Option<SandboxTier>,
    /// The policy decision's conditions; every `MinSandboxTier` raises the tier.
    pub policy_conditions: Vec<Condition>,
    /// The agent's resource budget (caps the tool's limits). `ResourceBudget::ZERO` fields
    /// mean "no cap from the budget".
    pub budget: Option<ResourceBudget>,
    /// Whether the policy granted network access for this call (see docs/sandbox.md: on a
    /// host without a bridge it still means a private loopback only).
    pub network_granted: bool,
    /// Sensitivity of the data involved (from the agent's `privacy`); default internal.
    pub data_sensitivity: Option<DataSensitivity>,
    /// Time left in the calling block; caps the tool's timeout.
    pub deadline: Option<Duration>,
    /// Extra container labels (`org.symbi.agent`, `org.symbi.execution`, …).
    pub labels: BTreeMap<String, String>,
}

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitStatus {
    /// It exited with this code (128 + n for signal n).
    Exited {
        /// Exit code.
        code: i64,
    },
    /// It was killed because its output passed the cap.
    KilledAtOutputCap,
}

/// A tool's output.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolOutput {
    /// `output = "text"`.
    Text(String),
    /// `output = "json"`.
    Json(Value),
}

impl ToolOutput {
    /// As a JSON value (text becomes a string).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Text(t) => Value::String(t.clone()),
            Self::Json(v) => v.clone(),
        }
    }
}

/// The result of a successful sandboxed call, with everything the audit record needs.
#[derive(Clone, Debug, Serialize)]
pub struct ToolOutcome {
    /// Tool name.
    pub tool: String,
    /// The output.
    pub output: ToolOutput,
    /// How the process ended.
    pub exit_status: ExitStatus,
    /// The tier it ran in, and why.
    pub selection: TierSelection,
    /// The limits applied.
    pub limits: AppliedLimits,
    /// The network the container had: always `"none"` (private loopback only) on hosts
    /// without a bridge; see docs/sandbox.md.
    pub network: &'static str,
    /// Start-to-result time (container create to exit), excluding the wait for a slot.
    #[serde(with = "dur_ms")]
    pub duration: Duration,
    /// Whether stdout passed the cap (and was cut there).
    pub stdout_truncated: bool,
    /// Whether stderr passed the cap.
    pub stderr_truncated: bool,
    /// Stderr (lossy UTF-8, capped).
    pub stderr: String,
    /// SHA-256 (hex) of the raw stdout bytes received.
    pub output_digest: String,
    /// The image id the container ran.
    pub image_id: String,
    /// Container name.
    pub container: String,
}

mod dur_ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

/// A fully decided container run (backend input).
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Tier (selects the runtime).
    pub tier: SandboxTier,
    /// Image id (`sha256:…`), already verified.
    pub image_id: String,
    /// argv.
    pub argv: Vec<String>,
    /// Bytes for stdin, if any.
    pub stdin: Option<Vec<u8>>,
    /// Limits.
    pub limits: AppliedLimits,
    /// Labels.
    pub labels: HashMap<String, String>,
}

/// What came out of a container run, before interpretation.
#[derive(Clone, Debug)]
pub struct RawRun {
    /// Container name.
    pub container: String,
    /// Exit status (`None` when killed at the timeout).
    pub exit: Option<ExitStatus>,
    /// Killed by the memory limit.
    pub oom_killed: bool,
    /// The pids cgroup refused a fork at least once.
    pub pids_limit_hit: bool,
    /// Stdout bytes (≤ cap).
    pub stdout: Vec<u8>,
    /// Stderr bytes (≤ cap).
    pub stderr: Vec<u8>,
    /// Stdout passed the cap.
    pub stdout_truncated: bool,
    /// Stderr passed the cap.
    pub stderr_truncated: bool,
    /// Create to exit.
    pub duration: Duration,
    /// Ran past the timeout and was killed.
    pub timed_out: bool,
}

#[derive(Default)]
struct TierState {
    /// Tier → when it was last found unavailable and why (re-checked after a while), or ok.
    checked: HashMap<SandboxTier, std::result::Result<(), (Instant, SandboxError)>>,
    /// The block device under Docker's data root, for block-I/O limits.
    blkio_device: Option<Option<String>>,
}

/// The sandbox orchestrator. Cheap to share (`Arc`), safe to call concurrently.
pub struct Sandbox {
    /// Connected on first use, so a daemon (or socket) that appears later is picked up.
    docker: std::sync::Mutex<Option<Docker>>,
    config: SandboxConfig,
    images: ImageStore,
    slots: Arc<Semaphore>,
    verified: Mutex<HashMap<String, ImageRecord>>,
    tiers: Mutex<TierState>,
    instance: String,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.config)
            .field("instance", &self.instance)
            .finish()
    }
}

fn engine_unavailable(tier: SandboxTier, e: &bollard::errors::Error) -> SandboxError {
    SandboxError::unavailable(
        tier,
        format!("the Docker daemon does not answer: {e}"),
        FIX_DOCKER,
    )
}

/// Whether a bollard error means the daemon could not be reached at all.
fn is_connection_error(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        e,
        E::HyperResponseError { .. }
            | E::IOError { .. }
            | E::SocketNotFoundError(_)
            | E::RequestTimeoutError
    ) || e.to_string().contains("connect")
}

impl Sandbox {
    /// Creates the orchestrator. Does not contact the daemon: an unreachable daemon makes
    /// each call fail closed with `SandboxUnavailable` (and `doctor` says so), it does not
    /// stop the runtime from starting.
    pub fn new(config: SandboxConfig) -> Result<Sandbox> {
        if config.docker_socket.trim().is_empty() {
            return Err(SandboxError::Engine(
                "[sandbox] docker_socket is empty".into(),
            ));
        }
        Ok(Sandbox {
            docker: std::sync::Mutex::new(None),
            images: ImageStore::new(&config.data_dir),
            slots: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            verified: Mutex::new(HashMap::new()),
            tiers: Mutex::new(TierState::default()),
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The Docker client (for image building and diagnostics); `SandboxUnavailable` when
    /// there is no socket.
    pub fn docker(&self) -> Result<Docker> {
        self.client(SandboxTier::Tier1)
    }

    fn client(&self, tier: SandboxTier) -> Result<Docker> {
        let mut slot = self.docker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let socket = self.config.docker_socket.trim_start_matches("unix://");
        let d = Docker::connect_with_unix(socket, 120, &DOCKER_API_VERSION).map_err(|e| {
            SandboxError::unavailable(
                tier,
                format!("cannot connect to Docker at {socket}: {e}"),
                FIX_DOCKER,
            )
        })?;
        *slot = Some(d.clone());
        Ok(d)
    }

    /// This instance's id: the value of the `org.symbi.sandbox` label of its containers.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// Risk inputs of a call of `manifest` under `req`.
    pub fn risk_inputs(manifest: &ToolManifest, req: &RunRequest) -> RiskInputs {
        RiskInputs {
            data_sensitivity: req
                .data_sensitivity
                .max(manifest.risk.data_sensitivity)
                .unwrap_or_default(),
            code_trust: manifest.risk.code_trust,
            network: if manifest.network {
                NetworkAccess::Egress
            } else {
                NetworkAccess::None
            },
            filesystem: manifest.risk.filesystem,
            external_integrations: manifest.risk.external_integrations,
        }
    }

    /// Decides the tier of a call (no I/O).
    pub fn select_tier(&self, manifest: &ToolManifest, req: &RunRequest) -> TierSelection {
        let assessment = Self::risk_inputs(manifest, req).assess();
        let demands = TierDemands {
            default_floor: self.config.default_floor,
            manifest_min: manifest.min_tier,
            agent_min: req.agent_min_tier,
            policy_min: Vec::new(),
        }
        .with_conditions(&req.policy_conditions);
        risk::select_tier(&assessment, &demands)
    }

    fn runtime_for(&self, tier: SandboxTier) -> Result<&str> {
        match tier {
            SandboxTier::Tier1 => Ok(&self.config.tier1_runtime),
            SandboxTier::Tier2 => Ok(&self.config.tier2_runtime),
            SandboxTier::Tier3 => Err(SandboxError::unavailable(
                tier,
                "Tier3 (Firecracker micro-VMs) is not built into this symbi",
                "demand Tier2 (gVisor) instead in `with sandbox` or the policy; symbi never runs a Tier3 demand in a weaker tier",
            )),
            SandboxTier::None => Err(SandboxError::unavailable(
                tier,
                "tier `none` would run untrusted work on the host",
                "demand Tier1 or Tier2",
            )),
        }
    }

    /// Checks that `tier` can run here: the daemon answers, the tier's runtime is
    /// registered, and for Tier2 the runtime is gVisor with networking off and OCI seccomp
    /// on. Successes are remembered; failures are re-checked after five seconds.
    pub async fn ensure_tier(&self, tier: SandboxTier) -> Result<()> {
        let runtime = self.runtime_for(tier)?.to_string();
        {
            let st = self.tiers.lock().await;
            match st.checked.get(&tier) {
                Some(Ok(())) => return Ok(()),
                Some(Err((at, e))) if at.elapsed() < Duration::from_secs(5) => {
                    return Err(match e {
                        SandboxError::Unavailable { tier, reason, fix } => {
                            SandboxError::Unavailable {
                                tier: *tier,
                                reason: reason.clone(),
                                fix: fix.clone(),
                            }
                        }
                        other => SandboxError::Engine(other.to_string()),
                    });
                }
                _ => {}
            }
        }
        let result = self.check_tier(tier, &runtime).await;
        let mut st = self.tiers.lock().await;
        match &result {
            Ok(()) => {
                st.checked.insert(tier, Ok(()));
            }
            Err(SandboxError::Unavailable {
                tier: t,
                reason,
                fix,
            }) => {
                st.checked.insert(
                    tier,
                    Err((
                        Instant::now(),
                        SandboxError::Unavailable {
                            tier: *t,
                            reason: reason.clone(),
                            fix: fix.clone(),
                        },
                    )),
                );
            }
            Err(_) => {}
        }
        result
    }

    async fn check_tier(&self, tier: SandboxTier, runtime: &str) -> Result<()> {
        let info = self
            .client(tier)?
            .info()
            .await
            .map_err(|e| engine_unavailable(tier, &e))?;
        {
            let mut st = self.tiers.lock().await;
            if st.blkio_device.is_none() {
                st.blkio_device = Some(info.docker_root_dir.as_deref().and_then(block_device_of));
            }
        }
        let runtimes = info.runtimes.unwrap_or_default();
        let Some(rt) = runtimes.get(runtime) else {
            let known: Vec<_> = runtimes.keys().cloned().collect();
            let fix = if tier == SandboxTier::Tier2 {
                FIX_RUNSC
            } else {
                FIX_DOCKER
            };
            return Err(SandboxError::unavailable(
                tier,
                format!(
                    "the Docker daemon has no runtime `{runtime}` (registered: {})",
                    known.join(", ")
                ),
                fix,
            ));
        };
        if tier == SandboxTier::Tier2 {
            let path = rt.path.clone().unwrap_or_default();
            let args = rt.runtime_args.clone().unwrap_or_default();
            let name = std::path::Path::new(&path)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            if !name.starts_with("runsc") {
                return Err(SandboxError::unavailable(
                    tier,
                    format!("runtime `{runtime}` runs `{path}`, which is not gVisor's runsc"),
                    FIX_RUNSC,
                ));
            }
            for required in ["--network=none", "--oci-seccomp"] {
                if !args.iter().any(|a| a == required) {
                    return Err(SandboxError::unavailable(
                        tier,
                        format!(
                            "runtime `{runtime}` is registered without `{required}` (args: {args:?})"
                        ),
                        FIX_RUNSC,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves image `name` to its verified record (verified once per instance; a failed
    /// container creation clears the cache so the next call verifies again).
    pub async fn image(&self, name: &str, tier: SandboxTier) -> Result<ImageRecord> {
        if let Some(r) = self.verified.lock().await.get(name) {
            return Ok(r.clone());
        }
        let record = self.images.record(name)?.ok_or_else(|| {
            SandboxError::unavailable(
                tier,
                format!(
                    "image `{name}` has not been built on this host (no record in {})",
                    self.images.records_dir.display()
                ),
                FIX_IMAGES,
            )
        })?;
        crate::images::verify(&self.client(tier)?, &record, tier).await?;
        self.verified
            .lock()
            .await
            .insert(name.to_string(), record.clone());
        Ok(record)
    }

    async fn blkio_known(&self) -> Option<String> {
        self.tiers.lock().await.blkio_device.clone().flatten()
    }

    /// Runs one command tool: validate input → select tier → check availability → verify
    /// image → run with limits → interpret the result.
    pub async fn run_tool(
        &self,
        manifest: &ToolManifest,
        input: &Value,
        req: &RunRequest,
    ) -> Result<ToolOutcome> {
        let crate::manifest::Rendered { argv, stdin } =
            manifest
                .render(input)
                .map_err(|problems| SandboxError::InvalidInput {
                    tool: manifest.name.clone(),
                    problems,
                })?;
        let selection = self.select_tier(manifest, req);
        let tier = selection.tier;
        self.ensure_tier(tier).await?;
        let image = self.image(&manifest.image, tier).await?;
        let blkio = self.blkio_known().await;
        let budget = req.budget.unwrap_or(ResourceBudget::ZERO);
        let limits = limits::effective(
            &manifest.limits,
            &budget,
            self.config.max_output_bytes,
            req.deadline,
            blkio.is_some(),
        );
        let mut labels: HashMap<String, String> = req
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(LABEL_TOOL.into(), manifest.name.clone());
        let spec = ContainerSpec {
            tier,
            image_id: image.image_id.clone(),
            argv,
            stdin,
            limits,
            labels,
        };

        // Waiting for a slot counts against the call's time limit.
        let wait_start = Instant::now();
        let _permit = tokio::time::timeout(limits.timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| SandboxError::Timeout {
                tool: manifest.name.clone(),
                limit: limits.timeout,
            })?
            .map_err(|_| SandboxError::Engine("sandbox is shutting down".into()))?;
        let mut spec = spec;
        spec.limits.timeout = limits
            .timeout
            .saturating_sub(wait_start.elapsed())
            .max(Duration::from_millis(1));
        let raw = self.run_container(&spec).await.inspect_err(|e| {
            if matches!(e, SandboxError::Unavailable { .. }) {
                // The image or runtime may have gone away: verify again next time.
                if let Ok(mut v) = self.verified.try_lock() {
                    v.remove(&manifest.image);
                }
            }
        })?;
        interpret(manifest, selection, limits, image.image_id, raw)
    }

    /// Runs a fully specified container with every hardening measure and returns what
    /// happened. The building block of [`Sandbox::run_tool`], public for diagnostics and
    /// benchmarks.
    pub async fn run_container(&self, spec: &ContainerSpec) -> Result<RawRun> {
        let tier = spec.tier;
        let runtime = self.runtime_for(tier)?.to_string();
        let name = format!("symbi-{}-{}", self.instance, uuid::Uuid::new_v4().simple());
        let l = &spec.limits;
        let blkio = self.blkio_known().await;
        let throttle = |rate: u64| {
            blkio.as_ref().map(|dev| {
                vec![ThrottleDevice {
                    path: Some(dev.clone()),
                    rate: Some(rate as i64),
                }]
            })
        };
        // Tier1: the kernel's pids cgroup is the limit. Tier2: gVisor enforces RLIMIT_NPROC
        // for the sandboxed processes itself (a host pids limit that low would kill the
        // sandbox, whose own threads count there); the host cgroup gets a backstop sized
        // for gVisor's threads (about 50 idle plus about 9 per guest process, measured).
        let (pids_cgroup, nproc) = match tier {
            SandboxTier::Tier2 => (128 + 16 * l.pids as i64, Some(l.pids as i64)),
            _ => (l.pids as i64, None),
        };
        let mut ulimits = vec![
            ResourcesUlimits {
                name: Some("core".into()),
                soft: Some(0),
                hard: Some(0),
            },
            ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(1024),
                hard: Some(1024),
            },
        ];
        if let Some(n) = nproc {
            ulimits.push(ResourcesUlimits {
                name: Some("nproc".into()),
                soft: Some(n),
                hard: Some(n),
            });
        }
        let mut labels = spec.labels.clone();
        labels.insert(LABEL_SANDBOX.into(), self.instance.clone());
        labels.insert(LABEL_TIER.into(), tier.to_string());
        let has_stdin = spec.stdin.is_some();
        let host = HostConfig {
            runtime: Some(runtime),
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            // Docker's default seccomp profile applies unless a profile is named; with
            // --oci-seccomp on runsc it applies inside gVisor too.
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                format!("rw,noexec,nosuid,nodev,size={},mode=1777", l.tmpfs_bytes),
            )])),
            memory: Some(l.memory_bytes as i64),
            memory_swap: Some(l.memory_bytes as i64),
            cpu_period: Some(CPU_PERIOD_US),
            cpu_quota: Some(l.cpu_millicores as i64 * CPU_PERIOD_US / 1000),
            pids_limit: Some(pids_cgroup),
            ulimits: Some(ulimits),
            blkio_device_read_bps: l.disk_io_bps.and_then(throttle),
            blkio_device_write_bps: l.disk_io_bps.and_then(throttle),
            cgroup_parent: Some(self.config.cgroup_parent.clone()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            shm_size: Some(1 << 20),
            oom_score_adj: Some(500),
            privileged: Some(false),
            auto_remove: Some(false),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image_id.clone()),
            cmd: Some(spec.argv.clone()),
            user: Some("65534:65534".into()),
            working_dir: Some("/tmp".into()),
            attach_stdin: Some(has_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(has_stdin),
            stdin_once: Some(has_stdin),
            tty: Some(false),
            network_disabled: Some(true),
            labels: Some(labels),
            host_config: Some(host),
            ..Default::default()
        };
        let docker = self.client(tier)?;
        let started = Instant::now();
        let create = docker
            .create_container(
                Some(qp::CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await;
        let id = match create {
            Ok(r) => r.id,
            Err(e) => return Err(self.create_error(tier, &spec.image_id, e)),
        };
        let guard = RemoveGuard {
            docker: docker.clone(),
            name: name.clone(),
            armed: true,
        };
        let result = self.drive(&docker, spec, &name, &id, started).await;
        guard.remove_now().await;
        result
    }

    fn create_error(
        &self,
        tier: SandboxTier,
        image: &str,
        e: bollard::errors::Error,
    ) -> SandboxError {
        let msg = e.to_string();
        if is_connection_error(&e) {
            return engine_unavailable(tier, &e);
        }
        if msg.contains("unknown or invalid runtime")
            || msg.contains("runtime") && msg.contains("not")
        {
            let fix = if tier == SandboxTier::Tier2 {
                FIX_RUNSC
            } else {
                FIX_DOCKER
            };
            return SandboxError::unavailable(
                tier,
                format!("Docker refused the runtime: {msg}"),
                fix,
            );
        }
        if msg.contains("No such image") || msg.contains("no such image") {
            return SandboxError::unavailable(
                tier,
                format!("image {image} is no longer in Docker"),
                FIX_IMAGES,
            );
        }
        SandboxError::Engine(format!("creating the container: {msg}"))
    }

    async fn drive(
        &self,
        docker: &Docker,
        spec: &ContainerSpec,
        name: &str,
        id: &str,
        started: Instant,
    ) -> Result<RawRun> {
        let tier = spec.tier;
        let l = spec.limits;
        let attach = docker
            .attach_container(
                name,
                Some(qp::AttachContainerOptions {
                    stdin: spec.stdin.is_some(),
                    stdout: true,
                    stderr: true,
                    stream: true,
                    logs: false,
                    detach_keys: None,
                }),
            )
            .await
            .map_err(|e| SandboxError::Engine(format!("attaching: {e}")))?;
        let bollard::container::AttachContainerResults {
            mut output,
            mut input,
        } = attach;
        if let Err(e) = docker
            .start_container(name, None::<qp::StartContainerOptions>)
            .await
        {
            let msg = e.to_string();
            return Err(if is_connection_error(&e) {
                engine_unavailable(tier, &e)
            } else if tier == SandboxTier::Tier2
                && (msg.contains("runsc") || msg.contains("OCI runtime"))
            {
                SandboxError::unavailable(
                    tier,
                    format!("gVisor could not start the sandbox: {msg}"),
                    FIX_RUNSC,
                )
            } else {
                SandboxError::Engine(format!("starting the container: {msg}"))
            });
        }
        let deadline = tokio::time::Instant::now() + l.timeout;
        // Stdin is written concurrently so a tool that prints before reading cannot
        // deadlock against a full pipe.
        let stdin_task = spec.stdin.clone().map(|data| {
            tokio::spawn(async move {
                let _ = input.write_all(&data).await;
                let _ = input.shutdown().await;
            })
        });
        let cap = l.output_bytes as usize;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (mut out_trunc, mut err_trunc) = (false, false);
        let mut timed_out = false;
        // The pids cgroup disappears with the container, so it is sampled while the
        // container runs (a cheap sysfs read every 100 ms) and once more at the end.
        let mut pids_hit = false;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        'read: loop {
            let next = tokio::select! {
                r = tokio::time::timeout_at(deadline, output.next()) => r,
                _ = tick.tick() => {
                    pids_hit = pids_hit || pids_limit_hit(&self.config.cgroup_parent, id);
                    continue 'read;
                }
            };
            match next {
                Err(_) => {
                    timed_out = true;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, container = name, "output stream ended with an error");
                    break;
                }
                Ok(Some(Ok(chunk))) => {
                    let (buf, trunc, bytes) = match chunk {
                        bollard::container::LogOutput::StdErr { message } => {
                            (&mut stderr, &mut err_trunc, message)
                        }
                        other => (&mut stdout, &mut out_trunc, other.into_bytes()),
                    };
                    let room = cap.saturating_sub(buf.len());
                    if bytes.len() > room {
                        buf.extend_from_slice(&bytes[..room]);
                        *trunc = true;
                        break;
                    }
                    buf.extend_from_slice(&bytes);
                }
            }
        }
        drop(output);
        if let Some(t) = stdin_task {
            t.abort();
        }
        let truncated = out_trunc || err_trunc;
        // Read the pids cgroup while the container still exists (it goes with the
        // container's exit): a refused fork explains a failure better than its symptom.
        pids_hit = pids_hit || pids_limit_hit(&self.config.cgroup_parent, id);
        if timed_out || truncated {
            let _ = docker
                .kill_container(
                    name,
                    Some(qp::KillContainerOptions {
                        signal: "SIGKILL".into(),
                    }),
                )
                .await;
        }
        // The exit code: wait until the container is not running. A process that closed
        // its output but keeps running is still bound by the deadline (a killed container
        // stops at once, so that wait is short).
        let wait_until = if timed_out || truncated {
            tokio::time::Instant::now() + Duration::from_secs(30)
        } else {
            deadline
        };
        let mut w = docker.wait_container(
            name,
            Some(qp::WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        let code = match tokio::time::timeout_at(wait_until, w.next()).await {
            Ok(Some(Ok(r))) => Some(r.status_code),
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
                Some(code)
            }
            Ok(Some(Err(e))) => {
                return Err(SandboxError::Engine(format!(
                    "waiting for the container: {e}"
                )));
            }
            Ok(None) => {
                return Err(SandboxError::Engine(
                    "the container wait ended without a status".into(),
                ));
            }
            Err(_) if !timed_out && !truncated => {
                timed_out = true;
                let _ = docker
                    .kill_container(
                        name,
                        Some(qp::KillContainerOptions {
                            signal: "SIGKILL".into(),
                        }),
                    )
                    .await;
                None
            }
            Err(_) => {
                return Err(SandboxError::Engine(
                    "the container did not stop after SIGKILL".into(),
                ));
            }
        };
        let code = if timed_out { None } else { code };
        let duration = started.elapsed();
        if code.is_some_and(|c| c != 0) {
            pids_hit |= pids_limit_hit(&self.config.cgroup_parent, id);
        }
        // Only a SIGKILL we did not send can be the OOM killer; look closer only then.
        // Docker records the OOM event independently of the exit event, so it may land a
        // moment after the exit: ask a few times.
        // The container's own memory cgroup counts OOM kills at once; under load Docker's
        // flag can lag behind the exit by more than a second (seen with gVisor).
        let mut oom_killed = false;
        if code == Some(137) && !timed_out && !truncated {
            for attempt in 0..20 {
                if memory_oom_killed(&self.config.cgroup_parent, id) {
                    oom_killed = true;
                    break;
                }
                if let Ok(i) = docker
                    .inspect_container(name, None::<qp::InspectContainerOptions>)
                    .await
                    && i.state.as_ref().and_then(|s| s.oom_killed).unwrap_or(false)
                {
                    oom_killed = true;
                    break;
                }
                if attempt < 19 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let pids_limit_hit = pids_hit;
        let exit = if truncated {
            Some(ExitStatus::KilledAtOutputCap)
        } else {
            code.map(|code| ExitStatus::Exited { code })
        };
        Ok(RawRun {
            container: name.to_string(),
            exit,
            oom_killed,
            pids_limit_hit,
            stdout,
            stderr,
            stdout_truncated: out_trunc,
            stderr_truncated: err_trunc,
            duration,
            timed_out,
        })
    }
}

/// Whether the container's pids cgroup (v1 or v2) recorded a refused fork.
fn pids_limit_hit(parent: &str, id: &str) -> bool {
    cgroup_counter_positive(parent, id, &["pids", ""], "pids.events", "max ")
}

/// Whether the OOM killer acted in the container's memory cgroup (`oom_kill N` in cgroup
/// v1's `memory.oom_control`, v2's `memory.events`).
fn memory_oom_killed(parent: &str, id: &str) -> bool {
    cgroup_counter_positive(parent, id, &["memory"], "memory.oom_control", "oom_kill ")
        || cgroup_counter_positive(parent, id, &[""], "memory.events", "oom_kill ")
}

/// Whether the counter line `key N` of the container's cgroup file `file` shows N > 0,
/// looking under `/sys/fs/cgroup/<controller>/<parent>/<id>/` for each controller
/// directory given (`""` is the cgroup v2 unified hierarchy).
fn cgroup_counter_positive(
    parent: &str,
    id: &str,
    controllers: &[&str],
    file: &str,
    key: &str,
) -> bool {
    let parent = parent.trim_start_matches('/');
    controllers.iter().any(|c| {
        let dir = if c.is_empty() {
            format!("/sys/fs/cgroup/{parent}/{id}")
        } else {
            format!("/sys/fs/cgroup/{c}/{parent}/{id}")
        };
        std::fs::read_to_string(format!("{dir}/{file}"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix(key)
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
            })
            .is_some_and(|n| n > 0)
    })
}

/// The block device (`/dev/…`) holding `path`, for blkio throttling.
fn block_device_of(path: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc_major(dev), libc_minor(dev));
    if major == 0 {
        return None; // a virtual file system (tmpfs, overlay on tmpfs): nothing to throttle
    }
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).ok()?;
    let devname = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    let p = format!("/dev/{devname}");
    std::path::Path::new(&p).exists().then_some(p)
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}

/// Removes the container when dropped unless already removed (cancelled calls leak nothing).
struct RemoveGuard {
    docker: Docker,
    name: String,
    armed: bool,
}

impl RemoveGuard {
    async fn remove_now(mut self) {
        self.armed = false;
        remove(&self.docker, &self.name).await;
    }
}

async fn remove(docker: &Docker, name: &str) {
    let opts = qp::RemoveContainerOptions {
        force: true,
        v: true,
        link: false,
    };
    if let Err(e) = docker.remove_container(name, Some(opts)).await {
        tracing::warn!(container = name, error = %e, "could not remove sandbox container");
    }
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if self.armed
            && let Ok(h) = tokio::runtime::Handle::try_current()
        {
            let (docker, name) = (self.docker.clone(), self.name.clone());
            h.spawn(async move { remove(&docker, &name).await });
        }
    }
}

fn tail(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let t = s.trim();
    if t.chars().count() <= max {
        return t.to_string();
    }
    let skip = t.chars().count() - max;
    format!("…{}", t.chars().skip(skip).collect::<String>())
}

/// A tool-supplied error: `{"error": {"kind": "...", "message": "..."}}` or
/// `{"error": "message"}` on stdout.
fn tool_error(stdout: &[u8]) -> Option<(Option<String>, String)> {
    let v: Value = serde_json::from_slice(stdout).ok()?;
    match v.get("error")? {
        Value::String(m) => Some((None, m.clone())),
        Value::Object(o) => Some((
            o.get("kind").and_then(Value::as_str).map(str::to_string),
            o.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        _ => None,
    }
}

/// Turns a raw run into an outcome or an error (the mapping documented in docs/sandbox.md).
pub fn interpret(
    manifest: &ToolManifest,
    selection: TierSelection,
    limits: AppliedLimits,
    image_id: String,
    raw: RawRun,
) -> Result<ToolOutcome> {
    let tool = manifest.name.clone();
    if raw.oom_killed {
        return Err(SandboxError::LimitExceeded {
            tool,
            limit: LimitKind::Memory,
            detail: format!(
                "killed at {} of memory",
                symbi_types::ByteSize(limits.memory_bytes)
            ),
        });
    }
    let failed =
        raw.timed_out || matches!(raw.exit, Some(ExitStatus::Exited { code }) if code != 0);
    if failed && raw.pids_limit_hit {
        return Err(SandboxError::LimitExceeded {
            tool,
            limit: LimitKind::Pids,
            detail: format!(
                "fork refused at {} processes{}",
                limits.pids,
                if raw.timed_out {
                    "; then killed at the time limit"
                } else {
                    ""
                }
            ),
        });
    }
    if raw.timed_out {
        return Err(SandboxError::Timeout {
            tool,
            limit: limits.timeout,
        });
    }
    let exit = raw.exit.unwrap_or(ExitStatus::KilledAtOutputCap);
    if let ExitStatus::Exited { code } = exit
        && code != 0
    {
        let (kind, message) = tool_error(&raw.stdout).unwrap_or_else(|| {
            let msg = if raw.stderr.is_empty() {
                tail(&raw.stdout, 500)
            } else {
                tail(&raw.stderr, 500)
            };
            (None, msg)
        });
        return Err(SandboxError::ToolFailed {
            tool,
            exit_code: Some(code),
            kind,
            message,
        });
    }
    let output = match manifest.output {
        OutputFormat::Text => ToolOutput::Text(String::from_utf8_lossy(&raw.stdout).into_owned()),
        OutputFormat::Json => {
            if raw.stdout_truncated {
                return Err(SandboxError::ToolFailed {
                    tool,
                    exit_code: None,
                    kind: Some("OutputTruncated".into()),
                    message: format!(
                        "JSON output passed the cap of {} and was cut",
                        symbi_types::ByteSize(limits.output_bytes)
                    ),
                });
            }
            match serde_json::from_slice(&raw.stdout) {
                Ok(v) => ToolOutput::Json(v),
                Err(e) => {
                    return Err(SandboxError::ToolFailed {
                        tool,
                        exit_code: Some(0),
                        kind: Some("InvalidToolOutput".into()),
                        message: format!("output is not JSON: {e}"),
                    });
                }
            }
        }
    };
    Ok(ToolOutcome {
        tool,
        output,
        exit_status: exit,
        selection,
        limits,
        network: "none",
        duration: raw.duration,
        stdout_truncated: raw.stdout_truncated,
        stderr_truncated: raw.stderr_truncated,
        stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
        output_digest: hex::encode(Sha256::digest(&raw.stdout)),
        image_id,
        container: raw.container,
    })
}
