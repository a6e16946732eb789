//! What every backend shares: settings, the codec, the audit sink, the local status table.

use crate::error::BusError;
use crate::message::{DeliveryStatus, Message, MessageId};
use crate::secure::{Codec, ReplayWindow, Violation};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;
use symbi_config::Config;
use symbi_config::sections::bus::{BusBackend, BusSecurityMode};
use symbi_types::{EventDraft, EventSink};

/// The bus's effective settings (from `[bus]` and `[runtime] message_buffer_size`).
#[derive(Clone, Debug, PartialEq)]
pub struct BusSettings {
    /// Backend.
    pub backend: BusBackend,
    /// NATS URL.
    pub nats_url: String,
    /// Security mode.
    pub security: BusSecurityMode,
    /// Attempts before dead-lettering.
    pub max_delivery_attempts: u32,
    /// Accepted clock skew.
    pub max_clock_skew: Duration,
    /// Redelivery after this long without an ack.
    pub ack_wait: Duration,
    /// First retry delay.
    pub retry_backoff_initial: Duration,
    /// Largest retry delay.
    pub retry_backoff_max: Duration,
    /// Default time to live.
    pub default_ttl: Duration,
    /// Largest time to live.
    pub max_ttl: Duration,
    /// Largest payload.
    pub max_payload_size: usize,
    /// Messages per inbox / subscription queue.
    pub queue_capacity: usize,
    /// Bytes per inbox / subscription queue.
    pub queue_bytes: usize,
    /// How long a sender waits for room.
    pub send_timeout: Duration,
    /// Per-agent messages per second (0 = unlimited).
    pub rate_limit_per_agent: u32,
    /// Burst.
    pub rate_limit_burst: u32,
    /// Dead letters kept.
    pub dead_letter_capacity: usize,
    /// Statuses kept.
    pub status_capacity: usize,
    /// Replay window capacity.
    pub replay_window_capacity: usize,
    /// Session mode: messages per session.
    pub session_rekey_messages: u64,
    /// Session mode: session age.
    pub session_rekey_interval: Duration,
    /// Prefix of every NATS subject, stream and bucket name (lets several independent
    /// runtimes, or test cases, share one NATS server).
    pub nats_prefix: String,
}

impl Default for BusSettings {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

impl BusSettings {
    /// Settings from the configuration.
    pub fn from_config(c: &Config) -> Self {
        let b = &c.bus;
        Self {
            backend: b.backend,
            nats_url: b.nats_url.clone(),
            security: b.security,
            max_delivery_attempts: b.max_delivery_attempts,
            max_clock_skew: Duration::from_secs(b.max_clock_skew_s),
            ack_wait: b.ack_wait.0,
            retry_backoff_initial: b.retry_backoff_initial.0,
            retry_backoff_max: b.retry_backoff_max.0,
            default_ttl: b.default_ttl.0,
            max_ttl: b.max_ttl.0,
            max_payload_size: b.max_payload_size.0 as usize,
            queue_capacity: c.runtime.message_buffer_size,
            queue_bytes: b.max_queue_bytes.0 as usize,
            send_timeout: b.send_timeout.0,
            rate_limit_per_agent: b.rate_limit_per_agent,
            rate_limit_burst: b.rate_limit_burst,
            dead_letter_capacity: b.dead_letter_capacity,
            status_capacity: b.status_capacity,
            replay_window_capacity: b.replay_window_capacity,
            session_rekey_messages: b.session_rekey_messages,
            session_rekey_interval: b.session_rekey_interval.0,
            nats_prefix: "symbi".into(),
        }
    }

    /// Checks relations between values that each passed the config's own range checks.
    pub fn validate(&self) -> Result<(), BusError> {
        let bad = |m: String| Err(BusError::Config(m));
        if self.retry_backoff_initial > self.retry_backoff_max {
            return bad(format!(
                "retry_backoff_initial ({:?}) is longer than retry_backoff_max ({:?})",
                self.retry_backoff_initial, self.retry_backoff_max
            ));
        }
        if self.default_ttl > self.max_ttl {
            return bad(format!(
                "default_ttl ({:?}) is longer than max_ttl ({:?})",
                self.default_ttl, self.max_ttl
            ));
        }
        if self.rate_limit_per_agent > 0 && self.rate_limit_burst == 0 {
            return bad(
                "rate_limit_burst must be at least 1 when rate_limit_per_agent is set".into(),
            );
        }
        if self.max_payload_size as u64 > u32::MAX as u64 {
            return bad("max_payload_size must be below 4 GiB".into());
        }
        if self.nats_prefix.is_empty()
            || !self
                .nats_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(format!(
                "nats prefix `{}` must be letters, digits, _ or -",
                self.nats_prefix
            ));
        }
        Ok(())
    }

