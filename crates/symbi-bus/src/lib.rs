//! The symbi communication bus (SPEC §6): direct messages with delivery guarantees, topic
//! publish/subscribe with NATS-style wildcards, request/response with timeout; secure
//! messages (AES-256-GCM + Ed25519) with freshness and replay checks; policy-gated routing
//! and per-agent rate limits; an in-process backend and a NATS/JetStream backend behind
//! one API.
//!
//! * [`Bus`] — the API the runtime calls: [`Bus::send`], [`Bus::publish`],
//!   [`Bus::subscribe`], [`Bus::request`] / [`Bus::respond`], [`Bus::inbox`],
//!   [`Bus::inbox_drain`], [`Bus::message_status`], [`Bus::dead_letters`], [`Bus::redrive`].
//! * [`topic`] — topic names (`a/b` ≡ `a.b`) and patterns (`*`, `>`).
//! * [`secure`] — the wire format, [`SecureMessage`], sealing and verification, the replay
//!   window.
//! * [`keys`] — identity and channel keys (derived from a master secret, or provisioned).
//!
//! Both backends share everything above the transport: policy, rate limits, sealing,
//! verification, statuses. docs/bus.md explains the patterns, the security modes and
//! exactly what each guarantees.

mod bus;
mod core;
pub mod error;
pub mod keys;
pub mod loadtest;
mod memory;
pub mod message;
mod nats;
mod queue;
pub mod secure;
pub mod topic;
mod transport;

pub use bus::Bus;
pub use core::BusSettings;
pub use error::BusError;
pub use keys::KeyRing;
pub use message::{DeadLetter, DeliveryStatus, Message, MessageId, MessageType, SendOptions};
pub use secure::{Codec, ReplayWindow, SecureMessage, Violation};
pub use symbi_config::sections::bus::{BusBackend, BusSecurityMode};
pub use topic::{Topic, TopicPattern};
pub use transport::{Delivery, Inbox, Subscription};
