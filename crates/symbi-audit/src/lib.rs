//! Audit trail: a signed, hash-chained, Merkle-provable, crash-safe event log (SPEC §9).
//!
//! The byte-level format is specified in `docs/audit-format.md`; an independent verifier
//! (`tests/independent_verify.py`) checks logs from that document alone.
//!
//! * [`AuditLog`] — the writer and the runtime's [`EventSink`](symbi_types::EventSink):
//!   events are numbered, timestamped, canonicalized (RFC 8785), chained
//!   (`chain = SHA-256(prev ‖ body)`), signed (Ed25519 over the chain hash), framed
//!   (length + CRC-32C) and appended with group commit; `record` returns only after
//!   `fdatasync`. A torn tail after a crash is cut on open; any other damage refuses to
//!   open (fail closed).
//! * [`merkle`] — RFC 9162 tree hashing, inclusion and consistency proofs, and the
//!   post-order hash file that keeps proof generation at O(log² n) reads.
//! * [`note`] — C2SP signed notes and tlog checkpoints (signed, strictly increasing
//!   timestamps, chain-hash extension line).
//! * [`reader::LogReader`] — queries by agent, type and time; lookups by id; proofs.
//! * [`verify::verify_log`] — full verification naming the first bad event and why.
//! * [`report`] — compliance reports (HIPAA, GDPR, SOX, custom) as JSON or self-contained HTML.
//! * [`redact_details`] — detail levels for the DSL `audit` rules.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use symbi_audit::{AuditLog, AuditOptions, verify};
//! let p = symbi_crypto::provider("ring")?;
//! let log = AuditLog::open(AuditOptions::new("/tmp/symbi".as_ref()), p.clone())?;
//! log.append_blocking(symbi_types::EventDraft::new("custom", serde_json::json!({"k": "v"})))?;
//! log.close()?;
//! let report = verify::verify_log("/tmp/symbi/audit".as_ref(), &*p, &Default::default())?;
//! assert!(report.ok);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod index;
pub mod keys;
pub mod loadtest;
mod log;
pub mod merkle;
pub mod note;
pub mod reader;
pub mod record;
pub mod report;
pub mod segment;
pub mod verify;

pub use error::AuditError;
pub use log::{
    AppendTicket, AuditLog, AuditOptions, CHECKPOINTS_FILE, INDEX_FILE, LOCK_FILE, Signatures,
    StoredEvent, TREE_FILE,
};
pub use reader::{LogReader, Query};

use serde_json::{Map, Value};

/// How much of an event's details to keep (the DSL `audit` rules choose it per agent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailLevel {
    /// Everything the producer put in the draft (`all_operations`).
    Full,
    /// Everything except fields that carry data (`args`, `input`, `output`, `result`,
    /// `content`, `body`, `value`) and anything named like a credential.
    Metadata,
    /// Only the fields that say what happened: `phase`, `action`, `decision`, `reasons`,
    /// `outcome`, `error_kind`, `from`, `to`, `cause`, `execution_id`, digests.
    Minimal,
}

const DATA_FIELDS: &[&str] = &[
    "args", "input", "output", "result", "content", "body", "value", "named",
];
const MINIMAL_FIELDS: &[&str] = &[
    "phase",
    "action",
    "decision",
    "reasons",
    "outcome",
    "error_kind",
    "from",
    "to",
    "cause",
    "execution_id",
    "args_digest",
    "output_digest",
    "subject",
    "budget",
    "check",
];

fn is_secret_name(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "credential",
        "private_key",
        "authorization",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Applies a detail level to event details. Removed fields are listed in `"_redacted"` so a
/// reader knows something was left out on purpose.
///
/// ```
/// use symbi_audit::{redact_details, DetailLevel};
/// let d = serde_json::json!({"action": "read_file", "args": ["/etc/passwd"], "api_key": "k"});
/// let m = redact_details(&d, DetailLevel::Metadata);
/// assert_eq!(m, serde_json::json!({"action": "read_file", "_redacted": ["api_key", "args"]}));
/// ```
pub fn redact_details(details: &Value, level: DetailLevel) -> Value {
    let Value::Object(m) = details else {
        return details.clone();
    };
    if level == DetailLevel::Full {
        return details.clone();
    }
    let mut out = Map::new();
    let mut removed = Vec::new();
    for (k, v) in m {
        let keep = match level {
            DetailLevel::Full => true,
            DetailLevel::Metadata => !DATA_FIELDS.contains(&k.as_str()) && !is_secret_name(k),
            DetailLevel::Minimal => MINIMAL_FIELDS.contains(&k.as_str()),
        };
        if keep {
            out.insert(k.clone(), v.clone());
        } else {
            removed.push(k.clone());
        }
    }
    if !removed.is_empty() {
        removed.sort();
        out.insert("_redacted".into(), Value::from(removed));
    }
    Value::Object(out)
}
