//! The in-process backend: one bounded inbox per agent, a subscription index, in-flight
//! tracking for acknowledgements, retries with backoff and a bounded dead-letter list.
//!
//! Payloads are never copied in plaintext mode: a [`Message`] holds a reference-counted
//! `Bytes` that every receiver shares. In the secure modes the sealed bytes are verified
//! once at this node's receive point (at enqueue for direct messages, before fan-out for
//! publishes) and the decrypted message is then shared the same way.

use crate::core::Core;
use crate::error::BusError;
use crate::message::{DeadLetter, DeliveryStatus, Message, MessageId, MessageType, now_ms};
use crate::queue::{BoundedQueue, PushError, Sized_};
use crate::topic::{Topic, TopicPattern};
use crate::transport::{
    AckHandle, Delivery, Envelope, Inbox, InboxSource, ReplyTo, Subscription, Transport,
    push_to_subscriber,
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

struct InFlight {
    done: AtomicBool,
    deadline: Instant,
    msg: Mutex<Option<Message>>,
    attempt: u32,
    len: usize,
}

struct MemInbox {
    name: Mutex<String>,
    queue: BoundedQueue<Item>,
    open: AtomicBool,
    inflight: Mutex<VecDeque<Arc<InFlight>>>,
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
        let mut expired = Vec::new();
        for e in s.agents.iter() {
            let mut inflight = e.value().inflight.lock();
            while let Some(front) = inflight.front() {
                if front.done.load(Ordering::Acquire) {
                    inflight.pop_front();
                } else if front.deadline <= now {
                    expired.push((e.value().clone(), inflight.pop_front().unwrap()));
                } else {
                    break;
                }
            }
        }
        let reason = format!("not acknowledged within {:?}", s.core.settings.ack_wait);
        for (inbox, f) in expired {
            fail(&s, &inbox, &f, reason.clone());
        }
    }
}

/// A failed attempt: retry after backoff, or dead-letter after the last attempt.
fn fail(s: &Arc<Shared>, inbox: &Arc<MemInbox>, f: &InFlight, reason: String) {
    if f.done.swap(true, Ordering::AcqRel) {
        return;
    }
    let Some(msg) = f.msg.lock().take() else {
        return;
    };
    let settings = &s.core.settings;
    if f.attempt >= settings.max_delivery_attempts {
        inbox.queue.release(f.len);
        s.core.status.advance(msg.id, DeliveryStatus::Failed);
        tracing::warn!(message = %msg.id, attempts = f.attempt, %reason, "message dead-lettered");
        let mut dead = s.dead.lock();
        dead.push_back(DeadLetter {
            message: msg,
            attempts: f.attempt,
            reason,
            dead_at_ms: now_ms(),
        });
        while dead.len() > settings.dead_letter_capacity {
            dead.pop_front();
        }
        return;
    }
    let delay = settings.backoff(f.attempt + 1);
    let next = Item {
        msg,
        attempt: f.attempt + 1,
        reply: None,
    };
    let inbox = inbox.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        // A closed inbox (agent unregistered, bus closed) drops the retry.
        let _ = inbox.queue.requeue_held(next);
    });
}

struct MemAck {
    shared: Arc<Shared>,
    inbox: Arc<MemInbox>,
    flight: Arc<InFlight>,
    id: MessageId,
}

#[async_trait]
impl AckHandle for MemAck {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        if !self.flight.done.swap(true, Ordering::AcqRel) {
            self.flight.msg.lock().take();
            self.inbox.queue.release(self.flight.len);
            self.shared
                .core
                .status
                .advance(self.id, DeliveryStatus::Delivered);
        }
        Ok(())
    }
    async fn nack(self: Box<Self>, reason: String) -> Result<(), BusError> {
        fail(&self.shared, &self.inbox, &self.flight, reason);
        Ok(())
    }
    fn dropped(self: Box<Self>) {
        fail(
            &self.shared,
            &self.inbox,
            &self.flight,
            "dropped by the receiver without acknowledgement".into(),
        );
    }
}

struct MemInboxSource {
    shared: Arc<Shared>,
    inbox: Arc<MemInbox>,
}

impl Drop for MemInboxSource {
    fn drop(&mut self) {
        self.inbox.open.store(false, Ordering::Release);
    }
}

#[async_trait]
impl InboxSource for MemInboxSource {
    async fn recv(&mut self) -> Option<Delivery> {
        loop {
            let item = self.inbox.queue.pop_held().await?;
            let len = item.byte_len();
            if item.msg.is_expired() {
                self.inbox.queue.release(len);
                self.shared
                    .core
                    .status
                    .advance(item.msg.id, DeliveryStatus::Expired);
                continue;
            }
            if let Some(tx) = item.reply {
                // Requests are answered, not retried.
                self.inbox.queue.release(len);
                return Some(Delivery {
                    message: item.msg,
                    attempt: 1,
                    acker: None,
                    reply: Some(ReplyTo::Memory(tx)),
                });
            }
            let flight = Arc::new(InFlight {
                done: AtomicBool::new(false),
                deadline: Instant::now() + self.shared.core.settings.ack_wait,
                msg: Mutex::new(Some(item.msg.clone())),
                attempt: item.attempt,
                len,
            });
            self.inbox.inflight.lock().push_back(flight.clone());
            let id = item.msg.id;
            return Some(Delivery {
                message: item.msg,
                attempt: item.attempt,
                acker: Some(Box::new(MemAck {
                    shared: self.shared.clone(),
                    inbox: self.inbox.clone(),
                    flight,
                    id,
                })),
                reply: None,
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
                        inflight: Mutex::new(VecDeque::new()),
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
            source: Box::new(MemInboxSource {
                shared: self.shared.clone(),
                inbox,
            }),
        })
    }

    async fn drain_inbox(&self, agent: AgentId) -> Result<Vec<Message>, BusError> {
        let inbox = self.shared.inbox(agent)?;
        let status = &self.shared.core.status;
        let now = now_ms();
        let mut out = Vec::new();
        for item in inbox.queue.drain() {
            if item.msg.is_expired_at(now) {
                status.advance(item.msg.id, DeliveryStatus::Expired);
                continue;
            }
            if item.msg.message_type == MessageType::Direct {
                status.advance(item.msg.id, DeliveryStatus::Delivered);
            }
            out.push(item.msg);
        }
        Ok(out)
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
