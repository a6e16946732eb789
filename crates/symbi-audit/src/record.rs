//! Events, their canonical bytes, records and framing (docs/audit-format.md §2–§4).
//!
//! * **Body**: the event as RFC 8785 (JCS) canonical JSON. It is the Merkle leaf entry and
//!   the input of the chain hash.
//! * **Chain**: `chain[i] = SHA-256(chain[i-1] ‖ body[i])`, `chain[-1]` = 32 zero bytes.
//! * **Signature**: Ed25519 over `"symbi-audit/event/v1\n" ‖ chain[i]`, so one signature
//!   vouches for the event and its whole history.
//! * **Record payload**: `0x01 ‖ chain (32) ‖ signature (64) ‖ body` (a signed record), or
//!   `0x02 ‖ chain (32) ‖ body` (a record covered by the next signed record's signature:
//!   `[audit] signatures = "per_batch"` signs only the last event of each group commit).
//! * **Frame**: `u32 BE payload length ‖ u32 BE CRC-32C(payload) ‖ payload`.

use crate::error::{AuditError, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;
use symbi_crypto::{CryptoProvider, Signature};
use symbi_types::{AgentId, EventId, ExecutionId};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"SYMAUD01";
/// Segment header: magic ‖ u64 BE sequence number of the segment's first record.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Frame header: u32 BE length ‖ u32 BE CRC-32C.
pub const FRAME_HEADER_LEN: usize = 8;
/// Version byte that starts a signed record payload.
pub const RECORD_VERSION: u8 = 1;
/// Version byte of a record without its own signature (covered by the next signed one).
pub const RECORD_VERSION_COVERED: u8 = 2;
/// Fixed part of a payload: version, chain hash, signature.
pub const PAYLOAD_FIXED_LEN: usize = 1 + 32 + 64;
/// Largest accepted payload (16 MiB). Larger details are refused at append time.
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;
/// Domain separation prefix of event signatures.
pub const EVENT_SIGNATURE_PREFIX: &[u8] = b"symbi-audit/event/v1\n";
/// Version number inside every body (`"v": 1`).
pub const BODY_VERSION: u64 = 1;

/// A 4-byte key id as defined by the C2SP signed-note specification:
/// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[0..4]`, printed as 8 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// Parses 8 hex digits.
    pub fn parse(s: &str) -> Option<KeyId> {
        let b = hex::decode(s).ok()?;
        Some(KeyId(b.try_into().ok()?))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// RFC 8785 canonical bytes of a JSON value.
///
/// ```
/// let v = serde_json::json!({"b": [1.0, 1e21], "a": "\u{20ac}"});
/// assert_eq!(symbi_audit::record::canonical_json(&v).unwrap(), "{\"a\":\"€\",\"b\":[1,1e+21]}".as_bytes());
/// ```
pub fn canonical_json(v: &Value) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(v)
        .map_err(|e| AuditError::Invalid(format!("cannot canonicalize details: {e}")))
}

/// One signed event of the log, as decoded from its body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Position in the log (0-based); also the Merkle leaf index.
    pub seq: u64,
    /// Event id (UUID v7 whose time part is `timestamp`'s millisecond).
    pub id: EventId,
    /// When the log accepted the event. Non-decreasing along the sequence.
    pub timestamp: DateTime<Utc>,
    /// The agent the event is about.
    pub agent_id: Option<AgentId>,
    /// The agent's name at the time.
    pub agent_name: Option<String>,
    /// The execution the event belongs to.
    pub execution_id: Option<ExecutionId>,
    /// Event type.
    pub event_type: String,
    /// Event-specific details.
    pub details: Value,
    /// Key id of the key that signed this event.
    #[serde(serialize_with = "ser_display")]
    pub key_id: KeyId,
}

