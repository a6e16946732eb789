//! The NATS backend (multi-node): the same API over a NATS server with JetStream.
//!
//! Mapping (prefix `P` = `BusSettings::nats_prefix`, default `symbi`):
//!
//! | pattern | NATS |
//! |---|---|
//! | direct message to agent `A` | JetStream publish to `P.direct.A`; stream `P_DIRECT` (work-queue retention, file storage, at most `message_buffer_size` messages per agent, new messages refused when full); durable pull consumer `inbox-A` (explicit ack, `ack_wait`, `max_deliver` = attempts + 1) |
//! | retry | NAK with delay (exponential backoff); no ack within `ack_wait` → server redelivery |
//! | dead letter | after the last attempt the sealed bytes are published to `P.dlq.A` (stream `P_DLQ`, limits retention, `dead_letter_capacity` messages) with headers `Symbi-Msg-Id`, `Symbi-Attempts`, `Symbi-Reason`, `Symbi-Dead-At`, and the original is terminated |
//! | publish to topic `a/b` | core NATS publish to `P.topic.a.b` (at most once, like core NATS) |
//! | subscribe `a/*` | core NATS subscription `P.topic.a.*`, one per distinct pattern per node, fanned out locally |
//! | request to `A` | core NATS request to `P.req.A` (the agent's open inbox subscribes there) |
//! | statuses | stream `P_STATUS`, subject `P.status.<message id>`, last value kept (what NATS KV is underneath), written by the receiving node |
//! | agent directory | stream `P_AGENTS`, subject `P.agents.<agent id>` → name |
//!
//! Messages travel sealed in every mode (mode 0 is an unauthenticated plaintext encoding).
//! Freshness of a direct message is judged against the time JetStream stored it, so a
//! message that waited in an inbox for minutes is not "stale"; its time to live still
//! applies.

use crate::core::Core;
use crate::error::BusError;
use crate::message::{DeadLetter, DeliveryStatus, Message, MessageId, MessageType, now_ms};
use crate::queue::BoundedQueue;
use crate::secure::{Codec, ReplayWindow};
use crate::topic::{Topic, TopicPattern};
use crate::transport::{
    AckHandle, Acker, Delivery, Envelope, Inbox, InboxSource, ReplyTo, Source, Subscription,
    Transport, push_to_subscriber,
};
use async_nats::jetstream::{self, consumer::pull, stream};
use async_nats::{HeaderMap, RequestErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use symbi_config::sections::bus::BusSecurityMode;
use symbi_types::AgentId;
use tokio::task::JoinHandle;

const H_ID: &str = "Symbi-Msg-Id";
const H_ATTEMPTS: &str = "Symbi-Attempts";
const H_REASON: &str = "Symbi-Reason";
const H_DEAD_AT: &str = "Symbi-Dead-At";

fn backend<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> BusError + '_ {
    move |e| BusError::Backend(format!("{what}: {e}"))
}

#[derive(Clone)]
struct SubEntry {
    id: u64,
    queue: Arc<BoundedQueue<Message>>,
    dropped: Arc<AtomicU64>,
}

/// One NATS subscription per distinct pattern on this node, fanned out to local queues.
struct PatternSub {
    entries: RwLock<Vec<SubEntry>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    core: Arc<Core>,
    client: async_nats::Client,
    js: jetstream::Context,
    direct: stream::Stream,
    dlq: stream::Stream,
    status: LastValueStore,
    agents: LastValueStore,
    names: DashMap<AgentId, String>,
    open_inboxes: DashMap<AgentId, ()>,
    patterns: Mutex<HashMap<TopicPattern, Arc<PatternSub>>>,
    next_sub: AtomicU64,
    prefix: String,
}

/// The NATS backend.
pub(crate) struct NatsTransport {
    shared: Arc<Shared>,
}

