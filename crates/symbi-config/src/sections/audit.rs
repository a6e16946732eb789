//! `[audit]`: where and how the audit log is kept.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use symbi_types::ByteSize;

/// `[audit]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// Directory of the log (`SYMBI_AUDIT_STORAGE`); default `<data dir>/audit`.
    pub storage: Option<PathBuf>,
    /// Segment files rotate at this size.
    #[serde(deserialize_with = "size_at_least::<4096, _>")]
    pub segment_size: ByteSize,
    /// A signed checkpoint is written at least every this many events.
    #[serde(deserialize_with = "u64_in::<1, 100_000_000, _>")]
    pub checkpoint_every: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self { storage: None, segment_size: ByteSize(64 << 20), checkpoint_every: 1000 }
    }
}
