//! Typed, validated configuration (SPEC §11).
//!
//! Precedence, lowest to highest: embedded defaults → the TOML file (`--config FILE` or
//! `SYMBI_CONFIG_PATH`) → environment variables → command-line options. Every key of the
//! file is typed and validated; an unknown key or a bad value is a [`ConfigError`] naming
//! the file, line and column. [`LoadedConfig::sources`] records where each effective value
//! came from (`symbi config show`).
//!
//! Environment variables: the named ones of SPEC §11 (see [`ENV_VARS`]) and, for every
//! key, `SYMBI_<SECTION>__<KEY>` (e.g. `SYMBI_RUNTIME__SCHEDULER_THREADS=4`).
//!
//! ```
//! use symbi_config::{load, LoadOptions};
//! let loaded = load(&LoadOptions::default()).unwrap();
//! assert_eq!(loaded.config.api.listen, "127.0.0.1:8080");
//! assert_eq!(loaded.source_of("runtime.scheduler_threads").to_string(), "default");
//! ```

pub mod sections;
mod validate;

pub use sections::{
    api::ApiSection, audit::AuditSection, bus::BusSection, context::ContextSection,
    llm::LlmSection, log::LogSection, mcp::McpSection, policy::PolicySection, runtime::RuntimeMode,
    runtime::RuntimeSection, sandbox::SandboxSection, security::SecuritySection,
};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[runtime]`.
    pub runtime: RuntimeSection,
    /// `[security]`.
    pub security: SecuritySection,
    /// `[context]`.
    pub context: ContextSection,
    /// `[mcp]`.
    pub mcp: McpSection,
    /// `[api]`.
    pub api: ApiSection,
    /// `[audit]`.
    pub audit: AuditSection,
    /// `[policy]`.
    pub policy: PolicySection,
    /// `[bus]`.
    pub bus: BusSection,
    /// `[sandbox]`.
    pub sandbox: SandboxSection,
    /// `[llm]`.
    pub llm: LlmSection,
    /// `[log]`.
    pub log: LogSection,
}

/// Keys whose values are secrets: shown as `[REDACTED]`.
pub const SECRET_KEYS: &[&str] = &["api.token", "llm.api_key"];

/// The named environment variables and the key each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SYMBI_DATA_DIR", "runtime.data_dir"),
    ("SYMBI_RUNTIME_MODE", "runtime.mode"),
    ("SYMBI_LOG_LEVEL", "log.level"),
    ("SYMBI_LOG_FORMAT", "log.format"),
    ("SYMBI_CRYPTO_PROVIDER", "security.crypto_provider"),
    ("SYMBI_AUDIT_STORAGE", "audit.storage"),
    ("SYMBI_API_TOKEN", "api.token"),
    ("SYMBIONT_API_TOKEN", "api.token"),
    ("QDRANT_URL", "context.vector_db_url"),
    ("OPENAI_API_KEY", "llm.api_key"),
    ("OPENAI_BASE_URL", "llm.base_url"),
    ("MCP_SERVER_DISCOVERY", "mcp.discovery"),
];

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Embedded default.
    Default,
    /// The configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// 1-based column of the key.
        column: usize,
    },
    /// An environment variable.
    Env {
        /// Its name.
        var: String,
    },
    /// A command-line option.
    Cli {
        /// The option.
        option: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Source::Env { var } => write!(f, "env {var}"),
            Source::Cli { option } => write!(f, "command line {option}"),
        }
    }
}

/// A configuration problem. Exit code 2 at the CLI.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read configuration file: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// A syntax error, unknown key or bad value in the file.
    #[error("{}:{line}:{column}: error: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A bad environment variable.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A bad command-line value.
    #[error("{option}: {message}")]
    Cli {
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
}

/// Inputs of [`load`]. `env` is injectable for tests; [`LoadOptions::from_process`] takes
/// the process environment.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--config FILE` (wins over `SYMBI_CONFIG_PATH`).
    pub config_path: Option<PathBuf>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `symbi up --listen ADDR:PORT`.
    pub listen: Option<String>,
    /// The environment.
    pub env: HashMap<String, String>,
}

impl LoadOptions {
    /// Options with the process environment.
    pub fn from_process() -> Self {
        Self {
            env: std::env::vars().collect(),
            ..Self::default()
        }
    }
}

/// The effective configuration and the provenance of each value.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// Effective configuration.
    pub config: Config,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// `section.key` → where its value came from (keys absent here are defaults).
    pub sources: BTreeMap<String, Source>,
}