impl NatsTransport {
    /// Connects and makes sure the streams and buckets exist.
    pub(crate) async fn connect(core: Arc<Core>) -> Result<Self, BusError> {
        let s = core.settings.clone();
        let client = async_nats::ConnectOptions::new()
            .name("symbi-bus")
            .connect(s.nats_url.as_str())
            .await
            .map_err(|e| {
                BusError::Backend(format!("cannot connect to NATS at {}: {e}", s.nats_url))
            })?;
        let js = jetstream::new(client.clone());
        let p = &s.nats_prefix;
        let max_msg = (s.max_payload_size + 4096).min(i32::MAX as usize) as i32;
        let direct = js
            .get_or_create_stream(stream::Config {
                name: format!("{p}_DIRECT"),
                subjects: vec![format!("{p}.direct.*")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                max_messages_per_subject: s.queue_capacity as i64,
                discard: stream::DiscardPolicy::New,
                discard_new_per_subject: true,
                max_message_size: max_msg,
                max_age: s.max_ttl,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                BusError::Backend(format!(
                    "cannot create JetStream stream {p}_DIRECT (is JetStream enabled on the server, `nats-server -js`?): {e}"
                ))
            })?;
        let dlq = js
            .get_or_create_stream(stream::Config {
                name: format!("{p}_DLQ"),
                subjects: vec![format!("{p}.dlq.*")],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_messages: s.dead_letter_capacity as i64,
                discard: stream::DiscardPolicy::Old,
                max_message_size: max_msg,
                ..Default::default()
            })
            .await
            .map_err(backend("cannot create the dead-letter stream"))?;
        let status = LastValueStore::open(
            &js,
            &format!("{p}_STATUS"),
            &format!("{p}.status"),
            s.max_ttl + Duration::from_secs(3600),
        )
        .await?;
        let agents = LastValueStore::open(
            &js,
            &format!("{p}_AGENTS"),
            &format!("{p}.agents"),
            Duration::ZERO,
        )
        .await?;
        Ok(Self {
            shared: Arc::new(Shared {
                prefix: p.clone(),
                core,
                client,
                js,
                direct,
                dlq,
                status,
                agents,
                names: DashMap::new(),
                open_inboxes: DashMap::new(),
                patterns: Mutex::new(HashMap::new()),
                next_sub: AtomicU64::new(1),
            }),
        })
    }
}

impl Shared {
    fn direct_subject(&self, agent: AgentId) -> String {
        format!("{}.direct.{agent}", self.prefix)
    }

    fn wire(&self, env: Envelope) -> Result<Bytes, BusError> {
        match env {
            Envelope::Sealed(b) => Ok(b),
            Envelope::Plain(m) => self.core.codec.seal_as(&m, 0, BusSecurityMode::Plaintext),
        }
    }

    async fn set_status(&self, id: MessageId, status: DeliveryStatus) {
        self.core.status.advance(id, status);
        if let Err(e) = self
            .status
            .put(
                id.to_string(),
                Bytes::from_static(status.as_str().as_bytes()),
            )
            .await
        {
            tracing::warn!(message = %id, error = %e, "could not record the message status in NATS");
        }
    }

    /// Publishes to the direct stream, retrying while the recipient's inbox is full until
    /// the send timeout (backpressure).
    async fn js_publish_direct(
        &self,
        to: AgentId,
        id: MessageId,
        wire: Bytes,
    ) -> Result<(), BusError> {
        let subject = self.direct_subject(to);
        let deadline = tokio::time::Instant::now() + self.core.settings.send_timeout;
        let mut delay = Duration::from_millis(5);
        loop {
            let publish = jetstream::message::PublishMessage::build()
                .payload(wire.clone())
                .message_id(id.to_string());
            let r = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await.map(|_| ()),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let text = e.to_string();
                    let full = text.contains("maximum messages") || text.contains("maximum bytes");
                    if !full {
                        return Err(BusError::Backend(format!(
                            "JetStream publish to {subject}: {text}"
                        )));
                    }
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return Err(BusError::QueueFull {
                            target: format!("agent {to}"),
                            detail: format!("JetStream refused the message: {text}"),
                        });
                    }
                    tokio::time::sleep(delay.min(deadline - now)).await;
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    async fn consumer(
        &self,
        agent: AgentId,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, BusError> {
        let s = &self.core.settings;
        let name = format!("inbox-{agent}");
        self.direct
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.direct_subject(agent),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: s.ack_wait,
                    max_deliver: s.max_delivery_attempts as i64 + 1,
                    max_ack_pending: s.queue_capacity.min(i64::MAX as usize) as i64,
                    ..Default::default()
                },
            )
            .await
            .map_err(backend("cannot create the inbox consumer"))
    }

