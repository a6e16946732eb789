//! Secure messages: the wire format, sealing, verification and replay protection.
//!
//! # Wire format (version 1, integers big-endian)
//!
//! ```text
//! header   "SB" | version u8 = 1 | mode u8 | message_type u8 | flags u8
//!          id 16 | sender 16 | [recipient 16] | [correlation 16]
//!          timestamp_ms u64 | ttl_ms u64 | redrive u32 | [topic_len u16 | topic]
//!          mode 1 (signed):  nonce 12
//!          mode 2 (session): session_id 16 | counter u64 | salt 32 | created_ms u64 | handshake_sig 64
//! body     payload_len u32 | payload (mode 0) or AES-256-GCM ciphertext ‖ tag (modes 1, 2)
//! trailer  mode 1 only: Ed25519 signature 64 over header ‖ body
//! ```
//!
//! The header is the AEAD's associated data, so no header field can be changed without the
//! tag failing; in mode 1 the signature covers header and ciphertext as well.
//!
//! * **Mode 1, signed every message** ([`SecureMessage`]): fresh random 96-bit nonce per
//!   message, channel key (see [`crate::keys`]), Ed25519 signature by the sender's identity
//!   key. Each message on its own proves its sender, integrity, confidentiality.
//! * **Mode 2, session**: the sender opens a session per channel with a signed handshake
//!   `(sender, channel, session_id, salt, created_ms)`; the session key is
//!   HKDF(channel key, salt, session_id). Messages carry the handshake (so late
//!   subscribers can join) and are sealed with the session key under a counter nonce.
//!   Receivers verify a handshake signature once per session and cache the key. The
//!   sender re-keys (new signed handshake) every `session_rekey_messages` messages or
//!   `session_rekey_interval`. Integrity and confidentiality per message; sender identity
//!   is proven by the handshake signature to anyone who does not also hold the channel
//!   key (see docs/bus.md for the honest comparison).
//! * **Mode 0, plaintext**: header and payload, no cryptography.
//!
//! Receivers check, in order: well-formed, mode equals the configured mode (no downgrade),
//! freshness (|arrival − timestamp| ≤ `max_clock_skew_s`), signature (or handshake
//! signature), decryption, then replay (message id seen within the window). Any failure
//! is a [`Violation`]: the bus drops the message and records a `security_violation`
//! audit event.

use crate::error::BusError;
use crate::keys::{Channel, KeyRing};
use crate::message::{Message, MessageId, MessageType, now_ms};
use crate::topic::Topic;
use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use symbi_config::sections::bus::BusSecurityMode;
use symbi_crypto::{Aead, NONCE_LEN, SIGNATURE_LEN, Signature};
use symbi_types::AgentId;
use uuid::Uuid;

const MAGIC: &[u8; 2] = b"SB";
const VERSION: u8 = 1;
const F_RECIPIENT: u8 = 1;
const F_CORRELATION: u8 = 2;
const F_TOPIC: u8 = 4;
const HANDSHAKE_CONTEXT: &[u8] = b"symbi-bus/session/v1";
/// Most verified inbound sessions kept (cleared beyond; re-verification is the only cost).
const MAX_INBOUND_SESSIONS: usize = 65_536;

fn mode_byte(m: BusSecurityMode) -> u8 {
    match m {
        BusSecurityMode::Plaintext => 0,
        BusSecurityMode::SignedEveryMessage => 1,
        BusSecurityMode::Session => 2,
    }
}

fn mode_name(b: u8) -> &'static str {
    match b {
        0 => "plaintext",
        1 => "signed_every_message",
        2 => "session",
        _ => "unknown",
    }
}

/// A failed receive-side check. The message is dropped and the violation audited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which check failed: `malformed`, `security_mode`, `stale_timestamp`,
    /// `future_timestamp`, `signature`, `session`, `decrypt`, `replay`.
    pub check: &'static str,
    /// What exactly.
    pub detail: String,
    /// The claimed message id, when the header could be read.
    pub message_id: Option<MessageId>,
    /// The claimed sender, when the header could be read.
    pub claimed_sender: Option<AgentId>,
}