    /// Delay before attempt `next_attempt` (2, 3, …): initial × 2^(n−2), capped.
    pub fn backoff(&self, next_attempt: u32) -> Duration {
        let exp = next_attempt.saturating_sub(2).min(30);
        self.retry_backoff_initial
            .saturating_mul(1u32 << exp)
            .min(self.retry_backoff_max)
    }
}

/// Node-local delivery statuses, bounded: each of the 16 shards keeps at least its newest
/// `capacity / 16` (ids are random, so about the newest `capacity` overall); older ones are
/// forgotten a generation at a time (`message_status` then answers "unknown").
///
/// Each shard has a current and a previous map; when the current one holds its share of
/// `capacity` the two trade places and the new current one (the old previous) is emptied
/// whole, keeping its allocation. So a status costs one hash insert and no per-message
/// eviction (an insertion-order queue
/// plus a removal per message was a quarter of the sender's time at 700k messages/s),
/// at the price of keeping up to twice `capacity`.
pub(crate) struct StatusTable {
    shards: Vec<Mutex<StatusShard>>,
    per_shard: usize,
}

/// foldhash: ids can be chosen by callers (`SendOptions::id`), so the hasher is seeded per
/// process, and it is several times cheaper than SipHash on a 16-byte key.
type StatusMap = HashMap<MessageId, DeliveryStatus, foldhash::fast::RandomState>;

#[derive(Default)]
struct StatusShard {
    current: StatusMap,
    previous: StatusMap,
}

impl StatusShard {
    fn get_mut(&mut self, id: &MessageId) -> Option<&mut DeliveryStatus> {
        match self.current.get_mut(id) {
            Some(s) => Some(s),
            None => self.previous.get_mut(id),
        }
    }
}

const STATUS_SHARDS: usize = 16;

impl StatusTable {
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(STATUS_SHARDS).max(1);
        Self {
            shards: (0..STATUS_SHARDS)
                .map(|_| Mutex::new(StatusShard::default()))
                .collect(),
            per_shard,
        }
    }

    fn shard(&self, id: &MessageId) -> &Mutex<StatusShard> {
        // v7 UUIDs end in random bits.
        &self.shards[(id.0.as_u128() as usize) % STATUS_SHARDS]
    }

    fn insert(&self, s: &mut StatusShard, id: MessageId, status: DeliveryStatus) {
        s.current.insert(id, status);
        if s.current.len() >= self.per_shard {
            self.rotate(s);
        }
    }

    /// The two maps trade places and the old previous one is emptied in place: its
    /// allocation is reused, so a new generation never regrows (rehashing and faulting in
    /// fresh pages at every doubling).
    fn rotate(&self, s: &mut StatusShard) {
        std::mem::swap(&mut s.current, &mut s.previous);
        s.current.clear();
    }

    pub(crate) fn set(&self, id: MessageId, status: DeliveryStatus) {
        let mut s = self.shard(&id).lock();
        // Two probes for a new id (the sender's hot path): the insert into the current map
        // overwrites an entry there itself.
        match s.previous.get_mut(&id) {
            Some(cur) => *cur = status,
            None => self.insert(&mut s, id, status),
        }
    }

    /// Sets `status` unless the entry is already final (a late duplicate must not turn
    /// `delivered` back into `pending`).
    pub(crate) fn advance(&self, id: MessageId, status: DeliveryStatus) {
        let mut s = self.shard(&id).lock();
        match s.get_mut(&id) {
            Some(cur) if cur.is_final() => {}
            Some(cur) => *cur = status,
            None => self.insert(&mut s, id, status),
        }
    }

    /// Records an acknowledgement: `delivered` unless the newest generation holds a final
    /// status already. One probe, not two: an older entry in the previous generation (a
    /// retry's `pending`) is shadowed by this one, which [`Self::get`] finds first.
    pub(crate) fn acknowledged(&self, id: MessageId) {
        let mut s = self.shard(&id).lock();
        match s.current.entry(id) {
            Entry::Occupied(mut e) if !e.get().is_final() => {
                e.insert(DeliveryStatus::Delivered);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(e) => {
                e.insert(DeliveryStatus::Delivered);
                if s.current.len() >= self.per_shard {
                    self.rotate(&mut s);
                }
            }
        }
    }

    pub(crate) fn get(&self, id: MessageId) -> Option<DeliveryStatus> {
        self.shard(&id).lock().get_mut(&id).copied()
    }
}

