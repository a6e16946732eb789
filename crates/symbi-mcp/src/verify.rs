//! SchemaPin verification of MCP tool schemas.
//!
//! ## What is signed, and where the signature travels
//!
//! SchemaPin signs "a tool schema" with a detached signature but leaves the carrier to the
//! protocol. For MCP, symbi defines:
//!
//! * the **signed document** of a tool is the JSON object
//!   `{"name": …, "description": …, "inputSchema": …, "outputSchema": …}` built from the
//!   tool as listed by `tools/list` (`description` and `outputSchema` only when the tool has
//!   them). `title`, `annotations`, `icons` and `_meta` are not covered: they are hints or
//!   carry the signature itself. The document is canonicalized and hashed as SchemaPin §4
//!   says (sorted keys, no whitespace, UTF-8, SHA-256) and signed with ECDSA P-256 — what
//!   `schemapin`'s `SchemaSigningWorkflow.sign_schema` (Python) and
//!   `schemapin::crypto::sign_data(key, canonicalize_and_hash(doc))` (Rust) produce;
//! * the **signature** is the tool's `_meta["schemapin/signature"]` (Base64 DER), and the
//!   tool may name its publisher in `_meta["schemapin/domain"]`, which must then equal the
//!   server's configured publisher domain.
//!
//! ## Where the key comes from
//!
//! A server's publisher is configured (`publisher` = a domain, whose
//! `https://DOMAIN/.well-known/schemapin.json` is fetched, or a base URL; and/or
//! `publisher_key` = a PEM key). A tool's own claim never chooses the key: a server that
//! could name its own publisher could vouch for itself. The discovery document's
//! `revoked_keys` and its `revocation_endpoint` document are checked on every refresh
//! (unreachable revocation endpoint ⇒ failure, fail closed).
//!
//! ## Pinning
//!
//! The first key that verifies a signature for a publisher domain is pinned in the
//! [`PinStore`]; any later different key for that domain is refused
//! (`KEY_PIN_MISMATCH`) until an operator runs `symbi tools verify SERVER --repin`. A
//! signature is checked *before* its key is pinned, so a bad signature never pins a key.

use crate::error::McpError;
use crate::pins::{PinCheck, PinStore};
use schemapin::types::discovery::WellKnownResponse;
use schemapin::types::revocation::RevocationDocument;
use serde::Serialize;
use serde_json::{Map, Value};
use symbi_types::decision::VerificationMode;

/// `_meta` key of a tool's SchemaPin signature (Base64 DER ECDSA P-256).
pub const META_SIGNATURE: &str = "schemapin/signature";
/// `_meta` key of the publisher domain a tool claims.
pub const META_DOMAIN: &str = "schemapin/domain";

/// The signed document of a tool (see the module documentation), from the tool's JSON as
/// listed by `tools/list`.
///
/// ```
/// let tool = serde_json::json!({"name": "add", "description": "Adds", "title": "x",
///     "inputSchema": {"type": "object"}, "_meta": {"schemapin/signature": "…"}});
/// let doc = symbi_mcp::verify::signed_document(&tool);
/// assert_eq!(doc, serde_json::json!({"name": "add", "description": "Adds", "inputSchema": {"type": "object"}}));
/// ```
pub fn signed_document(tool: &Value) -> Value {
    let mut doc = Map::new();
    for key in ["name", "description", "inputSchema", "outputSchema"] {
        if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
            doc.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(doc)
}

/// The outcome of verifying one tool.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VerificationStatus {
    /// The signature verifies with the publisher's (pinned) key.
    Verified {
        /// Publisher domain (pin identity).
        domain: String,
        /// `sha256:…` fingerprint of the key.
        fingerprint: String,
        /// `first_use` (pinned by this verification) or `pinned`.
        pin: String,
        /// Publisher name from the discovery document.
        #[serde(skip_serializing_if = "Option::is_none")]
        developer: Option<String>,
    },
    /// The tool carries no signature.
    Unsigned,
    /// The signature, key, pin or revocation check failed.
    Invalid {
        /// SchemaPin error code (`SIGNATURE_INVALID`, `KEY_PIN_MISMATCH`, `KEY_REVOKED`,
        /// `DOMAIN_MISMATCH`, `DISCOVERY_FETCH_FAILED`, `DISCOVERY_INVALID`, `KEY_NOT_FOUND`).
        code: String,
        /// What failed, for people.
        reason: String,
    },
    /// Verification is disabled for this server.
    Skipped,
}

