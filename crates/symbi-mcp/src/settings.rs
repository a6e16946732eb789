//! Which servers to talk to and how: the `[mcp]` section and `MCP_SERVER_DISCOVERY`,
//! resolved and validated into [`McpSettings`].
//!
//! ## `MCP_SERVER_DISCOVERY`
//!
//! The variable (config key `mcp.discovery`) holds either
//!
//! * a **JSON array** of server entries with exactly the fields of `[[mcp.servers]]`
//!   (`name`, `transport`, `command`, `args`, `env`, `url`, `publisher`, `publisher_key`,
//!   `tool_verification`, `sandbox`; unknown fields are errors), e.g.
//!   `[{"name":"fs","command":"mcp-server-filesystem","args":["/srv"]}]`; or
//! * a **comma-separated list of streamable-HTTP URLs**, each optionally preceded by
//!   `NAME=`: `search=http://127.0.0.1:9000/mcp, https://tools.example.com/mcp`. A URL
//!   without a name is named after its host and port with every character outside
//!   `[A-Za-z0-9_-]` replaced by `_` (`tools_example_com`, `127_0_0_1_9000`).
//!
//! Discovered servers are used only when `discovery_enabled = true`; their names must not
//! collide with configured ones.
//!
//! ## Server names
//!
//! 1 to 64 characters from `[A-Za-z0-9_-]` — no dots, because a tool's qualified name is
//! `SERVER.TOOL` (see [`crate::catalog`]).

use crate::error::McpError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use symbi_config::McpSection;
use symbi_config::sections::mcp::{McpServer, McpTransport};
use symbi_types::SandboxTier;
use symbi_types::decision::VerificationMode;

/// Where a server entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `[[mcp.servers]]` in the configuration file.
    Config,
    /// `MCP_SERVER_DISCOVERY`.
    Discovery,
}

/// How to reach a server.
#[derive(Clone, Debug, PartialEq)]
pub enum Transport {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Program (looked up on `PATH`).
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Extra environment. The child gets only these plus `PATH`, `HOME`, `LANG`,
        /// `LC_ALL`, `TZ`, `TMPDIR` and `USER` from our environment — never the runtime's
        /// secrets (API tokens, LLM keys).
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP.
    Http {
        /// The MCP endpoint.
        url: String,
    },
}

/// Where a server's SchemaPin publisher key comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Publisher {
    /// The pin identity: the publisher's host (with `:port` when not the default), or
    /// `server:NAME` when only a configured key is given.
    pub domain: String,
    /// Base URL whose `/.well-known/schemapin.json` is the discovery document, if any.
    pub base_url: Option<String>,
    /// The configured key (PEM), if any; it wins over the discovered key.
    pub key_pem: Option<String>,
}

/// One resolved, validated server entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSpec {
    /// Unique name (qualifies its tools).
    pub name: String,
    /// Where the entry came from.
    pub origin: Origin,
    /// How to reach it.
    pub transport: Transport,
    /// SchemaPin publisher, if configured.
    pub publisher: Option<Publisher>,
    /// Per-server override of the verification mode.
    pub verification: Option<VerificationMode>,
    /// Sandbox tier the stdio server must run in.
    pub sandbox: Option<SandboxTier>,
}

impl ServerSpec {
    /// `stdio` or `http`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Stdio { .. } => "stdio",
            Transport::Http { .. } => "http",
        }
    }

    /// The command line or URL, for display.
    pub fn target(&self) -> String {
        match &self.transport {
            Transport::Stdio { command, args, .. } => std::iter::once(command.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            Transport::Http { url } => url.clone(),
        }
    }
}

