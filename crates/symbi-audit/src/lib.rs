//! Audit trail: signed, hash-chained, Merkle-provable, crash-safe event log
