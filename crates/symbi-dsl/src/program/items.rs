//! Validation and typed forms of `with` attributes (GRAMMAR 4.8) and of schedule,
//! channel, memory, webhook and metadata items (4.11, 4.1). The checker reports the
//! diagnostics; the loader keeps the typed forms. One implementation serves both, so what
//! is checked is exactly what runs.

use crate::ast::{self, PropValue, Property};
use crate::check::Mode;
use crate::diagnostic::Diagnostic;
use crate::host::{BlockEnv, MemoryMode, NetworkPolicy, Privacy, SandboxSetting, SecurityLevel};
use crate::span::Span;
use serde::Serialize;
use std::time::Duration;
use symbi_types::{ByteSize, HumanDuration, SandboxTier};

/// A one-token value read as text: a string literal or a bare word.
fn text(v: &PropValue) -> Option<&str> {
    match v {
        PropValue::Value(ast::Value::Lit(ast::Literal {
            kind: ast::LitKind::Str(s),
            ..
        })) => Some(s.as_str()),
        PropValue::Value(ast::Value::Word(w)) => Some(w.as_str()),
        _ => None,
    }
}

fn string_lit(v: &PropValue) -> Option<&str> {
    match v {
        PropValue::Value(ast::Value::Lit(ast::Literal {
            kind: ast::LitKind::Str(s),
            ..
        })) => Some(s.as_str()),
        _ => None,
    }
}

fn lit(v: &PropValue) -> Option<&ast::LitKind> {
    match v {
        PropValue::Value(ast::Value::Lit(l)) => Some(&l.kind),
        _ => None,
    }
}

/// JSON form of a property value (metadata, unknown attributes).
pub(crate) fn prop_json(v: &PropValue) -> serde_json::Value {
    fn expr_json(e: &ast::Expr) -> serde_json::Value {
        match &e.kind {
            ast::ExprKind::Lit(l) => lit_json(l),
            ast::ExprKind::Var(w) => serde_json::Value::String(w.to_string()),
            ast::ExprKind::Array(xs) => {
                serde_json::Value::Array(xs.iter().map(expr_json).collect())
            }
            ast::ExprKind::Record(fs) | ast::ExprKind::TypeLit { fields: fs, .. } => {
                serde_json::Value::Object(
                    fs.iter()
                        .map(|f| (f.key.as_str().to_string(), expr_json(&f.value)))
                        .collect(),
                )
            }
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            } => match expr_json(operand) {
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .map(|i| serde_json::Value::from(-i))
                    .or_else(|| n.as_f64().map(|f| serde_json::Value::from(-f)))
                    .unwrap_or(serde_json::Value::Null),
                _ => serde_json::Value::Null,
            },
            _ => serde_json::Value::Null,
        }
    }
    fn lit_json(l: &ast::LitKind) -> serde_json::Value {
        match crate::value::to_json(&crate::compile::lit_value(l)) {
            Ok(j) => j,
            Err(_) => serde_json::Value::Null,
        }
    }
    match v {
        PropValue::Value(ast::Value::Lit(l)) => lit_json(&l.kind),
        PropValue::Value(ast::Value::Word(w)) => serde_json::Value::String(w.to_string()),
        PropValue::Array(a) => serde_json::Value::Array(a.elems.iter().map(expr_json).collect()),
        PropValue::Record(r) => serde_json::Value::Object(
            r.fields
                .iter()
                .map(|f| (f.key.as_str().to_string(), expr_json(&f.value)))
                .collect(),
        ),
    }
}

