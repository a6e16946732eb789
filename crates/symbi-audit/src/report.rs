//! Compliance reports: what was recorded, who accessed what, policy violations and the
//! integrity status, framed by the controls of a standard (HIPAA, GDPR, SOX) or neutral
//! (`custom`). Output as JSON or as one self-contained HTML page (inline CSS, no scripts,
//! no external assets) that a compliance officer can read and archive.

use crate::error::Result;
use crate::log::StoredEvent;
use crate::reader::{LogReader, Query};
use crate::record::format_timestamp;
use crate::verify::VerifyReport;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::str::FromStr;

/// The standard a report is framed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standard {
    /// HIPAA Security Rule (45 CFR 164.312 technical safeguards).
    Hipaa,
    /// GDPR (Art. 30 records of processing, Art. 32 security, Art. 33 breaches).
    Gdpr,
    /// Sarbanes-Oxley (§404 internal controls, §802 record retention).
    Sox,
    /// No standard: the same facts without a control mapping.
    Custom,
}

impl FromStr for Standard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "hipaa" => Ok(Standard::Hipaa),
            "gdpr" => Ok(Standard::Gdpr),
            "sox" => Ok(Standard::Sox),
            "custom" => Ok(Standard::Custom),
            _ => Err(format!(
                "unknown standard `{s}` (expected hipaa, gdpr, sox or custom)"
            )),
        }
    }
}

impl Standard {
    fn title(self) -> &'static str {
        match self {
            Standard::Hipaa => "HIPAA Security Rule — audit controls report",
            Standard::Gdpr => "GDPR — record of processing and security report",
            Standard::Sox => "SOX — IT general controls report",
            Standard::Custom => "Audit trail report",
        }
    }
}

/// Event types that touch data or the outside world ("who accessed what").
pub const ACCESS_TYPES: &[&str] = &[
    "file_read",
    "file_write",
    "secret_read",
    "memory_read",
    "memory_write",
    "knowledge_read",
    "knowledge_write",
    "network_access",
    "invoke_tool",
    "execute_code",
    "use_llm",
    "invoke_agent",
    "spawn_agent",
    "message_send",
    "publish",
];

/// Event types that change the system's controls.
pub const CHANGE_TYPES: &[&str] = &[
    "policy_reload",
    "key_rotation",
    "create_agent",
    "configure_agent",
    "agent_state",
    "runtime",
    "approval",
];

/// One access.
#[derive(Clone, Debug, Serialize)]
pub struct Access {
    /// Sequence number.
    pub seq: u64,
    /// Time.
    pub time: String,
    /// Agent name (or id).
    pub agent: String,
    /// Event type (action category).
    pub action: String,
    /// What was accessed.
    pub target: String,
    /// Policy decision, if recorded.
    pub decision: String,
}

/// One violation.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// Sequence number.
    pub seq: u64,
    /// Time.
    pub time: String,
    /// Agent name (or `-`).
    pub agent: String,
    /// `policy_denied`, `security_violation`, `auth_failure` or `budget_exhausted`.
    pub kind: String,
    /// What happened.
    pub detail: String,
}

/// One change to controls.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Sequence number.
    pub seq: u64,
    /// Time.
    pub time: String,
    /// Event type.
    pub kind: String,
    /// Summary of the details.
    pub detail: String,
}

/// Per-agent totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentSummary {
    /// Agent id.
    pub agent_id: String,
    /// Last known name.
    pub agent_name: String,
    /// Events about the agent.
    pub events: u64,
    /// Accesses.
    pub accesses: u64,
    /// Denied or violating events.
    pub violations: u64,
}

