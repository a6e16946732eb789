//! Services that run in the runtime process: agent workspace files, the file-backed vault,
//! and explicit `request_approval` holds.

use super::approvals::{ApprovalManager, HoldKind, HoldRequest, HoldStatus};
use super::core::{ActionOutput, Call, Executor};
use super::error::ActionError;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::{Component as PathComponent, Path, PathBuf};
use std::time::Duration;
use symbi_types::HumanDuration;

/// Largest file `read_file` returns.
const MAX_READ: u64 = 10 << 20;

/// `read_file`, `list_dir`, `write_file`, confined to one directory per agent:
/// `<root>/<agent name>/`. Absolute paths and `..` never leave it, whatever policy says
/// (defence in depth: policy decides *whether*, this decides *where*).
pub struct FilesExecutor {
    root: PathBuf,
}

impl FilesExecutor {
    /// Workspaces live under `root` (normally `<data dir>/workspaces`).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn resolve(&self, agent: &str, path: &str) -> Result<PathBuf, ActionError> {
        let rel = Path::new(path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, PathComponent::Normal(_) | PathComponent::CurDir))
        {
            return Err(ActionError::PolicyDenied {
                reason: format!(
                    "path `{path}` leaves the agent's workspace (absolute paths and `..` are refused)"
                ),
            });
        }
        let base = self.root.join(agent);
        std::fs::create_dir_all(&base)
            .map_err(|e| ActionError::failed(format!("workspace {}: {e}", base.display())))?;
        let full = base.join(rel);
        // Symlinks inside the workspace must not point outside it.
        let base_real = base
            .canonicalize()
            .map_err(|e| ActionError::failed(e.to_string()))?;
        let mut probe = full.clone();
        while !probe.exists() {
            if !probe.pop() {
                break;
            }
        }
        let real = probe
            .canonicalize()
            .map_err(|e| ActionError::failed(e.to_string()))?;
        if !real.starts_with(&base_real) {
            return Err(ActionError::PolicyDenied {
                reason: format!("path `{path}` resolves outside the agent's workspace"),
            });
        }
        Ok(full)
    }
}

#[async_trait]
impl Executor for FilesExecutor {
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        let path = req
            .arg_str(0, "path")
            .ok_or_else(|| ActionError::failed(format!("`{}` needs a path string", req.name)))?;
        let full = self.resolve(&call.scope.agent_name, path)?;
        let io = |e: std::io::Error| ActionError::Failed {
            kind: Some("IOError".into()),
            message: format!("{path}: {e}"),
            details: None,
        };
        match req.name.as_str() {
            "read_file" => {
                let meta = tokio::fs::metadata(&full).await.map_err(io)?;
                if meta.len() > MAX_READ {
                    return Err(ActionError::failed(format!(
                        "{path} is {} bytes; read_file returns at most {MAX_READ}",
                        meta.len()
                    )));
                }
                let bytes = tokio::fs::read(&full).await.map_err(io)?;
                String::from_utf8(bytes)
                    .map(|t| Value::String(t).into())
                    .map_err(|_| ActionError::failed(format!("{path} is not UTF-8 text")))
            }
            "list_dir" => {
                let mut rd = tokio::fs::read_dir(&full).await.map_err(io)?;
                let mut names = Vec::new();
                while let Some(e) = rd.next_entry().await.map_err(io)? {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
                names.sort();
                Ok(json!(names).into())
            }
            "write_file" => {
                let content = match req.arg(1, "content").map(|a| &a.value) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err(ActionError::failed("`write_file` needs content")),
                };
                if let Some(parent) = full.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(io)?;
                }
                // Atomic: never leave a half-written file.
                let tmp = full.with_extension(format!("symbi-tmp-{}", std::process::id()));
                tokio::fs::write(&tmp, content.as_bytes())
                    .await
                    .map_err(io)?;
                tokio::fs::File::open(&tmp)
                    .await
                    .map_err(io)?
                    .sync_all()
                    .await
                    .map_err(io)?;
                tokio::fs::rename(&tmp, &full).await.map_err(io)?;
                Ok(Value::Null.into())
            }
            other => Err(ActionError::UnknownAction { name: other.into() }),
        }
    }
}

