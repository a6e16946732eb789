//! C2SP signed notes, verifier keys and tlog checkpoints (docs/audit-format.md §6).
//!
//! A checkpoint body is
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, standard base64>
//! timestamp <unix milliseconds>
//! chain <chain hash after the last event, standard base64>
//! ```
//!
//! The last two are tlog-checkpoint extension lines. The signed note is the body, an empty
//! line and one line `— <key name> <base64(key id ‖ Ed25519 signature over the body)>` per
//! signature. Key ids and verifier keys (`name+hexid+base64(0x01 ‖ public key)`) follow the
//! C2SP signed-note specification, so standard note tooling can check our checkpoints.

use crate::error::{AuditError, Result};
use crate::record::{Hash, KeyId};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use symbi_crypto::{CryptoProvider, PublicKey, Signature, Signer};

/// Signature-type byte of Ed25519 in C2SP notes.
pub const ALG_ED25519: u8 = 0x01;

/// A named Ed25519 verifier key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteKey {
    /// Key name (for symbi: the log's origin).
    pub name: String,
    /// Public key.
    pub public: PublicKey,
    /// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public)[0..4]`.
    pub id: KeyId,
}

impl NoteKey {
    /// A key with its C2SP key id computed.
    pub fn new(p: &dyn CryptoProvider, name: &str, public: PublicKey) -> Result<NoteKey> {
        check_name(name)?;
        let h = p.sha256_parts(&[name.as_bytes(), b"\n", &[ALG_ED25519], &public]);
        Ok(NoteKey {
            name: name.to_string(),
            public,
            id: KeyId(h[..4].try_into().unwrap()),
        })
    }

    /// The C2SP verifier key string `name+hexid+base64(0x01 ‖ public)`.
    pub fn vkey(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(&self.public);
        format!("{}+{}+{}", self.name, self.id, B64.encode(k))
    }

    /// Parses a verifier key string, checking that its id matches its name and key.
    ///
    /// ```
    /// use symbi_audit::note::NoteKey;
    /// let p = symbi_crypto::provider("ring").unwrap();
    /// let k = NoteKey::new(&*p, "example.com/log", [7u8; 32]).unwrap();
    /// assert_eq!(NoteKey::parse_vkey(&*p, &k.vkey()).unwrap(), k);
    /// ```
    pub fn parse_vkey(p: &dyn CryptoProvider, s: &str) -> Result<NoteKey> {
        let bad = |m: &str| AuditError::Key(format!("verifier key `{s}`: {m}"));
        let s = s.trim();
        // Names cannot contain `+`; the base64 key can.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+base64key"));
        };
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("not an Ed25519 key (type byte 0x01 and 32 bytes)"));
        }
        let k = NoteKey::new(p, name, raw[1..].try_into().unwrap())?;
        if KeyId::parse(id) != Some(k.id) {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(k)
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(AuditError::Key(format!(
            "note key name `{name}` must be non-empty, without spaces or `+`"
        )));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub id: KeyId,
    /// Signature bytes.
    pub signature: Vec<u8>,
}

/// Signs `text` (which must end in a newline) and returns the whole note.
pub fn sign_note(text: &str, key: &NoteKey, signer: &dyn Signer) -> String {
    debug_assert!(text.ends_with('\n'));
    let sig = signer.sign(text.as_bytes());
    let mut blob = key.id.0.to_vec();
    blob.extend_from_slice(&sig);
    format!("{text}\n\u{2014} {} {}\n", key.name, B64.encode(blob))
}

/// Splits a note into its text and its signature lines.
pub fn parse_note(note: &str) -> Result<(&str, Vec<NoteSignature>)> {
    let bad = |m: &str| AuditError::Verification(format!("malformed signed note: {m}"));
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| bad("no empty line before the signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(bad("signature block does not end with a newline"));
    }
    let mut out = Vec::new();
    for line in sigs.lines() {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| bad("signature line does not start with `— `"))?;
        let (name, b64) = rest
            .rsplit_once(' ')
            .ok_or_else(|| bad("signature line has no key name"))?;
        let blob = B64
            .decode(b64)
            .map_err(|_| bad("signature is not base64"))?;
        if blob.len() < 5 {
            return Err(bad("signature too short"));
        }
        out.push(NoteSignature {
            name: name.to_string(),
            id: KeyId(blob[..4].try_into().unwrap()),
            signature: blob[4..].to_vec(),
        });
    }
    if out.is_empty() {
        return Err(bad("no signatures"));
    }
    Ok((text, out))
}

/// Verifies a note against `keys`; returns the text and the key whose signature verified.
/// Signatures by unknown keys are ignored (as the C2SP spec allows); at least one known
/// key must have signed.
pub fn verify_note<'k>(
    p: &dyn CryptoProvider,
    note: &str,
    keys: &'k [NoteKey],
) -> Result<(String, &'k NoteKey)> {
    let (text, sigs) = parse_note(note)?;
    for s in &sigs {
        if let Some(k) = keys.iter().find(|k| k.id == s.id && k.name == s.name) {
            let sig: Signature = s.signature.as_slice().try_into().map_err(|_| {
                AuditError::Verification("Ed25519 signature is not 64 bytes".into())
            })?;
            p.verify(&k.public, text.as_bytes(), &sig).map_err(|_| {
                AuditError::Verification(format!(
                    "signature by key {} ({}) does not verify",
                    k.id, k.name
                ))
            })?;
            return Ok((text.to_string(), k));
        }
    }
    let ids: Vec<String> = sigs
        .iter()
        .map(|s| format!("{} {}", s.name, s.id))
        .collect();
    Err(AuditError::Verification(format!(
        "signed only by unknown keys: {}",
        ids.join(", ")
    )))
}

