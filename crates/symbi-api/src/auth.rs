//! Bearer-token authentication (API-CONTRACT §2.1–2.2).
//!
//! * One static token (`SYMBI_API_TOKEN`, alias `SYMBIONT_API_TOKEN`, or `[api] token_file`):
//!   kept only as its SHA-256, compared in constant time.
//! * Or a key store: a JSON array of `{key_id, key_hash (Argon2 PHC), agent_scope, description,
//!   created_at, revoked}`; clients present `<key_id>.<secret>`. When the store holds at least
//!   one record it is the only authority. `agent_scope: null` is an admin key.
//! * Nothing configured: every protected endpoint answers 401 (fail closed).
//!
//! Tokens never appear in logs or errors.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use dashmap::DashMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Who a request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The key id (`None` for the static token).
    pub key_id: Option<String>,
    /// Agents this key may touch; `None` = admin (everything).
    pub scope: Option<Vec<Uuid>>,
}

impl Identity {
    /// Whether this is an admin identity.
    pub fn is_admin(&self) -> bool {
        self.scope.is_none()
    }

    /// Whether the identity may touch `agent`.
    pub fn may_access(&self, agent: &Uuid) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(agent))
    }

    /// A name for audit records and approvals (never the secret).
    pub fn name(&self) -> String {
        self.key_id.clone().unwrap_or_else(|| "api-token".into())
    }
}

/// One record of the key store.
#[derive(Clone, Debug, Deserialize)]
pub struct KeyRecord {
    /// Public key id (the part before the dot).
    pub key_id: String,
    /// Argon2 PHC string of the secret.
    pub key_hash: String,
    /// Agents in scope; `None` = admin.
    #[serde(default)]
    pub agent_scope: Option<Vec<Uuid>>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// When issued.
    #[serde(default)]
    pub created_at: String,
    /// Revoked keys never authenticate.
    #[serde(default)]
    pub revoked: bool,
    /// [symbi] roles of the key's holder (approvals that demand a role).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Why authentication failed (for the audit record; the client only gets 401).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    Missing,
    /// Not `Bearer <token>`.
    #[error("Authorization scheme is not Bearer")]
    WrongScheme,
    /// No authority is configured.
    #[error("no API token or key store is configured")]
    NotConfigured,
    /// Token did not match.
    #[error("invalid token")]
    Invalid,
    /// The key exists but is revoked.
    #[error("revoked key {0}")]
    Revoked(String),
}

/// Configuration problems (start-up fails).
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Token file unreadable.
    #[error("API token file {path}: {message}")]
    TokenFile {
        /// The file.
        path: String,
        /// Error.
        message: String,
    },
    /// Key store unreadable or malformed.
    #[error("API key store {path}: {message}")]
    KeyStore {
        /// The file.
        path: String,
        /// Error.
        message: String,
    },
}