impl VerificationStatus {
    /// Whether the schema is verified.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }

    /// One word: `verified`, `unsigned`, `invalid`, `skipped`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Verified { .. } => "verified",
            Self::Unsigned => "unsigned",
            Self::Invalid { .. } => "invalid",
            Self::Skipped => "skipped",
        }
    }

    /// Why the tool is not verified, for error messages.
    pub fn reason(&self) -> String {
        match self {
            Self::Verified {
                domain,
                fingerprint,
                ..
            } => format!("verified with {fingerprint} of {domain}"),
            Self::Unsigned => {
                format!("the tool's schema is unsigned (no `_meta[\"{META_SIGNATURE}\"]`)")
            }
            Self::Invalid { code, reason } => format!("{code}: {reason}"),
            Self::Skipped => "tool verification is disabled for this server".into(),
        }
    }

    fn invalid(code: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// Whether a tool with `status` may be offered under `mode`: strict needs a verified
/// schema; warn and disabled offer everything.
pub fn accepted(mode: VerificationMode, status: &VerificationStatus) -> bool {
    match mode {
        VerificationMode::Strict => status.is_verified(),
        VerificationMode::Warn | VerificationMode::Disabled => true,
    }
}

/// A publisher's key material for one refresh of a server's tools.
#[derive(Clone, Debug)]
pub struct PublisherKeys {
    /// Pin identity.
    pub domain: String,
    /// The discovery document (built from the configured key when there is no URL), or why
    /// it could not be had.
    pub discovery: Result<WellKnownResponse, String>,
    /// The standalone revocation document, when the discovery document names one.
    pub revocation: Option<RevocationDocument>,
    /// The key's fingerprint, computed once.
    fingerprint: Result<String, String>,
}

impl PublisherKeys {
    /// Key material from a configured PEM key and an optional fetched discovery document:
    /// the configured key wins; the document contributes its revocation lists.
    pub fn new(
        domain: String,
        configured_key: Option<&str>,
        fetched: Option<Result<WellKnownResponse, String>>,
        revocation: Option<RevocationDocument>,
    ) -> Self {
        let discovery = match (configured_key, fetched) {
            (Some(pem), Some(Ok(doc))) => Ok(WellKnownResponse {
                public_key_pem: pem.to_string(),
                ..doc
            }),
            // A configured key stands on its own only when no discovery was asked for: a
            // publisher whose document cannot be fetched may have revoked that key.
            (Some(_), Some(Err(e))) => Err(e),
            (Some(pem), None) => Ok(schemapin::discovery::build_well_known_response(
                pem,
                None,
                vec![],
                "1.2",
            )),
            (None, Some(r)) => r,
            (None, None) => Err("no publisher key configured".into()),
        };
        let fingerprint = match &discovery {
            Ok(d) => schemapin::discovery::validate_well_known_response(d)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    schemapin::crypto::calculate_key_id(&d.public_key_pem)
                        .map_err(|e| e.to_string())
                }),
            Err(e) => Err(e.clone()),
        };
        Self {
            domain,
            discovery,
            revocation,
            fingerprint,
        }
    }

    /// The key's `sha256:` fingerprint, if the key is usable.
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref().ok()
    }
}