impl LoadedConfig {
    /// Where `section.key` came from.
    pub fn source_of(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// Every effective `section.key = value` with its source, secrets redacted, in
    /// section order. Unset optional keys have the value `null`.
    pub fn entries(&self) -> Vec<(String, serde_json::Value, Source)> {
        let serde_json::Value::Object(table) =
            serde_json::to_value(&self.config).expect("config serializes to JSON")
        else {
            unreachable!("config is a struct")
        };
        let mut out = Vec::new();
        for (section, v) in table {
            let serde_json::Value::Object(t) = v else {
                continue;
            };
            for (key, value) in t {
                let path = format!("{section}.{key}");
                let value = if SECRET_KEYS.contains(&path.as_str()) && !value.is_null() {
                    serde_json::Value::String("[REDACTED]".into())
                } else {
                    value
                };
                let src = self.source_of(&path);
                out.push((path, value, src));
            }
        }
        out
    }

    /// The data directory: configured, else `$XDG_DATA_HOME/symbi`, else
    /// `~/.local/share/symbi`.
    pub fn data_dir(&self) -> PathBuf {
        data_dir_of(&self.config, &HashMap::new())
    }
}

fn data_dir_of(config: &Config, env: &HashMap<String, String>) -> PathBuf {
    if let Some(d) = &config.runtime.data_dir {
        return d.clone();
    }
    let get = |k: &str| env.get(k).cloned().or_else(|| std::env::var(k).ok());
    if let Some(x) = get("XDG_DATA_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(x).join("symbi");
    }
    let home = get("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".local/share/symbi")
}

impl Config {
    /// The data directory (see [`LoadedConfig::data_dir`]).
    pub fn data_dir(&self) -> PathBuf {
        data_dir_of(self, &HashMap::new())
    }

    /// A path under the data directory unless `configured` is absolute.
    pub fn under_data_dir(&self, configured: Option<&Path>, default: &str) -> PathBuf {
        match configured {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => self.data_dir().join(p),
            None => self.data_dir().join(default),
        }
    }
}

/// Loads the configuration: defaults, then the file, then the environment, then the
/// command line.
pub fn load(opts: &LoadOptions) -> Result<LoadedConfig, ConfigError> {
    let mut sources = BTreeMap::new();
    let file = opts.config_path.clone().or_else(|| {
        opts.env
            .get("SYMBI_CONFIG_PATH")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    });
    let mut config = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
                path: path.clone(),
                message: e.to_string(),
            })?;
            parse_file(path, &text, &mut sources)?
        }
        None => Config::default(),
    };

    // Named variables first, then the generic SYMBI_SECTION__KEY form (more specific wins).
    let token_vars: Vec<&str> = ["SYMBI_API_TOKEN", "SYMBIONT_API_TOKEN"]
        .into_iter()
        .filter(|v| opts.env.get(*v).is_some_and(|s| !s.is_empty()))
        .collect();
    if token_vars.len() == 2 && opts.env["SYMBI_API_TOKEN"] != opts.env["SYMBIONT_API_TOKEN"] {
        return Err(ConfigError::Env {
            var: "SYMBIONT_API_TOKEN".into(),
            message: "differs from SYMBI_API_TOKEN; set only one of them".into(),
        });
    }
    for (var, key) in ENV_VARS {
        if let Some(val) = opts.env.get(*var).filter(|s| !s.is_empty()) {
            config = set_key(&config, key, val).map_err(|message| ConfigError::Env {
                var: var.to_string(),
                message,
            })?;
            sources.insert(
                key.to_string(),
                Source::Env {
                    var: var.to_string(),
                },
            );
        }
    }
    let mut generic: Vec<(&String, &String)> = opts
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("SYMBI_") && k.contains("__"))
        .collect();
    generic.sort();
    for (var, val) in generic {
        let rest = &var["SYMBI_".len()..];
        let (section, key) = rest.split_once("__").expect("filtered on __");
        let path = format!(
            "{}.{}",
            section.to_ascii_lowercase(),
            key.to_ascii_lowercase()
        );
        config = set_key(&config, &path, val).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        sources.insert(path, Source::Env { var: var.clone() });
    }

    if let Some(d) = &opts.data_dir {
        config.runtime.data_dir = Some(d.clone());
        sources.insert(
            "runtime.data_dir".into(),
            Source::Cli {
                option: "--data-dir".into(),
            },
        );
    }
    if let Some(l) = &opts.listen {
        config = set_key(&config, "api.listen", l).map_err(|message| ConfigError::Cli {
            option: "--listen".into(),
            message,
        })?;
        sources.insert(
            "api.listen".into(),
            Source::Cli {
                option: "--listen".into(),
            },
        );
    }
    if config.runtime.data_dir.is_none() {
        // Resolve the default once so every component agrees, and show it.
        config.runtime.data_dir = Some(data_dir_of(&config, &opts.env));
    }

    let loaded = LoadedConfig {
        config,
        file,
        sources,
    };
    check_cross_field(&loaded)?;
    Ok(loaded)
}

