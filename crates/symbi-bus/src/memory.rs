//! The in-process backend: one bounded inbox per agent, a subscription index, in-flight
//! tracking for acknowledgements, retries with backoff and a bounded dead-letter list.
//!
//! A direct message is, while pending, in exactly one place: its recipient's queue, that
//! queue's in-flight ledger, or (between attempts) a retry timer that holds it with an
//! explicit `pending` status. So no status is written when a message is sent; one is
//! written when it settles (delivered, expired, dead-lettered), before it leaves the
//! ledger, and [`Transport::holds`] answers for the pending ones.
//!
//! Payloads are never copied in plaintext mode: a [`Message`] holds a reference-counted
//! `Bytes` that every receiver shares. In the secure modes the sealed bytes are verified
//! once at this node's receive point (at enqueue for direct messages, before fan-out for
//! publishes) and the decrypted message is then shared the same way.

use crate::core::Core;
use crate::error::BusError;
use crate::message::{DeadLetter, DeliveryStatus, Message, MessageId, MessageType, now_ms};
use crate::queue::{BoundedQueue, Pop, PushError, Room, Sized_};
use crate::topic::{Topic, TopicPattern};
use crate::transport::{
    Acker, Delivery, Envelope, Inbox, ReplyTo, Source, Subscription, Transport, push_to_subscriber,
};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use symbi_types::AgentId;
use tokio::sync::oneshot;
use tokio::time::Instant;

const RECEIVE_POINT: &str = "memory";

struct Item {
    msg: Message,
    attempt: u32,
    reply: Option<oneshot::Sender<Envelope>>,
}

impl Sized_ for Item {
    fn byte_len(&self) -> usize {
        self.msg.payload.len()
    }
}

/// A retry waiting for its backoff.
struct Retry {
    item: Item,
    delay: Duration,
}

pub(crate) struct MemInbox {
    name: Mutex<String>,
    queue: BoundedQueue<Item>,
    open: AtomicBool,
    /// Tickets acknowledged and not yet settled: the receiver's next pop settles them under
    /// the lock it takes anyway (so a delivery costs the queue's lock once, not twice); an
    /// ack settles at once when producers wait for room, and the sweep settles leftovers.
    acked: Mutex<Vec<u64>>,
    /// What an acknowledgement needs (the status table), held here so a delivery's ticket
    /// takes one reference count, not two.
    core: Arc<Core>,
    /// The backend, for a failed attempt (retry or dead letter); gone once the bus is.
    shared: Weak<Shared>,
}

impl MemInbox {
    /// Settles the acknowledged tickets now.
    fn settle_acked(&self) {
        let mut acked = std::mem::take(&mut *self.acked.lock());
        if !acked.is_empty() {
            let mut settled = Vec::with_capacity(acked.len());
            self.queue.settle_acked(&mut acked, &mut settled);
        }
    }
}

#[derive(Clone)]
struct SubEntry {
    id: u64,
    queue: Arc<BoundedQueue<Message>>,
    dropped: Arc<AtomicU64>,
}

/// Literal patterns are looked up by name; wildcard patterns are scanned (one entry per
/// distinct pattern, however many subscribers share it).
#[derive(Default)]
struct SubIndex {
    exact: HashMap<Arc<str>, Vec<SubEntry>>,
    wild: Vec<(TopicPattern, Vec<SubEntry>)>,
}