/// Verifies one tool (its JSON as listed) against `keys` (None: the server has no publisher
/// configured) and the pin store, pinning the key on first use.
pub fn verify_tool(
    tool: &Value,
    keys: Option<&PublisherKeys>,
    pins: &PinStore,
) -> Result<VerificationStatus, McpError> {
    let meta = tool.get("_meta");
    let Some(sig) = meta.and_then(|m| m.get(META_SIGNATURE)) else {
        return Ok(VerificationStatus::Unsigned);
    };
    let Some(sig) = sig.as_str() else {
        return Ok(VerificationStatus::invalid(
            "SIGNATURE_INVALID",
            format!("`_meta[\"{META_SIGNATURE}\"]` is not a string"),
        ));
    };
    let Some(keys) = keys else {
        return Ok(VerificationStatus::invalid(
            "KEY_NOT_FOUND",
            "the tool is signed but its server has no `publisher` or `publisher_key` configured, so there is no key to trust",
        ));
    };
    if let Some(claimed) = meta
        .and_then(|m| m.get(META_DOMAIN))
        .and_then(Value::as_str)
    {
        if !claimed.eq_ignore_ascii_case(&keys.domain) && !keys.domain.starts_with("server:") {
            return Ok(VerificationStatus::invalid(
                "DOMAIN_MISMATCH",
                format!(
                    "the tool claims publisher `{claimed}` but the server's configured publisher is `{}`",
                    keys.domain
                ),
            ));
        }
    }
    let discovery = match &keys.discovery {
        Ok(d) => d,
        Err(e) => {
            return Ok(VerificationStatus::invalid(
                "DISCOVERY_FETCH_FAILED",
                format!("publisher key of `{}` unavailable: {e}", keys.domain),
            ));
        }
    };
    let fingerprint = match &keys.fingerprint {
        Ok(f) => f.as_str(),
        Err(e) => {
            return Ok(VerificationStatus::invalid(
                "DISCOVERY_INVALID",
                format!("publisher key of `{}` unusable: {e}", keys.domain),
            ));
        }
    };
    if let Err(e) = schemapin::revocation::check_revocation_combined(
        &discovery.revoked_keys,
        keys.revocation.as_ref(),
        fingerprint,
    ) {
        return Ok(VerificationStatus::invalid(
            "KEY_REVOKED",
            format!(
                "publisher key {fingerprint} of `{}` is revoked: {e}",
                keys.domain
            ),
        ));
    }
    let pinned = pins.check(&keys.domain, fingerprint)?;
    if let PinCheck::Mismatch { pinned } = &pinned {
        return Ok(VerificationStatus::invalid(
            "KEY_PIN_MISMATCH",
            mismatch_reason(&keys.domain, pinned, fingerprint),
        ));
    }
    let hash = schemapin::canonicalize::canonicalize_and_hash(&signed_document(tool));
    match schemapin::crypto::verify_signature(&discovery.public_key_pem, &hash, sig) {
        Ok(true) => {}
        Ok(false) => {
            return Ok(VerificationStatus::invalid(
                "SIGNATURE_INVALID",
                format!(
                    "the schema does not match its signature under key {fingerprint} of `{}` (tampered schema or wrong key)",
                    keys.domain
                ),
            ));
        }
        Err(e) => {
            return Ok(VerificationStatus::invalid(
                "SIGNATURE_INVALID",
                format!("malformed signature: {e}"),
            ));
        }
    }
    let pin = match pinned {
        PinCheck::Matched { .. } => "pinned",
        PinCheck::Unpinned => match pins.pin_first_use(&keys.domain, fingerprint)? {
            PinCheck::Matched { .. } => "first_use",
            PinCheck::Mismatch { pinned } => {
                return Ok(VerificationStatus::invalid(
                    "KEY_PIN_MISMATCH",
                    mismatch_reason(&keys.domain, &pinned, fingerprint),
                ));
            }
            PinCheck::Unpinned => unreachable!("pin_first_use leaves a pin"),
        },
        PinCheck::Mismatch { .. } => unreachable!("handled above"),
    };
    Ok(VerificationStatus::Verified {
        domain: keys.domain.clone(),
        fingerprint: fingerprint.to_string(),
        pin: pin.into(),
        developer: discovery.developer_name.clone(),
    })
}

fn mismatch_reason(domain: &str, pinned: &[String], offered: &str) -> String {
    format!(
        "the publisher key of `{domain}` changed: pinned {}, offered {offered} (possible key substitution); if the publisher rotated its key on purpose, accept the new key with `symbi tools verify SERVER --repin`",
        pinned.join(", ")
    )
}