    async fn dead_letter(
        &self,
        msg: &jetstream::Message,
        id: MessageId,
        to: AgentId,
        attempts: u32,
        reason: &str,
    ) {
        let mut h = HeaderMap::new();
        h.insert(H_ID, id.to_string().as_str());
        h.insert(H_ATTEMPTS, attempts.to_string().as_str());
        h.insert(H_REASON, reason.replace(['\r', '\n'], " ").as_str());
        h.insert(H_DEAD_AT, now_ms().to_string().as_str());
        let subject = format!("{}.dlq.{to}", self.prefix);
        let published = match self
            .js
            .publish_with_headers(subject, h, msg.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(()) => {
                if let Err(e) = msg.ack_with(jetstream::AckKind::Term).await {
                    tracing::warn!(message = %id, error = %e, "could not terminate a dead-lettered message");
                }
                tracing::warn!(message = %id, attempts, reason, "message dead-lettered");
                self.set_status(id, DeliveryStatus::Failed).await;
            }
            // Leave the message to the server's redelivery: nothing is lost.
            Err(e) => {
                tracing::error!(message = %id, error = %e, "could not dead-letter a message; it stays pending")
            }
        }
    }

    /// Reads every dead letter: (sequence, headers, wire bytes).
    async fn dlq_entries(&self) -> Result<Vec<(u64, HeaderMap, Bytes)>, BusError> {
        let mut dlq = self.dlq.clone();
        let info = dlq
            .info()
            .await
            .map_err(backend("dead-letter stream info"))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut out = Vec::new();
        if info.state.messages == 0 {
            return Ok(out);
        }
        for seq in first..=last {
            match self.dlq.get_raw_message(seq).await {
                Ok(m) => out.push((seq, m.headers, m.payload)),
                Err(e)
                    if e.to_string().contains("no message found")
                        || e.to_string().contains("not found") => {}
                Err(e) => return Err(BusError::Backend(format!("reading dead letter {seq}: {e}"))),
            }
        }
        Ok(out)
    }
}

/// A key → last value store on a JetStream stream (one subject per key, one message kept
/// per subject). This is what NATS KV is underneath; it is used directly because the KV
/// management API of async-nats 0.51 does not parse the replies of nats-server 2.9
/// (Debian 12's), while plain stream operations work on every JetStream server.
struct LastValueStore {
    js: jetstream::Context,
    stream: stream::Stream,
    subject: String,
}

impl LastValueStore {
    async fn open(
        js: &jetstream::Context,
        name: &str,
        subject: &str,
        max_age: Duration,
    ) -> Result<Self, BusError> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.to_string(),
                subjects: vec![format!("{subject}.*")],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                max_age,
                allow_rollup: true,
                deny_delete: false,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                BusError::Backend(format!("cannot create JetStream stream {name}: {e}"))
            })?;
        Ok(Self {
            js: js.clone(),
            stream,
            subject: subject.to_string(),
        })
    }

    async fn put(&self, key: String, value: Bytes) -> Result<(), BusError> {
        let ack = self
            .js
            .publish(format!("{}.{key}", self.subject), value)
            .await
            .map_err(backend("store put"))?;
        ack.await.map_err(backend("store put"))?;
        Ok(())
    }

    async fn get(&self, key: String) -> Result<Option<Bytes>, BusError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind as K;
        match self
            .stream
            .get_last_raw_message_by_subject(&format!("{}.{key}", self.subject))
            .await
        {
            Ok(m) => Ok(Some(m.payload)),
            Err(e) if matches!(e.kind(), K::NoMessageFound) => Ok(None),
            Err(e) => Err(BusError::Backend(format!("store get: {e}"))),
        }
    }

    async fn delete(&self, key: String) -> Result<(), BusError> {
        self.stream
            .purge()
            .filter(format!("{}.{key}", self.subject))
            .await
            .map_err(backend("store delete"))?;
        Ok(())
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.as_str())
}

struct NatsAck {
    shared: Arc<Shared>,
    msg: jetstream::Message,
    id: MessageId,
    to: AgentId,
    attempt: u32,
}

impl NatsAck {
    async fn fail(self, reason: String) -> Result<(), BusError> {
        let s = &self.shared;
        if self.attempt >= s.core.settings.max_delivery_attempts {
            s.dead_letter(&self.msg, self.id, self.to, self.attempt, &reason)
                .await;
            return Ok(());
        }
        let delay = s.core.settings.backoff(self.attempt + 1);
        self.msg
            .ack_with(jetstream::AckKind::Nak(Some(delay)))
            .await
            .map_err(backend("nak"))
    }
}