/// Parses and validates the attributes of one `with` header.
pub fn with_env(attrs: &[ast::WithAttr], mode: Mode, diags: &mut Vec<Diagnostic>) -> BlockEnv {
    let mut env = BlockEnv::default();
    let mut seen: Vec<(&str, Span)> = Vec::new();
    for a in attrs {
        let name = a.name.as_str();
        let key = if name == "max_memory_mb" {
            "max_memory"
        } else {
            name
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            diags.push(
                Diagnostic::error("E106", format!("duplicate attribute `{name}`"), a.name.span)
                    .with_label(*first, "first given here"),
            );
            continue;
        }
        seen.push((key, a.name.span));
        let vspan = a.value.span();
        let bad = |accepted: &str| {
            Diagnostic::error(
                "E105",
                format!("invalid value for attribute `{name}`: expected {accepted}"),
                vspan,
            )
        };
        match name {
            "sandbox" => match text(&a.value).map(|s| s.to_ascii_lowercase()) {
                Some(t) if t == "e2b" => {
                    diags.push(Diagnostic::warning(
                        "W207",
                        "the `e2b` sandbox backend is not implemented by symbi; actions that need it fail with SandboxUnavailable",
                        vspan,
                    ));
                    env.sandbox = Some(SandboxSetting::E2b);
                }
                Some(t) => match t.parse::<SandboxTier>() {
                    Ok(SandboxTier::None) => {
                        match mode {
                            Mode::Production => diags.push(bad("Tier1, Tier2 or Tier3 (`none`/`native` is refused in production mode)")),
                            Mode::Development => diags.push(Diagnostic::warning(
                                "W208",
                                "`sandbox = \"none\"` runs tools without isolation (refused in production mode)",
                                vspan,
                            )),
                        }
                        env.sandbox = Some(SandboxSetting::Tier(SandboxTier::None));
                    }
                    Ok(tier) => {
                        if tier == SandboxTier::Tier3 {
                            diags.push(Diagnostic::warning(
                                "W207",
                                "Tier3 (Firecracker) is not built into this symbi; actions that need it fail with SandboxUnavailable",
                                vspan,
                            ));
                        }
                        env.sandbox = Some(SandboxSetting::Tier(tier));
                    }
                    Err(_) => diags.push(bad("\"Tier1\", \"Tier2\", \"Tier3\", \"docker\", \"gvisor\", \"firecracker\" or \"e2b\"")),
                },
                None => diags.push(bad("a sandbox tier such as \"Tier1\"")),
            },
            "timeout" => {
                let accepted = "a duration (30s), a duration string (\"30m\") or milliseconds";
                let ms: Option<(u64, bool)> = match lit(&a.value) {
                    Some(ast::LitKind::Duration(d)) if *d > 0 => Some((*d as u64, true)),
                    Some(ast::LitKind::Int(i)) if *i > 0 => Some((*i as u64, false)),
                    Some(ast::LitKind::Str(s)) => {
                        let t = s.trim();
                        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                            t.parse::<u64>().ok().filter(|v| *v > 0).map(|v| (v, false))
                        } else {
                            t.parse::<HumanDuration>().ok().map(|d| (d.0.as_millis() as u64, true)).filter(|v| v.0 > 0)
                        }
                    }
                    _ => None,
                };
                match ms {
                    Some((v, has_unit)) => {
                        if !has_unit && v < 1000 {
                            diags.push(Diagnostic::warning(
                                "W209",
                                format!("`timeout = {v}` is {v} ms; write a unit such as `{v}s` if seconds were meant"),
                                vspan,
                            ));
                        }
                        env.timeout = Some(Duration::from_millis(v));
                    }
                    None => diags.push(bad(accepted)),
                }
            }
            "max_memory_mb" => match lit(&a.value) {
                Some(ast::LitKind::Int(i)) if *i > 0 && *i <= (1 << 30) => env.max_memory = Some((*i as u64) << 20),
                Some(ast::LitKind::Float(f)) if *f > 0.0 && *f <= 1e9 => env.max_memory = Some((*f * 1048576.0) as u64),
                _ => diags.push(bad("a positive number of MiB")),
            },
            "max_memory" => {
                let v = match lit(&a.value) {
                    Some(ast::LitKind::Size(s)) if *s > 0 => Some(*s),
                    Some(ast::LitKind::Str(s)) => s.parse::<ByteSize>().ok().map(|b| b.0).filter(|b| *b > 0),
                    _ => None,
                };
                match v {
                    Some(b) => env.max_memory = Some(b),
                    None => diags.push(bad("a size such as 64MB or \"64MB\"")),
                }
            }
            "max_cpu_cores" => match lit(&a.value) {
                Some(ast::LitKind::Int(i)) if *i > 0 => env.max_cpu_cores = Some(*i as f64),
                Some(ast::LitKind::Float(f)) if *f > 0.0 => env.max_cpu_cores = Some(*f),
                _ => diags.push(bad("a positive number of cores such as 0.5 or 2")),
            },
            "max_steps" => match lit(&a.value) {
                Some(ast::LitKind::Int(i)) if *i > 0 => env.max_steps = Some(*i as u64),
                _ => diags.push(bad("a positive integer")),
            },
            "memory" => match text(&a.value) {
                Some("ephemeral") => env.memory = MemoryMode::Ephemeral,
                Some("persistent") => env.memory = MemoryMode::Persistent,
                Some("session") => env.memory = MemoryMode::Session,
                Some("encrypted") => env.memory = MemoryMode::Encrypted,
                _ => diags.push(bad("\"ephemeral\", \"persistent\", \"session\" or \"encrypted\"")),
            },
            "privacy" => match text(&a.value) {
                Some("strict") => env.privacy = Some(Privacy::Strict),
                Some("high") => env.privacy = Some(Privacy::High),
                Some("medium") => env.privacy = Some(Privacy::Medium),
                Some("low") => env.privacy = Some(Privacy::Low),
                Some("differential") => env.privacy = Some(Privacy::Differential),
                _ => diags.push(bad("\"strict\", \"high\", \"medium\", \"low\" or \"differential\"")),
            },
            "security" => match text(&a.value) {
                Some("low") => env.security = Some(SecurityLevel::Low),
                Some("medium") => env.security = Some(SecurityLevel::Medium),
                Some("high") => env.security = Some(SecurityLevel::High),
                Some("maximum") => env.security = Some(SecurityLevel::Maximum),
                _ => diags.push(bad("\"low\", \"medium\", \"high\" or \"maximum\"")),
            },
            "network_policy" => match text(&a.value) {
                Some("deny_all") => env.network_policy = NetworkPolicy::DenyAll,
                Some("allow_list") => env.network_policy = NetworkPolicy::AllowList,
                Some("allow") => env.network_policy = NetworkPolicy::Allow,
                _ => diags.push(bad("\"deny_all\", \"allow_list\" or \"allow\"")),
            },
            "requires" => match &a.value {
                PropValue::Array(arr) => {
                    for e in &arr.elems {
                        match &e.kind {
                            ast::ExprKind::Lit(ast::LitKind::Str(s)) => env.requires.push(s.to_string()),
                            ast::ExprKind::Var(w) => env.requires.push(w.to_string()),
                            _ => diags.push(Diagnostic::error(
                                "E105",
                                "invalid value for attribute `requires`: expected strings",
                                e.span,
                            )),
                        }
                    }
                }
                v => match text(v) {
                    Some(s) => env.requires.push(s.to_string()),
                    None => diags.push(bad("a string or an array of strings")),
                },
            },
            _ => {
                diags.push(Diagnostic::warning("W206", format!("unknown attribute `{name}`, ignored"), a.name.span));
                env.other.push((name.to_string(), prop_json(&a.value)));
            }
        }
    }
    env
}

