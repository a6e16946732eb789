//! The backend trait and the receive-side handles every backend returns.

use crate::error::BusError;
use crate::message::{DeadLetter, DeliveryStatus, Message, MessageId};
use crate::queue::{BoundedQueue, Sized_};
use crate::topic::{Topic, TopicPattern};
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use symbi_types::AgentId;

/// A message on its way: plaintext mode keeps the decoded [`Message`] (no encoding at all
/// in process); the secure modes carry sealed wire bytes.
#[derive(Clone, Debug)]
pub(crate) enum Envelope {
    Plain(Message),
    Sealed(Bytes),
}

impl Sized_ for Message {
    fn byte_len(&self) -> usize {
        self.payload.len()
    }
}

/// Where a response goes.
pub(crate) enum ReplyTo {
    Memory(tokio::sync::oneshot::Sender<Envelope>),
    Nats(async_nats::Subject),
}

/// Acknowledgement of one delivery by a backend that needs I/O for it (NATS).
#[async_trait]
pub(crate) trait AckHandle: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    async fn nack(self: Box<Self>, reason: String) -> Result<(), BusError>;
    /// The delivery was dropped unacknowledged (receiver failed): treated as a nack.
    fn dropped(self: Box<Self>);
}

/// How a delivery is acknowledged. The in-process backend settles in place, without an
/// allocation or a boxed future per message (its hot path); others go through
/// [`AckHandle`].
pub(crate) enum Acker {
    Memory(crate::memory::MemTicket),
    Remote(Box<dyn AckHandle>),
}

/// One message handed to a receiver. Acknowledge it with [`Delivery::ack`] once it was
/// processed; [`Delivery::nack`] (or dropping it unacknowledged, e.g. because the receiver
/// failed) makes the bus retry it after exponential backoff, and after
/// `[bus] max_delivery_attempts` attempts it becomes a dead letter. A delivery held
/// longer than `[bus] ack_wait` counts as failed and is redelivered.
pub struct Delivery {
    pub(crate) message: Message,
    pub(crate) attempt: u32,
    pub(crate) acker: Option<Acker>,
    pub(crate) reply: Option<ReplyTo>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Delivery {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Which attempt this is (1 for the first delivery).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether this is a request that expects [`crate::Bus::respond`].
    pub fn expects_response(&self) -> bool {
        self.reply.is_some()
    }

    /// Acknowledges: the message is delivered and will not come again.
    pub async fn ack(mut self) -> Result<(), BusError> {
        match self.acker.take() {
            Some(Acker::Memory(t)) => {
                t.ack();
                Ok(())
            }
            Some(Acker::Remote(a)) => a.ack().await,
            None => Ok(()),
        }
    }

    /// Rejects this attempt (`reason` is kept with the dead letter if it was the last).
    pub async fn nack(mut self, reason: impl Into<String>) -> Result<(), BusError> {
        match self.acker.take() {
            Some(Acker::Memory(t)) => {
                t.nack(reason.into());
                Ok(())
            }
            Some(Acker::Remote(a)) => a.nack(reason.into()).await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        match self.acker.take() {
            Some(Acker::Memory(t)) => {
                t.nack("dropped by the receiver without acknowledgement".into())
            }
            Some(Acker::Remote(a)) => a.dropped(),
            None => {}
        }
    }
}

/// Backend side of an inbox, for backends that need I/O to receive (NATS).
#[async_trait]
pub(crate) trait InboxSource: Send {
    async fn recv(&mut self) -> Option<Delivery>;
}

/// Where an inbox's deliveries come from: the in-process backend's queue is polled
/// directly (no boxed future per message), others through [`InboxSource`].
pub(crate) enum Source {
    Memory(crate::memory::MemInboxSource),
    Remote(Box<dyn InboxSource>),
}

/// An agent's inbox: direct messages and requests addressed to it, in order per sender.
/// One inbox per agent may be open at a time (the agent's message loop); while it is open
/// the agent can be sent requests.
pub struct Inbox {
    pub(crate) agent: AgentId,
    pub(crate) source: Source,
}

impl Inbox {
    /// The agent.
    pub fn agent(&self) -> AgentId {
        self.agent
    }

    /// The next delivery; `None` when the bus is closed.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match &mut self.source {
            Source::Memory(s) => s.recv().await,
            Source::Remote(s) => s.recv().await,
        }
    }

