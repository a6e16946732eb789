//! `symbi doctor`: what this host has and lacks for each component, each gap with the
//! command that installs or fixes it. Exit 0 when everything the defaults need is present,
//! 1 otherwise.

use super::Globals;
use crate::cli::Format;
use clap::Args;
use serde::Serialize;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// `symbi doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Present and working.
    Ok,
    /// Optional component absent; the features that need it fail closed.
    Warn,
    /// Needed by the defaults and absent or broken.
    Missing,
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Component.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The command that installs or fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_string),
    }
}

/// Runs `cmd args` with a timeout; returns trimmed stdout on success.
pub fn probe(cmd: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                use std::io::Read;
                child.stdout.take()?.read_to_string(&mut out).ok()?;
                return status.success().then(|| out.trim().to_string());
            }
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

fn which(cmd: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(cmd))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Every host check. Sandbox tiers are probed by `symbi tools doctor` style runs when the
/// sandbox component is built in.
pub fn host_checks(data_dir: &Path, qdrant_url: Option<&str>) -> Vec<Check> {
    let t = Duration::from_secs(10);
    let mut out = Vec::new();

    // Data directory.
    let writable = std::fs::create_dir_all(data_dir)
        .and_then(|_| tempfile_in(data_dir))
        .map(|_| ());
    out.push(match writable {
        Ok(()) => check(
            "data directory",
            Status::Ok,
            format!("{} is writable", data_dir.display()),
            None,
        ),
        Err(e) => check(
            "data directory",
            Status::Missing,
            format!("{}: {e}", data_dir.display()),
            Some("choose a writable directory with --data-dir DIR or SYMBI_DATA_DIR"),
        ),
    });

    // Keys.
    let key = data_dir.join("keys/audit.key");
    out.push(if key.exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        if mode & 0o077 == 0 {
            check(
                "audit signing key",
                Status::Ok,
                format!("{} (mode {mode:o})", key.display()),
                None,
            )
        } else {
            check(
                "audit signing key",
                Status::Missing,
                format!(
                    "{} has mode {mode:o}; other users can read it",
                    key.display()
                ),
                Some(&format!("chmod 600 {}", key.display())),
            )
        }
    } else {
        check(
            "audit signing key",
            Status::Ok,
            format!(
                "not created yet; `symbi up` generates {} (mode 600) on first start",
                key.display()
            ),
            None,
        )
    });

    // Docker daemon, runc, runsc.
    match which("docker") {
        None => out.push(check(
            "docker",
            Status::Warn,
            "docker CLI not found; Tier1/Tier2 sandboxes are unavailable and tool calls fail closed",
            Some("sudo ./scripts/setup-host.sh  (apt-get install docker.io runc runsc)"),
        )),
        Some(_) => match probe("docker", &["info", "--format", "{{.ServerVersion}} {{json .Runtimes}}"], t) {
            Some(info) => {
                let version = info.split_whitespace().next().unwrap_or("?").to_string();
                out.push(check("docker daemon", Status::Ok, format!("server {version}"), None));
                let has_runsc = info.contains("\"runsc\"");
                out.push(if has_runsc {
                    check("docker runtime runsc", Status::Ok, "registered (Tier2 available)", None)
                } else {
                    check(
                        "docker runtime runsc",
                        Status::Warn,
                        "not registered with dockerd; Tier2 (gVisor) actions fail closed",
                        Some("sudo ./scripts/setup-host.sh  (adds runsc to /etc/docker/daemon.json)"),
                    )
                });
            }
            None => out.push(check(
                "docker daemon",
                Status::Warn,
                "no daemon answers on /var/run/docker.sock; sandboxed tools fail closed",
                Some("sudo ./scripts/setup-host.sh  (installs docker.io and starts dockerd)"),
            )),
        },
    }
    for (bin, what, fix) in [
        (
            "runc",
            "OCI runtime for Tier1",
            "sudo apt-get install -y runc",
        ),
        (
            "runsc",
            "gVisor runtime for Tier2",
            "sudo apt-get install -y runsc",
        ),
    ] {
        out.push(match which(bin) {
            Some(p) => {
                let v = probe(bin, &["--version"], t)
                    .map(|v| first_line(&v))
                    .unwrap_or_default();
                check(bin, Status::Ok, format!("{p} {v}"), None)
            }
            None => check(bin, Status::Warn, format!("not found ({what})"), Some(fix)),
        });
    }

    // cgroups.
    let cg2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    out.push(check(
        "cgroups",
        Status::Ok,
        if cg2 {
            "cgroup v2 (unified)".to_string()
        } else {
            "cgroup v1".to_string()
        },
        None,
    ));

    // NATS, PostgreSQL, Node (MCP servers).
    out.push(match which("nats-server") {
        Some(p) => check(
            "nats-server",
            Status::Ok,
            format!("{p} (multi-node bus available)"),
            None,
        ),
        None => check(
            "nats-server",
            Status::Warn,
            "not found; only the in-process bus is available",
            Some("sudo apt-get install -y nats-server"),
        ),
    });
    let pg = [
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/lib/postgresql/16/bin/postgres",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .map(str::to_string)
    .or_else(|| which("postgres"));
    out.push(match pg {
        Some(p) => check(
            "postgresql",
            Status::Ok,
            format!("{p} (shared database for multi-node)"),
            None,
        ),
        None => check(
            "postgresql",
            Status::Warn,
            "server binaries not found; the multi-node shared database is unavailable",
            Some("sudo apt-get install -y postgresql"),
        ),
    });
    out.push(match which("node") {
        Some(p) => {
            let v = probe("node", &["--version"], t).unwrap_or_default();
            check(
                "node",
                Status::Ok,
                format!("{p} {v} (for npm MCP servers)"),
                None,
            )
        }
        None => check(
            "node",
            Status::Warn,
            "not found; npm-based MCP servers cannot start",
            Some("sudo apt-get install -y nodejs npm"),
        ),
    });

    // Qdrant.
    out.push(match qdrant_url {
        None => check("vector database", Status::Ok, "embedded Qdrant Edge under the data directory", None),
        Some(url) => {
            let reachable = url
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .split('/')
                .next()
                .and_then(|hp| std::net::ToSocketAddrs::to_socket_addrs(hp).ok())
                .and_then(|mut a| a.next())
                .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
            if reachable {
                check("vector database", Status::Ok, format!("Qdrant server at {url} answers"), None)
            } else {
                check(
                    "vector database",
                    Status::Missing,
                    format!("Qdrant server at {url} does not answer"),
                    Some("start the Qdrant server, or unset QDRANT_URL / [context] vector_db_url to use the embedded store"),
                )
            }
        }
    });

    // LLM key.
    out.push(if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.is_empty()) {
        check("LLM provider key", Status::Ok, "OPENAI_API_KEY is set", None)
    } else {
        check(
            "LLM provider key",
            Status::Warn,
            "OPENAI_API_KEY not set; llm_call and dense embeddings fail closed, RAG answers extractively",
            Some("export OPENAI_API_KEY=... (and OPENAI_BASE_URL for another OpenAI-compatible server)"),
        )
    });
    out
}