/// What a schedule's runs do with their results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScheduleSpec {
    /// Its name.
    pub name: String,
    /// Cron pattern (validated), if recurring.
    pub cron: Option<String>,
    /// One-time trigger, if `at` was given: the instant (UTC).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// IANA zone the times are in.
    pub timezone: String,
    /// The agent to run.
    pub agent: String,
    /// A top-level policy applied to scheduled runs.
    pub policy: Option<String>,
    /// `none`, `errors_only`, `all_operations`.
    pub audit: Option<String>,
    /// Run once, then disable (`at` implies it).
    pub one_shot: bool,
    /// Where to send each run's result.
    pub deliver: Option<String>,
    /// Input bound to the agent.
    pub input: serde_json::Value,
    /// `skip` (default) or `run_once`.
    pub missed: String,
}

impl ScheduleSpec {
    /// The parsed cron pattern (seconds and year optional, Unix day-of-week numbers,
    /// day-of-month OR day-of-week when both are restricted).
    pub fn cron(&self) -> Option<croner::Cron> {
        self.cron.as_deref().and_then(|c| parse_cron(c).ok())
    }

    /// The schedule's time zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Parses a cron pattern as GRAMMAR 4.11.1 describes.
pub fn parse_cron(c: &str) -> Result<croner::Cron, String> {
    let n = c.split_whitespace().count();
    if !(5..=7).contains(&n) {
        return Err(format!("expected 5, 6 or 7 fields, found {n}"));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Optional)
        .build()
        .parse(c)
        .map_err(|e| e.to_string())
}

fn prop_text_or_err(
    p: &Property,
    what: &str,
    code: &'static str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match text(&p.value) {
        Some(s) => Some(s.to_string()),
        None => {
            diags.push(Diagnostic::error(
                code,
                format!("`{}` must be {what}", p.key.as_str()),
                p.value.span(),
            ));
            None
        }
    }
}

