//! Messages as receivers see them, their ids, types, delivery statuses and send options.

use crate::topic::Topic;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use symbi_types::{AgentId, AgentRuleSet, ExecutionId};
use uuid::Uuid;

/// Identity of one message: a UUID (v7, so ids sort by creation millisecond), printed in
/// canonical lower-case hyphenated form as the HTTP API requires.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub Uuid);

impl MessageId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self::at(now_ms())
    }

    /// A new id for a message created at `unix_ms`: the millisecond and 74 random bits
    /// from the thread's CSPRNG (`rand::rng()`, ChaCha, reseeded from the OS). Not
    /// `Uuid::now_v7`: that reads the OS random source with one `getrandom` system call
    /// per id, which was 17 % of the sender's time on the in-process bus.
    pub fn at(unix_ms: u64) -> Self {
        let mut random = [0u8; 10];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
        Self(uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0.hyphenated())
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What kind of message this is (the API's `message_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// A direct message to one agent (delivery guaranteed).
    Direct,
    /// A message published to a topic.
    Publish,
    /// A request awaiting a response.
    Request,
    /// The response to a request.
    Response,
}

impl MessageType {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Publish => "publish",
            Self::Request => "request",
            Self::Response => "response",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Self::Direct => 0,
            Self::Publish => 1,
            Self::Request => 2,
            Self::Response => 3,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Direct,
            1 => Self::Publish,
            2 => Self::Request,
            3 => Self::Response,
            _ => return None,
        })
    }
}

/// Delivery status of a message (the API's `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted, not yet acknowledged by the receiver.
    Pending,
    /// Acknowledged by the receiver (or drained from its inbox; for a publish: handed to
    /// every matching subscription).
    Delivered,
    /// Dead-lettered after the last failed attempt.
    Failed,
    /// Its time to live ran out before delivery.
    Expired,
}

impl DeliveryStatus {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// Whether no further change can happen.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// Milliseconds since the Unix epoch, now (the clock message timestamps use).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A message as a receiver sees it, after verification and decryption. Cloning is cheap:
/// the payload is a reference-counted [`Bytes`] shared by every receiver (no copy).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Unique id.
    pub id: MessageId,
    /// The sending agent.
    pub sender: AgentId,
    /// The receiving agent (direct, request, response).
    pub recipient: Option<AgentId>,
    /// The topic (publish).
    pub topic: Option<Topic>,
    /// For a response: the id of the request it answers.
    pub correlation_id: Option<MessageId>,
    /// The payload (opaque bytes; the HTTP API carries UTF-8 text).
    pub payload: Bytes,
    /// Direct, publish, request or response.
    pub message_type: MessageType,
    /// When the sender created it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Time to live, in milliseconds from `timestamp_ms`.
    pub ttl_ms: u64,
}

impl Message {
    /// Seconds since the Unix epoch (the API's `timestamp_secs`).
    pub fn timestamp_secs(&self) -> u64 {
        self.timestamp_ms / 1000
    }

    /// Time to live in whole seconds (the API's `ttl_seconds`).
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_ms.div_ceil(1000)
    }

    /// Whether the time to live has run out at `now_ms`.
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        now_ms >= self.timestamp_ms.saturating_add(self.ttl_ms)
    }

    /// Whether the time to live has run out now.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(now_ms())
    }

    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// The JSON object of the HTTP API (`GET /api/v1/agents/{id}/messages`, 5.11).
    /// A payload that is not UTF-8 is given as lossy text.
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::json!({
            "message_id": self.id.to_string(),
            "sender": self.sender.to_string(),
            "recipient": self.recipient.map(|r| r.to_string()),
            "topic": self.topic.as_ref().map(|t| t.as_str().to_string()),
            "payload": String::from_utf8_lossy(&self.payload),
            "message_type": self.message_type.as_str(),
            "timestamp_secs": self.timestamp_secs(),
            "ttl_seconds": self.ttl_seconds(),
        })
    }
}

/// Per-call options of `send`, `publish`, `request` and `subscribe`.
#[derive(Clone, Default)]
pub struct SendOptions {
    /// Time to live; default `[bus] default_ttl`, clamped to `[bus] max_ttl`.
    pub ttl: Option<Duration>,
    /// The sending agent's own DSL rules, combined with the Cedar set by the policy
    /// decision point (pass them whenever the sender is a DSL agent: without them only
    /// Cedar policies can allow the message).
    pub rules: Option<Arc<dyn AgentRuleSet>>,
    /// The execution on whose behalf the message is sent (recorded in policy requests).
    pub execution: Option<ExecutionId>,
    /// Use this id instead of a fresh one (idempotent re-sends from the API).
    pub id: Option<MessageId>,
    /// Set by the action gateway when it already honoured the conditions of an
    /// `AllowWithConditions` decision for this same action (approval, sanitisation, …).
    /// Without it such a decision is refused here, since the bus cannot honour them.
    pub conditions_satisfied: bool,
}

impl fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendOptions")
            .field("ttl", &self.ttl)
            .field("rules", &self.rules.as_ref().map(|_| "<rules>"))
            .field("execution", &self.execution)
            .field("id", &self.id)
            .field("conditions_satisfied", &self.conditions_satisfied)
            .finish()
    }
}

impl SendOptions {
    /// Sets the time to live (builder style).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the sender's DSL rules (builder style).
    pub fn rules(mut self, rules: Arc<dyn AgentRuleSet>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Sets the execution (builder style).
    pub fn execution(mut self, execution: ExecutionId) -> Self {
        self.execution = Some(execution);
        self
    }
}

/// A message that exhausted its delivery attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// The message (decrypted; dead letters are inspectable by operators).
    pub message: Message,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Why the last attempt failed (`"not acknowledged within 30s"`, the receiver's nack reason).
    pub reason: String,
    /// When it was dead-lettered (ms since the Unix epoch).
    pub dead_at_ms: u64,
}

impl DeadLetter {
    /// JSON form for operators (`symbi` CLI, admin API).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.message.to_api_json();
        v["attempts"] = self.attempts.into();
        v["reason"] = self.reason.clone().into();
        v["dead_at_ms"] = self.dead_at_ms.into();
        v
    }
}
