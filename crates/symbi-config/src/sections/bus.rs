//! `[bus]`: the communication bus (backend, security mode, delivery guarantees, limits).
//!
//! See `docs/bus.md` for what each setting means in operation.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use symbi_types::{ByteSize, HumanDuration};

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

/// Security mode of messages (both backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BusSecurityMode {
    /// Every message encrypted (AES-256-GCM) and signed (Ed25519).
    #[default]
    SignedEveryMessage,
    /// An authenticated per-channel session: AEAD per message with a session key bound to
    /// the sender by a signed handshake; the handshake is re-signed periodically.
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
    /// Security mode of messages.
    pub security: BusSecurityMode,
    /// Delivery attempts before a direct message is dead-lettered.
    #[serde(deserialize_with = "u32_in::<1, 1000, _>")]
    pub max_delivery_attempts: u32,
    /// Accepted clock skew for message freshness, in seconds.
    #[serde(deserialize_with = "u64_in::<1, 3600, _>")]
    pub max_clock_skew_s: u64,
    /// How long a receiver may hold a direct message without acknowledging it before it
    /// is redelivered (counts as a failed attempt).
    #[serde(deserialize_with = "nonzero_duration")]
    pub ack_wait: HumanDuration,
    /// First retry delay after a failed delivery; doubles per attempt up to `retry_backoff_max`.
    #[serde(deserialize_with = "nonzero_duration")]
    pub retry_backoff_initial: HumanDuration,
    /// Upper bound of the retry delay.
    #[serde(deserialize_with = "nonzero_duration")]
    pub retry_backoff_max: HumanDuration,
    /// Time to live of a message when the sender gives none.
    #[serde(deserialize_with = "nonzero_duration")]
    pub default_ttl: HumanDuration,
    /// Longest time to live a sender may ask for.
    #[serde(deserialize_with = "nonzero_duration")]
    pub max_ttl: HumanDuration,
    /// Largest payload accepted.
    #[serde(deserialize_with = "size_at_least::<1, _>")]
    pub max_payload_size: ByteSize,
    /// Bytes of payload one inbox or subscription queue may hold (the count bound is
    /// `[runtime] message_buffer_size`).
    #[serde(deserialize_with = "size_at_least::<1024, _>")]
    pub max_queue_bytes: ByteSize,
    /// How long a sender waits for room in a full queue before `QueueFull`.
    #[serde(deserialize_with = "nonzero_duration")]
    pub send_timeout: HumanDuration,
    /// Messages per second one agent may send (direct, publish, request); 0 = no limit.
    pub rate_limit_per_agent: u32,
    /// Burst above the per-second rate (at least 1 when limited).
    pub rate_limit_burst: u32,
    /// Dead letters kept (oldest dropped beyond this).
    #[serde(deserialize_with = "usize_in::<1, 100_000_000, _>")]
    pub dead_letter_capacity: usize,
    /// Message statuses kept for `message_status`: at least about the newest this many;
    /// older ones are dropped a generation at a time (up to twice this many are held).
    #[serde(deserialize_with = "usize_in::<1, 100_000_000, _>")]
    pub status_capacity: usize,
    /// Message ids remembered for replay detection (the accepted age shrinks below the
    /// clock-skew window when the rate exceeds capacity / window).
    #[serde(deserialize_with = "usize_in::<1024, 100_000_000, _>")]
    pub replay_window_capacity: usize,
    /// Session mode: messages per session before a new signed handshake.
    #[serde(deserialize_with = "u64_in::<1, 1_000_000_000, _>")]
    pub session_rekey_messages: u64,
    /// Session mode: age of a session before a new signed handshake.
    #[serde(deserialize_with = "nonzero_duration")]
    pub session_rekey_interval: HumanDuration,
    /// The bus master secret (hex seed, mode 0600) from which per-agent identity keys and
    /// per-channel AEAD keys are derived. Relative paths are under the data directory;
    /// default `keys/bus-master.key`. Every node of a NATS cluster needs the same file.
    pub master_key_file: Option<PathBuf>,
}

impl Default for BusSection {
    fn default() -> Self {
        Self {
            backend: BusBackend::Memory,
            nats_url: "nats://127.0.0.1:4222".into(),
            security: BusSecurityMode::SignedEveryMessage,
            max_delivery_attempts: 5,
            max_clock_skew_s: 30,
            ack_wait: HumanDuration(Duration::from_secs(30)),
            retry_backoff_initial: HumanDuration(Duration::from_millis(100)),
            retry_backoff_max: HumanDuration(Duration::from_secs(30)),
            default_ttl: HumanDuration(Duration::from_secs(300)),
            max_ttl: HumanDuration(Duration::from_secs(86_400)),
            max_payload_size: ByteSize(1 << 20),
            max_queue_bytes: ByteSize(64 << 20),
            send_timeout: HumanDuration(Duration::from_secs(5)),
            rate_limit_per_agent: 10_000,
            rate_limit_burst: 10_000,
            dead_letter_capacity: 100_000,
            // ≥ 100 s of history at 1,000 msg/s in ~4–7 MiB; 1,000,000 cost 40–75 MiB and,
            // out of cache, ~15 % of in-process direct throughput (docs/benchmarks/bus.md).
            status_capacity: 100_000,
            replay_window_capacity: 4_000_000,
            session_rekey_messages: 100_000,
            session_rekey_interval: HumanDuration(Duration::from_secs(60)),
            master_key_file: None,
        }
    }
}
