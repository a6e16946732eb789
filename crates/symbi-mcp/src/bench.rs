//! `symbi bench mcp`: tool-call round trips over stdio and streamable HTTP against one
//! Python `mcp` server, beside the Python `mcp` client calling the same server in the same
//! run, and SchemaPin verification latency with a pinned key.
//!
//! The server and the reference client are the scripts of `tests/peers/`, embedded in the
//! binary and written to a temporary directory, run with the Python of the test venv
//! (`scripts/setup-test-deps.sh`).

use crate::manager::{CallOptions, McpManager};
use crate::pins::PinStore;
use crate::settings::McpSettings;
use crate::verify::{self, PublisherKeys};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_config::McpSection;
use symbi_config::sections::mcp::{McpServer, McpTransport};
use symbi_types::decision::VerificationMode;

const SERVER_PY: &str = include_str!("../tests/peers/http_server.py");
const CLIENT_PY: &str = include_str!("../tests/peers/bench_client.py");

/// Options.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Python with `mcp` and `schemapin` installed.
    pub python: PathBuf,
    /// Measured calls per transport and client.
    pub iterations: usize,
    /// Unmeasured calls first.
    pub warmup: usize,
    /// Verifications measured.
    pub verify_iterations: usize,
}

/// Latency summary in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarises samples (µs).
    pub fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len().max(1);
        let pct = |p: f64| {
            v.get(
                ((n as f64 * p).ceil() as usize)
                    .saturating_sub(1)
                    .min(n - 1),
            )
            .copied()
            .unwrap_or(0.0)
        };
        Self {
            n: v.len(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            mean_us: v.iter().sum::<f64>() / n as f64,
        }
    }
}

/// One transport: symbi against the Python client, same server, same run.
#[derive(Clone, Debug, Serialize)]
pub struct TransportReport {
    /// `stdio` or `http`.
    pub transport: String,
    /// symbi (`McpManager::call_tool`, rmcp underneath).
    pub symbi: Summary,
    /// The Python `mcp` client.
    pub python_client: Summary,
    /// symbi p50 / Python p50 (below 1: symbi is faster).
    pub ratio_p50: f64,
    /// symbi p99 / Python p99.
    pub ratio_p99: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Load average before.
    pub load_before: String,
    /// Load average after.
    pub load_after: String,
    /// Round trips per transport.
    pub transports: Vec<TransportReport>,
    /// `verify_tool` with a pinned key (canonicalize + hash + pin lookup + revocation check
    /// + ECDSA P-256 verify).
    pub verify_pinned: Summary,
    /// Baseline: the bare ECDSA verification (`schemapin::crypto::verify_signature`) of the
    /// same hash.
    pub verify_bare_ecdsa: Summary,
    /// verify_pinned p50 / bare p50.
    pub verify_ratio_p50: f64,
    /// The first verification of a publisher (writes the pin file with fsync).
    pub verify_first_use_us: f64,
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn python_client(
    python: &Path,
    script: &Path,
    args: &[String],
    iterations: usize,
    warmup: usize,
) -> Result<Summary, String> {
    let out = std::process::Command::new(python)
        .arg(script)
        .arg("--iterations")
        .arg(iterations.to_string())
        .arg("--warmup")
        .arg(warmup.to_string())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the Python reference client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("reference client output: {e}"))?;
    let samples = v["samples_us"]
        .as_array()
        .ok_or("no samples")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    Ok(Summary::of(samples))
}