/// Validates a schedule.
pub fn schedule(
    s: &ast::Schedule,
    agents: &[&str],
    policies: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> ScheduleSpec {
    let mut spec = ScheduleSpec {
        name: s.name.to_string(),
        cron: None,
        at: None,
        timezone: "UTC".into(),
        agent: s.name.to_string(),
        policy: None,
        audit: None,
        one_shot: false,
        deliver: None,
        input: serde_json::json!({}),
        missed: "skip".into(),
    };
    let mut at_raw: Option<(String, Span)> = None;
    let mut agent_span = s.name.span;
    for p in &s.props {
        match p.key.as_str() {
            "cron" => match string_lit(&p.value) {
                Some(c) => match parse_cron(c) {
                    Ok(_) => spec.cron = Some(c.to_string()),
                    Err(e) => {
                        spec.cron = Some(String::new());
                        diags.push(Diagnostic::error("E125", format!("invalid cron expression {c:?}: {e}"), p.value.span()))
                    }
                },
                None => {
                    spec.cron = Some(String::new());
                    diags.push(Diagnostic::error("E125", "`cron` must be a string", p.value.span()))
                }
            },
            "at" => match string_lit(&p.value) {
                Some(a) => at_raw = Some((a.to_string(), p.value.span())),
                None => diags.push(Diagnostic::error("E125", "`at` must be an RFC 3339 date-time string", p.value.span())),
            },
            "timezone" => {
                if let Some(tz) = prop_text_or_err(p, "an IANA time zone name", "E126", diags) {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        diags.push(Diagnostic::error("E126", format!("unknown time zone {tz:?}"), p.value.span()));
                    } else {
                        spec.timezone = tz;
                    }
                }
            }
            "agent" => {
                if let Some(a) = prop_text_or_err(p, "an agent name", "E127", diags) {
                    spec.agent = a;
                    agent_span = p.value.span();
                }
            }
            "policy" => {
                if let Some(pol) = prop_text_or_err(p, "a policy name", "E127", diags) {
                    if !policies.contains(&pol.as_str()) {
                        diags.push(Diagnostic::error(
                            "E127",
                            format!("`{pol}` is not a top-level policy of this file"),
                            p.value.span(),
                        ));
                    }
                    spec.policy = Some(pol);
                }
            }
            "audit" => match text(&p.value) {
                Some(v @ ("none" | "errors_only" | "all_operations")) => spec.audit = Some(v.to_string()),
                _ => diags.push(Diagnostic::warning(
                    "W223",
                    "`audit` of a schedule is \"none\", \"errors_only\" or \"all_operations\"; ignored",
                    p.value.span(),
                )),
            },
            "one_shot" => match lit(&p.value) {
                Some(ast::LitKind::Bool(b)) => spec.one_shot = *b,
                _ => diags.push(Diagnostic::warning("W223", "`one_shot` must be true or false; ignored", p.value.span())),
            },
            "deliver" => {
                if let Some(d) = text(&p.value) {
                    let known = d == "stdout"
                        || d == "log_file"
                        || d.starts_with("topic://")
                        || d.starts_with("https://")
                        || d.starts_with("http://");
                    if !known {
                        diags.push(Diagnostic::warning(
                            "W224",
                            format!("unknown delivery target {d:?} (stdout, log_file, topic://…, or a webhook URL)"),
                            p.value.span(),
                        ));
                    }
                    spec.deliver = Some(d.to_string());
                }
            }
            "input" => match string_lit(&p.value).map(serde_json::from_str::<serde_json::Value>) {
                Some(Ok(j)) => spec.input = j,
                _ => diags.push(Diagnostic::error("E125", "`input` must be a string holding JSON", p.value.span())),
            },
            "missed" => match text(&p.value) {
                Some(v @ ("skip" | "run_once")) => spec.missed = v.to_string(),
                _ => diags.push(Diagnostic::warning("W223", "`missed` is \"skip\" or \"run_once\"; ignored", p.value.span())),
            },
            other => diags.push(Diagnostic::warning("W223", format!("unknown schedule key `{other}`, ignored"), p.key.span)),
        }
    }
    if let Some((a, span)) = at_raw {
        spec.one_shot = true;
        match chrono::DateTime::parse_from_rfc3339(&a) {
            Ok(t) => spec.at = Some(t.with_timezone(&chrono::Utc)),
            Err(_) => match chrono::NaiveDateTime::parse_from_str(&a, "%Y-%m-%dT%H:%M:%S")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(&a, "%Y-%m-%dT%H:%M:%S%.f"))
            {
                Ok(naive) => {
                    use chrono::TimeZone;
                    let tz = spec.tz();
                    match tz.from_local_datetime(&naive).earliest() {
                        Some(t) => spec.at = Some(t.with_timezone(&chrono::Utc)),
                        None => diags.push(Diagnostic::error(
                            "E125",
                            format!("{a:?} does not exist in {}", spec.timezone),
                            span,
                        )),
                    }
                }
                Err(_) => diags.push(Diagnostic::error(
                    "E125",
                    format!("`at` must be an RFC 3339 date-time, found {a:?}"),
                    span,
                )),
            },
        }
    }
    let has_cron = spec.cron.is_some();
    let has_at = s.props.iter().any(|p| p.key.as_str() == "at");
    if !has_cron && !has_at {
        diags.push(Diagnostic::error(
            "E123",
            format!("schedule `{}` has neither `cron` nor `at`", s.name),
            s.name.span,
        ));
    }
    if has_cron && has_at {
        diags.push(Diagnostic::error(
            "E124",
            format!("schedule `{}` has both `cron` and `at`", s.name),
            s.name.span,
        ));
    }
    if spec.cron.as_deref() == Some("") {
        spec.cron = None;
    }
    if !agents.contains(&spec.agent.as_str()) {
        diags.push(Diagnostic::error(
            "E127",
            format!("unknown agent `{}`", spec.agent),
            agent_span,
        ));
    }
    spec
}