/// Everything the [`McpManager`](crate::McpManager) needs.
#[derive(Clone, Debug)]
pub struct McpSettings {
    /// Servers (configured first, then discovered).
    pub servers: Vec<ServerSpec>,
    /// Global verification mode (`tool_verification`).
    pub verification: VerificationMode,
    /// Connect + initialize limit, also the limit of list requests and of waiting for a
    /// connection slot (`connection_timeout_s`).
    pub connection_timeout: Duration,
    /// Cap on simultaneously connected servers (`max_concurrent_connections`).
    pub max_concurrent_connections: usize,
    /// The persistent SchemaPin key store (`<data dir>/mcp/pins`).
    pub pins_dir: PathBuf,
    /// Whether `MCP_SERVER_DISCOVERY` entries were ignored because `discovery_enabled =
    /// false` (reported by `symbi tools list`).
    pub discovery_ignored: usize,
}

impl McpSettings {
    /// Resolves the `[mcp]` section. `data_dir` is the runtime's data directory.
    ///
    /// ```
    /// let mut section = symbi_config::McpSection::default();
    /// section.discovery = Some("search=http://127.0.0.1:9000/mcp".into());
    /// let s = symbi_mcp::McpSettings::from_config(&section, std::path::Path::new("/tmp/d")).unwrap();
    /// assert_eq!(s.servers[0].name, "search");
    /// assert_eq!(s.pins_dir, std::path::Path::new("/tmp/d/mcp/pins"));
    /// ```
    pub fn from_config(section: &McpSection, data_dir: &Path) -> Result<Self, McpError> {
        let mut servers = Vec::new();
        for s in &section.servers {
            servers.push(resolve(s, Origin::Config)?);
        }
        let mut discovery_ignored = 0;
        if let Some(d) = section
            .discovery
            .as_deref()
            .filter(|d| !d.trim().is_empty())
        {
            let found = parse_discovery(d)?;
            if section.discovery_enabled {
                servers.extend(found);
            } else {
                discovery_ignored = found.len();
            }
        }
        let mut seen = std::collections::HashSet::new();
        for s in &servers {
            if !seen.insert(s.name.clone()) {
                return Err(McpError::Config(format!(
                    "two MCP servers are named `{}` (names must be unique across [[mcp.servers]] and MCP_SERVER_DISCOVERY)",
                    s.name
                )));
            }
        }
        Ok(Self {
            servers,
            verification: section.tool_verification,
            connection_timeout: Duration::from_secs(section.connection_timeout_s),
            max_concurrent_connections: section.max_concurrent_connections,
            pins_dir: data_dir.join("mcp").join("pins"),
            discovery_ignored,
        })
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.name == name)
    }
}

/// Parses `MCP_SERVER_DISCOVERY` (see the module documentation).
pub fn parse_discovery(value: &str) -> Result<Vec<ServerSpec>, McpError> {
    let v = value.trim();
    if v.starts_with('[') {
        let entries: Vec<McpServer> = serde_json::from_str(v).map_err(|e| {
            McpError::Config(format!(
                "MCP_SERVER_DISCOVERY is not a JSON array of server entries: {e}"
            ))
        })?;
        return entries
            .iter()
            .map(|e| {
                check_entry(e)
                    .map_err(|m| McpError::Config(format!("MCP_SERVER_DISCOVERY: {m}")))?;
                resolve(e, Origin::Discovery)
            })
            .collect();
    }
    let mut out = Vec::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = match part.split_once('=') {
            Some((n, u)) if !n.contains("://") => (Some(n.trim().to_string()), u.trim()),
            _ => (None, part),
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            McpError::Config(format!("MCP_SERVER_DISCOVERY: `{url}` is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(McpError::Config(format!(
                "MCP_SERVER_DISCOVERY: `{url}` must be an http:// or https:// streamable-HTTP endpoint (use the JSON form for stdio servers)"
            )));
        }
        let name = match name {
            Some(n) => n,
            None => {
                let host = parsed.host_str().unwrap_or("server");
                let raw = match parsed.port() {
                    Some(p) => format!("{host}_{p}"),
                    None => host.to_string(),
                };
                raw.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect()
            }
        };
        let entry = McpServer {
            name,
            transport: McpTransport::Http,
            url: Some(url.to_string()),
            ..McpServer::default()
        };
        out.push(resolve(&entry, Origin::Discovery)?);
    }
    Ok(out)
}