/// Fetches `BASE/.well-known/schemapin.json` and, when it names one, the revocation
/// document. Redirects are refused (a trust anchor must come from where it was asked).
pub async fn fetch_publisher(
    client: &reqwest::Client,
    base_url: &str,
) -> Result<(WellKnownResponse, Option<RevocationDocument>), String> {
    let url = format!("{base_url}/.well-known/schemapin.json");
    let doc: WellKnownResponse = get_json(client, &url).await?;
    schemapin::discovery::validate_well_known_response(&doc).map_err(|e| format!("{url}: {e}"))?;
    let revocation = match &doc.revocation_endpoint {
        Some(ep) => Some(
            get_json::<RevocationDocument>(client, ep)
                .await
                .map_err(|e| format!("revocation endpoint unreachable, failing closed: {e}"))?,
        ),
        None => None,
    };
    Ok((doc, revocation))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    resp.json::<T>()
        .await
        .map_err(|e| format!("{url}: not a valid document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signed(tool: &Value, private_pem: &str) -> Value {
        let hash = schemapin::canonicalize::canonicalize_and_hash(&signed_document(tool));
        let sig = schemapin::crypto::sign_data(private_pem, &hash).unwrap();
        let mut t = tool.clone();
        t["_meta"] = json!({ META_SIGNATURE: sig });
        t
    }

    #[test]
    fn verify_pin_tamper_substitute_revoke() {
        let d = tempfile::tempdir().unwrap();
        let pins = PinStore::open(d.path()).unwrap();
        let kp = schemapin::crypto::generate_key_pair().unwrap();
        let tool = json!({"name": "add", "description": "Adds", "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}}}});
        let t = signed(&tool, &kp.private_key_pem);
        let keys = PublisherKeys::new("example.com".into(), Some(&kp.public_key_pem), None, None);

        let s = verify_tool(&t, Some(&keys), &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Verified { pin, .. } if pin == "first_use"),
            "{s:?}"
        );
        let s = verify_tool(&t, Some(&keys), &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Verified { pin, .. } if pin == "pinned"),
            "{s:?}"
        );

        let mut tampered = t.clone();
        tampered["description"] = json!("Adds, and mails your files away");
        let s = verify_tool(&tampered, Some(&keys), &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Invalid { code, .. } if code == "SIGNATURE_INVALID"),
            "{s:?}"
        );

        let other = schemapin::crypto::generate_key_pair().unwrap();
        let substituted = signed(&tool, &other.private_key_pem);
        let keys2 = PublisherKeys::new(
            "example.com".into(),
            Some(&other.public_key_pem),
            None,
            None,
        );
        let s = verify_tool(&substituted, Some(&keys2), &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Invalid { code, reason } if code == "KEY_PIN_MISMATCH" && reason.contains("--repin")),
            "{s:?}"
        );

        let revoked = WellKnownResponse {
            revoked_keys: vec![keys.fingerprint().unwrap().to_string()],
            ..schemapin::discovery::build_well_known_response(
                &kp.public_key_pem,
                None,
                vec![],
                "1.2",
            )
        };
        let keys3 = PublisherKeys::new("example.com".into(), None, Some(Ok(revoked)), None);
        let s = verify_tool(&t, Some(&keys3), &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Invalid { code, .. } if code == "KEY_REVOKED"),
            "{s:?}"
        );

        assert_eq!(
            verify_tool(&tool, Some(&keys), &pins).unwrap(),
            VerificationStatus::Unsigned
        );
        let s = verify_tool(&t, None, &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Invalid { code, .. } if code == "KEY_NOT_FOUND"),
            "{s:?}"
        );
    }

    #[test]
    fn bad_signature_never_pins_a_key() {
        let d = tempfile::tempdir().unwrap();
        let pins = PinStore::open(d.path()).unwrap();
        let kp = schemapin::crypto::generate_key_pair().unwrap();
        let other = schemapin::crypto::generate_key_pair().unwrap();
        let t = signed(
            &json!({"name": "x", "inputSchema": {}}),
            &other.private_key_pem,
        );
        let keys = PublisherKeys::new("p.example".into(), Some(&kp.public_key_pem), None, None);
        assert!(!verify_tool(&t, Some(&keys), &pins).unwrap().is_verified());
        assert_eq!(
            pins.check("p.example", keys.fingerprint().unwrap())
                .unwrap(),
            PinCheck::Unpinned
        );
    }

    #[test]
    fn claimed_domain_must_match() {
        let d = tempfile::tempdir().unwrap();
        let pins = PinStore::open(d.path()).unwrap();
        let kp = schemapin::crypto::generate_key_pair().unwrap();
        let mut t = signed(
            &json!({"name": "x", "inputSchema": {}}),
            &kp.private_key_pem,
        );
        t["_meta"][META_DOMAIN] = json!("evil.example");
        let keys = PublisherKeys::new("good.example".into(), Some(&kp.public_key_pem), None, None);
        let s = verify_tool(&t, Some(&keys), &pins).unwrap();
        assert!(
            matches!(&s, VerificationStatus::Invalid { code, .. } if code == "DOMAIN_MISMATCH"),
            "{s:?}"
        );
    }

    #[test]
    fn strict_accepts_only_verified() {
        assert!(!accepted(
            VerificationMode::Strict,
            &VerificationStatus::Unsigned
        ));
        assert!(accepted(
            VerificationMode::Warn,
            &VerificationStatus::Unsigned
        ));
        assert!(accepted(
            VerificationMode::Disabled,
            &VerificationStatus::Skipped
        ));
    }
}
