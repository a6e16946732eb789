//! `symbi audit …`: verify, query, prove, check proofs, report, tail and export keys of the
//! signed audit log (format: docs/audit-format.md). Every subcommand reads `--data-dir`
//! (and `[audit] storage`) and never needs the signing key, except `rotate-key`.

use super::Globals;
use crate::cli::Format;
use anyhow::{Context, anyhow};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use symbi_audit::loadtest::Mode;
use symbi_audit::note::NoteKey;
use symbi_audit::reader::verify_proof_json;
use symbi_audit::report::{self, Standard};
use symbi_audit::verify::{VerifyOptions, VerifyReport, verify_log};
use symbi_audit::{AuditLog, AuditOptions, LogReader, Query, Signatures, StoredEvent};
use symbi_crypto::CryptoProvider;

/// `symbi audit …`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify signatures (batch), hash chain, Merkle roots and checkpoints; names the first
    /// bad event. Exit 1 when anything is wrong.
    Verify(VerifyArgs),
    /// Historical query by agent, event type and time range.
    Query(QueryArgs),
    /// Print a proof a third party can check offline.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof printed by `symbi audit prove` (offline; no log needed).
    VerifyProof(VerifyProofArgs),
    /// Compliance report (HIPAA, GDPR, SOX, custom) as self-contained HTML or JSON.
    Report(ReportArgs),
    /// Print the latest events; with --follow, stream new ones as they are written.
    Tail(TailArgs),
    /// Print the log's verifier keys (C2SP vkey format) with their key ids.
    Pubkey(FormatArgs),
    /// List signed checkpoints (tree size, root, time).
    Checkpoints(CheckpointsArgs),
    /// Rotate the signing key (recorded in the log, signed by the old key). The runtime must
    /// not be running.
    RotateKey(FormatArgs),
}

/// `--format` only.
#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi audit verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Start from a signed checkpoint: a file holding the note, or a tree size from
    /// `symbi audit checkpoints`. Events before it are trusted by that checkpoint.
    #[arg(long, value_name = "CHECKPOINT")]
    pub from: Option<String>,
    /// Pin a verifier key (C2SP vkey, repeatable) instead of trusting the first key of
    /// `<audit dir>/pubkeys`.
    #[arg(long = "key", value_name = "VKEY")]
    pub keys: Vec<String>,
    /// Verify signatures one by one instead of in batches.
    #[arg(long)]
    pub single: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Output of `query` and `tail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ListFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON object per line (JSON Lines).
    Json,
}

/// `symbi audit query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Agent id (UUID) or agent name.
    #[arg(long)]
    pub agent: Option<String>,
    /// Event type (e.g. `file_read`, `agent_state`, `policy_reload`).
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Events at or after: RFC 3339 time, a date (YYYY-MM-DD), or an age like `24h`.
    #[arg(long)]
    pub since: Option<String>,
    /// Events before: RFC 3339 time, a date, or an age like `1h`.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many events.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Newest first (with --limit: the latest N).
    #[arg(long)]
    pub newest_first: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `symbi audit prove …`.