fn ser_display<S: serde::Serializer, T: fmt::Display>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// RFC 3339 UTC with exactly nine fractional digits, the only timestamp spelling bodies use.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl Event {
    /// The event's canonical body (RFC 8785 JSON of the fields of docs/audit-format.md §2).
    pub fn canonical_body(&self) -> Result<Vec<u8>> {
        let v = json!({
            "v": BODY_VERSION,
            "seq": self.seq,
            "id": self.id.to_string(),
            "timestamp": format_timestamp(&self.timestamp),
            "agent_id": self.agent_id.map(|a| a.to_string()),
            "agent_name": self.agent_name,
            "execution_id": self.execution_id.map(|e| e.to_string()),
            "event_type": self.event_type,
            "details": self.details,
            "key_id": self.key_id.to_string(),
        });
        canonical_json(&v)
    }

    /// [`Event::canonical_body`] from details already in canonical form (`details_jcs` =
    /// `canonical_json(&self.details)`), byte for byte the same; the other members are
    /// written in their fixed RFC 8785 order without building a JSON tree. The writer
    /// uses this so that canonicalizing arbitrary details happens on the submitting threads.
    pub fn body_with_canonical_details(&self, details_jcs: &[u8]) -> Result<Vec<u8>> {
        // Integers above 2^53 are not exact JSON numbers; leave them to the general path.
        if self.seq >= 1 << 53 {
            return self.canonical_body();
        }
        fn opt_str(out: &mut Vec<u8>, s: Option<String>) {
            match s {
                // UUIDs and the other fixed-format strings need no escaping.
                Some(s) => {
                    out.push(b'"');
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        let mut out = Vec::with_capacity(details_jcs.len() + 320);
        out.extend_from_slice(b"{\"agent_id\":");
        opt_str(&mut out, self.agent_id.map(|a| a.to_string()));
        out.extend_from_slice(b",\"agent_name\":");
        match &self.agent_name {
            Some(n) => out.extend_from_slice(&canonical_json(&Value::String(n.clone()))?),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"details\":");
        out.extend_from_slice(details_jcs);
        out.extend_from_slice(b",\"event_type\":");
        out.extend_from_slice(&canonical_json(&Value::String(self.event_type.clone()))?);
        out.extend_from_slice(b",\"execution_id\":");
        opt_str(&mut out, self.execution_id.map(|e| e.to_string()));
        out.extend_from_slice(b",\"id\":");
        opt_str(&mut out, Some(self.id.to_string()));
        out.extend_from_slice(b",\"key_id\":");
        opt_str(&mut out, Some(self.key_id.to_string()));
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.extend_from_slice(b",\"timestamp\":");
        opt_str(&mut out, Some(format_timestamp(&self.timestamp)));
        out.extend_from_slice(b",\"v\":");
        out.extend_from_slice(BODY_VERSION.to_string().as_bytes());
        out.push(b'}');
        Ok(out)
    }

    /// Decodes a body, checking that it is exactly the canonical form of its own content
    /// (so that a body has one spelling and no room for hidden variations).
    pub fn from_body(body: &[u8]) -> std::result::Result<Event, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let Value::Object(m) = &v else {
            return Err("body is not a JSON object".into());
        };
        const KEYS: [&str; 10] = [
            "agent_id",
            "agent_name",
            "details",
            "event_type",
            "execution_id",
            "id",
            "key_id",
            "seq",
            "timestamp",
            "v",
        ];
        if m.len() != KEYS.len() || KEYS.iter().any(|k| !m.contains_key(*k)) {
            return Err(format!("body must have exactly the keys {KEYS:?}"));
        }
        if m["v"].as_u64() != Some(BODY_VERSION) {
            return Err(format!("unsupported body version {}", m["v"]));
        }
        let seq = m["seq"]
            .as_u64()
            .ok_or("`seq` is not an unsigned integer")?;
        let id = str_field(m, "id")?
            .parse()
            .map_err(|e| format!("`id`: {e}"))?;
        let ts = str_field(m, "timestamp")?;
        let timestamp = DateTime::parse_from_rfc3339(ts)
            .map_err(|e| format!("`timestamp`: {e}"))?
            .with_timezone(&Utc);
        let agent_id = opt_str(m, "agent_id")?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| format!("`agent_id`: {e}"))?;
        let agent_name = opt_str(m, "agent_name")?.map(str::to_string);
        let execution_id = opt_str(m, "execution_id")?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| format!("`execution_id`: {e}"))?;
        let event_type = str_field(m, "event_type")?.to_string();
        let key_id = KeyId::parse(str_field(m, "key_id")?).ok_or("`key_id` is not 8 hex digits")?;
        let ev = Event {
            seq,
            id,
            timestamp,
            agent_id,
            agent_name,
            execution_id,
            event_type,
            details: m["details"].clone(),
            key_id,
        };
        let again = ev.canonical_body().map_err(|e| e.to_string())?;
        if again != body {
            return Err(
                "body is not in canonical form (RFC 8785 and docs/audit-format.md §2)".into(),
            );
        }
        Ok(ev)
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> std::result::Result<&'a str, String> {
    m[k].as_str()
        .ok_or_else(|| format!("`{k}` is not a string"))
}