/// A chat channel (GRAMMAR 4.11.2).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelSpec {
    /// Its name.
    pub name: String,
    /// `slack`, `teams`, `mattermost`.
    pub platform: String,
    /// Other properties as JSON (`workspace`, `channels`, `default_agent`, …).
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// `default_deny`.
    pub default_deny: bool,
    /// Data classification: category → `redact` / `block` / `allow`.
    pub data_classification: Vec<(String, String)>,
    /// Whether this runtime has an adapter for the platform (else W225: not opened).
    pub supported: bool,
}

/// Validates a channel.
pub fn channel(c: &ast::Channel, platforms: &[String], diags: &mut Vec<Diagnostic>) -> ChannelSpec {
    let mut spec = ChannelSpec {
        name: c.name.to_string(),
        platform: String::new(),
        properties: Default::default(),
        default_deny: false,
        data_classification: Vec::new(),
        supported: false,
    };
    let mut has_platform = false;
    for e in &c.entries {
        match e {
            ast::ChannelEntry::Prop(p) => {
                if p.key.as_str() == "platform" {
                    has_platform = true;
                    match text(&p.value) {
                        Some(pl) => {
                            spec.platform = pl.to_string();
                            spec.supported = platforms.iter().any(|s| s == pl);
                            if !spec.supported {
                                diags.push(Diagnostic::warning(
                                    "W225",
                                    format!("this runtime has no adapter for the platform {pl:?}; channel `{}` is not opened", c.name),
                                    p.value.span(),
                                ));
                            }
                        }
                        None => diags.push(Diagnostic::error(
                            "E128",
                            "`platform` must be a string",
                            p.value.span(),
                        )),
                    }
                } else if p.key.as_str() == "default_deny" {
                    spec.default_deny = matches!(lit(&p.value), Some(ast::LitKind::Bool(true)));
                    spec.properties
                        .insert("default_deny".into(), prop_json(&p.value));
                } else {
                    if !matches!(
                        p.key.as_str(),
                        "workspace" | "channels" | "default_agent" | "dlp_profile" | "audit_level"
                    ) {
                        diags.push(Diagnostic::warning(
                            "W223",
                            format!("unknown channel key `{}`, ignored", p.key),
                            p.key.span,
                        ));
                    }
                    spec.properties
                        .insert(p.key.to_string(), prop_json(&p.value));
                }
            }
            ast::ChannelEntry::Policy(_) => {}
            ast::ChannelEntry::DataClassification(d) => {
                for r in &d.rules {
                    let act = r.action.as_str();
                    if !matches!(act, "redact" | "block" | "allow") {
                        diags.push(Diagnostic::error(
                            "E129",
                            format!(
                                "unknown classification action `{act}` (redact, block or allow)"
                            ),
                            r.action.span,
                        ));
                    }
                    spec.data_classification
                        .push((r.category.to_string(), act.to_string()));
                }
            }
        }
    }
    if !has_platform {
        diags.push(Diagnostic::error(
            "E128",
            format!("channel `{}` has no `platform`", c.name),
            c.name.span,
        ));
    }
    spec
}