#[async_trait]
impl AckHandle for NatsAck {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.msg.double_ack().await.map_err(backend("ack"))?;
        self.shared
            .set_status(self.id, DeliveryStatus::Delivered)
            .await;
        Ok(())
    }
    async fn nack(self: Box<Self>, reason: String) -> Result<(), BusError> {
        self.fail(reason).await
    }
    fn dropped(self: Box<Self>) {
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let _ = self
                    .fail("dropped by the receiver without acknowledgement".into())
                    .await;
            });
        }
    }
}

struct NatsInboxSource {
    shared: Arc<Shared>,
    agent: AgentId,
    messages: pull::Stream,
    requests: async_nats::Subscriber,
    replay: ReplayWindow,
    request_replay: ReplayWindow,
}

impl Drop for NatsInboxSource {
    fn drop(&mut self) {
        self.shared.open_inboxes.remove(&self.agent);
    }
}

fn arrival_ms(m: &jetstream::Message) -> u64 {
    m.info()
        .map(|i| (i.published.unix_timestamp_nanos() / 1_000_000) as u64)
        .unwrap_or_else(|_| now_ms())
}

impl NatsInboxSource {
    /// Turns one stored message into a delivery, or handles it (dead letter, expiry,
    /// violation) and returns `None`.
    async fn direct(&mut self, m: jetstream::Message) -> Option<Delivery> {
        let s = self.shared.clone();
        let settings = &s.core.settings;
        let delivered = m.info().map(|i| i.delivered).unwrap_or(1).max(1) as u32;
        let peek = Codec::peek(&m.payload).ok();
        if delivered > settings.max_delivery_attempts {
            // The last attempt ended without an ack (receiver failed or hung).
            let id = peek.as_ref().map(|p| p.id).unwrap_or_default();
            let reason = format!("not acknowledged within {:?}", settings.ack_wait);
            s.dead_letter(&m, id, self.agent, delivered - 1, &reason)
                .await;
            return None;
        }
        let arrival = arrival_ms(&m);
        let Some(msg) = s.core.accept(
            &m.payload,
            arrival,
            &self.replay,
            delivered > 1,
            "nats:direct",
        ) else {
            let _ = m.ack_with(jetstream::AckKind::Term).await;
            return None;
        };
        if msg.recipient != Some(self.agent) || msg.message_type != MessageType::Direct {
            s.core.report(
                crate::secure::Violation {
                    check: "malformed",
                    detail: format!(
                        "message in the inbox of {} is addressed to {:?}",
                        self.agent, msg.recipient
                    ),
                    message_id: Some(msg.id),
                    claimed_sender: Some(msg.sender),
                },
                "nats:direct",
            );
            let _ = m.ack_with(jetstream::AckKind::Term).await;
            return None;
        }
        if msg.is_expired() {
            let _ = m.ack_with(jetstream::AckKind::Term).await;
            s.set_status(msg.id, DeliveryStatus::Expired).await;
            return None;
        }
        let (id, to) = (msg.id, self.agent);
        Some(Delivery {
            message: msg,
            attempt: delivered,
            acker: Some(Acker::Remote(Box::new(NatsAck {
                shared: s,
                msg: m,
                id,
                to,
                attempt: delivered,
            }))),
            reply: None,
        })
    }

    fn request(&mut self, m: async_nats::Message) -> Option<Delivery> {
        let reply = m.reply.clone()?;
        let msg = self.shared.core.accept(
            &m.payload,
            now_ms(),
            &self.request_replay,
            false,
            "nats:request",
        )?;
        if msg.recipient != Some(self.agent) || msg.message_type != MessageType::Request {
            return None;
        }
        Some(Delivery {
            message: msg,
            attempt: 1,
            acker: None,
            reply: Some(ReplyTo::Nats(reply)),
        })
    }
}