/// Shared by the facade and the backend.
pub(crate) struct Core {
    pub(crate) settings: BusSettings,
    pub(crate) codec: Codec,
    pub(crate) audit: Arc<dyn EventSink>,
    pub(crate) status: StatusTable,
    /// The replay window of this node's in-process receive point.
    pub(crate) replay: ReplayWindow,
}

impl Core {
    pub(crate) fn new(settings: BusSettings, codec: Codec, audit: Arc<dyn EventSink>) -> Self {
        let skew_ms = settings.max_clock_skew.as_millis() as u64;
        Self {
            status: StatusTable::new(settings.status_capacity),
            replay: ReplayWindow::new(skew_ms, settings.replay_window_capacity),
            settings,
            codec,
            audit,
        }
    }

    pub(crate) fn new_replay_window(&self) -> ReplayWindow {
        ReplayWindow::new(
            self.settings.max_clock_skew.as_millis() as u64,
            self.settings.replay_window_capacity,
        )
    }

    /// Verifies and decodes; a failure is audited (in the background: the message is
    /// dropped either way) and yields `None`.
    pub(crate) fn accept(
        self: &Arc<Self>,
        wire: &Bytes,
        arrival_ms: u64,
        replay: &ReplayWindow,
        redelivery: bool,
        receive_point: &str,
    ) -> Option<Message> {
        match self.codec.open(wire, arrival_ms, Some(replay), redelivery) {
            Ok((m, _)) => Some(m),
            Err(v) => {
                self.report(v, receive_point);
                None
            }
        }
    }

    /// Records a security violation.
    pub(crate) fn report(self: &Arc<Self>, v: Violation, receive_point: &str) {
        tracing::warn!(check = v.check, detail = %v.detail, receive_point, "bus message dropped");
        let draft = violation_event(&v, receive_point);
        let audit = self.audit.clone();
        let fut = async move {
            if let Err(e) = audit.record(draft).await {
                tracing::error!(error = %e, "could not audit a bus security violation");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(fut);
            }
            Err(_) => tracing::error!("no tokio runtime to audit a bus security violation"),
        }
    }
}

/// The audit event of a violation: type `security_violation`, details `{check, detail,
/// component: "bus", receive_point, message_id?, claimed_sender?}`.
pub(crate) fn violation_event(v: &Violation, receive_point: &str) -> EventDraft {
    EventDraft::new(
        symbi_types::event::types::SECURITY_VIOLATION,
        serde_json::json!({
            "component": "bus",
            "check": v.check,
            "detail": v.detail,
            "receive_point": receive_point,
            "message_id": v.message_id.map(|i| i.to_string()),
            "claimed_sender": v.claimed_sender.map(|s| s.to_string()),
            "action": "dropped",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_is_bounded_and_final_states_stick() {
        let t = StatusTable::new(32);
        let first = MessageId::new();
        t.set(first, DeliveryStatus::Pending);
        t.advance(first, DeliveryStatus::Delivered);
        t.advance(first, DeliveryStatus::Pending);
        assert_eq!(t.get(first), Some(DeliveryStatus::Delivered));
        for _ in 0..10_000 {
            t.set(MessageId::new(), DeliveryStatus::Pending);
        }
        let total: usize = t
            .shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.current.len() + s.previous.len()
            })
            .sum();
        assert!(total <= 2 * (32 + STATUS_SHARDS), "{total}");
        // Recent statuses are still known: each shard keeps at least its newest 100 here, and
        // 200 random ids put about 12 into each.
        let t = StatusTable::new(1600);
        for _ in 0..10_000 {
            t.set(MessageId::new(), DeliveryStatus::Pending);
        }
        let newest: Vec<MessageId> = (0..200).map(|_| MessageId::new()).collect();
        for id in &newest {
            t.set(*id, DeliveryStatus::Pending);
        }
        for id in &newest {
            assert_eq!(t.get(*id), Some(DeliveryStatus::Pending));
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let s = BusSettings {
            retry_backoff_initial: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(500),
            ..BusSettings::default()
        };
        let d: Vec<u128> = (2..7).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn settings_relations_are_validated() {
        let mut s = BusSettings::default();
        s.validate().unwrap();
        s.default_ttl = Duration::from_secs(10 * 86_400);
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("default_ttl")
        );
    }
}