fn opt_str<'a>(m: &'a Map<String, Value>, k: &str) -> std::result::Result<Option<&'a str>, String> {
    match &m[k] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(format!("`{k}` is neither a string nor null")),
    }
}

/// `chain[i] = SHA-256(chain[i-1] ‖ body[i])`.
pub fn chain_hash(p: &dyn CryptoProvider, prev: &Hash, body: &[u8]) -> Hash {
    p.sha256_parts(&[prev, body])
}

/// The message an event signature signs: `"symbi-audit/event/v1\n" ‖ chain`.
pub fn event_signing_message(chain: &Hash) -> [u8; 53] {
    let mut m = [0u8; 53];
    m[..21].copy_from_slice(EVENT_SIGNATURE_PREFIX);
    m[21..].copy_from_slice(chain);
    m
}

/// A decoded record payload (body still in canonical bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Chain hash after this event.
    pub chain: Hash,
    /// Ed25519 signature over [`event_signing_message`]`(chain)`; `None` for a record
    /// covered by the signature of the next signed record (its chain commits to this one).
    pub signature: Option<Signature>,
    /// Canonical body.
    pub body: Vec<u8>,
}

impl Record {
    /// `0x01 ‖ chain ‖ signature ‖ body`, or `0x02 ‖ chain ‖ body` without a signature.
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_FIXED_LEN + self.body.len());
        match &self.signature {
            Some(sig) => {
                out.push(RECORD_VERSION);
                out.extend_from_slice(&self.chain);
                out.extend_from_slice(sig);
            }
            None => {
                out.push(RECORD_VERSION_COVERED);
                out.extend_from_slice(&self.chain);
            }
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// Decodes a payload.
    pub fn decode_payload(p: &[u8]) -> std::result::Result<Record, String> {
        let short = || format!("record payload of {} bytes is too short", p.len());
        match p.first() {
            Some(&RECORD_VERSION) if p.len() >= PAYLOAD_FIXED_LEN + 2 => Ok(Record {
                chain: p[1..33].try_into().unwrap(),
                signature: Some(p[33..97].try_into().unwrap()),
                body: p[97..].to_vec(),
            }),
            Some(&RECORD_VERSION_COVERED) if p.len() >= 1 + 32 + 2 => Ok(Record {
                chain: p[1..33].try_into().unwrap(),
                signature: None,
                body: p[33..].to_vec(),
            }),
            Some(&RECORD_VERSION) | Some(&RECORD_VERSION_COVERED) | None => Err(short()),
            Some(v) => Err(format!("unknown record version {v}")),
        }
    }

    /// The framed record: `len ‖ crc32c ‖ payload`.
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame_len(self.signature.is_some(), self.body.len()));
        write_frame(&mut out, &self.chain, self.signature.as_ref(), &self.body);
        out
    }
}

/// Length of the frame of a record with a `body_len`-byte body, signed or covered.
pub fn frame_len(signed: bool, body_len: usize) -> usize {
    FRAME_HEADER_LEN + 1 + 32 + if signed { 64 } else { 0 } + body_len
}