/// The authority that checks bearer tokens.
pub struct Authority {
    token_sha256: Option<[u8; 32]>,
    keys: Vec<KeyRecord>,
    /// SHA-256(token) → identity, so Argon2 runs once per key per process, not per request.
    verified: DashMap<[u8; 32], Identity>,
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Authority {
    /// From a static token and/or a key-store file.
    pub fn new(
        token: Option<&str>,
        token_file: Option<&Path>,
        key_store: Option<&Path>,
    ) -> Result<Self, AuthConfigError> {
        let mut token = token.filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            if let Some(p) = token_file {
                let t = std::fs::read_to_string(p).map_err(|e| AuthConfigError::TokenFile {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                let t = t.trim().to_string();
                if t.is_empty() {
                    return Err(AuthConfigError::TokenFile {
                        path: p.display().to_string(),
                        message: "is empty".into(),
                    });
                }
                token = Some(t);
            }
        }
        let keys = match key_store {
            None => Vec::new(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| AuthConfigError::KeyStore {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                let keys: Vec<KeyRecord> =
                    serde_json::from_str(&text).map_err(|e| AuthConfigError::KeyStore {
                        path: p.display().to_string(),
                        message: format!("line {} column {}: {e}", e.line(), e.column()),
                    })?;
                for k in &keys {
                    PasswordHash::new(&k.key_hash).map_err(|e| AuthConfigError::KeyStore {
                        path: p.display().to_string(),
                        message: format!(
                            "key `{}`: key_hash is not an Argon2 PHC string: {e}",
                            k.key_id
                        ),
                    })?;
                }
                keys
            }
        };
        Ok(Self {
            token_sha256: token.as_deref().map(sha256),
            keys,
            verified: DashMap::new(),
        })
    }

    /// Whether any credential is configured (if not, everything protected is 401).
    pub fn is_configured(&self) -> bool {
        self.token_sha256.is_some() || !self.keys.is_empty()
    }

    /// Roles of an identity (from its key record; the static token has none).
    pub fn roles(&self, id: &Identity) -> Vec<String> {
        id.key_id
            .as_ref()
            .and_then(|k| self.keys.iter().find(|r| &r.key_id == k))
            .map(|r| r.roles.clone())
            .unwrap_or_default()
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Identity, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        let (scheme, token) = header.split_once(' ').ok_or(AuthFailure::WrongScheme)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::WrongScheme);
        }
        let token = token.trim();
        self.check_token(token)
    }

    /// Checks a bare token (e.g. from a query string).
    pub fn check_token(&self, token: &str) -> Result<Identity, AuthFailure> {
        if !self.is_configured() {
            return Err(AuthFailure::NotConfigured);
        }
        let h = sha256(token);
        if !self.keys.is_empty() {
            if let Some(id) = self.verified.get(&h) {
                return Ok(id.clone());
            }
            let (key_id, secret) = token.split_once('.').ok_or(AuthFailure::Invalid)?;
            // Constant-time over the candidates: look at every record.
            let mut found: Option<&KeyRecord> = None;
            for k in &self.keys {
                if bool::from(k.key_id.as_bytes().ct_eq(key_id.as_bytes())) {
                    found = Some(k);
                }
            }
            let k = found.ok_or(AuthFailure::Invalid)?;
            let parsed = PasswordHash::new(&k.key_hash).map_err(|_| AuthFailure::Invalid)?;
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .map_err(|_| AuthFailure::Invalid)?;
            if k.revoked {
                return Err(AuthFailure::Revoked(k.key_id.clone()));
            }
            let id = Identity {
                key_id: Some(k.key_id.clone()),
                scope: k.agent_scope.clone(),
            };
            self.verified.insert(h, id.clone());
            return Ok(id);
        }
        match &self.token_sha256 {
            Some(expected) if bool::from(expected.ct_eq(&h)) => Ok(Identity {
                key_id: None,
                scope: None,
            }),
            _ => Err(AuthFailure::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    #[test]
    fn static_token() {
        let a = Authority::new(Some("s3cret"), None, None).unwrap();
        assert!(a.authenticate(Some("Bearer s3cret")).unwrap().is_admin());
        assert!(
            a.authenticate(Some("bearer s3cret")).is_ok(),
            "scheme is case-insensitive"
        );
        assert_eq!(
            a.authenticate(Some("Bearer nope")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            a.authenticate(Some("Basic s3cret")),
            Err(AuthFailure::WrongScheme)
        );
        assert_eq!(a.authenticate(None), Err(AuthFailure::Missing));
    }

    #[test]
    fn nothing_configured_fails_closed() {
        let a = Authority::new(None, None, None).unwrap();
        assert_eq!(
            a.authenticate(Some("Bearer anything")),
            Err(AuthFailure::NotConfigured)
        );
    }

    #[test]
    fn key_store_with_scopes_and_revocation() {
        let dir = std::env::temp_dir().join(format!("symbi-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let hash = |s: &str| {
            Argon2::default()
                .hash_password(s.as_bytes(), &salt)
                .unwrap()
                .to_string()
        };
        let agent = Uuid::new_v4();
        let store = serde_json::json!([
            {"key_id": "admin", "key_hash": hash("aa"), "agent_scope": null},
            {"key_id": "scoped", "key_hash": hash("bb"), "agent_scope": [agent]},
            {"key_id": "old", "key_hash": hash("cc"), "revoked": true}
        ]);
        let p = dir.join("keys.json");
        std::fs::write(&p, store.to_string()).unwrap();
        let a = Authority::new(Some("ignored-static"), None, Some(&p)).unwrap();
        assert!(a.authenticate(Some("Bearer admin.aa")).unwrap().is_admin());
        let s = a.authenticate(Some("Bearer scoped.bb")).unwrap();
        assert!(!s.is_admin() && s.may_access(&agent) && !s.may_access(&Uuid::new_v4()));
        assert_eq!(
            a.authenticate(Some("Bearer old.cc")),
            Err(AuthFailure::Revoked("old".into()))
        );
        assert_eq!(
            a.authenticate(Some("Bearer admin.zz")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            a.authenticate(Some("Bearer ignored-static")),
            Err(AuthFailure::Invalid),
            "the store is the only authority"
        );
        // Cached path gives the same answer.
        assert!(a.authenticate(Some("Bearer admin.aa")).unwrap().is_admin());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