    /// The next delivery, or `None` if none arrives within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Delivery> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A topic subscription: the messages published to matching topics after it was made,
/// in a bounded queue (the publisher waits when it is full, up to `[bus] send_timeout`;
/// past that the message is dropped for this subscription and counted in
/// [`Subscription::dropped`]).
pub struct Subscription {
    pub(crate) pattern: TopicPattern,
    pub(crate) queue: Arc<BoundedQueue<Message>>,
    pub(crate) dropped: Arc<AtomicU64>,
    pub(crate) _guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pattern", &self.pattern)
            .finish()
    }
}

impl Subscription {
    /// The (canonical) pattern.
    pub fn pattern(&self) -> &TopicPattern {
        &self.pattern
    }

    /// The next message; `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.queue.pop().await
    }

    /// The next message, or `None` if none arrives within `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Message> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .ok()
            .flatten()
    }

    /// A message if one is queued.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.queue.try_pop()
    }

    /// Messages queued now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages dropped for this subscription because its queue stayed full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The subscription as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Message> + Send {
        futures::stream::unfold(self, |mut s| async move { s.recv().await.map(|m| (m, s)) })
    }
}

/// Pushes `m` to a subscription queue with backpressure; counts a drop on timeout.
pub(crate) async fn push_to_subscriber(
    queue: &BoundedQueue<Message>,
    dropped: &AtomicU64,
    m: Message,
    timeout: Duration,
) {
    use crate::queue::PushError;
    if let Err(PushError::Full(_)) = queue.push(m, timeout).await {
        dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "subscription queue full for the whole send timeout; message dropped for it"
        );
    }
}

/// A backend: in-process ([`crate::memory`]) or NATS ([`crate::nats`]). Security, policy,
/// rate limits and statuses are handled by [`crate::Bus`] on top, the same for both.
#[async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    async fn register(&self, agent: AgentId, name: &str) -> Result<(), BusError>;
    async fn unregister(&self, agent: AgentId) -> Result<(), BusError>;
    async fn agent_name(&self, agent: AgentId) -> Result<Option<String>, BusError>;
    /// Queues direct message `id` for `to` (waits for room up to the send timeout).
    async fn send_direct(&self, id: MessageId, to: AgentId, env: Envelope) -> Result<(), BusError>;
    /// Queues direct message `id` for `to` if that needs no waiting; otherwise hands the
    /// envelope back (`Ok(Some(..))`) for [`Transport::send_direct`]. Spares the
    /// in-process hot path a boxed future; backends that always do I/O keep the default.
    fn try_send_direct(
        &self,
        _id: MessageId,
        _to: AgentId,
        env: Envelope,
    ) -> Result<Option<Envelope>, BusError> {
        Ok(Some(env))
    }
    /// Whether message `id` is queued or in flight on this node (so pending: backends that
    /// do not record a pending status per message answer it here).
    fn holds(&self, _id: MessageId) -> bool {
        false
    }
    async fn publish(&self, topic: &Topic, env: Envelope) -> Result<(), BusError>;
    async fn subscribe(&self, pattern: TopicPattern) -> Result<Subscription, BusError>;
    async fn open_inbox(&self, agent: AgentId) -> Result<Inbox, BusError>;
    async fn drain_inbox(&self, agent: AgentId) -> Result<Vec<Message>, BusError>;
    /// Sends a request and waits for the (verified) response.
    async fn request(
        &self,
        id: MessageId,
        to: AgentId,
        env: Envelope,
        timeout: Duration,
    ) -> Result<Message, BusError>;
    async fn respond(&self, reply: ReplyTo, env: Envelope) -> Result<(), BusError>;
    /// A status known to the backend beyond this node (NATS: the shared status bucket).
    async fn remote_status(&self, id: MessageId) -> Result<Option<DeliveryStatus>, BusError>;
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, BusError>;
    async fn redrive(&self, id: MessageId) -> Result<(), BusError>;
    /// Accepts sealed bytes from outside (bridges; tests acting as an attacker on the wire).
    async fn ingest(&self, wire: Bytes) -> Result<(), BusError>;
    async fn close(&self);
}