/// Appends the frame of a record (`len ‖ crc32c ‖ payload`) to `out` without building the
/// record or its payload separately (the writer frames every event).
pub fn write_frame(out: &mut Vec<u8>, chain: &Hash, signature: Option<&Signature>, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    match signature {
        Some(sig) => {
            out.push(RECORD_VERSION);
            out.extend_from_slice(chain);
            out.extend_from_slice(sig);
        }
        None => {
            out.push(RECORD_VERSION_COVERED);
            out.extend_from_slice(chain);
        }
    }
    out.extend_from_slice(body);
    let payload = &out[start + FRAME_HEADER_LEN..];
    let (len, crc) = (payload.len() as u32, crc32c::crc32c(payload));
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Frames a payload: `u32 BE len ‖ u32 BE CRC-32C(payload) ‖ payload`.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why a frame could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The frame runs past the end of the file.
    Truncated,
    /// The length field is zero or larger than [`MAX_PAYLOAD_LEN`].
    BadLength(u32),
    /// The checksum does not match the payload.
    BadChecksum,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("record is cut short (file ends inside it)"),
            FrameError::BadLength(n) => write!(f, "record length field {n} is impossible"),
            FrameError::BadChecksum => {
                f.write_str("record checksum (CRC-32C) does not match: bytes were altered")
            }
        }
    }
}

/// Reads the frame at `off` of `buf`: `Ok(None)` at the exact end, else the payload and
/// the offset of the next frame.
pub fn read_frame(
    buf: &[u8],
    off: usize,
) -> std::result::Result<Option<(&[u8], usize)>, FrameError> {
    if off == buf.len() {
        return Ok(None);
    }
    if buf.len() - off < FRAME_HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    let len = u32::from_be_bytes(buf[off..off + 4].try_into().unwrap());
    if len == 0 || len as usize > MAX_PAYLOAD_LEN {
        return Err(FrameError::BadLength(len));
    }
    let crc = u32::from_be_bytes(buf[off + 4..off + 8].try_into().unwrap());
    let start = off + FRAME_HEADER_LEN;
    let end = start + len as usize;
    if end > buf.len() {
        return Err(FrameError::Truncated);
    }
    let payload = &buf[start..end];
    if crc32c::crc32c(payload) != crc {
        return Err(FrameError::BadChecksum);
    }
    Ok(Some((payload, end)))
}

/// Whether the bytes from `bad` on are a torn tail: no valid frame starts anywhere after
/// `bad`. A crash can only leave garbage *after* the last durable frame, so a valid frame
/// further on means the damage is in the middle (corruption), which must never be cut.
pub fn is_torn_tail(buf: &[u8], bad: usize) -> bool {
    (bad + 1..buf.len()).all(|o| match read_frame(buf, o) {
        Ok(Some((p, _))) => Record::decode_payload(p).is_err(),
        _ => true,
    })
}

/// A segment header for a segment whose first record has sequence `first_seq`.
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..].copy_from_slice(&first_seq.to_be_bytes());
    h
}

