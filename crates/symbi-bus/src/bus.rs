//! [`Bus`]: the one API over both backends, with policy gating, rate limits, sealing and
//! statuses.

use crate::core::{BusSettings, Core};
use crate::error::BusError;
use crate::keys::KeyRing;
use crate::memory::MemoryTransport;
use crate::message::{
    DeadLetter, DeliveryStatus, Message, MessageId, MessageType, SendOptions, now_ms,
};
use crate::secure::{Codec, CodecSettings};
use crate::topic::{Topic, TopicPattern};
use crate::transport::{Delivery, Envelope, Inbox, Subscription, Transport};
use bytes::Bytes;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use symbi_config::Config;
use symbi_config::sections::bus::{BusBackend, BusSecurityMode};
use symbi_crypto::CryptoProvider;
use symbi_types::{
    ActionCategory, AgentId, Decision, EventDraft, EventSink, ExecutionId, PolicyDecisionPoint,
    PolicyRequest, Principal, Subject, SubjectKind,
};

type Limiter = RateLimiter<AgentId, DefaultKeyedStateStore<AgentId>, DefaultClock>;

struct Inner {
    core: Arc<Core>,
    transport: Box<dyn Transport>,
    pdp: Arc<dyn PolicyDecisionPoint>,
    limiter: Option<Limiter>,
    requests: RequestCache,
}

/// Entries kept before the request cache starts over (one per sender, recipient and
/// execution that exchanged messages lately).
const REQUEST_CACHE_CAPACITY: usize = 4096;

/// Built policy requests of direct messages and publishes, see [`Bus::direct_request`].
#[derive(Default)]
struct RequestCache {
    map: DashMap<RequestKey, CachedRequest, foldhash::fast::RandomState>,
    /// Bumped by every agent registration or removal; older entries are not used.
    generation: AtomicU64,
}

/// Sender, execution, and what is acted on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct RequestKey(AgentId, Option<ExecutionId>, Target);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Agent(AgentId),
    /// A topic as the caller spelled it, by hash; the entry keeps the spelling to confirm.
    Topic(u64),
}

struct CachedRequest {
    generation: u64,
    request: Arc<PolicyRequest>,
    /// For publishes: the caller's spelling and the parsed topic.
    topic: Option<(Box<str>, Topic)>,
}

impl RequestCache {
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached entry for `key` if it is current and made for this very principal.
    fn get<T>(
        &self,
        key: &RequestKey,
        from: &Principal,
        f: impl FnOnce(&CachedRequest) -> Option<T>,
    ) -> Option<T> {
        let generation = self.generation.load(Ordering::Acquire);
        let e = self.map.get(key)?;
        if e.generation == generation && e.request.principal == *from {
            f(&e)
        } else {
            None
        }
    }

    /// Stores `request`, built while the generation was `generation`, and returns it.
    fn put(
        &self,
        key: RequestKey,
        generation: u64,
        request: PolicyRequest,
        topic: Option<(Box<str>, Topic)>,
    ) -> Arc<PolicyRequest> {
        if self.map.len() >= REQUEST_CACHE_CAPACITY {
            self.map.clear();
        }
        let request = Arc::new(request);
        let entry = CachedRequest {
            generation,
            request: request.clone(),
            topic,
        };
        self.map.insert(key, entry);
        request
    }
}

/// The policy request of a bus operation (its context says the bus enforced it).
fn policy_request(
    from: &Principal,
    category: ActionCategory,
    subject: Subject,
    opts: &SendOptions,
) -> PolicyRequest {
    let mut req = PolicyRequest::new(from.clone(), category, category.as_str(), subject);
    req.execution = opts.execution;
    req.context.insert("enforcement_point".into(), "bus".into());
    req
}