impl SubIndex {
    /// The subscriptions whose pattern matches `topic`.
    fn matching<'a>(&'a self, topic: &'a Topic) -> impl Iterator<Item = &'a SubEntry> + 'a {
        let exact = self.exact.get(topic.as_str()).into_iter().flatten();
        let wild = self
            .wild
            .iter()
            .filter(move |(p, _)| p.matches(topic))
            .flat_map(|(_, v)| v);
        exact.chain(wild)
    }

    fn insert(&mut self, pattern: &TopicPattern, e: SubEntry) {
        if pattern.is_wildcard() {
            match self.wild.iter_mut().find(|(p, _)| p == pattern) {
                Some((_, v)) => v.push(e),
                None => self.wild.push((pattern.clone(), vec![e])),
            }
        } else {
            self.exact
                .entry(pattern.as_str().into())
                .or_default()
                .push(e);
        }
    }

    fn remove(&mut self, pattern: &TopicPattern, id: u64) {
        if pattern.is_wildcard() {
            if let Some(i) = self.wild.iter().position(|(p, _)| p == pattern) {
                self.wild[i].1.retain(|e| e.id != id);
                if self.wild[i].1.is_empty() {
                    self.wild.swap_remove(i);
                }
            }
        } else if let Some(v) = self.exact.get_mut(pattern.as_str()) {
            v.retain(|e| e.id != id);
            if v.is_empty() {
                self.exact.remove(pattern.as_str());
            }
        }
    }

    fn all(&self) -> Vec<SubEntry> {
        self.exact
            .values()
            .chain(self.wild.iter().map(|(_, v)| v))
            .flatten()
            .cloned()
            .collect()
    }
}

struct Shared {
    core: Arc<Core>,
    // foldhash: an inbox lookup per message; seeded per process like the std hasher.
    agents: DashMap<AgentId, Arc<MemInbox>, foldhash::fast::RandomState>,
    subs: RwLock<SubIndex>,
    next_sub: AtomicU64,
    dead: Mutex<VecDeque<DeadLetter>>,
    closed: AtomicBool,
}

/// The in-process backend.
pub(crate) struct MemoryTransport {
    shared: Arc<Shared>,
}

impl MemoryTransport {
    /// Starts the backend (and its ack-deadline sweeper on the current tokio runtime).
    pub(crate) fn new(core: Arc<Core>) -> Self {
        let shared = Arc::new(Shared {
            core,
            agents: DashMap::default(),
            subs: RwLock::new(SubIndex::default()),
            next_sub: AtomicU64::new(1),
            dead: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
        });
        let tick = (shared.core.settings.ack_wait / 4)
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        tokio::spawn(sweep(Arc::downgrade(&shared), tick));
        Self { shared }
    }
}

/// Redelivers deliveries whose ack deadline passed; exits when the bus is dropped.
async fn sweep(shared: Weak<Shared>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(s) = shared.upgrade() else { return };
        if s.closed.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        let reason = format!("not acknowledged within {:?}", s.core.settings.ack_wait);
        let mut retries = Vec::new();
        for e in s.agents.iter() {
            e.value().settle_acked();
            let due = e
                .value()
                .queue
                .settle_expired(now, |item| s.failed(item, &reason));
            retries.extend(due.into_iter().flatten().map(|r| (e.value().clone(), r)));
        }
        for (inbox, retry) in retries {
            retry_later(inbox, retry);
        }
    }
}

/// Puts a failed message back into its inbox after its backoff. A closed inbox (agent
/// unregistered, bus closed) drops the retry.
fn retry_later(inbox: Arc<MemInbox>, retry: Retry) {
    tokio::spawn(async move {
        tokio::time::sleep(retry.delay).await;
        let _ = inbox.queue.requeue_held(retry.item);
    });
}

/// Acknowledges one in-process delivery: settles its ledger entry in place.
pub(crate) struct MemTicket {
    inbox: Arc<MemInbox>,
    id: MessageId,
    ticket: u64,
}

impl MemTicket {
    /// Delivered: the status is recorded, then the ledger entry is settled (its room freed)
    /// by the receiver's next pop, or now if producers wait for room. The status is written
    /// outside the inbox's lock (a hash insert the sender must not wait for);
    /// [`crate::Bus::message_status`] reads final statuses before it looks at the ledger.
    /// An ack that lost the race with its deadline still records `delivered` (the message
    /// was acknowledged at least once; its redelivery is the at-least-once duplicate).
    pub(crate) fn ack(self) {
        self.inbox.core.status.acknowledged(self.id);
        self.inbox.acked.lock().push(self.ticket);
        if self.inbox.queue.producers_waiting() {
            self.inbox.settle_acked();
        }
    }

