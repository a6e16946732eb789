//! `[audit]`: where and how the audit log is kept (read by `symbi-audit`; the on-disk
//! format is described in `docs/audit-format.md`).

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use symbi_types::{ByteSize, HumanDuration};

/// `[audit]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// Directory of the log (`SYMBI_AUDIT_STORAGE`); default `<data dir>/audit`.
    pub storage: Option<PathBuf>,
    /// Segment files rotate once they reach this size.
    #[serde(deserialize_with = "size_at_least::<4096, _>")]
    pub segment_size: ByteSize,
    /// A signed checkpoint is written at least every this many events.
    #[serde(deserialize_with = "u64_in::<1, 100_000_000, _>")]
    pub checkpoint_every: u64,
    /// A signed checkpoint is also written when events arrived and this much time passed
    /// since the last one, so that recent events become provable quickly.
    #[serde(deserialize_with = "nonzero_duration")]
    pub checkpoint_interval: HumanDuration,
    /// Most events one group commit (one fsync) may carry.
    #[serde(deserialize_with = "usize_in::<1, 1_000_000, _>")]
    pub max_batch: usize,
    /// Which events carry their own Ed25519 signature: `per_event` (default) or
    /// `per_batch` (the last event of each group commit; the others are covered by it
    /// through the hash chain — far less CPU per event).
    pub signatures: AuditSignatures,
}

/// `[audit] signatures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuditSignatures {
    /// Every event is signed.
    #[default]
    PerEvent,
    /// The last event of each group commit (and every key rotation) is signed.
    PerBatch,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            storage: None,
            segment_size: ByteSize(64 << 20),
            checkpoint_every: 1000,
            checkpoint_interval: HumanDuration(std::time::Duration::from_secs(1)),
            max_batch: 8192,
            signatures: AuditSignatures::PerEvent,
        }
    }
}