/// A checkpoint: the state of the log at `size` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Origin line (the log's name).
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// RFC 9162 root hash of the first `size` events.
    pub root: Hash,
    /// When it was signed (Unix milliseconds); strictly increasing along the checkpoints.
    pub timestamp_ms: u64,
    /// Chain hash after event `size − 1` (zeros for size 0).
    pub chain: Hash,
}

impl Checkpoint {
    /// The note text (body) of this checkpoint.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntimestamp {}\nchain {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.timestamp_ms,
            B64.encode(self.chain)
        )
    }

    /// Parses a checkpoint body.
    pub fn parse_body(text: &str) -> Result<Checkpoint> {
        let bad = |m: String| AuditError::Verification(format!("malformed checkpoint: {m}"));
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .collect();
        if lines.len() < 5 {
            return Err(bad(format!("expected 5 lines, found {}", lines.len())));
        }
        let size = lines[1]
            .parse::<u64>()
            .map_err(|_| bad(format!("tree size `{}`", lines[1])))?;
        let hash = |s: &str, what: &str| -> Result<Hash> {
            B64.decode(s)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(format!("{what} `{s}`")))
        };
        let root = hash(lines[2], "root hash")?;
        let ts = lines[3]
            .strip_prefix("timestamp ")
            .and_then(|s| s.parse().ok());
        let chain = lines[4]
            .strip_prefix("chain ")
            .map(|s| hash(s, "chain hash"));
        match (ts, chain) {
            (Some(timestamp_ms), Some(chain)) => Ok(Checkpoint {
                origin: lines[0].to_string(),
                size,
                root,
                timestamp_ms,
                chain: chain?,
            }),
            _ => Err(bad("missing `timestamp` or `chain` extension line".into())),
        }
    }
}

/// A checkpoint with its signed note text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// The whole signed note.
    pub note: String,
}

impl SignedCheckpoint {
    /// Signs `cp` with `key`.
    pub fn sign(cp: Checkpoint, key: &NoteKey, signer: &dyn Signer) -> SignedCheckpoint {
        let note = sign_note(&cp.body(), key, signer);
        SignedCheckpoint {
            checkpoint: cp,
            note,
        }
    }

    /// Parses a note without verifying it.
    pub fn parse(note: &str) -> Result<SignedCheckpoint> {
        let (text, _) = parse_note(note)?;
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint::parse_body(text)?,
            note: note.to_string(),
        })
    }

    /// Verifies the note against `keys` and parses it.
    pub fn verify<'k>(
        p: &dyn CryptoProvider,
        note: &str,
        keys: &'k [NoteKey],
    ) -> Result<(SignedCheckpoint, &'k NoteKey)> {
        let (text, key) = verify_note(p, note, keys)?;
        let cp = Checkpoint::parse_body(&text)?;
        if cp.origin != key.name {
            return Err(AuditError::Verification(format!(
                "checkpoint origin `{}` differs from the signing key's name `{}`",
                cp.origin, key.name
            )));
        }
        Ok((
            SignedCheckpoint {
                checkpoint: cp,
                note: note.to_string(),
            },
            key,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_parse_verify() {
        let p = symbi_crypto::provider("ring").unwrap();
        let signer = p.signer_from_seed(&[3u8; 32]).unwrap();
        let key = NoteKey::new(&*p, "symbi-audit/0011223344556677", signer.public_key()).unwrap();
        let cp = Checkpoint {
            origin: key.name.clone(),
            size: 42,
            root: [5u8; 32],
            timestamp_ms: 1_764_150_557_123,
            chain: [6u8; 32],
        };
        let sc = SignedCheckpoint::sign(cp.clone(), &key, &*signer);
        assert!(
            sc.note
                .contains("\n\n\u{2014} symbi-audit/0011223344556677 ")
        );
        let (back, k) =
            SignedCheckpoint::verify(&*p, &sc.note, std::slice::from_ref(&key)).unwrap();
        assert_eq!(back.checkpoint, cp);
        assert_eq!(k, &key);
        let tampered = sc.note.replace("\n42\n", "\n43\n");
        assert!(SignedCheckpoint::verify(&*p, &tampered, std::slice::from_ref(&key)).is_err());
        let other = NoteKey::new(
            &*p,
            &key.name,
            p.signer_from_seed(&[4u8; 32]).unwrap().public_key(),
        )
        .unwrap();
        let e = SignedCheckpoint::verify(&*p, &sc.note, &[other]).unwrap_err();
        assert!(e.to_string().contains("unknown keys"), "{e}");
    }

    #[test]
    fn key_id_matches_go_sumdb_note() {
        // Vector from golang.org/x/mod/sumdb/note: the verifier key of "PeterNeumann".
        let p = symbi_crypto::provider("ring").unwrap();
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let k = NoteKey::parse_vkey(&*p, vkey).unwrap();
        assert_eq!(k.vkey(), vkey);
        assert_eq!(k.id.to_string(), "c74f20a3");
        // The private key of the same example: base64(0x01 ‖ seed).
        let seed = B64
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        let signer = p.signer_from_seed(&seed[1..].try_into().unwrap()).unwrap();
        assert_eq!(signer.public_key(), k.public);
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let note = sign_note(text, &k, &*signer);
        assert_eq!(
            note,
            format!(
                "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            )
        );
        assert_eq!(
            verify_note(&*p, &note, std::slice::from_ref(&k)).unwrap().0,
            text
        );
    }
}