#[derive(Subcommand, Debug)]
pub enum ProveCommand {
    /// Prove that an event is in the log (RFC 9162 inclusion proof + signed checkpoint).
    Inclusion {
        /// Event id (UUID), or `#N` for sequence number N.
        event: String,
        /// Output format (the JSON is what `verify-proof` reads).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Prove that the log at NEW_SIZE extends the log at OLD_SIZE (append-only).
    Consistency {
        /// Size of an earlier checkpoint.
        old_size: u64,
        /// Size of a later checkpoint (default: the latest).
        new_size: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `symbi audit verify-proof`.
#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// Proof file (JSON from `symbi audit prove … --format json`), or `-` for stdin.
    pub file: PathBuf,
    /// Pin the log's verifier key (C2SP vkey, repeatable); otherwise the keys listed in the
    /// proof are used and the output says so.
    #[arg(long = "key", value_name = "VKEY")]
    pub keys: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    /// Self-contained HTML page.
    #[default]
    Html,
    /// JSON.
    Json,
}

/// Standards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StandardArg {
    /// HIPAA Security Rule.
    Hipaa,
    /// GDPR.
    Gdpr,
    /// Sarbanes-Oxley.
    Sox,
    /// No control mapping.
    Custom,
}

/// `symbi audit report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Standard whose controls frame the report.
    #[arg(long, value_enum, default_value = "custom")]
    pub standard: StandardArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
    /// Period start (RFC 3339, date, or age like `30d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Period end.
    #[arg(long)]
    pub until: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `symbi audit tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// Keep streaming new events.
    #[arg(long, short)]
    pub follow: bool,
    /// Number of past events to print first.
    #[arg(long, short = 'n', default_value_t = 10)]
    pub lines: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `symbi audit checkpoints`.
#[derive(Args, Debug)]
pub struct CheckpointsArgs {
    /// Show the latest N.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the full signed note of each.
    #[arg(long)]
    pub notes: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

struct Ctx {
    opts: AuditOptions,
    p: Arc<dyn CryptoProvider>,
}

impl Ctx {
    fn reader(&self) -> anyhow::Result<LogReader> {
        Ok(LogReader::open(&self.opts.dir, self.p.clone())?)
    }
}

fn context(g: &Globals) -> anyhow::Result<Ctx> {
    let loaded = g.load(None)?;
    let p = symbi_crypto::provider(loaded.config.security.crypto_provider.as_str())?;
    Ok(Ctx {
        opts: AuditOptions::from_config(&loaded.data_dir(), &loaded.config.audit),
        p,
    })
}

/// Runs `symbi audit …`.
pub fn run(g: &Globals, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let ctx = context(g)?;
    match cmd {
        AuditCommand::Verify(a) => verify(&ctx, a),
        AuditCommand::Query(a) => query(&ctx, a),
        AuditCommand::Prove(c) => prove(&ctx, c),
        AuditCommand::VerifyProof(a) => verify_proof(&ctx, a),
        AuditCommand::Report(a) => report_cmd(&ctx, a),
        AuditCommand::Tail(a) => tail(&ctx, a),
        AuditCommand::Pubkey(a) => pubkey(&ctx, a),
        AuditCommand::Checkpoints(a) => checkpoints(&ctx, a),
        AuditCommand::RotateKey(a) => rotate(&ctx, a),
    }
}

/// Parses `--since`/`--until`: RFC 3339, a date, or an age (`24h`, `7d`).
pub fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap().and_utc());
    }
    if let Ok(d) = s.parse::<symbi_types::HumanDuration>() {
        return Ok(Utc::now() - chrono::Duration::from_std(d.0)?);
    }
    Err(crate::exit::usage(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-26T10:00:00Z), a date (2026-11-26) or an age (24h, 7d)"
    )))
}

fn parse_keys(p: &dyn CryptoProvider, keys: &[String]) -> anyhow::Result<Option<Vec<NoteKey>>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let parsed: Result<Vec<_>, _> = keys.iter().map(|k| NoteKey::parse_vkey(p, k)).collect();
    Ok(Some(parsed.map_err(|e| crate::exit::usage(e.to_string()))?))
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || total < 50_000 {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} verifying [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    Some(pb)
}

fn run_verify(
    ctx: &Ctx,
    trusted: Option<Vec<NoteKey>>,
    from: Option<String>,
    batch: bool,
) -> anyhow::Result<VerifyReport> {
    let total = ctx.reader().map(|r| r.size()).unwrap_or(0);
    let pb = progress_bar(total);
    let cb = |done: u64, _hint: u64| {
        if let Some(pb) = &pb {
            pb.set_position(done.min(total));
        }
    };
    let opts = VerifyOptions {
        trusted,
        from,
        batch,
        progress: Some(&cb),
    };
    let rep = verify_log(&ctx.opts.dir, &*ctx.p, &opts)?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(rep)
}

fn verify(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted = parse_keys(&*ctx.p, &a.keys)?;
    let from = match &a.from {
        None => None,
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) => {
            let size: u64 = s.parse()?;
            let r = ctx.reader()?;
            Some(
                r.checkpoint_at(size)
                    .ok_or_else(|| {
                        crate::exit::usage(format!(
                            "no signed checkpoint at size {size}; see `symbi audit checkpoints`"
                        ))
                    })?
                    .note
                    .clone(),
            )
        }
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading checkpoint {path}"))?,
        ),
    };
    let rep = run_verify(ctx, trusted, from, !a.single)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rep)?),
        Format::Text => print_verify(&rep, &ctx.opts.dir),
    }
    Ok(if rep.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_verify(rep: &VerifyReport, dir: &std::path::Path) {
    let rate = if rep.elapsed_ms > 0 {
        rep.events_checked as f64 * 1000.0 / rep.elapsed_ms as f64
    } else {
        0.0
    };
    if rep.ok {
        println!("OK: {} ({})", rep.origin, dir.display());
    } else {
        println!("FAILED: {} ({})", rep.origin, dir.display());
    }
    println!(
        "  events checked   {} (from {}), {} segment(s), {} ms ({:.0} events/s, {} signature verification)",
        rep.events_checked, rep.from_size, rep.segments, rep.elapsed_ms, rate, rep.signature_mode
    );
    println!("  checkpoints      {} verified", rep.checkpoints_checked);
    if let Some(c) = &rep.latest_checkpoint {
        let t = DateTime::from_timestamp_millis(c.timestamp_ms as i64)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        println!(
            "  latest           size {} root {} at {} (key {})",
            c.size, c.root, t, c.key_id
        );
    }
    if rep.ok {
        println!("  merkle root      {}", rep.root);
    }
    println!("  keys             {}", rep.keys.join(" → "));
    for w in &rep.warnings {
        println!("  warning: {w}");
    }
    if let Some(p) = &rep.first_error {
        println!(
            "  first bad event: {}",
            p.sequence.map_or("-".to_string(), |s| s.to_string())
        );
        if let Some(id) = &p.event_id {
            println!("    id       {id}");
        }
        if let Some(s) = &p.segment {
            println!("    segment  {s}");
        }
        if let Some(o) = p.offset {
            println!("    offset   {o}");
        }
        println!("    problem  {}: {}", p.kind, p.message);
    }
}

fn table_row(e: &StoredEvent) -> String {
    let ev = &e.event;
    let mut d = ev.details.to_string();
    if d.chars().count() > 100 {
        d = format!("{}…", d.chars().take(100).collect::<String>());
    }
    format!(
        "{:>8}  {}  {:<16}  {:<20}  {}",
        ev.seq,
        ev.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        ev.agent_name
            .clone()
            .or_else(|| ev.agent_id.map(|a| a.to_string()))
            .unwrap_or_else(|| "-".into()),
        ev.event_type,
        d
    )
}

fn print_events(events: &[StoredEvent], format: ListFormat, header: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Table && header {
        writeln!(
            out,
            "{:>8}  {:<24}  {:<16}  {:<20}  details",
            "seq", "time", "agent", "type"
        )?;
    }
    for e in events {
        match format {
            ListFormat::Table => writeln!(out, "{}", table_row(e))?,
            ListFormat::Json => writeln!(out, "{}", serde_json::to_string(&e.to_json())?)?,
        }
    }
    out.flush()?;
    Ok(())
}

fn query(ctx: &Ctx, a: QueryArgs) -> anyhow::Result<ExitCode> {
    let r = ctx.reader()?;
    let q = Query {
        agent: None,
        event_type: a.event_type.clone(),
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
        limit: None,
        newest_first: a.newest_first,
    };
    let events = query_events(&r, q, a.agent.as_deref(), a.limit)?;
    print_events(&events, a.format, true)?;
    Ok(ExitCode::SUCCESS)
}

/// Events matching `q` and `agent` (an agent id, or else a registered name), at most
/// `limit` of them. Shared by `symbi audit query` and `symbi mcp`'s `query_audit`.
pub(crate) fn query_events(
    r: &LogReader,
    mut q: Query,
    agent: Option<&str>,
    limit: Option<usize>,
) -> anyhow::Result<Vec<StoredEvent>> {
    let (agent_id, agent_name) = match agent {
        Some(s) => match s.parse::<symbi_types::AgentId>() {
            Ok(id) => (Some(id), None),
            Err(_) => (None, Some(s.to_string())),
        },
        None => (None, None),
    };
    q.agent = agent_id;
    // A name is matched while visiting, so the index's limit cannot be used for it.
    q.limit = if agent_name.is_some() { None } else { limit };
    let mut events = Vec::new();
    let limit = limit.unwrap_or(usize::MAX);
    r.visit(&q, |e| {
        if agent_name
            .as_ref()
            .is_none_or(|n| e.event.agent_name.as_ref() == Some(n))
        {
            events.push(e);
        }
        events.len() < limit
    })?;
    Ok(events)
}

fn prove(ctx: &Ctx, c: ProveCommand) -> anyhow::Result<ExitCode> {
    let r = ctx.reader()?;
    match c {
        ProveCommand::Inclusion { event, format } => {
            let seq = match event.strip_prefix('#') {
                Some(n) => n.parse::<u64>().map_err(|_| {
                    crate::exit::usage(format!("`{event}`: expected #<sequence number>"))
                })?,
                None => {
                    let id = event.parse::<symbi_types::EventId>().map_err(|_| {
                        crate::exit::usage(format!(
                            "`{event}` is neither an event id (UUID) nor #<sequence>"
                        ))
                    })?;
                    r.find(id)?.event.seq
                }
            };
            let proof = r.prove_inclusion(seq)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&proof)?),
                Format::Text => {
                    println!(
                        "Inclusion proof: event {} is leaf {} of {} at size {}",
                        event, proof.leaf_index, proof.origin, proof.tree_size
                    );
                    println!(
                        "entry (canonical event body, hashed as SHA-256(0x00 ‖ entry)):\n  {}",
                        proof.entry
                    );
                    println!("leaf hash: {}", proof.leaf_hash);
                    println!("audit path (RFC 9162 §2.1.3, leaf to root):");
                    for h in &proof.path {
                        println!("  {h}");
                    }
                    println!(
                        "checkpoint (C2SP signed note):\n{}",
                        indent(&proof.checkpoint)
                    );
                    println!("verifier keys (pin the first out of band):");
                    for k in &proof.verifier_keys {
                        println!("  {k}");
                    }
                    println!(
                        "Check offline: symbi audit prove inclusion {event} --format json > proof.json && symbi audit verify-proof proof.json --key <vkey>"
                    );
                }
            }
        }
        ProveCommand::Consistency {
            old_size,
            new_size,
            format,
        } => {
            let proof = r.prove_consistency(old_size, new_size)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&proof)?),
                Format::Text => {
                    println!(
                        "Consistency proof: {} at size {} extends size {}",
                        proof.origin, proof.new_size, proof.old_size
                    );
                    println!("path (RFC 9162 §2.1.4):");
                    for h in &proof.path {
                        println!("  {h}");
                    }
                    println!("old checkpoint:\n{}", indent(&proof.old_checkpoint));
                    println!("new checkpoint:\n{}", indent(&proof.new_checkpoint));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn verify_proof(ctx: &Ctx, a: VerifyProofArgs) -> anyhow::Result<ExitCode> {
    let text = if a.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?
    };
    let pinned = parse_keys(&*ctx.p, &a.keys)?;
    let res = verify_proof_json(&*ctx.p, &text, pinned.as_deref());
    match (a.format, &res) {
        (Format::Json, Ok(c)) => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": true, "check": c}))?
        ),
        (Format::Json, Err(e)) => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": false, "error": e.to_string()}))?
        ),
        (Format::Text, Ok(c)) => {
            println!("OK: {}", c.summary);
            if !c.key_pinned {
                println!(
                    "note: checked against the key listed in the proof itself; pin the log's published key with --key to rule out a forged log"
                );
            }
        }
        (Format::Text, Err(e)) => println!("FAILED: {e}"),
    }
    Ok(if res.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report_cmd(ctx: &Ctx, a: ReportArgs) -> anyhow::Result<ExitCode> {
    let standard = match a.standard {
        StandardArg::Hipaa => Standard::Hipaa,
        StandardArg::Gdpr => Standard::Gdpr,
        StandardArg::Sox => Standard::Sox,
        StandardArg::Custom => Standard::Custom,
    };
    let since = a.since.as_deref().map(parse_time).transpose()?;
    let until = a.until.as_deref().map(parse_time).transpose()?;
    let integrity = run_verify(ctx, None, None, true)?;
    let r = ctx.reader()?;
    let rep = report::build(&r, standard, since, until, integrity)?;
    let out = match a.format {
        ReportFormat::Html => report::to_html(&rep),
        ReportFormat::Json => serde_json::to_string_pretty(&rep)? + "\n",
    };
    match &a.output {
        Some(path) => {
            std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} ({} events, integrity {})",
                path.display(),
                rep.total_events,
                if rep.integrity.ok {
                    "verified"
                } else {
                    "FAILED"
                }
            );
        }
        None => print!("{out}"),
    }
    Ok(if rep.integrity.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn tail(ctx: &Ctx, a: TailArgs) -> anyhow::Result<ExitCode> {
    let r = ctx.reader()?;
    let n = r.size();
    let mut next = n.saturating_sub(a.lines);
    print_events(&r.events(next, n)?, a.format, true)?;
    next = n;
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Follow the segment files: each poll reads only the bytes after the last seen record.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let r = match LogReader::open_events_only(&ctx.opts.dir, ctx.p.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "re-reading the log");
                continue;
            }
        };
        let n = r.size();
        if n > next {
            print_events(&r.events(next, n)?, a.format, false)?;
            next = n;
        }
    }
}

fn pubkey(ctx: &Ctx, a: FormatArgs) -> anyhow::Result<ExitCode> {
    let keys = ctx.reader()?.pubkeys().to_vec();
    let current = keys.last().map(|k| k.id);
    match a.format {
        Format::Json => {
            use base64::Engine;
            let list: Vec<_> = keys
                .iter()
                .map(|k| {
                    json!({
                        "key_id": k.id.to_string(),
                        "name": k.name,
                        "vkey": k.vkey(),
                        "public_key": base64::engine::general_purpose::STANDARD.encode(k.public),
                        "algorithm": "ed25519",
                        "current": Some(k.id) == current,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"origin": keys[0].name, "keys": list}))?
            );
        }
        Format::Text => {
            println!(
                "# verifier keys of {} (C2SP vkey: name+keyid+base64(0x01 ‖ Ed25519 public key)), oldest first;",
                keys[0].name
            );
            println!(
                "# the first is the trust anchor; later keys were introduced by key_rotation events"
            );
            for k in &keys {
                println!(
                    "{}{}",
                    k.vkey(),
                    if Some(k.id) == current {
                        "  # current"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn checkpoints(ctx: &Ctx, a: CheckpointsArgs) -> anyhow::Result<ExitCode> {
    let r = ctx.reader()?;
    let cps = r.checkpoints();
    let shown = &cps[cps.len().saturating_sub(a.limit)..];
    match a.format {
        Format::Json => {
            let list: Vec<_> = shown
                .iter()
                .map(|c| {
                    json!({
                        "size": c.checkpoint.size,
                        "root": hex::encode(c.checkpoint.root),
                        "timestamp_ms": c.checkpoint.timestamp_ms,
                        "note": c.note,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => {
            println!("{:>10}  {:<29}  root", "size", "signed at");
            for c in shown {
                let t = DateTime::from_timestamp_millis(c.checkpoint.timestamp_ms as i64)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                    .unwrap_or_default();
                println!(
                    "{:>10}  {:<29}  {}",
                    c.checkpoint.size,
                    t,
                    hex::encode(c.checkpoint.root)
                );
                if a.notes {
                    println!("{}\n", indent(&c.note));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(ctx: &Ctx, a: FormatArgs) -> anyhow::Result<ExitCode> {
    let log = AuditLog::open(ctx.opts.clone(), ctx.p.clone()).map_err(|e| anyhow!(e))?;
    let old = log.current_key();
    let new = log.rotate_key_blocking()?;
    log.close()?;
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"old_key_id": old.id.to_string(), "new_key_id": new.id.to_string(), "new_vkey": new.vkey()})
            )?
        ),
        Format::Text => {
            println!("rotated {} → {}", old.id, new.id);
            println!("new verifier key: {}", new.vkey());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `symbi bench audit` options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Events per group-commit run (at most; runs with few writers do 200 per writer).
    #[arg(long, default_value_t = 50_000)]
    pub events: u64,
    /// Events per one-fsync-per-event (baseline) run.
    #[arg(long, default_value_t = 2_000)]
    pub baseline_events: u64,
    /// Concurrent writers to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,1024")]
    pub writers: Vec<usize>,
    /// Size of the log for proof-generation latency (0 skips).
    #[arg(long, default_value_t = 1_000_000)]
    pub proof_events: u64,
    /// Scratch directory (default: a temporary directory on the same disk as --data-dir's parent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Checkpoint every this many events (the shipped default is 1000).
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// In-flight appends per writer (pipelined rows) and events per submission (batch rows).
    #[arg(long, default_value_t = 256)]
    pub depth: usize,
    /// Which events carry a signature in the group-commit rows (the baseline always signs
    /// every event): `per-event` or `per-batch`. Default: `[audit] signatures`.
    #[arg(long, value_enum)]
    pub signatures: Option<BenchSignatures>,
}

/// `--signatures` of `symbi bench audit`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchSignatures {
    /// Every event signed.
    PerEvent,
    /// The last event of each group commit signed.
    PerBatch,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Appends through `symbi_audit::loadtest` (the runtime's path, `EventSink::record`, for
/// `Await` and `PerEvent`); returns (events/s, p50, p99 append latency).
fn bench_appends(
    p: &Arc<dyn CryptoProvider>,
    dir: &std::path::Path,
    writers: usize,
    events: u64,
    mode: Mode,
    checkpoint_every: u64,
    signatures: Signatures,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let r = symbi_audit::loadtest::run_appends(
        p,
        dir,
        writers,
        events,
        mode,
        checkpoint_every,
        signatures,
    )?;
    Ok((r.per_second, r.p50, r.p99))
}

/// `symbi bench audit`: durable appends/s (group commit vs one fsync per event, same run),
/// verification throughput (batch vs single signatures), proof latency at a large size.
pub fn bench(g: &Globals, a: BenchArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let p = symbi_crypto::provider(loaded.config.security.crypto_provider.as_str())?;
    let scratch = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "symbi bench audit — provider {}, {} cores, load average {}",
        p.name(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "scratch {} (durable = fdatasync before acknowledgement)\n",
        scratch.path().display()
    );
    let sigs = match a.signatures {
        Some(BenchSignatures::PerEvent) => Signatures::PerEvent,
        Some(BenchSignatures::PerBatch) => Signatures::PerBatch,
        None => AuditOptions::from_config(&loaded.data_dir(), &loaded.config.audit).signatures,
    };
    println!(
        "checkpoint every {} events; pipelined/batch rows: {} in flight per writer; signatures: {} (baseline: per event)\n",
        a.checkpoint_every,
        a.depth,
        if sigs == Signatures::PerBatch {
            "per batch"
        } else {
            "per event"
        }
    );
    println!(
        "{:<10} {:>8} {:>14} {:>12} {:>12} {:>16} {:>10}",
        "writers", "mode", "events/s", "p50", "p99", "baseline ev/s", "ratio"
    );
    for &w in &a.writers {
        // Fsync-bound runs are sized by the writers so that one writer does not take minutes.
        let n = (200 * w as u64).max(2_000).min(a.events.max(w as u64));
        let cp = a.checkpoint_every;
        let (base, bp50, bp99) = bench_appends(
            &p,
            &scratch.path().join(format!("pe{w}")),
            w,
            a.baseline_events.max(w as u64),
            Mode::PerEvent,
            cp,
            Signatures::PerEvent,
        )?;
        let (gc, p50, p99) = bench_appends(
            &p,
            &scratch.path().join(format!("gc{w}")),
            w,
            n,
            Mode::Await,
            cp,
            sigs,
        )?;
        println!(
            "{:<10} {:>8} {:>14.0} {:>12.2?} {:>12.2?} {:>16.0} {:>10}",
            w, "per-ev", base, bp50, bp99, base, "1.0x"
        );
        println!(
            "{:<10} {:>8} {:>14.0} {:>12.2?} {:>12.2?} {:>16} {:>9.1}x",
            w,
            "group",
            gc,
            p50,
            p99,
            "",
            gc / base
        );
        // Producers that do not wait for each acknowledgement (same durability per event).
        let big = a.events.max(w as u64 * a.depth as u64);
        let (pl, pp50, pp99) = bench_appends(
            &p,
            &scratch.path().join(format!("pl{w}")),
            w,
            big,
            Mode::Pipelined(a.depth),
            cp,
            sigs,
        )?;
        println!(
            "{:<10} {:>8} {:>14.0} {:>12.2?} {:>12.2?} {:>16} {:>9.1}x",
            w,
            "pipelnd",
            pl,
            pp50,
            pp99,
            "",
            pl / base
        );
        let (bt, bt50, bt99) = bench_appends(
            &p,
            &scratch.path().join(format!("bt{w}")),
            w,
            big,
            Mode::Batched(a.depth),
            cp,
            sigs,
        )?;
        println!(
            "{:<10} {:>8} {:>14.0} {:>12.2?} {:>12.2?} {:>16} {:>9.1}x",
            w,
            "batch",
            bt,
            bt50,
            bt99,
            "",
            bt / base
        );
    }
    // Verification throughput on the largest group-commit log.
    let wmax = *a.writers.iter().max().unwrap_or(&1);
    let vdir = scratch.path().join(format!("pl{wmax}/audit"));
    let mut vrow = Vec::new();
    for batch in [true, false] {
        let rep = verify_log(
            &vdir,
            &*p,
            &VerifyOptions {
                batch,
                ..Default::default()
            },
        )?;
        anyhow::ensure!(
            rep.ok,
            "benchmark log failed verification: {:?}",
            rep.first_error
        );
        vrow.push(rep.events_checked as f64 * 1000.0 / rep.elapsed_ms.max(1) as f64);
    }
    println!(
        "\nverification: batch {:.0} events/s, single {:.0} events/s, ratio {:.2}x",
        vrow[0],
        vrow[1],
        vrow[0] / vrow[1]
    );
    if a.proof_events > 0 {
        let pdir = scratch.path().join("proofs");
        let t = std::time::Instant::now();
        let (rate, _, _) = bench_appends(
            &p,
            &pdir,
            64,
            a.proof_events,
            Mode::Pipelined(1024),
            a.checkpoint_every,
            sigs,
        )?;
        println!(
            "\nbuilt a log of {} events in {:.1}s ({rate:.0} events/s, 64 writers × 1024 in flight)",
            a.proof_events,
            t.elapsed().as_secs_f64()
        );
        let r = LogReader::open(&pdir.join("audit"), p.clone())?;
        let n = r.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        let mut incl = Vec::new();
        let mut cons = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seq = x % n;
            let t = std::time::Instant::now();
            std::hint::black_box(r.prove_inclusion(seq)?);
            incl.push(t.elapsed());
        }
        let sizes: Vec<u64> = r
            .checkpoints()
            .iter()
            .map(|c| c.checkpoint.size)
            .filter(|s| *s > 0)
            .collect();
        for i in 0..200 {
            let old = sizes[i % sizes.len()];
            let t = std::time::Instant::now();
            std::hint::black_box(r.prove_consistency(old, None)?);
            cons.push(t.elapsed());
        }
        incl.sort();
        cons.sort();
        println!(
            "proofs at {n} events: inclusion p50 {:.2?} p99 {:.2?} (incl. reading the event and self-check); consistency p50 {:.2?} p99 {:.2?}",
            percentile(&incl, 0.5),
            percentile(&incl, 0.99),
            percentile(&cons, 0.5),
            percentile(&cons, 0.99)
        );
    }
    Ok(ExitCode::SUCCESS)
}