impl Violation {
    fn new(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            detail: detail.into(),
            message_id: None,
            claimed_sender: None,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

/// A parsed mode-1 message: the fields of SPEC §6's secure message, borrowed from the
/// wire bytes.
#[derive(Debug, Clone)]
pub struct SecureMessage<'a> {
    /// Message id.
    pub id: MessageId,
    /// Sender.
    pub sender: AgentId,
    /// Recipient, for direct messages.
    pub recipient: Option<AgentId>,
    /// Creation time (ms since the epoch).
    pub timestamp_ms: u64,
    /// The AES-256-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext ‖ tag.
    pub ciphertext: &'a [u8],
    /// Ed25519 signature over header ‖ body.
    pub signature: Signature,
}

struct Header<'a> {
    mode: u8,
    mtype: MessageType,
    id: MessageId,
    sender: AgentId,
    recipient: Option<AgentId>,
    correlation: Option<MessageId>,
    timestamp_ms: u64,
    ttl_ms: u64,
    redrive: u32,
    topic: Option<&'a str>,
    nonce: [u8; NONCE_LEN],
    session: Option<SessionHeader<'a>>,
    /// End of the header (= AEAD associated data).
    header_end: usize,
    body: &'a [u8],
    /// End of header ‖ body (= signed part).
    body_end: usize,
    signature: Option<Signature>,
}