/// Validation that needs more than one value's type: reported at the key's source.
fn check_cross_field(l: &LoadedConfig) -> Result<(), ConfigError> {
    let fail = |key: &str, message: String| -> ConfigError {
        match l.source_of(key) {
            Source::File { path, line, column } => ConfigError::File {
                path,
                line,
                column,
                message,
            },
            Source::Env { var } => ConfigError::Env { var, message },
            Source::Cli { option } => ConfigError::Cli { option, message },
            Source::Default => ConfigError::Cli {
                option: key.into(),
                message,
            },
        }
    };
    let c = &l.config;
    if c.api.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(fail(
            "api.listen",
            format!(
                "`{}` is not an address of the form IP:PORT (e.g. 127.0.0.1:8080)",
                c.api.listen
            ),
        ));
    }
    if !c.api.webhook_listen.is_empty()
        && c.api
            .webhook_listen
            .parse::<std::net::SocketAddr>()
            .is_err()
    {
        return Err(fail(
            "api.webhook_listen",
            format!(
                "`{}` is not an address of the form IP:PORT (e.g. 127.0.0.1:8081), or empty to disable",
                c.api.webhook_listen
            ),
        ));
    }
    if let Some(url) = &c.context.vector_db_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(fail(
                "context.vector_db_url",
                format!("`{url}` must be an http:// or https:// URL"),
            ));
        }
    }
    if !(c.bus.nats_url.starts_with("nats://") || c.bus.nats_url.starts_with("tls://")) {
        return Err(fail(
            "bus.nats_url",
            format!("`{}` must be a nats:// or tls:// URL", c.bus.nats_url),
        ));
    }
    for (i, s) in c.mcp.servers.iter().enumerate() {
        let key = "mcp.servers";
        if s.name.is_empty() {
            return Err(fail(key, format!("server #{} has no name", i + 1)));
        }
        match s.transport {
            sections::mcp::McpTransport::Stdio if s.command.is_none() => {
                return Err(fail(
                    key,
                    format!("server `{}` uses stdio but has no `command`", s.name),
                ));
            }
            sections::mcp::McpTransport::Http if s.url.is_none() => {
                return Err(fail(
                    key,
                    format!("server `{}` uses http but has no `url`", s.name),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses the file, recording the position of every key it sets.
fn parse_file(
    path: &Path,
    text: &str,
    sources: &mut BTreeMap<String, Source>,
) -> Result<Config, ConfigError> {
    let pos_err = |span: Option<std::ops::Range<usize>>, message: &str| {
        let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::File {
            path: path.to_path_buf(),
            line,
            column,
            message: clean_message(message),
        }
    };
    let doc = toml::de::DeTable::parse(text).map_err(|e| pos_err(e.span(), e.message()))?;
    for (section, value) in doc.get_ref().iter() {
        let toml::de::DeValue::Table(t) = value.get_ref() else {
            continue;
        };
        for (key, _) in t.iter() {
            let (line, column) = line_col(text, key.span().start);
            sources.insert(
                format!("{}.{}", section.get_ref(), key.get_ref()),
                Source::File {
                    path: path.to_path_buf(),
                    line,
                    column,
                },
            );
        }
    }
    toml::from_str::<Config>(text).map_err(|e| pos_err(e.span(), e.message()))
}

fn clean_message(m: &str) -> String {
    m.trim().trim_end_matches('.').to_string()
}

/// 1-based line and column (in Unicode scalar values) of byte offset `at`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// Sets `section.key` from a string, validating it exactly as the file would.
fn set_key(config: &Config, path: &str, raw: &str) -> Result<Config, String> {
    let (section, key) = path
        .split_once('.')
        .ok_or_else(|| format!("`{path}` is not a section.key path"))?;
    let mut table = toml::Table::try_from(config).map_err(|e| e.to_string())?;
    let sect = match table.get_mut(section) {
        Some(toml::Value::Table(t)) => t,
        _ => return Err(format!("unknown configuration section `{section}`")),
    };
    // A value that parses as a TOML literal (number, bool, array) is taken as such,
    // anything else as a string, so `4`, `true` and `gvisor` all work unquoted.
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    sect.insert(key.to_string(), value.clone());
    match Config::deserialize(toml::Value::Table(table.clone())) {
        Ok(c) => Ok(c),
        // A string field given something that looked like a number: retry as text.
        Err(first) if !matches!(value, toml::Value::String(_)) => {
            let sect = table
                .get_mut(section)
                .and_then(|v| v.as_table_mut())
                .expect("exists");
            sect.insert(key.to_string(), toml::Value::String(raw.to_string()));
            Config::deserialize(toml::Value::Table(table))
                .map_err(|_| clean_message(first.message()))
        }
        Err(e) => Err(clean_message(e.message())),
    }
}

#[cfg(test)]
mod tests;