    /// This attempt failed: retried after backoff, or dead-lettered after the last one.
    pub(crate) fn nack(self, reason: String) {
        // No bus, no retry: its queues are gone with it.
        let Some(s) = self.inbox.shared.upgrade() else {
            return;
        };
        if let Some(Some(retry)) = self
            .inbox
            .queue
            .settle(self.ticket, |item| s.failed(item, &reason))
        {
            retry_later(self.inbox, retry);
        }
    }
}

/// The receiving side of an open in-process inbox.
pub(crate) struct MemInboxSource {
    shared: Arc<Shared>,
    inbox: Arc<MemInbox>,
    /// Acknowledged tickets taken for the next pop (buffers kept between pops).
    acked: Vec<u64>,
    /// Settled ledger copies, dropped after the lock is released.
    settled: Vec<Item>,
}

impl MemInboxSource {
    fn new(shared: Arc<Shared>, inbox: Arc<MemInbox>) -> Self {
        Self {
            shared,
            inbox,
            acked: Vec::new(),
            settled: Vec::new(),
        }
    }
}

impl Drop for MemInboxSource {
    fn drop(&mut self) {
        self.inbox.settle_acked();
        self.inbox.open.store(false, Ordering::Release);
    }
}

impl MemInboxSource {
    /// The next delivery; `None` once the inbox is closed and empty.
    pub(crate) async fn recv(&mut self) -> Option<Delivery> {
        let Self {
            shared,
            inbox,
            acked,
            settled,
        } = self;
        let ack_wait = shared.core.settings.ack_wait;
        loop {
            let (delivery, ticket) = inbox
                .queue
                .pop_with(|q| {
                    {
                        let mut pending = inbox.acked.lock();
                        if !pending.is_empty() {
                            std::mem::swap(&mut *pending, acked);
                        }
                    }
                    // Read before taking the lock: it is held as briefly as possible.
                    let (now, wall_ms) = (Instant::now(), now_ms());
                    let popped = q.try_pop_tracked(
                        acked,
                        settled,
                        |item| shared.hand_out(item, now + ack_wait, wall_ms),
                        // The ledger's copy shares the payload.
                        |item| Item {
                            msg: item.msg.clone(),
                            attempt: item.attempt,
                            reply: None,
                        },
                    );
                    settled.clear();
                    popped
                })
                .await?;
            let Some(item) = delivery else {
                continue; // expired
            };
            return Some(Delivery {
                acker: ticket.map(|ticket| {
                    Acker::Memory(MemTicket {
                        inbox: inbox.clone(),
                        id: item.msg.id,
                        ticket,
                    })
                }),
                attempt: item.attempt,
                reply: item.reply.map(ReplyTo::Memory),
                message: item.msg,
            });
        }
    }
}

struct SubGuard {
    shared: Weak<Shared>,
    pattern: TopicPattern,
    id: u64,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        if let Some(s) = self.shared.upgrade() {
            s.subs.write().remove(&self.pattern, self.id);
        }
    }
}

impl Shared {
    /// Decides, under the inbox's lock, what a popped item becomes: an expired one is
    /// settled as such and discarded; a request is handed out with nothing to acknowledge;
    /// a direct message is handed out and a copy kept in flight until `deadline`. Kept to
    /// the minimum: the sender waits for this lock.
    fn hand_out(&self, item: &Item, deadline: Instant, now_ms: u64) -> Pop {
        if item.msg.is_expired_at(now_ms) {
            self.core
                .status
                .advance(item.msg.id, DeliveryStatus::Expired);
            Pop::Discard
        } else if item.reply.is_some() {
            Pop::Free // requests are answered, not retried
        } else {
            Pop::Track(deadline)
        }
    }

