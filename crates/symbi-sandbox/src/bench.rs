//! The `symbi bench sandbox` load test: sandboxed tool start-to-result latency per tier
//! against a bare `docker run --network none` of the same image (measured in the same run,
//! interleaved call by call so machine load hits both alike), throughput of concurrent
//! calls, and memory per running sandbox.

use crate::manifest::ToolManifest;
use crate::sandbox::{RunRequest, Sandbox};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_types::SandboxTier;

/// Options of the load test.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Sequential calls per tier and per side (sandbox, bare docker run).
    pub iterations: usize,
    /// Concurrent calls for the throughput figure.
    pub concurrency: usize,
    /// Running sandboxes for the memory figure.
    pub memory_sandboxes: usize,
    /// Tiers to measure.
    pub tiers: Vec<SandboxTier>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            iterations: 30,
            concurrency: 20,
            memory_sandboxes: 10,
            tiers: vec![SandboxTier::Tier1, SandboxTier::Tier2],
        }
    }
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    fn of(mut v: Vec<Duration>) -> Latency {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = v.len().max(1);
        let p = |q: f64| ms(v[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        Latency {
            n: v.len(),
            p50_ms: p(0.5),
            p99_ms: p(0.99),
            mean_ms: v.iter().map(|d| ms(*d)).sum::<f64>() / n as f64,
        }
    }
}

/// Figures of one tier.
#[derive(Clone, Debug, Serialize)]
pub struct TierFigures {
    /// The tier.
    pub tier: SandboxTier,
    /// `Sandbox::run_tool` of a trivial tool (`/bin/true`), start to result.
    pub sandbox: Latency,
    /// `docker run --rm --network none [--runtime=runsc] IMAGE /bin/true` via the CLI.
    pub bare_docker_run: Latency,
    /// The same image through the Engine API with nothing but `network_mode: none`, the
    /// runtime and logging driver `none`: create, attach, start, wait, remove — the floor
    /// our hardening, limits and checks add to.
    pub bare_api_run: Latency,
    /// sandbox p50 / bare `docker run` p50 (goal ≤ 1.10).
    pub ratio_p50: f64,
    /// sandbox p50 / bare API run p50: the cost of the hardening, limits and checks.
    pub ratio_p50_vs_api: f64,
    /// `concurrency` word-count calls at once: wall time and calls per second.
    pub concurrent_wall_ms: f64,
    /// Calls per second in that burst.
    pub concurrent_calls_per_s: f64,
    /// Memory cgroup usage per running sandbox (`sleep`), mean over the sandboxes: what
    /// the memory limit counts.
    pub memory_per_sandbox_mib: f64,
    /// Resident set size of the processes in each sandbox's cgroup (for Tier2 the gVisor
    /// Sentry and gofer; shared pages counted in each), mean over the sandboxes.
    pub rss_per_sandbox_mib: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Per tier.
    pub tiers: Vec<TierFigures>,
    /// `/proc/loadavg` at the start and at the end.
    pub load_before: String,
    /// `/proc/loadavg` at the end.
    pub load_after: String,
}

fn trivial_tool() -> ToolManifest {
    ToolManifest::parse(
        Path::new("bench-true.toml"),
        r#"name = "bench_true"
description = "does nothing"
image = "busybox"
command = ["/bin/true"]
[input]
type = "object"
[limits]
timeout = "60s"
[risk]
code_trust = "trusted"
"#,
    )
    .expect("valid built-in manifest")
}

fn word_count_tool() -> ToolManifest {
    ToolManifest::parse(
        Path::new("bench-wc.toml"),
        r#"name = "bench_wc"
description = "wc -w"
image = "busybox"
command = ["wc", "-w"]
stdin = "{{text}}"
[input]
type = "object"
properties.text = { type = "string" }
[limits]
timeout = "120s"
[risk]
code_trust = "trusted"
"#,
    )
    .expect("valid built-in manifest")
}

fn sleeper_tool() -> ToolManifest {
    ToolManifest::parse(
        Path::new("bench-sleep.toml"),
        r#"name = "bench_sleep"
description = "sleeps"
image = "busybox"
command = ["sleep", "{{s}}"]
[input]
type = "object"
properties.s = { type = "integer" }
[limits]
timeout = "120s"
[risk]
code_trust = "trusted"
"#,
    )
    .expect("valid built-in manifest")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn bare_docker_run(tier: SandboxTier, reference: &str) -> Result<Duration, String> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.args(["run", "--rm", "--network", "none"]);
    if tier == SandboxTier::Tier2 {
        cmd.arg("--runtime=runsc");
    }
    cmd.args([reference, "/bin/true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let t = Instant::now();
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run the docker CLI: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(t.elapsed())
}

async fn bare_api_run(
    docker: &bollard::Docker,
    tier: SandboxTier,
    image_id: &str,
) -> Result<Duration, String> {
    use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
    use bollard::query_parameters as qp;
    use futures::StreamExt;
    let t = Instant::now();
    let body = ContainerCreateBody {
        image: Some(image_id.to_string()),
        cmd: Some(vec!["/bin/true".into()]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            // Like the sandbox: without the json-file log copier (its cost is not hardening).
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            runtime: Some(
                if tier == SandboxTier::Tier2 {
                    "runsc"
                } else {
                    "runc"
                }
                .into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(None::<qp::CreateContainerOptions>, body)
        .await
        .map_err(|e| e.to_string())?
        .id;
    let run = async {
        let mut out = docker
            .attach_container(
                &id,
                Some(qp::AttachContainerOptions {
                    stdout: true,
                    stderr: true,
                    stream: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| e.to_string())?
            .output;
        docker
            .start_container(&id, None::<qp::StartContainerOptions>)
            .await
            .map_err(|e| e.to_string())?;
        while out.next().await.is_some() {}
        let mut w = docker.wait_container(&id, None::<qp::WaitContainerOptions>);
        w.next().await;
        Ok::<_, String>(())
    };
    let r = run.await;
    let _ = docker
        .remove_container(
            &id,
            Some(qp::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    r.map(|()| t.elapsed())
}

fn cgroup_rss(parent: &str, id: &str) -> Option<u64> {
    let parent = parent.trim_start_matches('/');
    let procs = [
        format!("/sys/fs/cgroup/memory/{parent}/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/{parent}/{id}/cgroup.procs"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())?;
    let mut total = 0;
    for pid in procs.split_whitespace() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        {
            total += kb * 1024;
        }
    }
    Some(total)
}

fn cgroup_memory(parent: &str, id: &str) -> Option<u64> {
    let parent = parent.trim_start_matches('/');
    [
        format!("/sys/fs/cgroup/memory/{parent}/{id}/memory.usage_in_bytes"),
        format!("/sys/fs/cgroup/{parent}/{id}/memory.current"),
    ]
    .iter()
    .find_map(|p| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

/// Runs the load test. `sandbox` must have a floor of none (`default_floor: None`) so the
/// tiers can be chosen per measurement.
pub async fn run(sandbox: Arc<Sandbox>, opts: &BenchOptions) -> Result<BenchReport, String> {
    let load_before = loadavg();
    let truth = trivial_tool();
    let wc = word_count_tool();
    let sleeper = sleeper_tool();
    let mut tiers = Vec::new();
    for &tier in &opts.tiers {
        let req = RunRequest {
            agent_min_tier: Some(tier),
            ..RunRequest::default()
        };
        let image = sandbox
            .image("busybox", tier)
            .await
            .map_err(|e| e.to_string())?;
        // Warm-up: tier check, image verification, page cache.
        sandbox
            .run_tool(&truth, &serde_json::json!({}), &req)
            .await
            .map_err(|e| e.to_string())?;
        bare_docker_run(tier, &image.reference).await?;
        let docker = sandbox.docker().map_err(|e| e.to_string())?;
        bare_api_run(&docker, tier, &image.image_id).await?;
        let (mut ours, mut bare, mut api) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..opts.iterations {
            let t = Instant::now();
            sandbox
                .run_tool(&truth, &serde_json::json!({}), &req)
                .await
                .map_err(|e| e.to_string())?;
            ours.push(t.elapsed());
            bare.push(bare_docker_run(tier, &image.reference).await?);
            api.push(bare_api_run(&docker, tier, &image.image_id).await?);
        }
        let (ours, bare, api) = (Latency::of(ours), Latency::of(bare), Latency::of(api));

        let t = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..opts.concurrency {
            let (s, wc, req) = (sandbox.clone(), wc.clone(), req.clone());
            tasks.push(tokio::spawn(async move {
                s.run_tool(&wc, &serde_json::json!({"text": "w ".repeat(i + 1)}), &req)
                    .await
            }));
        }
        for task in tasks {
            task.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        let wall = t.elapsed();

        // Memory: start sleepers, wait until all run, read their memory cgroups.
        let mut sleepers = Vec::new();
        for _ in 0..opts.memory_sandboxes {
            let (s, sl, req) = (sandbox.clone(), sleeper.clone(), req.clone());
            sleepers.push(tokio::spawn(async move {
                s.run_tool(&sl, &serde_json::json!({"s": 6}), &req).await
            }));
        }
        let mut per = Vec::new();
        let mut rss = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let ids = running_ids(&sandbox).await;
            if ids.len() >= opts.memory_sandboxes {
                // Let them settle after start-up.
                tokio::time::sleep(Duration::from_millis(1000)).await;
                per = ids
                    .iter()
                    .filter_map(|id| cgroup_memory(&sandbox.config().cgroup_parent, id))
                    .collect();
                rss = ids
                    .iter()
                    .filter_map(|id| cgroup_rss(&sandbox.config().cgroup_parent, id))
                    .collect();
                break;
            }
        }
        for s in sleepers {
            let _ = s.await;
        }
        let mean_mib = |v: &[u64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<u64>() as f64 / v.len() as f64 / (1 << 20) as f64
            }
        };
        let mem = mean_mib(&per);
        tiers.push(TierFigures {
            tier,
            ratio_p50: ours.p50_ms / bare.p50_ms,
            ratio_p50_vs_api: ours.p50_ms / api.p50_ms,
            bare_api_run: api,
            sandbox: ours,
            bare_docker_run: bare,
            concurrent_wall_ms: wall.as_secs_f64() * 1000.0,
            concurrent_calls_per_s: opts.concurrency as f64 / wall.as_secs_f64(),
            memory_per_sandbox_mib: mem,
            rss_per_sandbox_mib: mean_mib(&rss),
        });
    }
    Ok(BenchReport {
        tiers,
        load_before,
        load_after: loadavg(),
    })
}

async fn running_ids(sandbox: &Sandbox) -> Vec<String> {
    use bollard::query_parameters::ListContainersOptions;
    let mut filters = std::collections::HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!(
            "{}={}",
            crate::sandbox::LABEL_SANDBOX,
            sandbox.instance_id()
        )],
    );
    filters.insert("status".to_string(), vec!["running".to_string()]);
    let Ok(docker) = sandbox.docker() else {
        return Vec::new();
    };
    docker
        .list_containers(Some(ListContainersOptions {
            all: false,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map(|l| l.into_iter().filter_map(|c| c.id).collect())
        .unwrap_or_default()
}