/// A control of the standard and whether the log shows it met.
#[derive(Clone, Debug, Serialize)]
pub struct Control {
    /// Reference (e.g. `164.312(b)`).
    pub reference: String,
    /// What it requires.
    pub requirement: String,
    /// `met` or `attention`.
    pub status: String,
    /// What in the log shows it.
    pub evidence: String,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct ComplianceReport {
    /// Standard.
    pub standard: Standard,
    /// Title.
    pub title: String,
    /// When generated.
    pub generated_at: String,
    /// The log's origin.
    pub origin: String,
    /// Period start (inclusive), if limited.
    pub since: Option<String>,
    /// Period end (exclusive), if limited.
    pub until: Option<String>,
    /// Integrity verification of the whole log.
    pub integrity: VerifyReport,
    /// Events in the period.
    pub total_events: u64,
    /// Events per type.
    pub by_type: BTreeMap<String, u64>,
    /// Per agent.
    pub agents: Vec<AgentSummary>,
    /// Accesses (most recent `MAX_ROWS`).
    pub accesses: Vec<Access>,
    /// Accesses in total.
    pub access_count: u64,
    /// Violations (most recent `MAX_ROWS`).
    pub violations: Vec<Violation>,
    /// Violations in total.
    pub violation_count: u64,
    /// Changes to controls (most recent `MAX_ROWS`).
    pub changes: Vec<Change>,
    /// Controls of the standard.
    pub controls: Vec<Control>,
}

/// Rows kept per table; totals count everything.
pub const MAX_ROWS: usize = 1000;

fn agent_label(e: &StoredEvent) -> String {
    e.event
        .agent_name
        .clone()
        .or_else(|| e.event.agent_id.map(|a| a.to_string()))
        .unwrap_or_else(|| "-".into())
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

fn target_of(d: &Value) -> String {
    for k in ["target", "path", "url", "tool", "resource"] {
        if let Some(v) = d.get(k) {
            return short(v);
        }
    }
    if let Some(n) = d.pointer("/subject/name") {
        return short(n);
    }
    d.get("action").map(short).unwrap_or_else(|| "-".into())
}

fn push_capped<T>(v: &mut Vec<T>, x: T) {
    if v.len() == MAX_ROWS {
        v.remove(0);
    }
    v.push(x);
}

/// Builds a report over `[since, until)` of the log read by `reader`, with `integrity` the
/// result of verifying the whole log.
pub fn build(
    reader: &LogReader,
    standard: Standard,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    integrity: VerifyReport,
) -> Result<ComplianceReport> {
    let mut r = ComplianceReport {
        standard,
        title: standard.title().into(),
        generated_at: format_timestamp(&Utc::now()),
        origin: integrity.origin.clone(),
        since: since.as_ref().map(format_timestamp),
        until: until.as_ref().map(format_timestamp),
        integrity,
        total_events: 0,
        by_type: BTreeMap::new(),
        agents: Vec::new(),
        accesses: Vec::new(),
        access_count: 0,
        violations: Vec::new(),
        violation_count: 0,
        changes: Vec::new(),
        controls: Vec::new(),
    };
    let mut agents: BTreeMap<String, AgentSummary> = BTreeMap::new();
    let q = Query {
        since,
        until,
        ..Query::default()
    };
    reader.visit(&q, |e| {
        let ev = &e.event;
        let d = &ev.details;
        r.total_events += 1;
        *r.by_type.entry(ev.event_type.clone()).or_default() += 1;
        let time = format_timestamp(&ev.timestamp);
        let agent = agent_label(&e);
        let a = ev.agent_id.map(|id| {
            let s = agents
                .entry(id.to_string())
                .or_insert_with(|| AgentSummary {
                    agent_id: id.to_string(),
                    ..Default::default()
                });
            s.events += 1;
            if let Some(n) = &ev.agent_name {
                s.agent_name = n.clone();
            }
            id.to_string()
        });
        let decision = d
            .get("decision")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if ACCESS_TYPES.contains(&ev.event_type.as_str()) {
            r.access_count += 1;
            if let Some(a) = &a {
                agents.get_mut(a).unwrap().accesses += 1;
            }
            push_capped(
                &mut r.accesses,
                Access {
                    seq: ev.seq,
                    time: time.clone(),
                    agent: agent.clone(),
                    action: ev.event_type.clone(),
                    target: target_of(d),
                    decision: decision.clone(),
                },
            );
        }
        let violation = if decision == "Deny" {
            Some((
                "policy_denied",
                format!(
                    "{} {} denied: {}",
                    ev.event_type,
                    target_of(d),
                    d.get("reasons").map(short).unwrap_or_default()
                ),
            ))
        } else {
            match ev.event_type.as_str() {
                "security_violation" => Some(("security_violation", short(d))),
                "auth_failure" => Some(("auth_failure", short(d))),
                "budget_exhausted" => Some(("budget_exhausted", short(d))),
                _ => None,
            }
        };
        if let Some((kind, detail)) = violation {
            r.violation_count += 1;
            if let Some(a) = &a {
                agents.get_mut(a).unwrap().violations += 1;
            }
            push_capped(
                &mut r.violations,
                Violation {
                    seq: ev.seq,
                    time: time.clone(),
                    agent: agent.clone(),
                    kind: kind.into(),
                    detail,
                },
            );
        }
        if CHANGE_TYPES.contains(&ev.event_type.as_str()) {
            push_capped(
                &mut r.changes,
                Change {
                    seq: ev.seq,
                    time,
                    kind: ev.event_type.clone(),
                    detail: short(d),
                },
            );
        }
        true
    })?;
    r.agents = agents.into_values().collect();
    r.agents.sort_by_key(|a| std::cmp::Reverse(a.events));
    r.controls = controls(&r);
    Ok(r)
}

fn controls(r: &ComplianceReport) -> Vec<Control> {
    let integrity_ok = r.integrity.ok;
    let integ = if integrity_ok {
        format!(
            "{} events verified: signatures, hash chain and Merkle root against {} signed checkpoints",
            r.integrity.events_checked, r.integrity.checkpoints_checked
        )
    } else {
        format!(
            "VERIFICATION FAILED: {}",
            r.integrity
                .first_error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default()
        )
    };
    let st = |ok: bool| if ok { "met" } else { "attention" }.to_string();
    let count = |t: &str| r.by_type.get(t).copied().unwrap_or(0);
    let c = |reference: &str, requirement: &str, ok: bool, evidence: String| Control {
        reference: reference.into(),
        requirement: requirement.into(),
        status: st(ok),
        evidence,
    };
    match r.standard {
        Standard::Hipaa => vec![
            c(
                "164.312(b)",
                "Audit controls: record and examine activity in systems that contain ePHI",
                r.total_events > 0 && integrity_ok,
                format!(
                    "{} events recorded in the period; {} accesses by {} agents",
                    r.total_events,
                    r.access_count,
                    r.agents.len()
                ),
            ),
            c(
                "164.312(c)(1)",
                "Integrity: protect ePHI from improper alteration or destruction",
                integrity_ok,
                integ,
            ),
            c(
                "164.312(d)",
                "Person or entity authentication",
                count("auth_failure") == 0,
                format!(
                    "{} failed authentication attempts recorded",
                    count("auth_failure")
                ),
            ),
            c(
                "164.308(a)(1)(ii)(D)",
                "Information system activity review",
                r.violation_count == 0,
                format!(
                    "{} policy denials and security events to review (listed below)",
                    r.violation_count
                ),
            ),
        ],
        Standard::Gdpr => vec![
            c(
                "Art. 30",
                "Records of processing activities",
                r.total_events > 0,
                format!(
                    "{} events of {} types; {} data accesses",
                    r.total_events,
                    r.by_type.len(),
                    r.access_count
                ),
            ),
            c(
                "Art. 32(1)(b)",
                "Ongoing integrity of processing systems",
                integrity_ok,
                integ,
            ),
            c(
                "Art. 32(1)(d)",
                "Regular testing of the effectiveness of measures",
                r.integrity.checkpoints_checked > 0,
                format!(
                    "{} signed checkpoints verified",
                    r.integrity.checkpoints_checked
                ),
            ),
            c(
                "Art. 33",
                "Detection of personal data breaches",
                count("security_violation") == 0,
                format!(
                    "{} security violations, {} policy denials",
                    count("security_violation"),
                    r.violation_count
                ),
            ),
        ],
        Standard::Sox => vec![
            c(
                "§404",
                "Internal control over systems: changes are authorised and recorded",
                true,
                format!(
                    "{} changes to controls recorded (policy reloads {}, key rotations {})",
                    r.changes.len(),
                    count("policy_reload"),
                    count("key_rotation")
                ),
            ),
            c(
                "§802",
                "Records are retained unaltered",
                integrity_ok,
                integ,
            ),
            c(
                "ITGC access",
                "Access to programs and data is restricted",
                r.violation_count == 0,
                format!(
                    "{} denied or violating operations; {} authentication failures",
                    r.violation_count,
                    count("auth_failure")
                ),
            ),
        ],
        Standard::Custom => vec![c(
            "integrity",
            "The audit trail is complete and unaltered",
            integrity_ok,
            integ,
        )],
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Renders the report as one self-contained HTML page.
pub fn to_html(r: &ComplianceReport) -> String {
    let mut h = String::new();
    let ok = r.integrity.ok;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:72rem;color:#1b1f24;line-height:1.45}}\
h1{{font-size:1.6rem;margin-bottom:.2rem}}h2{{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}}\
table{{border-collapse:collapse;width:100%;font-size:.9rem}}th,td{{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
th{{background:#f6f8fa}}.ok{{color:#116329;font-weight:600}}.bad{{color:#a40e26;font-weight:600}}.muted{{color:#59636e}}\
.banner{{padding:.8rem 1rem;border-radius:.4rem;margin:1rem 0}}.banner.ok{{background:#dafbe1}}.banner.bad{{background:#ffebe9}}\
code{{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all}}\
@media print{{body{{margin:0}}}}</style></head><body>\n",
        esc(&r.title)
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1><p class=\"muted\">Log <code>{}</code> · generated {} · period {} to {}</p>",
        esc(&r.title),
        esc(&r.origin),
        esc(&r.generated_at),
        esc(r.since.as_deref().unwrap_or("beginning")),
        esc(r.until.as_deref().unwrap_or("now"))
    );
    let _ = writeln!(
        h,
        "<div class=\"banner {}\"><strong>Integrity: {}</strong> — {}</div>",
        if ok { "ok" } else { "bad" },
        if ok { "verified" } else { "FAILED" },
        esc(&if ok {
            format!(
                "{} events checked (Ed25519 signatures, SHA-256 hash chain, RFC 9162 Merkle root) against {} signed checkpoints{}.",
                r.integrity.events_checked,
                r.integrity.checkpoints_checked,
                r.integrity
                    .latest_checkpoint
                    .as_ref()
                    .map(|c| format!("; latest covers {} events, root {}", c.size, c.root))
                    .unwrap_or_default()
            )
        } else {
            r.integrity
                .first_error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default()
        })
    );
    for w in &r.integrity.warnings {
        let _ = writeln!(h, "<p class=\"muted\">Note: {}</p>", esc(w));
    }
    h.push_str("<h2>Controls</h2><table><tr><th>Reference</th><th>Requirement</th><th>Status</th><th>Evidence</th></tr>\n");
    for c in &r.controls {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&c.reference),
            esc(&c.requirement),
            if c.status == "met" { "ok" } else { "bad" },
            esc(&c.status),
            esc(&c.evidence)
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(
        h,
        "<h2>What was recorded</h2><p>{} events in the period.</p><table><tr><th>Event type</th><th>Count</th></tr>",
        r.total_events
    );
    for (t, n) in &r.by_type {
        let _ = writeln!(h, "<tr><td>{}</td><td>{n}</td></tr>", esc(t));
    }
    h.push_str("</table>\n<h2>Agents</h2><table><tr><th>Agent</th><th>Id</th><th>Events</th><th>Accesses</th><th>Violations</th></tr>\n");
    for a in &r.agents {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.agent_name),
            esc(&a.agent_id),
            a.events,
            a.accesses,
            a.violations
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(
        h,
        "<h2>Policy violations</h2><p>{} in the period{}.</p><table><tr><th>#</th><th>Time</th><th>Agent</th><th>Kind</th><th>Detail</th></tr>",
        r.violation_count,
        if r.violation_count as usize > r.violations.len() {
            format!(" (latest {} shown)", r.violations.len())
        } else {
            String::new()
        }
    );
    for v in &r.violations {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>",
            v.seq,
            esc(&v.time),
            esc(&v.agent),
            esc(&v.kind),
            esc(&v.detail)
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(
        h,
        "<h2>Who accessed what</h2><p>{} accesses in the period{}.</p><table><tr><th>#</th><th>Time</th><th>Agent</th><th>Action</th><th>Target</th><th>Decision</th></tr>",
        r.access_count,
        if r.access_count as usize > r.accesses.len() {
            format!(" (latest {} shown)", r.accesses.len())
        } else {
            String::new()
        }
    );
    for a in &r.accesses {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"{}\">{}</td></tr>",
            a.seq,
            esc(&a.time),
            esc(&a.agent),
            esc(&a.action),
            esc(&a.target),
            if a.decision == "Deny" { "bad" } else { "" },
            esc(&a.decision)
        );
    }
    h.push_str("</table>\n<h2>Changes to controls</h2><table><tr><th>#</th><th>Time</th><th>Kind</th><th>Detail</th></tr>\n");
    for c in &r.changes {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            c.seq,
            esc(&c.time),
            esc(&c.kind),
            esc(&c.detail)
        );
    }
    let _ = write!(
        h,
        "</table>\n<h2>How to check this report</h2><p>Every event is signed (Ed25519) and hash-chained; signed checkpoints commit to a \
         Merkle root (RFC 9162). Anyone with the log's public key can re-verify with <code>symbi audit verify</code> or an independent \
         program following <code>docs/audit-format.md</code>, and can ask for an inclusion proof of any event listed here with \
         <code>symbi audit prove inclusion &lt;event id&gt;</code>. Verifier keys: {}.</p>\n</body></html>\n",
        r.integrity
            .keys
            .iter()
            .map(|k| format!("<code>{}</code>", esc(k)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    h
}