/// `vault://path` and `secret(path)`: secrets from files under `<root>` (one file per
/// path, mode 0600), or from the environment variable `SYMBI_SECRET_<PATH>` (upper case,
/// every character that is not a letter or digit replaced by `_`), which wins.
pub struct VaultExecutor {
    root: PathBuf,
}

impl VaultExecutor {
    /// Secrets live under `root` (normally `<data dir>/vault`).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The environment variable that overrides `path`.
    pub fn env_var(path: &str) -> String {
        let norm: String = path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("SYMBI_SECRET_{norm}")
    }

    /// Reads a secret (also used at start-up, e.g. for webhook secrets).
    pub fn read(&self, path: &str) -> Result<String, ActionError> {
        let path = path.trim_start_matches("vault://");
        if let Ok(v) = std::env::var(Self::env_var(path)) {
            return Ok(v);
        }
        let rel = Path::new(path);
        if path.is_empty()
            || rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, PathComponent::Normal(_)))
        {
            return Err(ActionError::failed(format!("invalid vault path `{path}`")));
        }
        let file = self.root.join(rel);
        std::fs::read_to_string(&file)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|_| ActionError::Failed {
                kind: Some("SecretNotFound".into()),
                message: format!(
                    "secret `{path}` not found: set {} or write it to {} (mode 600)",
                    Self::env_var(path),
                    file.display()
                ),
                details: None,
            })
    }
}

#[async_trait]
impl Executor for VaultExecutor {
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        let path = call
            .subject
            .attrs
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let v = self.read(&path)?;
        // A secret holding a JSON object is a secret map.
        Ok(match serde_json::from_str::<Value>(&v) {
            Ok(m @ Value::Object(_)) => m,
            _ => Value::String(v),
        }
        .into())
    }
}

/// `request_approval(details, expiry:)`: an explicit hold; returns
/// `{approved, verified, expired, approver, reason, decided_at}`.
pub struct ApprovalExecutor {
    manager: ApprovalManager,
    default_expiry: Duration,
}

impl ApprovalExecutor {
    /// Holds through `manager`; holds without `expiry` last `default_expiry`.
    pub fn new(manager: ApprovalManager, default_expiry: Duration) -> Self {
        Self {
            manager,
            default_expiry,
        }
    }
}

#[async_trait]
impl Executor for ApprovalExecutor {
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        let details = req
            .arg(0, "details")
            .map(|a| a.value.clone())
            .unwrap_or(Value::Null);
        let expiry = match req.arg(1, "expiry").map(|a| &a.value) {
            None | Some(Value::Null) => self.default_expiry,
            Some(Value::Number(n)) => Duration::from_millis(n.as_u64().unwrap_or(0)),
            Some(Value::String(s)) => s
                .parse::<HumanDuration>()
                .map(|d| d.0)
                .map_err(|e| ActionError::failed(format!("request_approval expiry: {e}")))?,
            Some(other) => {
                return Err(ActionError::failed(format!(
                    "request_approval expiry must be a duration, found {other}"
                )));
            }
        };
        let summary = match &details {
            Value::String(s) => s.clone(),
            Value::Object(m) => m
                .get("summary")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| details.to_string()),
            other => other.to_string(),
        };
        let hold = self
            .manager
            .hold(HoldRequest {
                agent_id: call.scope.agent_id,
                agent_name: call.scope.agent_name.clone(),
                execution: Some(call.scope.execution),
                kind: HoldKind::Other,
                summary,
                reason: format!("agent `{}` asked for approval", call.scope.agent_name),
                context_snapshot: Some(details),
                expiry,
                require_reason: false,
                role: None,
            })
            .await
            .map_err(|e| ActionError::AuditUnavailable(e.0))?;
        let r = hold.wait().await;
        Ok(json!({
            "approved": r.approved(),
            // Operators decide through authenticated endpoints; an expiry has no approver.
            "verified": r.approver.is_some(),
            "expired": r.status == HoldStatus::Expired,
            "approver": r.approver,
            "reason": r.reason,
            "decided_at": r.decided_at.to_rfc3339(),
        })
        .into())
    }
}