/// The communication bus. Cheap to clone (one shared instance per runtime).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use symbi_bus::{Bus, BusSettings, KeyRing, SendOptions};
/// use symbi_types::{AgentId, Decision, MemoryEventLog, PolicyDecisionPoint, PolicyRequest, Principal, AgentRuleSet};
///
/// struct AllowAll; // stands in for the policy engine in this example
/// impl PolicyDecisionPoint for AllowAll {
///     fn decide(&self, _: &PolicyRequest, _: Option<&dyn AgentRuleSet>) -> Decision {
///         Decision::Allow { reasons: vec!["example".into()] }
///     }
/// }
///
/// let provider = symbi_crypto::provider("ring").unwrap();
/// let keys = Arc::new(KeyRing::new(provider, [7; 32]));
/// let bus = Bus::memory(BusSettings::default(), keys, Arc::new(AllowAll), Arc::new(MemoryEventLog::default())).unwrap();
/// let (a, b) = (AgentId::new(), AgentId::new());
/// bus.register_agent(a, "alice").await.unwrap();
/// bus.register_agent(b, "bob").await.unwrap();
/// let alice = Principal { agent_id: Some(a), ..Principal::agent("alice") };
///
/// let id = bus.send(&alice, b, "hello", SendOptions::default()).await.unwrap();
/// let mut inbox = bus.inbox(b).await.unwrap();
/// let d = inbox.recv().await.unwrap();
/// assert_eq!(d.message().payload_str(), Some("hello"));
/// d.ack().await.unwrap();
/// assert_eq!(bus.message_status(id).await.unwrap().unwrap().as_str(), "delivered");
/// # });
/// ```
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("backend", &self.inner.transport.kind())
            .field("security", &self.inner.core.settings.security)
            .finish()
    }
}

fn codec_settings(s: &BusSettings) -> CodecSettings {
    CodecSettings {
        mode: s.security,
        skew_ms: s.max_clock_skew.as_millis() as u64,
        rekey_messages: s.session_rekey_messages,
        rekey_interval_ms: s.session_rekey_interval.as_millis() as u64,
    }
}

impl Bus {
    /// The shared core (settings checked, codec keyed) a transport is built on.
    fn core(
        settings: BusSettings,
        keys: Arc<KeyRing>,
        audit: Arc<dyn EventSink>,
    ) -> Result<Arc<Core>, BusError> {
        settings.validate()?;
        let codec = Codec::new(keys, codec_settings(&settings));
        Ok(Arc::new(Core::new(settings, codec, audit)))
    }