async fn symbi_calls(
    mcp: &McpManager,
    tool: &str,
    iterations: usize,
    warmup: usize,
) -> Result<Summary, String> {
    let input = json!({"text": "ping"})
        .as_object()
        .cloned()
        .expect("object");
    for _ in 0..warmup {
        mcp.call_tool(tool, input.clone(), CallOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut s = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let out = mcp
            .call_tool(tool, input.clone(), CallOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        s.push(t.elapsed().as_secs_f64() * 1e6);
        if out.value != json!("ping") {
            return Err(format!("unexpected answer {}", out.value));
        }
    }
    Ok(Summary::of(s))
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the benchmark.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, String> {
    if !opts.python.exists() {
        return Err(format!(
            "{} not found — run scripts/setup-test-deps.sh (Python venv with `mcp` and `schemapin`)",
            opts.python.display()
        ));
    }
    let load_before = load();
    let dir = tempfile_dir()?;
    let server = dir.join("server.py");
    let client = dir.join("client.py");
    std::fs::write(&server, SERVER_PY).map_err(|e| e.to_string())?;
    std::fs::write(&client, CLIENT_PY).map_err(|e| e.to_string())?;
    let state = dir.join("state");
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;

    // The HTTP server process (stdio servers are started by each client).
    let mut http = std::process::Command::new(&opts.python)
        .arg(&server)
        .arg("--state")
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the Python MCP server: {e}"))?;
    let stdout = http.stdout.take().expect("piped");
    let http = Child(http);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(p) = line.strip_prefix("READY ") {
                let _ = tx.send(p.trim().to_string());
            }
        }
    });
    let port = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the Python MCP server did not start within 120 s".to_string())?;
    let url = format!("http://127.0.0.1:{port}/mcp");

    let py = opts.python.to_string_lossy().to_string();
    let section = McpSection {
        tool_verification: VerificationMode::Warn,
        connection_timeout_s: 120,
        servers: vec![
            McpServer {
                name: "stdio".into(),
                transport: McpTransport::Stdio,
                command: Some(py.clone()),
                args: vec![
                    server.to_string_lossy().into(),
                    "--state".into(),
                    state.to_string_lossy().into(),
                    "--stdio".into(),
                ],
                ..McpServer::default()
            },
            McpServer {
                name: "http".into(),
                transport: McpTransport::Http,
                url: Some(url.clone()),
                ..McpServer::default()
            },
        ],
        ..McpSection::default()
    };
    let settings = McpSettings::from_config(&section, &dir).map_err(|e| e.to_string())?;
    let mcp = McpManager::new(settings, Arc::new(symbi_types::MemoryEventLog::default()))
        .map_err(|e| e.to_string())?;
    for (s, r) in mcp.start().await {
        r.map_err(|e| format!("{s}: {e}"))?;
    }
    let mut transports = Vec::new();
    for (name, args) in [
        (
            "stdio",
            vec![
                "--stdio".to_string(),
                py.clone(),
                server.to_string_lossy().into(),
                state.to_string_lossy().into(),
            ],
        ),
        ("http", vec!["--url".to_string(), url.clone()]),
    ] {
        let symbi =
            symbi_calls(&mcp, &format!("{name}.echo"), opts.iterations, opts.warmup).await?;
        let (p, c, a, it, w) = (
            opts.python.clone(),
            client.clone(),
            args.clone(),
            opts.iterations,
            opts.warmup,
        );
        let python = tokio::task::spawn_blocking(move || python_client(&p, &c, &a, it, w))
            .await
            .map_err(|e| e.to_string())??;
        transports.push(TransportReport {
            transport: name.into(),
            ratio_p50: symbi.p50_us / python.p50_us,
            ratio_p99: symbi.p99_us / python.p99_us,
            symbi,
            python_client: python,
        });
    }
    mcp.shutdown().await;
    drop(http);

    let (verify_pinned, verify_bare_ecdsa, verify_first_use_us) =
        verify_latency(&dir, opts.verify_iterations)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BenchReport {
        load_before,
        load_after: load(),
        transports,
        verify_ratio_p50: verify_pinned.p50_us / verify_bare_ecdsa.p50_us,
        verify_pinned,
        verify_bare_ecdsa,
        verify_first_use_us,
    })
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let d = std::env::temp_dir().join(format!("symbi-bench-mcp-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// Verification latency with a pinned key, and the bare ECDSA baseline.
pub fn verify_latency(dir: &Path, iterations: usize) -> Result<(Summary, Summary, f64), String> {
    let kp = schemapin::crypto::generate_key_pair().map_err(|e| e.to_string())?;
    let tool = json!({
        "name": "search_documents",
        "description": "Searches the document store and returns the best matches with their scores.",
        "inputSchema": {"type": "object", "properties": {
            "query": {"type": "string", "description": "What to look for"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "filters": {"type": "object", "additionalProperties": {"type": "string"}}
        }, "required": ["query"]}
    });
    let hash = schemapin::canonicalize::canonicalize_and_hash(&verify::signed_document(&tool));
    let sig =
        schemapin::crypto::sign_data(&kp.private_key_pem, &hash).map_err(|e| e.to_string())?;
    let mut signed = tool.clone();
    signed["_meta"] = json!({ verify::META_SIGNATURE: sig });
    let pins = PinStore::open(&dir.join("pins")).map_err(|e| e.to_string())?;
    let keys = PublisherKeys::new("bench.example".into(), Some(&kp.public_key_pem), None, None);
    let t = Instant::now();
    let first = verify::verify_tool(&signed, Some(&keys), &pins).map_err(|e| e.to_string())?;
    let first_us = t.elapsed().as_secs_f64() * 1e6;
    if !first.is_verified() {
        return Err(format!("benchmark signature did not verify: {first:?}"));
    }
    let mut a = Vec::with_capacity(iterations);
    let mut b = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let s = verify::verify_tool(&signed, Some(&keys), &pins).map_err(|e| e.to_string())?;
        a.push(t.elapsed().as_secs_f64() * 1e6);
        debug_assert!(s.is_verified());
        let t = Instant::now();
        let ok = schemapin::crypto::verify_signature(&kp.public_key_pem, &hash, &sig)
            .map_err(|e| e.to_string())?;
        b.push(t.elapsed().as_secs_f64() * 1e6);
        debug_assert!(ok);
    }
    Ok((Summary::of(a), Summary::of(b), first_us))
}