/// Parses a segment header, returning the first sequence number.
pub fn parse_segment_header(buf: &[u8]) -> Option<u64> {
    (buf.len() >= SEGMENT_HEADER_LEN && &buf[..8] == SEGMENT_MAGIC)
        .then(|| u64::from_be_bytes(buf[8..16].try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jcs_matches_rfc8785_examples() {
        // RFC 8785 §3.2.2 (sorting and escaping) and §3.2.3 (numbers).
        let input = r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let expected = concat!(
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"#,
            r#""string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        assert_eq!(
            String::from_utf8(canonical_json(&v).unwrap()).unwrap(),
            expected
        );
        // §3.2.3 sorting by UTF-16 code units.
        let v: Value = serde_json::from_str(
            r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let keys: Vec<String> =
            serde_json::from_slice::<serde_json::Map<String, Value>>(&canonical_json(&v).unwrap())
                .unwrap()
                .values()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
        assert_eq!(
            keys,
            [
                "Carriage Return",
                "One",
                "Control",
                "Latin Small Letter O With Diaeresis",
                "Euro Sign",
                "Emoji: Grinning Face",
                "Hebrew Letter Dalet With Dagesh"
            ]
        );
    }

    fn sample() -> Event {
        Event {
            seq: 7,
            id: EventId::new(),
            timestamp: Utc::now(),
            agent_id: Some(AgentId::new()),
            agent_name: Some("triage".into()),
            execution_id: None,
            event_type: "file_read".into(),
            details: json!({"path": "/etc/x", "n": 1.5}),
            key_id: KeyId([1, 2, 3, 4]),
        }
    }

    #[test]
    fn fast_body_is_the_canonical_body() {
        let mut cases = vec![sample()];
        cases.push(Event {
            agent_id: None,
            agent_name: None,
            execution_id: Some(ExecutionId::new()),
            ..sample()
        });
        cases.push(Event {
            agent_name: Some("ünï \"q\" \\ \u{7}\n😀".into()),
            event_type: "custom\t".into(),
            details: json!({"z": [1.5, 1e21, 5e-7, null, {"\u{fb33}": "€", "\r": true}], "a": -0.0, "1": "x"}),
            seq: 9_007_199_254_740_991,
            ..sample()
        });
        cases.push(Event {
            details: json!("just a string"),
            seq: 0,
            ..sample()
        });
        for ev in cases {
            let d = canonical_json(&ev.details).unwrap();
            assert_eq!(
                String::from_utf8(ev.body_with_canonical_details(&d).unwrap()).unwrap(),
                String::from_utf8(ev.canonical_body().unwrap()).unwrap()
            );
        }
    }

    #[test]
    fn body_round_trip_and_canonical_check() {
        let ev = sample();
        let body = ev.canonical_body().unwrap();
        assert_eq!(Event::from_body(&body).unwrap(), ev);
        let mut spaced = String::from_utf8(body.clone()).unwrap();
        spaced.insert(1, ' ');
        assert!(
            Event::from_body(spaced.as_bytes())
                .unwrap_err()
                .contains("canonical")
        );
    }

    #[test]
    fn frames_detect_damage() {
        let rec = Record {
            chain: [9; 32],
            signature: Some([8; 64]),
            body: sample().canonical_body().unwrap(),
        };
        let f = rec.encode_frame();
        assert_eq!(
            f,
            encode_frame(&rec.encode_payload()),
            "in-place framing = payload then frame"
        );
        assert_eq!(f.len(), frame_len(true, rec.body.len()));
        let (p, next) = read_frame(&f, 0).unwrap().unwrap();
        assert_eq!(next, f.len());
        assert_eq!(Record::decode_payload(p).unwrap(), rec);
        // A covered record (no signature of its own) round-trips with its own version byte.
        let covered = Record {
            signature: None,
            ..rec.clone()
        };
        let cf = covered.encode_frame();
        assert_eq!(cf.len(), f.len() - 64);
        let (cp, _) = read_frame(&cf, 0).unwrap().unwrap();
        assert_eq!(cp[0], RECORD_VERSION_COVERED);
        assert_eq!(Record::decode_payload(cp).unwrap(), covered);
        let mut bad = f.clone();
        bad[50] ^= 1;
        assert_eq!(read_frame(&bad, 0), Err(FrameError::BadChecksum));
        assert_eq!(read_frame(&f[..f.len() - 1], 0), Err(FrameError::Truncated));
        assert_eq!(read_frame(&[0u8; 12], 0), Err(FrameError::BadLength(0)));
        // Garbage after a good frame is a torn tail; a good frame after garbage is not.
        let mut torn = f.clone();
        torn.extend_from_slice(&f[..f.len() / 2]);
        assert!(is_torn_tail(&torn, f.len()));
        let mut middle = vec![0xffu8; 5];
        middle.extend_from_slice(&f);
        assert!(!is_torn_tail(&middle, 0));
    }
}