    /// A failed attempt, settled under the inbox's lock: the status is recorded before the
    /// message leaves the ledger. Returns the retry to schedule, if any.
    fn failed(&self, item: Item, reason: &str) -> (Option<Retry>, Room) {
        let settings = &self.core.settings;
        if item.attempt >= settings.max_delivery_attempts {
            self.core
                .status
                .advance(item.msg.id, DeliveryStatus::Failed);
            tracing::warn!(message = %item.msg.id, attempts = item.attempt, %reason, "message dead-lettered");
            let mut dead = self.dead.lock();
            dead.push_back(DeadLetter {
                message: item.msg,
                attempts: item.attempt,
                reason: reason.to_string(),
                dead_at_ms: now_ms(),
            });
            while dead.len() > settings.dead_letter_capacity {
                dead.pop_front();
            }
            return (None, Room::Free);
        }
        // Out of the queue and the ledger until the retry: recorded as pending meanwhile.
        self.core
            .status
            .advance(item.msg.id, DeliveryStatus::Pending);
        let next = item.attempt + 1;
        let retry = Retry {
            delay: settings.backoff(next),
            item: Item {
                msg: item.msg,
                attempt: next,
                reply: None,
            },
        };
        (Some(retry), Room::Keep)
    }

    fn inbox(&self, agent: AgentId) -> Result<Arc<MemInbox>, BusError> {
        self.agents
            .get(&agent)
            .map(|e| e.clone())
            .ok_or(BusError::UnknownAgent(agent))
    }

    fn open(&self, env: Envelope) -> Result<Message, BusError> {
        match env {
            Envelope::Plain(m) => Ok(m),
            Envelope::Sealed(w) => self
                .core
                .accept(&w, now_ms(), &self.core.replay, false, RECEIVE_POINT)
                .ok_or_else(|| {
                    BusError::Security(
                        "message failed verification at the receiver (audited)".into(),
                    )
                }),
        }
    }

    async fn enqueue(&self, to: AgentId, item: Item) -> Result<(), BusError> {
        let inbox = self.inbox(to)?;
        self.enqueue_into(&inbox, to, item).await
    }

    async fn enqueue_into(
        &self,
        inbox: &MemInbox,
        to: AgentId,
        item: Item,
    ) -> Result<(), BusError> {
        let timeout = self.core.settings.send_timeout;
        match inbox.queue.push(item, timeout).await {
            Ok(()) => Ok(()),
            Err(PushError::Full(_)) => Err(BusError::QueueFull {
                target: format!("agent {to}"),
                detail: inbox.queue.describe(),
            }),
            Err(PushError::Closed(_)) => Err(BusError::Closed),
        }
    }