fn check_entry(e: &McpServer) -> Result<(), String> {
    match e.transport {
        McpTransport::Stdio if e.command.is_none() => Err(format!(
            "server `{}` uses stdio but has no `command`",
            e.name
        )),
        McpTransport::Http if e.url.is_none() => {
            Err(format!("server `{}` uses http but has no `url`", e.name))
        }
        _ => Ok(()),
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn resolve(e: &McpServer, origin: Origin) -> Result<ServerSpec, McpError> {
    let bad = |m: String| McpError::Config(format!("server `{}`: {m}", e.name));
    if !valid_name(&e.name) {
        return Err(McpError::Config(format!(
            "`{}` is not a valid MCP server name (1-64 characters from A-Z a-z 0-9 _ -; no dots, since tools are called as SERVER.TOOL)",
            e.name
        )));
    }
    check_entry(e).map_err(McpError::Config)?;
    let transport = match e.transport {
        McpTransport::Stdio => {
            if e.url.is_some() {
                return Err(bad("`url` is only for transport = \"http\"".into()));
            }
            Transport::Stdio {
                command: e.command.clone().unwrap_or_default(),
                args: e.args.clone(),
                env: e.env.clone(),
            }
        }
        McpTransport::Http => {
            if e.command.is_some() || !e.args.is_empty() || !e.env.is_empty() {
                return Err(bad(
                    "`command`, `args` and `env` are only for transport = \"stdio\"".into(),
                ));
            }
            let url = e.url.clone().unwrap_or_default();
            let parsed =
                url::Url::parse(&url).map_err(|x| bad(format!("`{url}` is not a URL: {x}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad(format!("`{url}` must be an http:// or https:// URL")));
            }
            Transport::Http { url }
        }
    };
    let sandbox = match &e.sandbox {
        None => None,
        Some(t) => {
            if matches!(transport, Transport::Http { .. }) {
                return Err(bad(
                    "`sandbox` applies to stdio servers only (an HTTP server runs elsewhere)"
                        .into(),
                ));
            }
            Some(
                t.parse::<SandboxTier>()
                    .map_err(|x| bad(format!("sandbox: {x}")))?,
            )
        }
    };
    let key_pem = match &e.publisher_key {
        None => None,
        Some(k) => Some(load_key(k).map_err(bad)?),
    };
    let publisher = match (&e.publisher, key_pem) {
        (None, None) => None,
        (None, Some(k)) => Some(Publisher {
            domain: format!("server:{}", e.name),
            base_url: None,
            key_pem: Some(k),
        }),
        (Some(p), k) => {
            let (domain, base) = publisher_base(p).map_err(bad)?;
            Some(Publisher {
                domain,
                base_url: Some(base),
                key_pem: k,
            })
        }
    };
    Ok(ServerSpec {
        name: e.name.clone(),
        origin,
        transport,
        publisher,
        verification: e.tool_verification,
        sandbox,
    })
}

/// A PEM key given inline or as the path of a PEM file; it must parse as an ECDSA P-256
/// public key.
fn load_key(k: &str) -> Result<String, String> {
    let pem = if k.trim_start().starts_with("-----BEGIN") {
        k.to_string()
    } else {
        std::fs::read_to_string(k).map_err(|e| {
            format!("publisher_key: `{k}` is neither a PEM key nor a readable file: {e}")
        })?
    };
    schemapin::crypto::calculate_key_id(&pem).map_err(|e| {
        format!(
            "publisher_key is not an ECDSA P-256 public key in PEM (SubjectPublicKeyInfo) form: {e}"
        )
    })?;
    Ok(pem)
}

/// `example.com` → (`example.com`, `https://example.com`); a URL is taken as the base. Plain
/// `http://` is accepted only for loopback hosts (tests, local publishers): discovery
/// documents are trust anchors and must not travel unauthenticated.
fn publisher_base(p: &str) -> Result<(String, String), String> {
    let with_scheme = if p.contains("://") {
        p.to_string()
    } else {
        format!("https://{p}")
    };
    let u = url::Url::parse(&with_scheme)
        .map_err(|e| format!("publisher `{p}` is neither a domain nor a URL: {e}"))?;
    let host = u
        .host_str()
        .ok_or_else(|| format!("publisher `{p}` has no host"))?
        .to_ascii_lowercase();
    match u.scheme() {
        "https" => {}
        "http" => {
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
            if !loopback {
                return Err(format!(
                    "publisher `{p}`: discovery over plain http is allowed only for loopback hosts; use https://"
                ));
            }
        }
        s => return Err(format!("publisher `{p}`: unsupported scheme `{s}`")),
    }
    let domain = match u.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let base = with_scheme.trim_end_matches('/').to_string();
    Ok((domain, base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_list_names_servers_after_host_and_port() {
        let s = parse_discovery(" http://127.0.0.1:9000/mcp , docs=https://docs.example.com/mcp")
            .unwrap();
        assert_eq!(s[0].name, "127_0_0_1_9000");
        assert_eq!(
            s[0].transport,
            Transport::Http {
                url: "http://127.0.0.1:9000/mcp".into()
            }
        );
        assert_eq!(s[1].name, "docs");
        assert_eq!(s[1].origin, Origin::Discovery);
    }

    #[test]
    fn json_form_takes_server_entries() {
        let s = parse_discovery(
            r#"[{"name":"fs","command":"node","args":["x.js"],"tool_verification":"warn"}]"#,
        )
        .unwrap();
        assert_eq!(s[0].transport_name(), "stdio");
        assert_eq!(s[0].verification, Some(VerificationMode::Warn));
        let e = parse_discovery(r#"[{"name":"fs","comand":"node"}]"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `comand`"), "{e}");
        let e = parse_discovery(r#"[{"name":"fs"}]"#).unwrap_err();
        assert!(e.to_string().contains("has no `command`"), "{e}");
    }

    #[test]
    fn stdio_urls_and_bad_names_are_refused() {
        assert!(
            parse_discovery("file:///x")
                .unwrap_err()
                .to_string()
                .contains("http")
        );
        assert!(
            parse_discovery("a.b=http://x/mcp")
                .unwrap_err()
                .to_string()
                .contains("not a valid MCP server name")
        );
    }

    #[test]
    fn discovery_honours_discovery_enabled_and_unique_names() {
        let mut section = McpSection {
            discovery: Some("a=http://127.0.0.1:1/mcp".into()),
            ..McpSection::default()
        };
        section.discovery_enabled = false;
        let s = McpSettings::from_config(&section, Path::new("/d")).unwrap();
        assert!(s.servers.is_empty());
        assert_eq!(s.discovery_ignored, 1);
        section.discovery_enabled = true;
        section.servers.push(McpServer {
            name: "a".into(),
            command: Some("x".into()),
            ..McpServer::default()
        });
        let e = McpSettings::from_config(&section, Path::new("/d")).unwrap_err();
        assert!(
            e.to_string().contains("two MCP servers are named `a`"),
            "{e}"
        );
    }

    #[test]
    fn publisher_forms() {
        assert_eq!(
            publisher_base("example.com").unwrap(),
            ("example.com".into(), "https://example.com".into())
        );
        assert_eq!(
            publisher_base("http://127.0.0.1:8123/").unwrap(),
            ("127.0.0.1:8123".into(), "http://127.0.0.1:8123".into())
        );
        assert!(
            publisher_base("http://example.com")
                .unwrap_err()
                .contains("loopback")
        );
    }

    #[test]
    fn publisher_key_must_be_a_p256_key() {
        let e = McpServer {
            name: "s".into(),
            command: Some("x".into()),
            publisher_key: Some(
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
            ),
            ..McpServer::default()
        };
        assert!(
            resolve(&e, Origin::Config)
                .unwrap_err()
                .to_string()
                .contains("not an ECDSA P-256 public key")
        );
        let kp = schemapin::crypto::generate_key_pair().unwrap();
        let e = McpServer {
            publisher_key: Some(kp.public_key_pem.clone()),
            ..e
        };
        let s = resolve(&e, Origin::Config).unwrap();
        assert_eq!(s.publisher.unwrap().domain, "server:s");
    }
}
