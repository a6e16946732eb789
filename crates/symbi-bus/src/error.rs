//! The bus's error type.

use crate::message::MessageId;
use crate::topic::TopicError;
use std::time::Duration;
use symbi_types::AgentId;

/// Everything a bus operation can fail with. Messages are written for the sender: a
/// denial carries the policy decision's reason, a rate limit says the limit and when to
/// retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BusError {
    /// The policy decision point denied the operation.
    #[error("{operation} denied by policy: {reason}")]
    PolicyDenied {
        /// `message_send`, `publish` or `subscribe`.
        operation: &'static str,
        /// The decision's reasons.
        reason: String,
    },
    /// The policy allowed only under conditions the bus cannot satisfy itself.
    #[error(
        "{operation} allowed only under conditions the bus cannot honour ({conditions}); route it through the action gateway"
    )]
    UnmetConditions {
        /// `message_send`, `publish` or `subscribe`.
        operation: &'static str,
        /// The conditions, for the message.
        conditions: String,
    },
    /// The sender exceeded its rate limit.
    #[error(
        "agent {agent} exceeded its message rate limit of {per_second}/s; retry in {retry_after:?}"
    )]
    RateLimited {
        /// The sender.
        agent: AgentId,
        /// The configured rate.
        per_second: u32,
        /// When a message will be accepted again.
        retry_after: Duration,
    },
    /// The recipient is not registered on the bus.
    #[error("no agent {0} is registered on the bus")]
    UnknownAgent(AgentId),
    /// The recipient's queue stayed full for the whole send timeout (backpressure).
    #[error("the queue of {target} is full ({detail}); the receiver is not keeping up")]
    QueueFull {
        /// The agent or subscription.
        target: String,
        /// Count and byte bounds.
        detail: String,
    },
    /// The payload exceeds `[bus] max_payload_size`.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A topic name or pattern is invalid.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A request got no response within its timeout.
    #[error("request {id} to {to} got no response within {timeout:?}")]
    Timeout {
        /// The request.
        id: MessageId,
        /// The recipient.
        to: AgentId,
        /// The timeout.
        timeout: Duration,
    },
    /// A request was sent to an agent that is not currently receiving.
    #[error("agent {0} is not receiving messages (no open inbox), so a request cannot be answered")]
    NoResponders(AgentId),
    /// The agent's inbox is already open elsewhere (one receiver per agent).
    #[error("the inbox of agent {0} is already open")]
    InboxBusy(AgentId),
    /// The principal has no agent id (only agents send and receive on the bus).
    #[error("principal `{0}` is not a registered agent (no agent id)")]
    NotAnAgent(String),
    /// The message or dead letter is unknown.
    #[error("unknown message {0}")]
    UnknownMessage(MessageId),
    /// A security check failed (the message was dropped and the event audited).
    #[error("security check failed: {0}")]
    Security(String),
    /// Key material could not be loaded or derived.
    #[error("bus keys: {0}")]
    Keys(String),
    /// Invalid bus configuration.
    #[error("bus configuration: {0}")]
    Config(String),
    /// The audit sink refused a record the bus needed to make.
    #[error("audit: {0}")]
    Audit(String),
    /// The backend (NATS) failed.
    #[error("bus backend: {0}")]
    Backend(String),
    /// The bus was shut down.
    #[error("the bus is closed")]
    Closed,
}

impl BusError {
    /// A stable code for API errors and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PolicyDenied { .. } => "POLICY_DENIED",
            Self::UnmetConditions { .. } => "POLICY_CONDITIONS",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::UnknownAgent(_) => "AGENT_NOT_FOUND",
            Self::QueueFull { .. } => "QUEUE_FULL",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::Topic(_) => "INVALID_TOPIC",
            Self::Timeout { .. } => "REQUEST_TIMEOUT",
            Self::NoResponders(_) => "NO_RESPONDERS",
            Self::InboxBusy(_) => "INBOX_BUSY",
            Self::NotAnAgent(_) => "NOT_AN_AGENT",
            Self::UnknownMessage(_) => "MESSAGE_NOT_FOUND",
            Self::Security(_) => "SECURITY_VIOLATION",
            Self::Keys(_) => "BUS_KEYS",
            Self::Config(_) => "BUS_CONFIG",
            Self::Audit(_) => "AUDIT_FAILED",
            Self::Backend(_) => "BUS_BACKEND",
            Self::Closed => "BUS_CLOSED",
        }
    }
}

impl From<async_nats::Error> for BusError {
    fn from(e: async_nats::Error) -> Self {
        BusError::Backend(e.to_string())
    }
}