    async fn fan_out(&self, topic: &Topic, env: Envelope) -> Result<(), BusError> {
        // Opened only once there is a subscriber: no crypto for messages nobody receives.
        let mut env = Some(env);
        let mut msg: Option<Message> = None;
        // Subscriptions that were full: waited for after the index lock is released.
        let mut full = Vec::new();
        {
            let subs = self.subs.read();
            for t in subs.matching(topic) {
                let m = match &msg {
                    Some(m) => m.clone(),
                    None => {
                        let m = self.open(env.take().expect("opened once"))?;
                        msg = Some(m.clone());
                        m
                    }
                };
                match t.queue.try_push(m) {
                    Ok(()) | Err(PushError::Closed(_)) => {}
                    Err(PushError::Full(m)) => full.push((t.clone(), m)),
                }
            }
        }
        let timeout = self.core.settings.send_timeout;
        for (t, m) in full {
            push_to_subscriber(&t.queue, &t.dropped, m, timeout).await;
        }
        Ok(())
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn register(&self, agent: AgentId, name: &str) -> Result<(), BusError> {
        let s = &self.shared;
        match s.agents.get(&agent) {
            Some(e) => *e.name.lock() = name.to_string(),
            None => {
                let settings = &s.core.settings;
                s.agents.insert(
                    agent,
                    Arc::new(MemInbox {
                        name: Mutex::new(name.to_string()),
                        queue: BoundedQueue::new(settings.queue_capacity, settings.queue_bytes),
                        open: AtomicBool::new(false),
                        acked: Mutex::new(Vec::new()),
                        core: s.core.clone(),
                        shared: Arc::downgrade(s),
                    }),
                );
            }
        }
        Ok(())
    }

    async fn unregister(&self, agent: AgentId) -> Result<(), BusError> {
        if let Some((_, inbox)) = self.shared.agents.remove(&agent) {
            inbox.queue.close();
        }
        Ok(())
    }

    async fn agent_name(&self, agent: AgentId) -> Result<Option<String>, BusError> {
        Ok(self
            .shared
            .agents
            .get(&agent)
            .map(|e| e.name.lock().clone()))
    }

    fn try_send_direct(
        &self,
        _id: MessageId,
        to: AgentId,
        env: Envelope,
    ) -> Result<Option<Envelope>, BusError> {
        let s = &self.shared;
        let msg = match env {
            Envelope::Plain(m) => m,
            // Check the recipient before spending crypto on the receive side.
            sealed => {
                s.inbox(to)?;
                s.open(sealed)?
            }
        };
        // Pushed under the map's read guard: no reference count taken per message.
        let inbox = s.agents.get(&to).ok_or(BusError::UnknownAgent(to))?;
        let item = Item {
            msg,
            attempt: 1,
            reply: None,
        };
        match inbox.queue.try_push(item) {
            Ok(()) => Ok(None),
            // Opened already (verified, replay-checked): handed back in the clear.
            Err(PushError::Full(item)) => Ok(Some(Envelope::Plain(item.msg))),
            Err(PushError::Closed(_)) => Err(BusError::Closed),
        }
    }

    fn holds(&self, id: MessageId) -> bool {
        self.shared
            .agents
            .iter()
            .any(|e| e.value().queue.holds(|item| item.msg.id == id))
    }

    async fn send_direct(
        &self,
        _id: MessageId,
        to: AgentId,
        env: Envelope,
    ) -> Result<(), BusError> {
        // Check the recipient before spending crypto on the receive side.
        let inbox = self.shared.inbox(to)?;
        let msg = self.shared.open(env)?;
        self.shared
            .enqueue_into(
                &inbox,
                to,
                Item {
                    msg,
                    attempt: 1,
                    reply: None,
                },
            )
            .await
    }

    async fn publish(&self, topic: &Topic, env: Envelope) -> Result<(), BusError> {
        self.shared.fan_out(topic, env).await
    }

    async fn subscribe(&self, pattern: TopicPattern) -> Result<Subscription, BusError> {
        let s = &self.shared;
        if s.closed.load(Ordering::Relaxed) {
            return Err(BusError::Closed);
        }
        let id = s.next_sub.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(BoundedQueue::new(
            s.core.settings.queue_capacity,
            s.core.settings.queue_bytes,
        ));
        let dropped = Arc::new(AtomicU64::new(0));
        s.subs.write().insert(
            &pattern,
            SubEntry {
                id,
                queue: queue.clone(),
                dropped: dropped.clone(),
            },
        );
        let guard = SubGuard {
            shared: Arc::downgrade(s),
            pattern: pattern.clone(),
            id,
        };
        Ok(Subscription {
            pattern,
            queue,
            dropped,
            _guard: Box::new(guard),
        })
    }

    async fn open_inbox(&self, agent: AgentId) -> Result<Inbox, BusError> {
        let inbox = self.shared.inbox(agent)?;
        if inbox.open.swap(true, Ordering::AcqRel) {
            return Err(BusError::InboxBusy(agent));
        }
        Ok(Inbox {
            agent,
            source: Source::Memory(MemInboxSource::new(self.shared.clone(), inbox)),
        })
    }

    async fn drain_inbox(&self, agent: AgentId) -> Result<Vec<Message>, BusError> {
        let inbox = self.shared.inbox(agent)?;
        let status = &self.shared.core.status;
        let now = now_ms();
        // Statuses are recorded under the inbox's lock, before the messages leave it.
        Ok(inbox.queue.drain_with(|item| {
            if item.msg.is_expired_at(now) {
                status.advance(item.msg.id, DeliveryStatus::Expired);
                return None;
            }
            if item.msg.message_type == MessageType::Direct {
                status.advance(item.msg.id, DeliveryStatus::Delivered);
            }
            Some(item.msg)
        }))
    }

    async fn request(
        &self,
        id: MessageId,
        to: AgentId,
        env: Envelope,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        let inbox = self.shared.inbox(to)?;
        if !inbox.open.load(Ordering::Acquire) {
            return Err(BusError::NoResponders(to));
        }
        let msg = self.shared.open(env)?;
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        tokio::time::timeout_at(
            deadline,
            self.shared.enqueue(
                to,
                Item {
                    msg,
                    attempt: 1,
                    reply: Some(tx),
                },
            ),
        )
        .await
        .map_err(|_| BusError::Timeout { id, to, timeout })??;
        match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => Err(BusError::Timeout { id, to, timeout }),
            Ok(Err(_)) => Err(BusError::NoResponders(to)),
            Ok(Ok(resp)) => {
                let m = self.shared.open(resp)?;
                if m.correlation_id != Some(id) || m.sender != to {
                    return Err(BusError::Security(format!(
                        "response to {} does not correlate",
                        id
                    )));
                }
                Ok(m)
            }
        }
    }

