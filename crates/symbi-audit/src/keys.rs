//! Signing keys, verifier keys and key rotation (docs/audit-format.md §7).
//!
//! * `<data dir>/keys/audit-ed25519.key` — the current 32-byte Ed25519 seed, hex, mode 0600
//!   ([`symbi_crypto::load_or_create_seed`]).
//! * `<audit dir>/pubkeys` — every key the log ever used, one C2SP verifier key per line
//!   (`origin+keyid+base64(0x01 ‖ public key)`), oldest first. The first line is the trust
//!   anchor a third party pins; later keys are introduced by `key_rotation` events signed by
//!   the key they replace.

use crate::error::{AuditError, Result};
use crate::note::NoteKey;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use symbi_crypto::{CryptoProvider, PublicKey, Signature, Signer};

/// File name of the current signing seed under the keys directory.
pub const SIGNING_KEY_FILE: &str = "audit-ed25519.key";
/// A new seed written before a rotation event, renamed over the current one after it.
pub const NEXT_KEY_FILE: &str = "audit-ed25519.key.next";
/// File name of the verifier keys under the audit directory.
pub const PUBKEYS_FILE: &str = "pubkeys";
/// Domain separation prefix of the new key's statement in a rotation.
pub const ROTATION_PREFIX: &[u8] = b"symbi-audit/key-rotation/v1\n";

/// The log's origin (checkpoint origin line and key name): `symbi-audit/` followed by the
/// fingerprint of the log's first key.
pub fn origin_for(p: &dyn CryptoProvider, genesis: &PublicKey) -> String {
    format!("symbi-audit/{}", hex::encode(&p.sha256(genesis)[..8]))
}

/// Reads a verifier-key file (one vkey per line; blank lines and `#` comments ignored).
pub fn read_pubkeys(p: &dyn CryptoProvider, path: &Path) -> Result<Vec<NoteKey>> {
    let text = fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(
            NoteKey::parse_vkey(p, line)
                .map_err(|e| AuditError::Key(format!("{}:{}: {e}", path.display(), i + 1)))?,
        );
    }
    if keys.is_empty() {
        return Err(AuditError::Key(format!("{} lists no keys", path.display())));
    }
    Ok(keys)
}

/// Writes a verifier-key file atomically (temp file, fsync, rename, directory fsync).
pub fn write_pubkeys(path: &Path, keys: &[NoteKey]) -> Result<()> {
    let mut text = String::from("# symbi audit log verifier keys (C2SP vkey), oldest first\n");
    for k in keys {
        text.push_str(&k.vkey());
        text.push('\n');
    }
    atomic_write(path, text.as_bytes())
}

/// Writes a non-secret file atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| AuditError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| AuditError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| AuditError::io(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory so that a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

/// The message the new key signs in a rotation: prefix ‖ old public key ‖ new public key.
pub fn rotation_statement(old: &PublicKey, new: &PublicKey) -> Vec<u8> {
    let mut m = ROTATION_PREFIX.to_vec();
    m.extend_from_slice(old);
    m.extend_from_slice(new);
    m
}

/// Details of a `key_rotation` event. The event itself is signed by the old key; the new
/// key's signature over [`rotation_statement`] proves the log holds the new private key.
pub fn rotation_details(old: &NoteKey, new: &NoteKey, new_signer: &dyn Signer) -> Value {
    let sig = new_signer.sign(&rotation_statement(&old.public, &new.public));
    json!({
        "old_key_id": old.id.to_string(),
        "old_public_key": B64.encode(old.public),
        "new_key_id": new.id.to_string(),
        "new_public_key": B64.encode(new.public),
        "new_vkey": new.vkey(),
        "new_key_signature": B64.encode(sig),
    })
}

/// Checks a rotation event's details against the key that signed it and returns the new
/// key.
pub fn check_rotation(
    p: &dyn CryptoProvider,
    signed_by: &NoteKey,
    details: &Value,
) -> std::result::Result<NoteKey, String> {
    let field = |k: &str| {
        details
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("rotation details lack `{k}`"))
    };
    if field("old_key_id")? != signed_by.id.to_string() {
        return Err("rotation names an old key other than the key that signed it".into());
    }
    let new_pk: PublicKey = B64
        .decode(field("new_public_key")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("`new_public_key` is not a base64 Ed25519 key")?;
    let new = NoteKey::new(p, &signed_by.name, new_pk).map_err(|e| e.to_string())?;
    if field("new_key_id")? != new.id.to_string() {
        return Err("`new_key_id` does not match `new_public_key`".into());
    }
    let sig: Signature = B64
        .decode(field("new_key_signature")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("`new_key_signature` is not a base64 Ed25519 signature")?;
    p.verify(
        &new.public,
        &rotation_statement(&signed_by.public, &new.public),
        &sig,
    )
    .map_err(|_| {
        "the new key's signature over the rotation statement does not verify".to_string()
    })?;
    Ok(new)
}
