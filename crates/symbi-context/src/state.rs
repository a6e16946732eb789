//! The per-agent key/value state of DSL `remember` / `recall` / `forget` (GRAMMAR.md
//! §4.7, §5.3).
//!
//! * Persistent agents (`memory = "persistent"`): one JSON file per agent,
//!   `<data dir>/memory/agents/<agent>/state.json`, replaced atomically on every write
//!   (temporary file, fsync, rename, fsync of the directory), so a crash leaves either the
//!   old or the new state, never a torn one.
//! * Session agents: in memory, per (agent, session id), until the session ends.
//! * Ephemeral agents (default): in memory, per execution, dropped when it ends.

use crate::error::ContextError;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbi_types::ExecutionId;

/// Whose state, and how long it lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StateScope {
    /// Survives executions and restarts (on disk).
    Persistent {
        /// Agent name.
        agent: String,
    },
    /// Lives as long as the caller's session.
    Session {
        /// Agent name.
        agent: String,
        /// Session id.
        session: String,
    },
    /// Lives for one execution.
    Execution {
        /// Agent name.
        agent: String,
        /// The execution.
        execution: ExecutionId,
    },
}

const FORMAT_VERSION: u64 = 1;

/// The key/value state of every agent.
pub struct AgentState {
    dir: PathBuf,
    persistent: Mutex<HashMap<String, Arc<Mutex<Option<Map<String, Value>>>>>>,
    volatile: Mutex<HashMap<StateScope, Map<String, Value>>>,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The directory name for an agent: the name itself when it is a plain identifier,
/// otherwise `x-<hex of the UTF-8 bytes>` (no path tricks, no collisions).
pub fn agent_dir_name(agent: &str) -> String {
    let plain = !agent.is_empty()
        && agent.len() <= 100
        && agent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !agent.starts_with("x-");
    if plain {
        agent.to_string()
    } else {
        format!("x-{}", hex::encode(agent.as_bytes()))
    }
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync,
/// rename over the target, fsync of the directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ContextError> {
    let dir = path
        .parent()
        .ok_or_else(|| ContextError::io(path, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| ContextError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ContextError::io(path, e));
    }
    Ok(())
}

impl AgentState {
    /// State rooted at `dir` (normally `<data dir>/memory/agents`).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            persistent: Mutex::new(HashMap::new()),
            volatile: Mutex::new(HashMap::new()),
        }
    }

    /// The state file of a persistent agent.
    pub fn file_of(&self, agent: &str) -> PathBuf {
        self.dir.join(agent_dir_name(agent)).join("state.json")
    }

    fn slot(&self, agent: &str) -> Arc<Mutex<Option<Map<String, Value>>>> {
        self.persistent
            .lock()
            .entry(agent.to_string())
            .or_default()
            .clone()
    }

    fn load(&self, agent: &str) -> Result<Map<String, Value>, ContextError> {
        let path = self.file_of(agent);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(ContextError::io(&path, e)),
        };
        let corrupt = |m: String| ContextError::Corrupt {
            path: path.display().to_string(),
            message: m,
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| corrupt(format!("{}:{}: {e}", e.line(), e.column())))?;
        if v.get("version").and_then(Value::as_u64) != Some(FORMAT_VERSION) {
            return Err(corrupt(format!(
                "unsupported state format version {}",
                v["version"]
            )));
        }
        match v.get("entries") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(corrupt("missing `entries` object".into())),
        }
    }

    fn with_persistent<T>(
        &self,
        agent: &str,
        write: bool,
        f: impl FnOnce(&mut Map<String, Value>) -> T,
    ) -> Result<T, ContextError> {
        let slot = self.slot(agent);
        let mut guard = slot.lock();
        if guard.is_none() {
            *guard = Some(self.load(agent)?);
        }
        let map = guard.as_mut().expect("loaded above");
        if !write {
            return Ok(f(map));
        }
        // Apply to a copy; the cached state changes only once the file is durable.
        let mut next = map.clone();
        let out = f(&mut next);
        let doc = serde_json::json!({"version": FORMAT_VERSION, "agent": agent, "entries": next});
        let bytes = serde_json::to_vec_pretty(&doc)
            .map_err(|e| ContextError::InvalidArgument(e.to_string()))?;
        atomic_write(&self.file_of(agent), &bytes)?;
        *map = next;
        Ok(out)
    }

    /// `remember(key, value)`.
    pub fn remember(
        &self,
        scope: &StateScope,
        key: &str,
        value: Value,
    ) -> Result<(), ContextError> {
        match scope {
            StateScope::Persistent { agent } => self.with_persistent(agent, true, |m| {
                m.insert(key.to_string(), value);
            }),
            other => {
                self.volatile
                    .lock()
                    .entry(other.clone())
                    .or_default()
                    .insert(key.to_string(), value);
                Ok(())
            }
        }
    }

    /// `recall(key)`: the value, or `None`.
    pub fn recall(&self, scope: &StateScope, key: &str) -> Result<Option<Value>, ContextError> {
        match scope {
            StateScope::Persistent { agent } => {
                self.with_persistent(agent, false, |m| m.get(key).cloned())
            }
            other => Ok(self
                .volatile
                .lock()
                .get(other)
                .and_then(|m| m.get(key).cloned())),
        }
    }

    /// `forget(key)`: whether the key existed.
    pub fn forget(&self, scope: &StateScope, key: &str) -> Result<bool, ContextError> {
        match scope {
            StateScope::Persistent { agent } => {
                if !self.with_persistent(agent, false, |m| m.contains_key(key))? {
                    return Ok(false);
                }
                self.with_persistent(agent, true, |m| m.remove(key).is_some())
            }
            other => Ok(self
                .volatile
                .lock()
                .get_mut(other)
                .and_then(|m| m.remove(key))
                .is_some()),
        }
    }

    /// Every key and value of a scope (for `symbi` inspection commands and the API).
    pub fn snapshot(&self, scope: &StateScope) -> Result<Map<String, Value>, ContextError> {
        match scope {
            StateScope::Persistent { agent } => self.with_persistent(agent, false, |m| m.clone()),
            other => Ok(self.volatile.lock().get(other).cloned().unwrap_or_default()),
        }
    }

    /// Drops the state of an execution (ephemeral agents) — call when it ends.
    pub fn end_execution(&self, execution: ExecutionId) {
        self.volatile.lock().retain(
            |k, _| !matches!(k, StateScope::Execution { execution: e, .. } if *e == execution),
        );
    }

    /// Drops the state of a session.
    pub fn end_session(&self, session: &str) {
        self.volatile
            .lock()
            .retain(|k, _| !matches!(k, StateScope::Session { session: s, .. } if s == session));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn persistent_state_survives_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let s = AgentState::new(dir.path());
        let scope = StateScope::Persistent {
            agent: "run_counter".into(),
        };
        assert_eq!(s.recall(&scope, "runs").unwrap(), None);
        s.remember(&scope, "runs", json!(1)).unwrap();
        s.remember(&scope, "runs", json!(2)).unwrap();
        s.remember(&scope, "note", json!({"a": [1, 2]})).unwrap();
        drop(s);
        let s = AgentState::new(dir.path());
        assert_eq!(s.recall(&scope, "runs").unwrap(), Some(json!(2)));
        assert!(s.forget(&scope, "note").unwrap());
        assert!(!s.forget(&scope, "note").unwrap());
        let text = std::fs::read_to_string(dir.path().join("run_counter/state.json")).unwrap();
        assert!(text.contains("\"version\": 1") && !text.contains("note"));
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("run_counter"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn ephemeral_state_is_per_execution_and_dropped_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let s = AgentState::new(dir.path());
        let (e1, e2) = (ExecutionId::new(), ExecutionId::new());
        let a = StateScope::Execution {
            agent: "a".into(),
            execution: e1,
        };
        let b = StateScope::Execution {
            agent: "a".into(),
            execution: e2,
        };
        s.remember(&a, "k", json!("v")).unwrap();
        assert_eq!(
            s.recall(&b, "k").unwrap(),
            None,
            "executions do not share state"
        );
        s.end_execution(e1);
        assert_eq!(s.recall(&a, "k").unwrap(), None);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing on disk"
        );
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_an_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bad")).unwrap();
        std::fs::write(
            dir.path().join("bad/state.json"),
            "{\"version\": 1, \"entries\": [",
        )
        .unwrap();
        let s = AgentState::new(dir.path());
        let err = s
            .recall(
                &StateScope::Persistent {
                    agent: "bad".into(),
                },
                "k",
            )
            .unwrap_err();
        assert!(matches!(err, ContextError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn odd_agent_names_cannot_escape_the_directory() {
        assert_eq!(agent_dir_name("scout_1"), "scout_1");
        assert_eq!(
            agent_dir_name("../etc"),
            format!("x-{}", hex::encode("../etc"))
        );
        assert_eq!(agent_dir_name("x-1"), format!("x-{}", hex::encode("x-1")));
    }
}