    async fn respond(&self, reply: ReplyTo, env: Envelope) -> Result<(), BusError> {
        match reply {
            ReplyTo::Memory(tx) => tx
                .send(env)
                .map_err(|_| BusError::Backend("the requester stopped waiting (timed out)".into())),
            ReplyTo::Nats(_) => Err(BusError::Backend(
                "a NATS reply handle reached the memory backend".into(),
            )),
        }
    }

    async fn remote_status(&self, _id: MessageId) -> Result<Option<DeliveryStatus>, BusError> {
        Ok(None)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, BusError> {
        Ok(self.shared.dead.lock().iter().cloned().collect())
    }

    async fn redrive(&self, id: MessageId) -> Result<(), BusError> {
        let dl = {
            let mut dead = self.shared.dead.lock();
            let i = dead
                .iter()
                .position(|d| d.message.id == id)
                .ok_or(BusError::UnknownMessage(id))?;
            dead.remove(i).expect("index is valid")
        };
        let mut msg = dl.message.clone();
        let to = msg.recipient.expect("dead letters are direct messages");
        // A re-driven message gets a fresh lifetime; the id (and so its status) is kept.
        msg.timestamp_ms = now_ms();
        self.shared.core.status.set(id, DeliveryStatus::Pending);
        if let Err(e) = self
            .shared
            .enqueue(
                to,
                Item {
                    msg,
                    attempt: 1,
                    reply: None,
                },
            )
            .await
        {
            self.shared.core.status.set(id, DeliveryStatus::Failed);
            self.shared.dead.lock().push_back(dl);
            return Err(e);
        }
        Ok(())
    }

    async fn ingest(&self, wire: Bytes) -> Result<(), BusError> {
        let m = self.shared.open(Envelope::Sealed(wire))?;
        match m.message_type {
            MessageType::Direct => {
                let to = m
                    .recipient
                    .expect("verified direct messages have a recipient");
                self.shared.core.status.set(m.id, DeliveryStatus::Pending);
                self.shared
                    .enqueue(
                        to,
                        Item {
                            msg: m,
                            attempt: 1,
                            reply: None,
                        },
                    )
                    .await
            }
            MessageType::Publish => {
                let topic = m.topic.clone().expect("verified publishes have a topic");
                self.shared.fan_out(&topic, Envelope::Plain(m)).await
            }
            t => Err(BusError::Backend(format!(
                "cannot ingest a {} message from outside",
                t.as_str()
            ))),
        }
    }

    async fn close(&self) {
        let s = &self.shared;
        s.closed.store(true, Ordering::Relaxed);
        for e in s.agents.iter() {
            e.value().queue.close();
        }
        for e in s.subs.read().all() {
            e.queue.close();
        }
    }
}