fn tempfile_in(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(format!(".doctor-{}", std::process::id()));
    std::fs::write(&p, b"ok")?;
    std::fs::remove_file(&p)
}

pub fn run(g: &Globals, a: DoctorArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let mut checks = host_checks(
        &loaded.data_dir(),
        loaded.config.context.vector_db_url.as_deref(),
    );
    checks.extend(sandbox_tier_checks(&loaded));
    let failed = checks.iter().any(|c| c.status == Status::Missing);
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Format::Text => {
            for c in &checks {
                let mark = match c.status {
                    Status::Ok => "ok     ",
                    Status::Warn => "absent ",
                    Status::Missing => "MISSING",
                };
                println!("[{mark}] {:<22} {}", c.name, c.detail);
                if let Some(fix) = &c.fix {
                    println!("          fix: {fix}");
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Sandbox tiers, probed by running a trivial hardened container in each
/// (`symbi_sandbox::doctor::tier_checks`). A tier that the configured default needs is
/// `Missing` when it does not work; the others are `Warn`.
fn sandbox_tier_checks(loaded: &symbi_config::LoadedConfig) -> Vec<Check> {
    let config = symbi_sandbox::SandboxConfig::from_config(&loaded.config, loaded.data_dir());
    let default = loaded.config.security.default_sandbox_tier;
    let results = match (
        symbi_sandbox::Sandbox::new(config),
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    ) {
        (Ok(sandbox), Ok(rt)) => rt.block_on(symbi_sandbox::doctor::tier_checks(&sandbox)),
        (Err(e), _) => {
            return vec![check(
                "sandbox",
                Status::Missing,
                e.to_string(),
                Some("check [sandbox] docker_socket"),
            )];
        }
        (_, Err(e)) => return vec![check("sandbox", Status::Missing, e.to_string(), None)],
    };
    results
        .into_iter()
        .map(|t| {
            let status = if t.ok {
                Status::Ok
            } else if t.tier == default {
                Status::Missing
            } else {
                Status::Warn
            };
            Check {
                name: format!("sandbox {}", t.tier),
                status,
                detail: t.detail,
                fix: t.fix,
            }
        })
        .collect()
}