    /// The facade over `transport`, with the per-agent rate limiter of the core's settings.
    fn assemble(
        core: Arc<Core>,
        transport: Box<dyn Transport>,
        pdp: Arc<dyn PolicyDecisionPoint>,
    ) -> Self {
        let s = &core.settings;
        let limiter = NonZeroU32::new(s.rate_limit_per_agent).map(|rate| {
            let burst = NonZeroU32::new(s.rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            inner: Arc::new(Inner {
                core,
                transport,
                pdp,
                limiter,
                requests: RequestCache::default(),
            }),
        }
    }

    /// An in-process bus. Must be called inside a tokio runtime (it starts the
    /// acknowledgement sweeper).
    pub fn memory(
        settings: BusSettings,
        keys: Arc<KeyRing>,
        pdp: Arc<dyn PolicyDecisionPoint>,
        audit: Arc<dyn EventSink>,
    ) -> Result<Self, BusError> {
        let core = Self::core(settings, keys, audit)?;
        let transport = Box::new(MemoryTransport::new(core.clone()));
        Ok(Self::assemble(core, transport, pdp))
    }

    /// A bus over the NATS server at `settings.nats_url` (JetStream must be enabled).
    pub async fn nats(
        settings: BusSettings,
        keys: Arc<KeyRing>,
        pdp: Arc<dyn PolicyDecisionPoint>,
        audit: Arc<dyn EventSink>,
    ) -> Result<Self, BusError> {
        let core = Self::core(settings, keys, audit)?;
        let transport = Box::new(crate::nats::NatsTransport::connect(core.clone()).await?);
        Ok(Self::assemble(core, transport, pdp))
    }

    /// The bus the configuration asks for: backend `[bus] backend`, crypto provider
    /// `[security] crypto_provider`, master secret `[bus] master_key_file` (relative to
    /// `data_dir`; default `data_dir/keys/bus-master.key`, created 0600 on first start).
    pub async fn from_config(
        config: &Config,
        data_dir: &Path,
        pdp: Arc<dyn PolicyDecisionPoint>,
        audit: Arc<dyn EventSink>,
    ) -> Result<Self, BusError> {
        let provider: Arc<dyn CryptoProvider> =
            symbi_crypto::provider(config.security.crypto_provider.as_str())
                .map_err(|e| BusError::Config(e.to_string()))?;
        let key_file = match &config.bus.master_key_file {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => data_dir.join(p),
            None => data_dir.join("keys/bus-master.key"),
        };
        let keys = Arc::new(KeyRing::from_key_file(provider, &key_file)?);
        let settings = BusSettings::from_config(config);
        match settings.backend {
            BusBackend::Memory => Self::memory(settings, keys, pdp, audit),
            BusBackend::Nats => Self::nats(settings, keys, pdp, audit).await,
        }
    }

    /// `memory` or `nats`.
    pub fn backend(&self) -> &'static str {
        self.inner.transport.kind()
    }

    /// The effective settings.
    pub fn settings(&self) -> &BusSettings {
        &self.inner.core.settings
    }

    /// The codec (seals messages with this node's keys). Bridges use it to produce wire
    /// bytes for [`Bus::ingest`]; tests use it to play an attacker who replays or tampers.
    pub fn codec(&self) -> &Codec {
        &self.inner.core.codec
    }

    /// Registers an agent (creates its inbox). Every registered agent has an inbox.
    pub async fn register_agent(&self, agent: AgentId, name: &str) -> Result<(), BusError> {
        let r = self.inner.transport.register(agent, name).await;
        self.inner.requests.invalidate();
        r
    }

    /// Removes an agent's inbox (its queued messages are discarded).
    pub async fn unregister_agent(&self, agent: AgentId) -> Result<(), BusError> {
        let r = self.inner.transport.unregister(agent).await;
        self.inner.requests.invalidate();
        r
    }

    fn sender_of(from: &Principal) -> Result<AgentId, BusError> {
        from.agent_id
            .ok_or_else(|| BusError::NotAnAgent(from.name.clone()))
    }

    fn rate_limit(&self, agent: AgentId) -> Result<(), BusError> {
        if let Some(l) = &self.inner.limiter
            && let Err(not_until) = l.check_key(&agent)
        {
            return Err(BusError::RateLimited {
                agent,
                per_second: self.inner.core.settings.rate_limit_per_agent,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
        Ok(())
    }

    async fn authorize(
        &self,
        from: &Principal,
        category: ActionCategory,
        subject: Subject,
        opts: &SendOptions,
    ) -> Result<(), BusError> {
        self.decide(&policy_request(from, category, subject, opts), opts)
            .await
    }

    /// Asks the policy decision point about `req` (one decision per message, always);
    /// a denial is audited.
    async fn decide(&self, req: &PolicyRequest, opts: &SendOptions) -> Result<(), BusError> {
        let decision = self.inner.pdp.decide(req, opts.rules.as_deref());
        let operation = req.category.as_str();
        match decision {
            Decision::Allow { .. } => Ok(()),
            Decision::AllowWithConditions { .. } if opts.conditions_satisfied => Ok(()),
            Decision::AllowWithConditions { ref conditions, .. } => {
                Err(BusError::UnmetConditions {
                    operation,
                    conditions: serde_json::to_string(conditions).unwrap_or_default(),
                })
            }
            Decision::Deny { .. } => {
                let reason = decision.reason();
                let from = &req.principal;
                let draft = EventDraft {
                    agent: from.agent_id,
                    agent_name: Some(from.name.clone()),
                    execution: opts.execution,
                    event_type: symbi_types::event::types::POLICY_DECISION.into(),
                    details: serde_json::json!({
                        "component": "bus",
                        "operation": operation,
                        "subject": {"kind": req.subject.kind, "name": req.subject.name},
                        "decision": "Deny",
                        "reasons": match &decision { Decision::Deny { reasons } => reasons.clone(), _ => vec![] },
                    }),
                };
                if let Err(e) = self.inner.core.audit.record(draft).await {
                    tracing::error!(error = %e, "could not audit a bus policy denial");
                }
                Err(BusError::PolicyDenied { operation, reason })
            }
        }
    }

    /// The `message_send` request for `from` → `to`: built once per (sender, recipient,
    /// execution) and reused while the sender's principal is the same and no agent was
    /// registered or removed since (a rename changes the subject). The decision itself is
    /// made per message; only the request's construction is saved.
    async fn direct_request(
        &self,
        from: &Principal,
        sender: AgentId,
        to: AgentId,
        opts: &SendOptions,
    ) -> Result<Arc<PolicyRequest>, BusError> {
        let cache = &self.inner.requests;
        let key = RequestKey(sender, opts.execution, Target::Agent(to));
        if let Some(req) = cache.get(&key, from, |e| Some(e.request.clone())) {
            return Ok(req);
        }
        // Read before the name: a rename after this point makes the entry stale, not wrong.
        let generation = cache.generation.load(Ordering::Acquire);
        let subject = self.recipient_subject(to).await?;
        let req = policy_request(from, ActionCategory::MessageSend, subject, opts);
        Ok(cache.put(key, generation, req, None))
    }

    /// The parsed topic and the `publish` request for `from` publishing to `topic` as
    /// spelled, built once per (sender, execution, spelling) like [`Bus::direct_request`].
    fn publish_request(
        &self,
        from: &Principal,
        sender: AgentId,
        topic: &str,
        opts: &SendOptions,
    ) -> Result<(Arc<PolicyRequest>, Topic), BusError> {
        let cache = &self.inner.requests;
        let hash = cache.map.hasher().hash_one(topic);
        let key = RequestKey(sender, opts.execution, Target::Topic(hash));
        let hit = cache.get(&key, from, |e| match &e.topic {
            Some((spelling, parsed)) if **spelling == *topic => {
                Some((e.request.clone(), parsed.clone()))
            }
            _ => None,
        });
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let generation = cache.generation.load(Ordering::Acquire);
        let parsed = Topic::parse(topic)?;
        let subject = Subject::named(SubjectKind::Topic, parsed.as_str());
        let req = policy_request(from, ActionCategory::Publish, subject, opts);
        let spelled = Some((topic.into(), parsed.clone()));
        Ok((cache.put(key, generation, req, spelled), parsed))
    }

    fn ttl_ms(&self, opts: &SendOptions) -> u64 {
        let s = &self.inner.core.settings;
        opts.ttl
            .unwrap_or(s.default_ttl)
            .clamp(Duration::from_secs(1), s.max_ttl)
            .as_millis() as u64
    }

    fn check_payload(&self, payload: &Bytes) -> Result<(), BusError> {
        let limit = self.inner.core.settings.max_payload_size;
        if payload.len() > limit {
            return Err(BusError::PayloadTooLarge {
                size: payload.len(),
                limit,
            });
        }
        Ok(())
    }

    fn envelope(&self, msg: Message) -> Result<Envelope, BusError> {
        Ok(match self.inner.core.settings.security {
            BusSecurityMode::Plaintext if self.inner.transport.kind() == "memory" => {
                Envelope::Plain(msg)
            }
            _ => Envelope::Sealed(self.inner.core.codec.seal(&msg)?),
        })
    }

    async fn recipient_subject(&self, to: AgentId) -> Result<Subject, BusError> {
        let name = self
            .inner
            .transport
            .agent_name(to)
            .await?
            .ok_or(BusError::UnknownAgent(to))?;
        Ok(Subject::named(SubjectKind::Agent, name)
            .with("id", to.to_string())
            .with("registered", true))
    }

    /// Sends a direct message with delivery guarantees: it is queued in `to`'s inbox
    /// (waiting up to `[bus] send_timeout` for room), delivered until acknowledged, retried
    /// with exponential backoff, and dead-lettered after `[bus] max_delivery_attempts`.
    ///
    /// Checked first: the sender's rate limit, then the policy (`message_send` on the
    /// recipient as an `Agent` subject). Returns the message id; its status starts
    /// `pending`.
    pub async fn send(
        &self,
        from: &Principal,
        to: AgentId,
        payload: impl Into<Bytes>,
        opts: SendOptions,
    ) -> Result<MessageId, BusError> {
        let ttl_ms = self.ttl_ms(&opts);
        let msg = self
            .checked_direct(from, to, payload.into(), MessageType::Direct, ttl_ms, &opts)
            .await?;
        let id = msg.id;
        let env = self.envelope(msg)?;
        let transport = &self.inner.transport;
        let sent = match transport.try_send_direct(id, to, env) {
            Ok(None) => Ok(()),
            Ok(Some(env)) => transport.send_direct(id, to, env).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            self.inner.core.status.set(id, DeliveryStatus::Failed);
            return Err(e);
        }
        Ok(id)
    }

    /// Publishes to a topic (`support/urgent`, `support.urgent` and `topic://support/urgent`
    /// are the same topic). Every subscription whose pattern matches receives it, at most
    /// once (no status is kept: [`Bus::message_status`] answers `None` for its id).
    /// Checked: rate limit, then policy (`publish` on a `Topic` subject named by the
    /// canonical topic).
    pub async fn publish(
        &self,
        from: &Principal,
        topic: &str,
        payload: impl Into<Bytes>,
        opts: SendOptions,
    ) -> Result<MessageId, BusError> {
        let payload = payload.into();
        let sender = Self::sender_of(from)?;
        self.check_payload(&payload)?;
        self.rate_limit(sender)?;
        let (req, topic) = self.publish_request(from, sender, topic, &opts)?;
        self.decide(&req, &opts).await?;
        let now = now_ms();
        let msg = Message {
            id: opts.id.unwrap_or_else(|| MessageId::at(now)),
            sender,
            recipient: None,
            topic: Some(topic.clone()),
            correlation_id: None,
            payload,
            message_type: MessageType::Publish,
            timestamp_ms: now,
            ttl_ms: self.ttl_ms(&opts),
        };
        let id = msg.id;
        let env = self.envelope(msg)?;
        // No status is kept for publishes: they carry no delivery guarantee (a full
        // subscription drops its copy), so there is nothing to track per message.
        self.inner.transport.publish(&topic, env).await?;
        Ok(id)
    }

    /// Subscribes `agent` to a pattern (`a/*`, `a/>`; see [`crate::topic`]). Checked by
    /// policy (`subscribe` on a `Topic` subject named by the canonical pattern, with
    /// attribute `pattern: true`).
    pub async fn subscribe(
        &self,
        agent: &Principal,
        pattern: &str,
        opts: SendOptions,
    ) -> Result<Subscription, BusError> {
        Self::sender_of(agent)?;
        let pattern = TopicPattern::parse(pattern)?;
        let subject = Subject::named(SubjectKind::Topic, pattern.as_str())
            .with("pattern", pattern.is_wildcard());
        self.authorize(agent, ActionCategory::Subscribe, subject, &opts)
            .await?;
        self.inner.transport.subscribe(pattern).await
    }

    /// Sends a request to `to` and waits up to `timeout` for its response. The recipient
    /// must have its inbox open ([`Bus::inbox`]), else [`BusError::NoResponders`].
    /// Checked like [`Bus::send`] (`message_send`).
    pub async fn request(
        &self,
        from: &Principal,
        to: AgentId,
        payload: impl Into<Bytes>,
        timeout: Duration,
        opts: SendOptions,
    ) -> Result<Message, BusError> {
        let ttl_ms = timeout.as_millis().max(1000) as u64;
        let msg = self
            .checked_direct(
                from,
                to,
                payload.into(),
                MessageType::Request,
                ttl_ms,
                &opts,
            )
            .await?;
        let id = msg.id;
        let env = self.envelope(msg)?;
        self.inner.transport.request(id, to, env, timeout).await
    }

    /// The checks every message to one agent passes — payload size, the sender's rate
    /// limit, the `message_send` decision on the recipient — then the message itself.
    async fn checked_direct(
        &self,
        from: &Principal,
        to: AgentId,
        payload: Bytes,
        message_type: MessageType,
        ttl_ms: u64,
        opts: &SendOptions,
    ) -> Result<Message, BusError> {
        let sender = Self::sender_of(from)?;
        self.check_payload(&payload)?;
        self.rate_limit(sender)?;
        let req = self.direct_request(from, sender, to, opts).await?;
        self.decide(&req, opts).await?;
        let now = now_ms();
        Ok(Message {
            id: opts.id.unwrap_or_else(|| MessageId::at(now)),
            sender,
            recipient: Some(to),
            topic: None,
            correlation_id: None,
            payload,
            message_type,
            timestamp_ms: now,
            ttl_ms,
        })
    }

    /// Answers a request received in an inbox. The response is sealed like any message
    /// (sender: the responder) and is not separately policy-checked: it belongs to the
    /// exchange the request's `message_send` decision allowed.
    pub async fn respond(
        &self,
        from: AgentId,
        request: &mut Delivery,
        payload: impl Into<Bytes>,
    ) -> Result<(), BusError> {
        let payload = payload.into();
        self.check_payload(&payload)?;
        let req = request.message().clone();
        if req.recipient != Some(from) {
            return Err(BusError::Security(format!(
                "agent {from} cannot answer a request addressed to another agent"
            )));
        }
        let reply = request.reply.take().ok_or_else(|| {
            BusError::Backend(format!(
                "message {} is not a request or was already answered",
                req.id
            ))
        })?;
        let msg = Message {
            id: MessageId::new(),
            sender: from,
            recipient: Some(req.sender),
            topic: None,
            correlation_id: Some(req.id),
            payload,
            message_type: MessageType::Response,
            timestamp_ms: now_ms(),
            ttl_ms: req.ttl_ms,
        };
        let env = self.envelope(msg)?;
        self.inner.transport.respond(reply, env).await
    }

    /// Opens `agent`'s inbox for receiving with acknowledgements (one open inbox per
    /// agent). This is how a persistent agent's message loop receives.
    pub async fn inbox(&self, agent: AgentId) -> Result<Inbox, BusError> {
        self.inner.transport.open_inbox(agent).await
    }

    /// Returns and removes the messages waiting in `agent`'s inbox (HTTP API
    /// `GET /api/v1/agents/{id}/messages`). Drained direct messages count as delivered.
    pub async fn inbox_drain(&self, agent: AgentId) -> Result<Vec<Message>, BusError> {
        self.inner.transport.drain_inbox(agent).await
    }

    /// The delivery status of a direct message or request sent through this bus (`None`:
    /// unknown, a publish, or forgotten beyond `[bus] status_capacity`).
    pub async fn message_status(&self, id: MessageId) -> Result<Option<DeliveryStatus>, BusError> {
        let table = &self.inner.core.status;
        // The in-process backend records no status while a message is queued or in flight,
        // and records its final one before the message leaves (an acknowledged one may
        // still sit in the ledger until the receiver's next pop). So: a final status, else
        // held here means pending, else look again (it may have settled in between).
        if let Some(s) = table.get(id)
            && s.is_final()
        {
            return Ok(Some(s));
        }
        if self.inner.transport.holds(id) {
            return Ok(Some(DeliveryStatus::Pending));
        }
        if let Some(s) = table.get(id) {
            if s.is_final() {
                return Ok(Some(s));
            }
            // Pending here may have been settled on another node.
            return Ok(Some(
                self.inner.transport.remote_status(id).await?.unwrap_or(s),
            ));
        }
        self.inner.transport.remote_status(id).await
    }

    /// Messages that exhausted their delivery attempts (oldest first).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, BusError> {
        self.inner.transport.dead_letters().await
    }

    /// Re-sends a dead letter to its recipient with a fresh attempt count (operator
    /// action; no policy check: the original send was allowed).
    pub async fn redrive(&self, id: MessageId) -> Result<(), BusError> {
        self.inner.transport.redrive(id).await
    }

    /// Accepts sealed wire bytes that arrived from outside this bus (a bridge). They go
    /// through the full receive-side verification; a failure is audited and the message
    /// dropped.
    pub async fn ingest(&self, wire: Bytes) -> Result<(), BusError> {
        self.inner.transport.ingest(wire).await
    }

    /// Closes the bus: receivers see the end of their streams, senders get `Closed`.
    pub async fn close(&self) {
        self.inner.transport.close().await
    }
}