#[async_trait]
impl InboxSource for NatsInboxSource {
    async fn recv(&mut self) -> Option<Delivery> {
        loop {
            tokio::select! {
                m = self.messages.next() => match m {
                    Some(Ok(m)) => if let Some(d) = self.direct(m).await { return Some(d) },
                    Some(Err(e)) => {
                        tracing::warn!(agent = %self.agent, error = %e, "inbox stream error; continuing");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    None => return None,
                },
                r = self.requests.next() => match r {
                    Some(m) => if let Some(d) = self.request(m) { return Some(d) },
                    None => return None,
                },
            }
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
        let Some(s) = self.shared.upgrade() else {
            return;
        };
        let mut patterns = s.patterns.lock();
        if let Some(ps) = patterns.get(&self.pattern) {
            let mut e = ps.entries.write();
            e.retain(|x| x.id != self.id);
            if e.is_empty() {
                drop(e);
                if let Some(t) = ps.task.lock().take() {
                    t.abort();
                }
                patterns.remove(&self.pattern);
            }
        }
    }
}

#[async_trait]
impl Transport for NatsTransport {
    fn kind(&self) -> &'static str {
        "nats"
    }

    async fn register(&self, agent: AgentId, name: &str) -> Result<(), BusError> {
        let s = &self.shared;
        s.agents
            .put(agent.to_string(), Bytes::from(name.to_string()))
            .await
            .map_err(backend("agent directory"))?;
        s.names.insert(agent, name.to_string());
        s.consumer(agent).await?;
        Ok(())
    }

    async fn unregister(&self, agent: AgentId) -> Result<(), BusError> {
        let s = &self.shared;
        s.names.remove(&agent);
        s.agents
            .delete(agent.to_string())
            .await
            .map_err(backend("agent directory"))?;
        let _ = s.direct.delete_consumer(&format!("inbox-{agent}")).await;
        Ok(())
    }

    async fn agent_name(&self, agent: AgentId) -> Result<Option<String>, BusError> {
        let s = &self.shared;
        if let Some(n) = s.names.get(&agent) {
            return Ok(Some(n.clone()));
        }
        match s
            .agents
            .get(agent.to_string())
            .await
            .map_err(backend("agent directory"))?
        {
            Some(v) => {
                let name = String::from_utf8_lossy(&v).into_owned();
                s.names.insert(agent, name.clone());
                Ok(Some(name))
            }
            None => Ok(None),
        }
    }

    async fn send_direct(&self, id: MessageId, to: AgentId, env: Envelope) -> Result<(), BusError> {
        self.shared.core.status.set(id, DeliveryStatus::Pending);
        let wire = self.shared.wire(env)?;
        self.shared.js_publish_direct(to, id, wire).await
    }

    async fn publish(&self, topic: &Topic, env: Envelope) -> Result<(), BusError> {
        let wire = self.shared.wire(env)?;
        let subject = topic.nats_subject(&format!("{}.topic", self.shared.prefix));
        self.shared
            .client
            .publish(subject, wire)
            .await
            .map_err(backend("publish"))
    }

    async fn subscribe(&self, pattern: TopicPattern) -> Result<Subscription, BusError> {
        let s = &self.shared;
        let settings = &s.core.settings;
        let id = s.next_sub.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(BoundedQueue::new(
            settings.queue_capacity,
            settings.queue_bytes,
        ));
        let dropped = Arc::new(AtomicU64::new(0));
        let entry = SubEntry {
            id,
            queue: queue.clone(),
            dropped: dropped.clone(),
        };
        let existing = s.patterns.lock().get(&pattern).cloned();
        match existing {
            Some(ps) => ps.entries.write().push(entry),
            None => {
                let subject = pattern.nats_subject(&format!("{}.topic", s.prefix));
                let mut sub = s
                    .client
                    .subscribe(subject)
                    .await
                    .map_err(backend("subscribe"))?;
                // Make sure the server knows the interest before `subscribe` returns, so a
                // publish right after is seen.
                s.client.flush().await.map_err(backend("flush"))?;
                let ps = Arc::new(PatternSub {
                    entries: RwLock::new(vec![entry]),
                    task: Mutex::new(None),
                });
                let weak_ps = Arc::downgrade(&ps);
                let core = s.core.clone();
                let timeout = settings.send_timeout;
                let task = tokio::spawn(async move {
                    let replay = core.new_replay_window();
                    while let Some(m) = sub.next().await {
                        let Some(msg) =
                            core.accept(&m.payload, now_ms(), &replay, false, "nats:topic")
                        else {
                            continue;
                        };
                        if msg.message_type != MessageType::Publish {
                            continue;
                        }
                        let Some(ps) = weak_ps.upgrade() else { return };
                        let targets = ps.entries.read().clone();
                        for t in targets {
                            push_to_subscriber(&t.queue, &t.dropped, msg.clone(), timeout).await;
                        }
                    }
                });
                *ps.task.lock() = Some(task);
                let mut patterns = s.patterns.lock();
                match patterns.get(&pattern) {
                    // Another subscriber raced us: join it and drop our NATS subscription.
                    Some(other) => {
                        other.entries.write().extend(ps.entries.write().drain(..));
                        if let Some(t) = ps.task.lock().take() {
                            t.abort();
                        }
                    }
                    None => {
                        patterns.insert(pattern.clone(), ps);
                    }
                }
            }
        }
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
        let s = &self.shared;
        if self.agent_name(agent).await?.is_none() {
            return Err(BusError::UnknownAgent(agent));
        }
        if s.open_inboxes.insert(agent, ()).is_some() {
            return Err(BusError::InboxBusy(agent));
        }
        let opened = async {
            let consumer = s.consumer(agent).await?;
            let messages = consumer
                .stream()
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
                .map_err(backend("inbox stream"))?;
            let requests = s
                .client
                .subscribe(format!("{}.req.{agent}", s.prefix))
                .await
                .map_err(backend("subscribe"))?;
            s.client.flush().await.map_err(backend("flush"))?;
            Ok::<_, BusError>((messages, requests))
        }
        .await;
        let (messages, requests) = match opened {
            Ok(x) => x,
            Err(e) => {
                s.open_inboxes.remove(&agent);
                return Err(e);
            }
        };
        Ok(Inbox {
            agent,
            source: Source::Remote(Box::new(NatsInboxSource {
                shared: s.clone(),
                agent,
                messages,
                requests,
                replay: s.core.new_replay_window(),
                request_replay: s.core.new_replay_window(),
            })),
        })
    }

    async fn drain_inbox(&self, agent: AgentId) -> Result<Vec<Message>, BusError> {
        let s = &self.shared;
        if self.agent_name(agent).await?.is_none() {
            return Err(BusError::UnknownAgent(agent));
        }
        let consumer = s.consumer(agent).await?;
        let replay = s.core.new_replay_window();
        let mut out = Vec::new();
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(256)
                .messages()
                .await
                .map_err(backend("fetch from inbox"))?;
            let mut n = 0;
            while let Some(m) = batch.next().await {
                let m = m.map_err(backend("fetch from inbox"))?;
                n += 1;
                let delivered = m.info().map(|i| i.delivered).unwrap_or(1).max(1);
                let Some(msg) = s.core.accept(
                    &m.payload,
                    arrival_ms(&m),
                    &replay,
                    delivered > 1,
                    "nats:direct",
                ) else {
                    let _ = m.ack_with(jetstream::AckKind::Term).await;
                    continue;
                };
                m.double_ack().await.map_err(backend("ack"))?;
                if msg.is_expired() {
                    s.set_status(msg.id, DeliveryStatus::Expired).await;
                    continue;
                }
                s.set_status(msg.id, DeliveryStatus::Delivered).await;
                out.push(msg);
            }
            if n == 0 {
                return Ok(out);
            }
        }
    }