struct SessionHeader<'a> {
    id: [u8; 16],
    counter: u64,
    salt: &'a [u8],
    created_ms: u64,
    sig: Signature,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Violation> {
        if self.pos + n > self.buf.len() {
            return Err(Violation::new(
                "malformed",
                format!("truncated at byte {}", self.pos),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Violation> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Violation> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, Violation> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, Violation> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn uuid(&mut self) -> Result<Uuid, Violation> {
        Ok(Uuid::from_bytes(self.take(16)?.try_into().unwrap()))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Violation> {
        Ok(self.take(N)?.try_into().unwrap())
    }
}

fn parse(buf: &[u8]) -> Result<Header<'_>, Violation> {
    let mut r = Reader { buf, pos: 0 };
    if r.take(2)? != MAGIC {
        return Err(Violation::new(
            "malformed",
            "not a symbi bus message (bad magic)",
        ));
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(Violation::new(
            "malformed",
            format!("unsupported wire version {version}"),
        ));
    }
    let mode = r.u8()?;
    if mode > 2 {
        return Err(Violation::new(
            "malformed",
            format!("unknown security mode {mode}"),
        ));
    }
    let mtype = MessageType::from_u8(r.u8()?)
        .ok_or_else(|| Violation::new("malformed", "unknown message type"))?;
    let flags = r.u8()?;
    let id = MessageId(r.uuid()?);
    let sender = AgentId(r.uuid()?);
    let recipient = if flags & F_RECIPIENT != 0 {
        Some(AgentId(r.uuid()?))
    } else {
        None
    };
    let correlation = if flags & F_CORRELATION != 0 {
        Some(MessageId(r.uuid()?))
    } else {
        None
    };
    let timestamp_ms = r.u64()?;
    let ttl_ms = r.u64()?;
    let redrive = r.u32()?;
    let topic = if flags & F_TOPIC != 0 {
        let n = r.u16()? as usize;
        Some(
            std::str::from_utf8(r.take(n)?)
                .map_err(|_| Violation::new("malformed", "topic is not UTF-8"))?,
        )
    } else {
        None
    };
    let mut nonce = [0u8; NONCE_LEN];
    let mut session = None;
    match mode {
        1 => nonce = r.array()?,
        2 => {
            let id = r.array::<16>()?;
            let counter = r.u64()?;
            let salt = r.take(32)?;
            let created_ms = r.u64()?;
            let sig = r.array::<SIGNATURE_LEN>()?;
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            session = Some(SessionHeader {
                id,
                counter,
                salt,
                created_ms,
                sig,
            });
        }
        _ => {}
    }
    let header_end = r.pos;
    let len = r.u32()? as usize;
    let body = r.take(len)?;
    let body_end = r.pos;
    let signature = if mode == 1 {
        Some(r.array::<SIGNATURE_LEN>()?)
    } else {
        None
    };
    if r.pos != buf.len() {
        return Err(Violation::new(
            "malformed",
            format!("{} trailing bytes", buf.len() - r.pos),
        ));
    }
    let v_ctx = |mut v: Violation| {
        v.message_id = Some(id);
        v.claimed_sender = Some(sender);
        v
    };
    if mtype == MessageType::Publish && topic.is_none() {
        return Err(v_ctx(Violation::new(
            "malformed",
            "a publish carries no topic",
        )));
    }
    if mtype != MessageType::Publish && recipient.is_none() {
        return Err(v_ctx(Violation::new(
            "malformed",
            "a direct message carries no recipient",
        )));
    }
    Ok(Header {
        mode,
        mtype,
        id,
        sender,
        recipient,
        correlation,
        timestamp_ms,
        ttl_ms,
        redrive,
        topic,
        nonce,
        session,
        header_end,
        body,
        body_end,
        signature,
    })
}

impl<'a> SecureMessage<'a> {
    /// Parses mode-1 wire bytes (no verification; see [`Codec::open`]).
    pub fn parse(wire: &'a [u8]) -> Result<Self, Violation> {
        let h = parse(wire)?;
        if h.mode != 1 {
            return Err(Violation::new(
                "security_mode",
                format!("message is {}", mode_name(h.mode)),
            ));
        }
        Ok(SecureMessage {
            id: h.id,
            sender: h.sender,
            recipient: h.recipient,
            timestamp_ms: h.timestamp_ms,
            nonce: h.nonce,
            ciphertext: h.body,
            signature: h.signature.expect("mode 1 has a signature"),
        })
    }
}

/// Remembers message ids for replay detection, in time buckets, within a memory bound.
///
/// An id is remembered for `2 × max_clock_skew` after it was accepted: a replay later than
/// that carries a timestamp older than the skew window and fails freshness. When more ids
/// arrive than `capacity` within the window, the oldest bucket is forgotten and the
/// accepted age shrinks accordingly (messages older than the forgotten bucket are refused
/// as stale): memory stays bounded and the check stays sound.
///
/// A replay of an id still remembered is refused; a replay of a forgotten id carries a
/// timestamp that is either outside the skew window or at or below the watermark.
pub struct ReplayWindow {
    inner: Mutex<WindowInner>,
}

/// (start ms, newest timestamp in it, (id, redrive) keys).
type Bucket = (u64, u64, HashSet<(u128, u32)>);

struct WindowInner {
    buckets: VecDeque<Bucket>,
    total: usize,
    capacity: usize,
    window_ms: u64,
    bucket_ms: u64,
    /// Messages with a timestamp at or below this are refused (ids may be forgotten).
    low_watermark_ms: u64,
}

impl ReplayWindow {
    /// A window for clock skew `skew_ms` holding at most `capacity` ids.
    pub fn new(skew_ms: u64, capacity: usize) -> Self {
        let window_ms = 2 * skew_ms.max(1);
        Self {
            inner: Mutex::new(WindowInner {
                buckets: VecDeque::new(),
                total: 0,
                capacity: capacity.max(1),
                window_ms,
                bucket_ms: (window_ms / 16).max(1),
                low_watermark_ms: 0,
            }),
        }
    }

    /// Checks `(id, redrive)` and records it. `redelivery` accepts an id that was already
    /// accepted (the backend re-delivering the same stored message after a failed attempt).
    pub fn check_and_insert(
        &self,
        id: MessageId,
        redrive: u32,
        timestamp_ms: u64,
        now: u64,
        redelivery: bool,
    ) -> Result<(), Violation> {
        let key = (id.0.as_u128(), redrive);
        let mut w = self.inner.lock();
        let horizon = now.saturating_sub(w.window_ms);
        while let Some((start, _, _)) = w.buckets.front() {
            if start + w.bucket_ms > horizon {
                break;
            }
            let (_, _, set) = w.buckets.pop_front().unwrap();
            w.total -= set.len();
        }
        if timestamp_ms <= w.low_watermark_ms {
            return Err(Violation::new(
                "stale_timestamp",
                "older than the replay window can vouch for (window saturated by the message rate)",
            ));
        }
        if w.buckets.iter().any(|(_, _, s)| s.contains(&key)) {
            return if redelivery {
                Ok(())
            } else {
                Err(Violation::new(
                    "replay",
                    format!("message {id} (redrive {redrive}) was already accepted"),
                ))
            };
        }
        while w.total >= w.capacity {
            // Forget the oldest bucket; a replay of one of its ids carries that id's own
            // timestamp, at most the bucket's newest, so refusing timestamps up to it keeps
            // the check sound.
            let (_, max_ts, set) = w
                .buckets
                .pop_front()
                .expect("total > 0 means a bucket exists");
            w.total -= set.len();
            w.low_watermark_ms = w.low_watermark_ms.max(max_ts);
        }
        let bucket = now - now % w.bucket_ms;
        let bms = w.bucket_ms;
        match w.buckets.back_mut() {
            Some((start, max_ts, set)) if *start + bms > now => {
                set.insert(key);
                *max_ts = (*max_ts).max(timestamp_ms);
            }
            _ => {
                let mut s = HashSet::new();
                s.insert(key);
                w.buckets.push_back((bucket, timestamp_ms, s));
            }
        }
        w.total += 1;
        Ok(())
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().total
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct OutSession {
    id: [u8; 16],
    salt: [u8; 32],
    created_ms: u64,
    sig: Signature,
    aead: Arc<dyn Aead>,
    counter: AtomicU64,
}

struct InSession {
    sender: AgentId,
    channel: Channel,
    aead: Arc<dyn Aead>,
}

/// Unverified routing fields of wire bytes ([`Codec::peek`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peek {
    /// Claimed message id.
    pub id: MessageId,
    /// Claimed sender.
    pub sender: AgentId,
    /// Recipient.
    pub recipient: Option<AgentId>,
    /// Message type.
    pub message_type: MessageType,
    /// Topic (canonical, as written in the header).
    pub topic: Option<String>,
    /// Redrive count.
    pub redrive: u32,
}

/// Codec settings.
#[derive(Clone, Copy, Debug)]
pub struct CodecSettings {
    /// The security mode messages are sealed with and must arrive in.
    pub mode: BusSecurityMode,
    /// Accepted clock skew (ms).
    pub skew_ms: u64,
    /// Session mode: messages per session.
    pub rekey_messages: u64,
    /// Session mode: session age (ms).
    pub rekey_interval_ms: u64,
}

/// Seals and opens wire messages with a node's [`KeyRing`].
pub struct Codec {
    keys: Arc<KeyRing>,
    settings: CodecSettings,
    out_sessions: DashMap<(AgentId, Channel), Arc<OutSession>>,
    in_sessions: DashMap<[u8; 16], Arc<InSession>>,
}

fn channel_of(
    mtype: MessageType,
    sender: AgentId,
    recipient: Option<AgentId>,
    topic: Option<&str>,
) -> Channel {
    match (mtype, topic) {
        (MessageType::Publish, Some(t)) => Channel::Topic(t.into()),
        _ => Channel::Direct {
            sender,
            recipient: recipient.unwrap_or_default(),
        },
    }
}

fn handshake_bytes(
    sender: AgentId,
    channel: &Channel,
    id: &[u8; 16],
    salt: &[u8],
    created_ms: u64,
) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    v.extend_from_slice(HANDSHAKE_CONTEXT);
    v.extend_from_slice(sender.as_uuid().as_bytes());
    let info = channel.info();
    v.extend_from_slice(&(info.len() as u32).to_be_bytes());
    v.extend_from_slice(&info);
    v.extend_from_slice(id);
    v.extend_from_slice(salt);
    v.extend_from_slice(&created_ms.to_be_bytes());
    v
}

impl Codec {
    /// A codec over `keys`.
    pub fn new(keys: Arc<KeyRing>, settings: CodecSettings) -> Self {
        Self {
            keys,
            settings,
            out_sessions: DashMap::new(),
            in_sessions: DashMap::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CodecSettings {
        &self.settings
    }

    /// The key ring.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    fn session_key(
        &self,
        channel: &Channel,
        id: &[u8; 16],
        salt: &[u8],
    ) -> Result<Arc<dyn Aead>, BusError> {
        let (_, channel_key) = self.keys.channel(channel)?;
        let mut info = b"symbi-bus/session-key/v1".to_vec();
        info.extend_from_slice(id);
        let mut k = zeroize::Zeroizing::new([0u8; 32]);
        self.keys
            .provider()
            .hkdf_sha256(salt, &channel_key, &info, &mut *k)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        self.keys
            .provider()
            .aead(&k)
            .map_err(|e| BusError::Keys(e.to_string()))
    }

    fn new_out_session(
        &self,
        sender: AgentId,
        channel: &Channel,
    ) -> Result<Arc<OutSession>, BusError> {
        let p = self.keys.provider();
        let mut id = [0u8; 16];
        let mut salt = [0u8; 32];
        p.fill_random(&mut id)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        p.fill_random(&mut salt)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        let created_ms = now_ms();
        let sig = self
            .keys
            .signer(sender)?
            .sign(&handshake_bytes(sender, channel, &id, &salt, created_ms));
        let aead = self.session_key(channel, &id, &salt)?;
        Ok(Arc::new(OutSession {
            id,
            salt,
            created_ms,
            sig,
            aead,
            counter: AtomicU64::new(0),
        }))
    }

    /// The outbound session of `(sender, channel)` and the counter to use, re-keying when
    /// the session is used up or too old.
    fn out_session(
        &self,
        sender: AgentId,
        channel: Channel,
    ) -> Result<(Arc<OutSession>, u64), BusError> {
        let now = now_ms();
        if let Some(s) = self.out_sessions.get(&(sender, channel.clone())) {
            let c = s.counter.fetch_add(1, Ordering::Relaxed);
            if c < self.settings.rekey_messages
                && now.saturating_sub(s.created_ms) < self.settings.rekey_interval_ms
            {
                return Ok((s.clone(), c));
            }
        }
        let fresh = self.new_out_session(sender, &channel)?;
        let c = fresh.counter.fetch_add(1, Ordering::Relaxed);
        self.out_sessions.insert((sender, channel), fresh.clone());
        Ok((fresh, c))
    }

    /// Encodes `msg` in the configured mode.
    pub fn seal(&self, msg: &Message) -> Result<Bytes, BusError> {
        self.seal_as(msg, 0, self.settings.mode)
    }

    /// Encodes `msg` with redrive count `redrive` in `mode`.
    pub(crate) fn seal_as(
        &self,
        msg: &Message,
        redrive: u32,
        mode: BusSecurityMode,
    ) -> Result<Bytes, BusError> {
        let topic = msg.topic.as_ref().map(|t| t.as_str());
        let mut flags = 0u8;
        if msg.recipient.is_some() {
            flags |= F_RECIPIENT;
        }
        if msg.correlation_id.is_some() {
            flags |= F_CORRELATION;
        }
        if topic.is_some() {
            flags |= F_TOPIC;
        }
        let mut b = BytesMut::with_capacity(256 + msg.payload.len());
        b.put_slice(MAGIC);
        b.put_u8(VERSION);
        b.put_u8(mode_byte(mode));
        b.put_u8(msg.message_type.to_u8());
        b.put_u8(flags);
        b.put_slice(msg.id.0.as_bytes());
        b.put_slice(msg.sender.as_uuid().as_bytes());
        if let Some(r) = msg.recipient {
            b.put_slice(r.as_uuid().as_bytes());
        }
        if let Some(c) = msg.correlation_id {
            b.put_slice(c.0.as_bytes());
        }
        b.put_u64(msg.timestamp_ms);
        b.put_u64(msg.ttl_ms);
        b.put_u32(redrive);
        if let Some(t) = topic {
            b.put_u16(t.len() as u16);
            b.put_slice(t.as_bytes());
        }
        match mode {
            BusSecurityMode::Plaintext => {
                b.put_u32(msg.payload.len() as u32);
                b.put_slice(&msg.payload);
            }
            BusSecurityMode::SignedEveryMessage => {
                let mut nonce = [0u8; NONCE_LEN];
                self.keys
                    .provider()
                    .fill_random(&mut nonce)
                    .map_err(|e| BusError::Keys(e.to_string()))?;
                b.put_slice(&nonce);
                let channel = channel_of(msg.message_type, msg.sender, msg.recipient, topic);
                let (aead, _) = self.keys.channel(&channel)?;
                let ct = aead
                    .seal(&nonce, &b, &msg.payload)
                    .map_err(|e| BusError::Keys(e.to_string()))?;
                b.put_u32(ct.len() as u32);
                b.put_slice(&ct);
                let sig = self.keys.signer(msg.sender)?.sign(&b);
                b.put_slice(&sig);
            }
            BusSecurityMode::Session => {
                let channel = channel_of(msg.message_type, msg.sender, msg.recipient, topic);
                let (s, counter) = self.out_session(msg.sender, channel)?;
                b.put_slice(&s.id);
                b.put_u64(counter);
                b.put_slice(&s.salt);
                b.put_u64(s.created_ms);
                b.put_slice(&s.sig);
                let mut nonce = [0u8; NONCE_LEN];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let ct = s
                    .aead
                    .seal(&nonce, &b, &msg.payload)
                    .map_err(|e| BusError::Keys(e.to_string()))?;
                b.put_u32(ct.len() as u32);
                b.put_slice(&ct);
            }
        }
        Ok(b.freeze())
    }

    /// Reads the routing fields without any verification (for routing and bookkeeping
    /// only; never for delivery).
    pub fn peek(wire: &[u8]) -> Result<Peek, Violation> {
        let h = parse(wire)?;
        Ok(Peek {
            id: h.id,
            sender: h.sender,
            recipient: h.recipient,
            message_type: h.mtype,
            topic: h.topic.map(str::to_string),
            redrive: h.redrive,
        })
    }

    /// Verifies and decodes wire bytes.
    ///
    /// `arrival_ms` is the trusted time the message entered the bus (JetStream's stored
    /// timestamp, or now); freshness is judged against it. `replay` is the window of this
    /// receive point; `redelivery` is true when the backend hands out the same stored message
    /// again after a failed attempt. `verify_freshness = false` is used only for the
    /// runtime's own dead letters when they are re-driven.
    pub fn open(
        &self,
        wire: &Bytes,
        arrival_ms: u64,
        replay: Option<&ReplayWindow>,
        redelivery: bool,
    ) -> Result<(Message, u32), Violation> {
        self.open_inner(wire, arrival_ms, replay, redelivery, true)
    }

    pub(crate) fn open_inner(
        &self,
        wire: &Bytes,
        arrival_ms: u64,
        replay: Option<&ReplayWindow>,
        redelivery: bool,
        verify_freshness: bool,
    ) -> Result<(Message, u32), Violation> {
        let h = parse(wire)?;
        let ctx = |mut v: Violation| {
            v.message_id = Some(h.id);
            v.claimed_sender = Some(h.sender);
            v
        };
        let want = mode_byte(self.settings.mode);
        if h.mode != want {
            return Err(ctx(Violation::new(
                "security_mode",
                format!(
                    "message is {} but this bus requires {}",
                    mode_name(h.mode),
                    mode_name(want)
                ),
            )));
        }
        let skew = self.settings.skew_ms;
        if verify_freshness && h.mode != 0 {
            if h.timestamp_ms + skew < arrival_ms {
                return Err(ctx(Violation::new(
                    "stale_timestamp",
                    format!(
                        "timestamp is {} ms older than arrival; at most {skew} ms accepted",
                        arrival_ms - h.timestamp_ms
                    ),
                )));
            }
            if h.timestamp_ms > arrival_ms + skew {
                return Err(ctx(Violation::new(
                    "future_timestamp",
                    format!(
                        "timestamp is {} ms ahead of arrival; at most {skew} ms accepted",
                        h.timestamp_ms - arrival_ms
                    ),
                )));
            }
        }
        let topic = match h.topic {
            Some(t) => {
                Some(Topic::parse(t).map_err(|e| ctx(Violation::new("malformed", e.to_string())))?)
            }
            None => None,
        };
        let channel = || channel_of(h.mtype, h.sender, h.recipient, h.topic);
        let key_err = |e: BusError| {
            ctx(Violation::new(
                "signature",
                format!("no key for sender: {e}"),
            ))
        };
        let payload: Bytes = match h.mode {
            0 => wire.slice_ref(h.body),
            1 => {
                let sig = h.signature.expect("mode 1 has a signature");
                self.keys
                    .verifier(h.sender)
                    .map_err(key_err)?
                    .verify(&wire[..h.body_end], &sig)
                    .map_err(|_| {
                        ctx(Violation::new(
                            "signature",
                            format!("signature does not verify for sender {}", h.sender),
                        ))
                    })?;
                let (aead, _) = self.keys.channel(&channel()).map_err(key_err)?;
                aead.open(&h.nonce, &wire[..h.header_end], h.body)
                    .map_err(|_| {
                        ctx(Violation::new(
                            "decrypt",
                            "ciphertext does not decrypt under the channel key",
                        ))
                    })?
                    .into()
            }
            _ => {
                let s = h.session.as_ref().expect("mode 2 has a session header");
                let ch = channel();
                let session = match self.in_sessions.get(&s.id).map(|e| e.clone()) {
                    Some(known) => {
                        if known.sender != h.sender || known.channel != ch {
                            return Err(ctx(Violation::new(
                                "session",
                                "session id reused by another sender or channel",
                            )));
                        }
                        known
                    }
                    None => {
                        if verify_freshness
                            && s.created_ms + self.settings.rekey_interval_ms + skew < arrival_ms
                        {
                            return Err(ctx(Violation::new(
                                "stale_timestamp",
                                "session handshake has expired",
                            )));
                        }
                        let hs = handshake_bytes(h.sender, &ch, &s.id, s.salt, s.created_ms);
                        self.keys
                            .verifier(h.sender)
                            .map_err(key_err)?
                            .verify(&hs, &s.sig)
                            .map_err(|_| {
                                ctx(Violation::new(
                                    "signature",
                                    format!(
                                        "session handshake signature does not verify for sender {}",
                                        h.sender
                                    ),
                                ))
                            })?;
                        let aead = self
                            .session_key(&ch, &s.id, s.salt)
                            .map_err(|e| ctx(Violation::new("session", e.to_string())))?;
                        let new = Arc::new(InSession {
                            sender: h.sender,
                            channel: ch,
                            aead,
                        });
                        if self.in_sessions.len() >= MAX_INBOUND_SESSIONS {
                            self.in_sessions.clear();
                        }
                        self.in_sessions.insert(s.id, new.clone());
                        new
                    }
                };
                let _ = s.counter;
                session
                    .aead
                    .open(&h.nonce, &wire[..h.header_end], h.body)
                    .map_err(|_| {
                        ctx(Violation::new(
                            "decrypt",
                            "ciphertext or header was tampered with (AEAD tag mismatch)",
                        ))
                    })?
                    .into()
            }
        };
        if let Some(w) = replay
            && h.mode != 0
        {
            w.check_and_insert(h.id, h.redrive, h.timestamp_ms, now_ms(), redelivery)
                .map_err(ctx)?;
        }
        Ok((
            Message {
                id: h.id,
                sender: h.sender,
                recipient: h.recipient,
                topic,
                correlation_id: h.correlation,
                payload,
                message_type: h.mtype,
                timestamp_ms: h.timestamp_ms,
                ttl_ms: h.ttl_ms,
            },
            h.redrive,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(mode: BusSecurityMode, master: u8) -> Codec {
        let keys = Arc::new(KeyRing::new(
            symbi_crypto::provider("ring").unwrap(),
            [master; 32],
        ));
        Codec::new(
            keys,
            CodecSettings {
                mode,
                skew_ms: 30_000,
                rekey_messages: 3,
                rekey_interval_ms: 60_000,
            },
        )
    }

    fn msg(payload: &'static [u8]) -> Message {
        Message {
            id: MessageId::new(),
            sender: AgentId::new(),
            recipient: Some(AgentId::new()),
            topic: None,
            correlation_id: None,
            payload: Bytes::from_static(payload),
            message_type: MessageType::Direct,
            timestamp_ms: now_ms(),
            ttl_ms: 300_000,
        }
    }

    #[test]
    fn round_trip_every_mode() {
        for mode in [
            BusSecurityMode::Plaintext,
            BusSecurityMode::SignedEveryMessage,
            BusSecurityMode::Session,
        ] {
            let c = codec(mode, 1);
            let w = ReplayWindow::new(30_000, 1000);
            for i in 0..7 {
                let mut m = msg(b"hello world");
                if i % 2 == 1 {
                    m.message_type = MessageType::Publish;
                    m.recipient = None;
                    m.topic = Some(Topic::parse("a/b").unwrap());
                }
                let wire = c.seal(&m).unwrap();
                if mode != BusSecurityMode::Plaintext {
                    assert!(
                        !wire.windows(11).any(|x| x == b"hello world"),
                        "payload is encrypted"
                    );
                }
                let (back, redrive) = c.open(&wire, now_ms(), Some(&w), false).unwrap();
                assert_eq!((back, redrive), (m, 0));
            }
        }
    }

    #[test]
    fn secure_message_fields() {
        let c = codec(BusSecurityMode::SignedEveryMessage, 1);
        let m = msg(b"x");
        let wire = c.seal(&m).unwrap();
        let s = SecureMessage::parse(&wire).unwrap();
        assert_eq!((s.id, s.sender, s.recipient), (m.id, m.sender, m.recipient));
        assert_eq!(s.ciphertext.len(), 1 + symbi_crypto::TAG_LEN);
        // Two seals of the same message use different nonces.
        let s2 = c.seal(&m).unwrap();
        assert_ne!(SecureMessage::parse(&s2).unwrap().nonce, s.nonce);
    }

    #[test]
    fn every_header_byte_is_authenticated() {
        for mode in [
            BusSecurityMode::SignedEveryMessage,
            BusSecurityMode::Session,
        ] {
            let c = codec(mode, 1);
            let wire = c.seal(&msg(b"payload")).unwrap();
            for i in 0..wire.len() {
                let mut t = wire.to_vec();
                t[i] ^= 0x01;
                let r = c.open(&Bytes::from(t), now_ms(), None, false);
                assert!(r.is_err(), "{mode:?}: flipping byte {i} went unnoticed");
            }
        }
    }

    #[test]
    fn session_rekeys_and_late_receivers_join() {
        let sender = codec(BusSecurityMode::Session, 1);
        let m = msg(b"p");
        let ids: Vec<[u8; 16]> = (0..7)
            .map(|_| {
                let mut m2 = m.clone();
                m2.id = MessageId::new();
                let w = sender.seal(&m2).unwrap();
                let h = parse(&w).unwrap();
                h.session.unwrap().id
            })
            .collect();
        assert_eq!(ids[0], ids[2]);
        assert_ne!(ids[2], ids[3], "rekey after 3 messages");
        // A receiver that never saw the first messages opens a later one.
        let receiver = codec(BusSecurityMode::Session, 1);
        let mut m3 = m.clone();
        m3.id = MessageId::new();
        assert!(
            receiver
                .open(&sender.seal(&m3).unwrap(), now_ms(), None, false)
                .is_ok()
        );
    }

    #[test]
    fn violations_are_classified() {
        let c = codec(BusSecurityMode::SignedEveryMessage, 1);
        let w = ReplayWindow::new(30_000, 1000);
        let wire = c.seal(&msg(b"x")).unwrap();
        c.open(&wire, now_ms(), Some(&w), false).unwrap();
        assert_eq!(
            c.open(&wire, now_ms(), Some(&w), false).unwrap_err().check,
            "replay"
        );
        assert!(
            c.open(&wire, now_ms(), Some(&w), true).is_ok(),
            "redelivery of an accepted id"
        );
        let forged = codec(BusSecurityMode::SignedEveryMessage, 2)
            .seal(&msg(b"x"))
            .unwrap();
        assert_eq!(
            c.open(&forged, now_ms(), Some(&w), false)
                .unwrap_err()
                .check,
            "signature"
        );
        let mut old = msg(b"x");
        old.timestamp_ms -= 31_000;
        assert_eq!(
            c.open(&c.seal(&old).unwrap(), now_ms(), Some(&w), false)
                .unwrap_err()
                .check,
            "stale_timestamp"
        );
        let mut fut = msg(b"x");
        fut.timestamp_ms += 31_000;
        assert_eq!(
            c.open(&c.seal(&fut).unwrap(), now_ms(), Some(&w), false)
                .unwrap_err()
                .check,
            "future_timestamp"
        );
        let plain = codec(BusSecurityMode::Plaintext, 1)
            .seal(&msg(b"x"))
            .unwrap();
        assert_eq!(
            c.open(&plain, now_ms(), Some(&w), false).unwrap_err().check,
            "security_mode"
        );
        assert_eq!(
            c.open(&Bytes::from_static(b"junk"), now_ms(), None, false)
                .unwrap_err()
                .check,
            "malformed"
        );
    }

    #[test]
    fn replay_window_is_bounded_and_fails_closed() {
        let w = ReplayWindow::new(1_000, 1024);
        let now = 1_000_000;
        for i in 0..5000 {
            w.check_and_insert(MessageId::new(), 0, now + i, now + i, false)
                .unwrap();
        }
        assert!(w.len() <= 1024);
        // After saturation, a timestamp from the forgotten range is refused rather than
        // risk a replay; a fresh one is accepted.
        let e = w.check_and_insert(MessageId::new(), 0, now + 3000, now + 5000, false);
        assert_eq!(e.unwrap_err().check, "stale_timestamp");
        w.check_and_insert(MessageId::new(), 0, now + 5000, now + 5000, false)
            .unwrap();
        // Time-based eviction.
        let w = ReplayWindow::new(1_000, 1024);
        let id = MessageId::new();
        w.check_and_insert(id, 0, now, now, false).unwrap();
        assert!(w.check_and_insert(id, 0, now, now + 1_000, false).is_err());
        w.check_and_insert(MessageId::new(), 0, now + 5_000, now + 5_000, false)
            .unwrap();
        assert_eq!(w.len(), 1);
    }
}
