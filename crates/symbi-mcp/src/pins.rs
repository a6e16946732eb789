//! The persistent trust-on-first-use key store (`<data dir>/mcp/pins`).
//!
//! One file per publisher domain, `<escaped domain>.json`, holding a SchemaPin
//! `PinnedTool` record (`tool_id` is `*`: the key is pinned for the whole publisher, so a
//! substituted key is caught for tools that appear later too, not only for tools seen
//! before). The first pin of a domain is created with a hard link from a fsynced temporary
//! file, which fails if the file already exists: two processes pinning the same domain at
//! once cannot both win, and the loser re-reads and compares. Files are never rewritten in
//! place; `forget` (an operator's explicit consent to a new key, `symbi tools verify
//! --repin`) removes the file.

use crate::error::McpError;
use parking_lot::Mutex;
use schemapin::types::pinning::{PinnedKey, PinnedTool, TrustLevel};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the store says about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// Nothing pinned for this domain yet.
    Unpinned,
    /// The key is the pinned one; `first_seen` is when it was pinned (RFC 3339).
    Matched {
        /// When the key was pinned.
        first_seen: String,
    },
    /// Another key is pinned.
    Mismatch {
        /// The pinned fingerprints.
        pinned: Vec<String>,
    },
}

/// The key store. Cheap to share behind an `Arc`; reads are served from memory after the
/// first look at a domain.
#[derive(Debug)]
pub struct PinStore {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Option<PinnedTool>>>,
}

impl PinStore {
    /// Opens (creating, mode 0700) the store directory.
    pub fn open(dir: &Path) -> Result<Self, McpError> {
        let err = |e: std::io::Error| McpError::PinStore {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, domain: &str) -> PathBuf {
        // Keep [A-Za-z0-9.-]; escape everything else (':' of ports, '/' could never be
        // allowed) as %XX so distinct domains never share a file.
        let mut name = String::new();
        for b in domain.bytes() {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        self.dir.join(format!("{name}.json"))
    }

    fn read(&self, domain: &str) -> Result<Option<PinnedTool>, McpError> {
        let path = self.path_of(domain);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let rec: PinnedTool =
                    serde_json::from_str(&text).map_err(|e| McpError::PinStore {
                        path: path.display().to_string(),
                        message: format!(
                            "not a pin record ({e}); refusing to verify against a damaged key store"
                        ),
                    })?;
                if rec.domain != domain || rec.pinned_keys.is_empty() {
                    return Err(McpError::PinStore {
                        path: path.display().to_string(),
                        message: format!(
                            "record is for `{}` with {} key(s), expected `{domain}`",
                            rec.domain,
                            rec.pinned_keys.len()
                        ),
                    });
                }
                Ok(Some(rec))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(McpError::PinStore {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// The pinned record of `domain`, if any.
    pub fn get(&self, domain: &str) -> Result<Option<PinnedTool>, McpError> {
        if let Some(v) = self.cache.lock().get(domain) {
            return Ok(v.clone());
        }
        let rec = self.read(domain)?;
        self.cache.lock().insert(domain.to_string(), rec.clone());
        Ok(rec)
    }

    /// Compares `fingerprint` with what is pinned for `domain` (does not pin).
    pub fn check(&self, domain: &str, fingerprint: &str) -> Result<PinCheck, McpError> {
        Ok(match self.get(domain)? {
            None => PinCheck::Unpinned,
            Some(rec) => match rec
                .pinned_keys
                .iter()
                .find(|k| k.fingerprint == fingerprint)
            {
                Some(k) => PinCheck::Matched {
                    first_seen: k.first_seen.clone(),
                },
                None => PinCheck::Mismatch {
                    pinned: rec
                        .pinned_keys
                        .iter()
                        .map(|k| k.fingerprint.clone())
                        .collect(),
                },
            },
        })
    }

    /// Pins `fingerprint` for `domain` if nothing is pinned yet. Returns what is pinned
    /// afterwards: `Matched` when this call (or a concurrent one with the same key) pinned
    /// it, `Mismatch` when another process pinned a different key first.
    pub fn pin_first_use(&self, domain: &str, fingerprint: &str) -> Result<PinCheck, McpError> {
        let path = self.path_of(domain);
        let now = chrono::Utc::now().to_rfc3339();
        let rec = PinnedTool {
            tool_id: "*".into(),
            domain: domain.to_string(),
            pinned_keys: vec![PinnedKey {
                fingerprint: fingerprint.to_string(),
                first_seen: now.clone(),
                last_seen: now,
                trust_level: TrustLevel::Tofu,
            }],
        };
        let err = |e: std::io::Error| McpError::PinStore {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", std::process::id(), rand_suffix()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(
                serde_json::to_string_pretty(&rec)
                    .expect("pin record serializes")
                    .as_bytes(),
            )
            .map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Ok(d) = std::fs::File::open(&self.dir) {
                    let _ = d.sync_all();
                }
                self.cache.lock().insert(domain.to_string(), Some(rec));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Someone pinned first: believe the file, not our cache.
                self.cache.lock().remove(domain);
            }
            Err(e) => return Err(err(e)),
        }
        self.check(domain, fingerprint)
    }

    /// Removes the pin of `domain` (explicit operator consent to accept a new key).
    /// Returns whether there was one.
    pub fn forget(&self, domain: &str) -> Result<bool, McpError> {
        let path = self.path_of(domain);
        self.cache.lock().remove(domain);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(McpError::PinStore {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Every pinned record.
    pub fn list(&self) -> Result<Vec<PinnedTool>, McpError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) => {
                return Err(McpError::PinStore {
                    path: self.dir.display().to_string(),
                    message: e.to_string(),
                });
            }
        };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&p).map_err(|e| McpError::PinStore {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                let rec: PinnedTool =
                    serde_json::from_str(&text).map_err(|e| McpError::PinStore {
                        path: p.display().to_string(),
                        message: e.to_string(),
                    })?;
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.domain.cmp(&b.domain));
        Ok(out)
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{t:x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_pins_and_later_keys_mismatch_across_reopen() {
        let d = tempfile::tempdir().unwrap();
        let s = PinStore::open(d.path()).unwrap();
        assert_eq!(
            s.check("example.com:8443", "sha256:aa").unwrap(),
            PinCheck::Unpinned
        );
        assert!(matches!(
            s.pin_first_use("example.com:8443", "sha256:aa").unwrap(),
            PinCheck::Matched { .. }
        ));
        // A second pin attempt with another key loses: the first key stays.
        assert_eq!(
            s.pin_first_use("example.com:8443", "sha256:bb").unwrap(),
            PinCheck::Mismatch {
                pinned: vec!["sha256:aa".into()]
            }
        );
        let s2 = PinStore::open(d.path()).unwrap();
        assert!(matches!(
            s2.check("example.com:8443", "sha256:aa").unwrap(),
            PinCheck::Matched { .. }
        ));
        assert!(matches!(
            s2.check("example.com:8443", "sha256:bb").unwrap(),
            PinCheck::Mismatch { .. }
        ));
        assert!(d.path().join("example.com%3A8443.json").exists());
        assert_eq!(s2.list().unwrap().len(), 1);
        assert!(s2.forget("example.com:8443").unwrap());
        assert_eq!(
            s2.check("example.com:8443", "sha256:bb").unwrap(),
            PinCheck::Unpinned
        );
    }

    #[test]
    fn a_damaged_record_fails_closed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.json"), "{not json").unwrap();
        let s = PinStore::open(d.path()).unwrap();
        let e = s.check("x", "sha256:aa").unwrap_err();
        assert!(e.to_string().contains("damaged key store"), "{e}");
    }
}