    async fn request(
        &self,
        id: MessageId,
        to: AgentId,
        env: Envelope,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        let s = &self.shared;
        let wire = s.wire(env)?;
        let req = async_nats::Request::new()
            .payload(wire)
            .timeout(Some(timeout));
        let resp = match s
            .client
            .send_request(format!("{}.req.{to}", s.prefix), req)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Err(match e.kind() {
                    RequestErrorKind::NoResponders => BusError::NoResponders(to),
                    RequestErrorKind::TimedOut => BusError::Timeout { id, to, timeout },
                    _ => BusError::Backend(format!("request: {e}")),
                });
            }
        };
        let m = s
            .core
            .accept(
                &resp.payload,
                now_ms(),
                &s.core.replay,
                false,
                "nats:response",
            )
            .ok_or_else(|| {
                BusError::Security("the response failed verification (audited)".into())
            })?;
        if m.correlation_id != Some(id) || m.sender != to || m.message_type != MessageType::Response
        {
            return Err(BusError::Security(format!(
                "response to {} does not correlate",
                id
            )));
        }
        Ok(m)
    }

    async fn respond(&self, reply: ReplyTo, env: Envelope) -> Result<(), BusError> {
        let ReplyTo::Nats(subject) = reply else {
            return Err(BusError::Backend(
                "a memory reply handle reached the NATS backend".into(),
            ));
        };
        let wire = self.shared.wire(env)?;
        self.shared
            .client
            .publish(subject, wire)
            .await
            .map_err(backend("respond"))?;
        self.shared.client.flush().await.map_err(backend("flush"))
    }

    async fn remote_status(&self, id: MessageId) -> Result<Option<DeliveryStatus>, BusError> {
        let v = self
            .shared
            .status
            .get(id.to_string())
            .await
            .map_err(backend("status bucket"))?;
        Ok(v.and_then(|b| match &b[..] {
            b"pending" => Some(DeliveryStatus::Pending),
            b"delivered" => Some(DeliveryStatus::Delivered),
            b"failed" => Some(DeliveryStatus::Failed),
            b"expired" => Some(DeliveryStatus::Expired),
            _ => None,
        }))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, BusError> {
        let s = &self.shared;
        let mut out = Vec::new();
        for (seq, h, wire) in s.dlq_entries().await? {
            match s.core.codec.open_inner(&wire, now_ms(), None, false, false) {
                Ok((message, _)) => out.push(DeadLetter {
                    message,
                    attempts: header(&h, H_ATTEMPTS)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    reason: header(&h, H_REASON).unwrap_or_default().to_string(),
                    dead_at_ms: header(&h, H_DEAD_AT)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                }),
                Err(v) => tracing::warn!(seq, violation = %v, "unreadable dead letter skipped"),
            }
        }
        Ok(out)
    }

    async fn redrive(&self, id: MessageId) -> Result<(), BusError> {
        let s = &self.shared;
        let wanted = id.to_string();
        let (seq, _, wire) = s
            .dlq_entries()
            .await?
            .into_iter()
            .find(|(_, h, _)| header(h, H_ID) == Some(wanted.as_str()))
            .ok_or(BusError::UnknownMessage(id))?;
        let (mut msg, redrive) = s
            .core
            .codec
            .open_inner(&wire, now_ms(), None, false, false)
            .map_err(|v| BusError::Security(format!("dead letter {id} does not verify: {v}")))?;
        let to = msg
            .recipient
            .ok_or_else(|| BusError::Backend("dead letter without recipient".into()))?;
        // A new lifetime and a new redrive count, re-sealed as the original sender: the
        // receiver's replay window keys on (id, redrive), so the re-driven copy is accepted.
        msg.timestamp_ms = now_ms();
        let fresh = s
            .core
            .codec
            .seal_as(&msg, redrive + 1, s.core.settings.security)?;
        // Back to pending on purpose (`set`, not `advance`: "failed" was final until now).
        s.core.status.set(id, DeliveryStatus::Pending);
        s.status
            .put(id.to_string(), Bytes::from_static(b"pending"))
            .await?;
        // Not `js_publish_direct`: the JetStream duplicate window would drop a re-send with the
        // same message id.
        let publish = jetstream::message::PublishMessage::build()
            .payload(fresh)
            .message_id(format!("{id}/redrive/{}", redrive + 1));
        let ack =
            s.js.send_publish(s.direct_subject(to), publish)
                .await
                .map_err(backend("redrive"))?;
        ack.await.map_err(backend("redrive"))?;
        s.dlq
            .delete_message(seq)
            .await
            .map_err(backend("delete dead letter"))?;
        Ok(())
    }

    async fn ingest(&self, wire: Bytes) -> Result<(), BusError> {
        let s = &self.shared;
        let peek = Codec::peek(&wire).map_err(|v| BusError::Security(v.to_string()))?;
        match (peek.message_type, peek.recipient, peek.topic) {
            (MessageType::Direct, Some(to), _) => {
                // Published raw, as anything on the network could: the receiver verifies.
                let ack =
                    s.js.publish(s.direct_subject(to), wire)
                        .await
                        .map_err(backend("ingest"))?;
                ack.await.map_err(backend("ingest"))?;
                Ok(())
            }
            (MessageType::Publish, _, Some(t)) => {
                let topic = Topic::parse(&t)?;
                s.client
                    .publish(topic.nats_subject(&format!("{}.topic", s.prefix)), wire)
                    .await
                    .map_err(backend("ingest"))?;
                s.client.flush().await.map_err(backend("flush"))
            }
            (t, _, _) => Err(BusError::Backend(format!(
                "cannot ingest a {} message from outside",
                t.as_str()
            ))),
        }
    }

    async fn close(&self) {
        let s = &self.shared;
        for (_, ps) in s.patterns.lock().drain() {
            if let Some(t) = ps.task.lock().take() {
                t.abort();
            }
            for e in ps.entries.read().iter() {
                e.queue.close();
            }
        }
        let _ = s.client.flush().await;
    }
}
