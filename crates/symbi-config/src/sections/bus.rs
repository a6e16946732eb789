//! `[bus]`: the communication bus backend.

use serde::{Deserialize, Serialize};

/// Bus backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// In-process (single node).
    #[default]
    Memory,
    /// NATS / JetStream (multi-node).
    Nats,
}

/// Security mode of in-process delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BusSecurityMode {
    /// Every message encrypted and signed.
    #[default]
    SignedEveryMessage,
    /// An authenticated per-channel session (AEAD) with periodic signatures.
    Session,
    /// No cryptography (trusted single process; measured as the baseline).
    Plaintext,
}

/// `[bus]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSection {
    /// `memory` (default) or `nats`.
    pub backend: BusBackend,
    /// NATS server URL for the `nats` backend.
    pub nats_url: String,
    /// Security mode of in-process messages.
    pub security: BusSecurityMode,
    /// Delivery attempts before a direct message is dead-lettered.
    pub max_delivery_attempts: u32,
    /// Accepted clock skew for message freshness, in seconds.
    pub max_clock_skew_s: u64,
}

impl Default for BusSection {
    fn default() -> Self {
        Self {
            backend: BusBackend::Memory,
            nats_url: "nats://127.0.0.1:4222".into(),
            security: BusSecurityMode::SignedEveryMessage,
            max_delivery_attempts: 5,
            max_clock_skew_s: 30,
        }
    }
}
