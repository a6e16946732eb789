//! Real MCP peers for the behavioural suites: the npm reference servers and a Python `mcp`
//! server (tests/peers/http_server.py), installed by `scripts/setup-test-deps.sh`.
//! A missing peer fails the test with the command that installs it.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_config::McpSection;
use symbi_config::sections::mcp::{McpServer, McpTransport};
use symbi_mcp::{McpManager, McpSettings};
use symbi_types::MemoryEventLog;
use symbi_types::decision::VerificationMode;

pub fn deps() -> PathBuf {
    PathBuf::from(
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into()),
    )
}

fn require(p: PathBuf, what: &str) -> PathBuf {
    assert!(
        p.exists(),
        "missing test peer {what} at {} — run `scripts/setup-test-deps.sh` (installs the npm MCP servers and the Python mcp/schemapin venv)",
        p.display()
    );
    p
}

pub fn node() -> String {
    let ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`node` is not on PATH — install Node.js 20 (scripts/setup-host.sh)"
    );
    "node".into()
}

pub fn everything_js() -> PathBuf {
    require(
        deps().join("mcp-node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        "@modelcontextprotocol/server-everything",
    )
}

pub fn filesystem_js() -> PathBuf {
    require(
        deps().join("mcp-node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"),
        "@modelcontextprotocol/server-filesystem",
    )
}

pub fn python() -> PathBuf {
    require(
        deps().join("mcp-venv/bin/python"),
        "the Python venv with `mcp` and `schemapin`",
    )
}

pub fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/http_server.py")
}

pub fn stdio(name: &str, command: &str, args: &[&str]) -> McpServer {
    McpServer {
        name: name.into(),
        transport: McpTransport::Stdio,
        command: Some(command.into()),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..McpServer::default()
    }
}

pub fn http(name: &str, url: &str) -> McpServer {
    McpServer {
        name: name.into(),
        transport: McpTransport::Http,
        url: Some(url.into()),
        ..McpServer::default()
    }
}

pub fn everything(name: &str) -> McpServer {
    stdio(name, &node(), &[everything_js().to_str().unwrap(), "stdio"])
}

/// The Python peer over stdio with its state directory.
pub fn python_stdio(name: &str, state: &Path) -> McpServer {
    stdio(
        name,
        python().to_str().unwrap(),
        &[
            peer_script().to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--stdio",
        ],
    )
}

pub struct Env {
    pub mcp: McpManager,
    pub log: MemoryEventLog,
    pub data: tempfile::TempDir,
}

pub fn manager(servers: Vec<McpServer>, mode: VerificationMode) -> Env {
    manager_with(servers, mode, |_| {})
}

pub fn manager_with(
    servers: Vec<McpServer>,
    mode: VerificationMode,
    f: impl FnOnce(&mut McpSection),
) -> Env {
    let data = tempfile::tempdir().unwrap();
    let mut section = McpSection {
        servers,
        tool_verification: mode,
        connection_timeout_s: 60,
        ..McpSection::default()
    };
    f(&mut section);
    let settings = McpSettings::from_config(&section, data.path()).unwrap();
    let log = MemoryEventLog::default();
    let mcp = McpManager::new(settings, Arc::new(log.clone())).unwrap();
    Env { mcp, log, data }
}

/// The Python streamable-HTTP peer, killed on drop.
pub struct HttpPeer {
    pub child: std::process::Child,
    pub port: u16,
    pub state: PathBuf,
}

impl HttpPeer {
    pub fn start(state: &Path) -> Self {
        Self::start_with(state, &[])
    }

    pub fn start_with(state: &Path, extra: &[&str]) -> Self {
        let mut child = std::process::Command::new(python())
            .arg(peer_script())
            .arg("--state")
            .arg(state)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the Python MCP peer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(p) = line.strip_prefix("READY ") {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the Python MCP peer did not report READY within 120 s");
        Self {
            child,
            port,
            state: state.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SchemaPin key pair made by the Python `schemapin` package: (private PEM, public PEM).
pub fn python_keypair() -> (String, String) {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(
            "from schemapin.crypto import KeyManager as K\n\
             k, p = K.generate_keypair()\n\
             print(K.export_private_key_pem(k) + '@@' + K.export_public_key_pem(p))",
        )
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let (a, b) = s.trim().split_once("@@").unwrap();
    (a.to_string(), b.to_string())
}

/// The `.well-known/schemapin.json` document for `public_pem` made by Python `schemapin`.
pub fn python_well_known(
    public_pem: &str,
    revoked: &[String],
    revocation_endpoint: Option<&str>,
) -> String {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(
            "import json, sys\n\
             from schemapin.utils import create_well_known_response\n\
             a = json.loads(sys.argv[1])\n\
             print(json.dumps(create_well_known_response(a['key'], 'Symbi Test Publisher', revoked_keys=a['revoked'] or None, revocation_endpoint=a['ep'])))",
        )
        .arg(serde_json::json!({"key": public_pem, "revoked": revoked, "ep": revocation_endpoint}).to_string())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn fingerprint(public_pem: &str) -> String {
    schemapin::crypto::calculate_key_id(public_pem).unwrap()
}

pub async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