/// A memory store (GRAMMAR 4.11.3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemorySpec {
    /// Its name (agents use it as an identifier: a ref).
    pub name: String,
    /// Back end: `markdown`.
    pub store: String,
    /// Directory, relative to the data directory unless absolute.
    pub path: String,
    /// Entries older than this are compacted away.
    #[serde(with = "ms")]
    pub retention: Duration,
    /// Hybrid search weights, normalised to sum to 1.
    pub vector_weight: f64,
    /// Keyword weight.
    pub keyword_weight: f64,
}

mod ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

fn number(v: &PropValue) -> Option<f64> {
    match lit(v) {
        Some(ast::LitKind::Int(i)) => Some(*i as f64),
        Some(ast::LitKind::Float(f)) => Some(*f),
        _ => None,
    }
}

/// Validates a memory store.
pub fn memory(m: &ast::Memory, diags: &mut Vec<Diagnostic>) -> MemorySpec {
    let mut spec = MemorySpec {
        name: m.name.to_string(),
        store: String::new(),
        path: "data/agents".into(),
        retention: Duration::from_secs(90 * 86_400),
        vector_weight: 0.7,
        keyword_weight: 0.3,
    };
    for e in &m.entries {
        match e {
            ast::MemoryEntry::Prop(p) => match p.key.as_str() {
                "store" => match text(&p.value) {
                    Some("markdown") => spec.store = "markdown".into(),
                    other => diags.push(Diagnostic::error(
                        "E130",
                        format!(
                            "unknown memory store {:?} (supported: markdown)",
                            other.unwrap_or("?")
                        ),
                        p.value.span(),
                    )),
                },
                "path" => match text(&p.value) {
                    Some(s) => spec.path = s.to_string(),
                    None => diags.push(Diagnostic::warning(
                        "W223",
                        "`path` must be a string; ignored",
                        p.value.span(),
                    )),
                },
                "retention" => {
                    let d = match lit(&p.value) {
                        Some(ast::LitKind::Duration(d)) if *d > 0 => Some(*d as u64),
                        Some(ast::LitKind::Str(s)) => s
                            .parse::<HumanDuration>()
                            .ok()
                            .map(|d| d.0.as_millis() as u64),
                        _ => None,
                    };
                    match d {
                        Some(ms) => spec.retention = Duration::from_millis(ms),
                        None => diags.push(Diagnostic::warning(
                            "W223",
                            "`retention` must be a duration; ignored",
                            p.value.span(),
                        )),
                    }
                }
                other => diags.push(Diagnostic::warning(
                    "W223",
                    format!("unknown memory key `{other}`, ignored"),
                    p.key.span,
                )),
            },
            ast::MemoryEntry::Search(b) => {
                for p in &b.props {
                    let slot = match p.key.as_str() {
                        "vector_weight" => &mut spec.vector_weight,
                        "keyword_weight" => &mut spec.keyword_weight,
                        other => {
                            diags.push(Diagnostic::warning(
                                "W223",
                                format!("unknown search key `{other}`, ignored"),
                                p.key.span,
                            ));
                            continue;
                        }
                    };
                    match number(&p.value) {
                        Some(w) if (0.0..=1.0).contains(&w) => *slot = w,
                        _ => diags.push(Diagnostic::warning(
                            "W223",
                            format!(
                                "`{}` must be a number in [0, 1]; the default is used",
                                p.key
                            ),
                            p.value.span(),
                        )),
                    }
                }
            }
        }
    }
    if spec.store.is_empty()
        && !m
            .entries
            .iter()
            .any(|e| matches!(e, ast::MemoryEntry::Prop(p) if p.key.as_str() == "store"))
    {
        diags.push(Diagnostic::error(
            "E130",
            format!("memory `{}` has no `store`", m.name),
            m.name.span,
        ));
    }
    let sum = spec.vector_weight + spec.keyword_weight;
    if sum > 0.0 {
        spec.vector_weight /= sum;
        spec.keyword_weight /= sum;
    } else {
        spec.vector_weight = 0.7;
        spec.keyword_weight = 0.3;
    }
    spec
}

/// A webhook (GRAMMAR 4.11.4).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookSpec {
    /// Its name.
    pub name: String,
    /// URL path, starting with `/`.
    pub path: String,
    /// `github`, `stripe`, `slack` or `custom`.
    pub provider: String,
    /// The HMAC key, usually a `vault://…` reference.
    pub secret: String,
    /// The agent to run.
    pub agent: String,
    /// JSONPath of the filter.
    pub filter_path: Option<String>,
    /// `equals` value of the filter.
    pub filter_equals: Option<serde_json::Value>,
    /// `contains` value of the filter.
    pub filter_contains: Option<serde_json::Value>,
}

/// Validates a webhook.
pub fn webhook(w: &ast::Webhook, agents: &[&str], diags: &mut Vec<Diagnostic>) -> WebhookSpec {
    let mut spec = WebhookSpec {
        name: w.name.to_string(),
        path: String::new(),
        provider: "custom".into(),
        secret: String::new(),
        agent: String::new(),
        filter_path: None,
        filter_equals: None,
        filter_contains: None,
    };
    let mut agent_span = w.name.span;
    for e in &w.entries {
        match e {
            ast::WebhookEntry::Prop(p) => match p.key.as_str() {
                "path" => match text(&p.value) {
                    Some(s) if s.starts_with('/') => spec.path = s.to_string(),
                    _ => diags.push(Diagnostic::error(
                        "E131",
                        "the webhook `path` must be a string starting with `/`",
                        p.value.span(),
                    )),
                },
                "provider" => {
                    let pv = text(&p.value).unwrap_or("custom");
                    spec.provider = if matches!(pv, "github" | "stripe" | "slack") {
                        pv.to_string()
                    } else {
                        "custom".into()
                    };
                }
                "secret" => match text(&p.value) {
                    Some(s) if !s.is_empty() => spec.secret = s.to_string(),
                    _ => diags.push(Diagnostic::error(
                        "E132",
                        "the webhook `secret` must be a non-empty string",
                        p.value.span(),
                    )),
                },
                "agent" => {
                    if let Some(a) = text(&p.value) {
                        spec.agent = a.to_string();
                        agent_span = p.value.span();
                    }
                }
                other => diags.push(Diagnostic::warning(
                    "W223",
                    format!("unknown webhook key `{other}`, ignored"),
                    p.key.span,
                )),
            },
            ast::WebhookEntry::Filter(b) => {
                for p in &b.props {
                    match p.key.as_str() {
                        "json_path" => spec.filter_path = text(&p.value).map(str::to_string),
                        "equals" => spec.filter_equals = Some(prop_json(&p.value)),
                        "contains" => spec.filter_contains = Some(prop_json(&p.value)),
                        other => diags.push(Diagnostic::warning(
                            "W223",
                            format!("unknown filter key `{other}`, ignored"),
                            p.key.span,
                        )),
                    }
                }
            }
        }
    }
    let has = |k: &str| {
        w.entries
            .iter()
            .any(|e| matches!(e, ast::WebhookEntry::Prop(p) if p.key.as_str() == k))
    };
    if !has("path") {
        diags.push(Diagnostic::error(
            "E131",
            format!("webhook `{}` has no `path`", w.name),
            w.name.span,
        ));
    }
    if !has("secret") {
        diags.push(Diagnostic::error(
            "E132",
            format!("webhook `{}` has no `secret`", w.name),
            w.name.span,
        ));
    }
    if spec.agent.is_empty() {
        if agents.len() == 1 {
            spec.agent = agents[0].to_string();
        } else {
            diags.push(Diagnostic::error(
                "E127",
                format!(
                    "webhook `{}` must name its `agent` (the file has {} agents)",
                    w.name,
                    agents.len()
                ),
                w.name.span,
            ));
        }
    } else if !agents.contains(&spec.agent.as_str()) {
        diags.push(Diagnostic::error(
            "E127",
            format!("unknown agent `{}`", spec.agent),
            agent_span,
        ));
    }
    spec
}

/// Merges metadata blocks (W221 for a repeated key, later wins; W222 for an `executor`).
pub fn metadata(
    blocks: &[&ast::Metadata],
    diags: &mut Vec<Diagnostic>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let mut seen: Vec<(String, Span)> = Vec::new();
    for b in blocks {
        for p in &b.pairs {
            let k = p.key.to_string();
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == k) {
                diags.push(
                    Diagnostic::warning(
                        "W221",
                        format!("metadata key `{k}` is repeated; the later value wins"),
                        p.key.span,
                    )
                    .with_label(*first, "first given here"),
                );
            }
            if k == "executor" {
                diags.push(Diagnostic::warning(
                    "W222",
                    "symbi does not provide external executors; the agent bodies are interpreted",
                    p.value.span(),
                ));
            }
            seen.push((k.clone(), p.key.span));
            out.insert(k, prop_json(&p.value));
        }
    }
    out
}
