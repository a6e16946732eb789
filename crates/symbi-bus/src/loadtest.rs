//! The bus load test behind `symbi bench bus` and the criterion bench: messages/s and
//! p50/p99 latency per backend, security mode, pattern, payload size and subscriber count,
//! side by side with a bare `tokio::sync::mpsc` baseline and the raw crypto cost, all
//! measured in the same run.
//!
//! Throughput: one sender sends `messages` as fast as the bus accepts them while the
//! receivers drain; rate = messages ÷ time until the last delivery. Latency: one message in
//! flight at a time (`latency_samples` round trips), from before `send` to after receipt,
//! so it shows the path's own latency rather than queueing under saturation.
//!
//! Policy is an allow-all decision point here (as with `enforce_policies = false`), so the
//! figures are the bus's own cost; the policy engine has its own benchmark.

use crate::{Bus, BusSecurityMode, BusSettings, KeyRing, SendOptions};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_types::event::NullSink;
use symbi_types::{AgentId, AgentRuleSet, Decision, PolicyDecisionPoint, PolicyRequest, Principal};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadTestConfig {
    /// Messages per throughput case (1-subscriber cases; 1,000-subscriber cases send
    /// `messages / 100`).
    pub messages: usize,
    /// Round trips per latency case.
    pub latency_samples: usize,
    /// Payload sizes in bytes.
    pub payload_sizes: Vec<usize>,
    /// Subscriber counts for publish/subscribe.
    pub subscriber_counts: Vec<usize>,
    /// A NATS server (with JetStream) for the NATS cases; `None` skips them.
    pub nats_url: Option<String>,
    /// Crypto provider name.
    pub crypto_provider: String,
    /// Only the bus cases of these security modes (`plaintext`, `session`,
    /// `signed_every_message`); empty: all. The mpsc and raw-crypto baselines always run.
    pub modes: Vec<String>,
    /// Only these patterns (`direct`, `pubsub`); empty: both.
    pub patterns: Vec<String>,
    /// Delivery statuses kept (`[bus] status_capacity` of the configuration in use).
    pub status_capacity: usize,
}

impl Default for LoadTestConfig {
    fn default() -> Self {
        Self {
            messages: 200_000,
            latency_samples: 2_000,
            payload_sizes: vec![64, 4096],
            subscriber_counts: vec![1, 1000],
            nats_url: None,
            crypto_provider: "ring".into(),
            modes: Vec::new(),
            patterns: Vec::new(),
            status_capacity: BusSettings::default().status_capacity,
        }
    }
}

/// One measured case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// `mpsc`, `memory`, `nats-core`, `nats-jetstream`, `crypto`.
    pub backend: String,
    /// `plaintext`, `signed_every_message`, `session`, `-`.
    pub mode: String,
    /// `direct`, `pubsub`, `raw`.
    pub pattern: String,
    /// Payload bytes.
    pub payload: usize,
    /// Subscribers (1 for direct).
    pub subscribers: usize,
    /// Messages sent in the throughput run.
    pub messages: usize,
    /// Messages accepted per second by the bus (sends/s).
    pub msgs_per_sec: f64,
    /// Deliveries per second (msgs/s × subscribers).
    pub deliveries_per_sec: f64,
    /// Median single-message latency, µs.
    pub p50_us: f64,
    /// 99th percentile single-message latency, µs.
    pub p99_us: f64,
    /// Throughput relative to the mpsc baseline of the same payload and fan-out.
    pub vs_mpsc: f64,
    /// Secure modes: throughput ÷ the raw crypto limit of one core (sign + verify + seal +
    /// open per message, measured in this run).
    pub vs_raw_crypto: Option<f64>,
}

struct AllowAll;
impl PolicyDecisionPoint for AllowAll {
    fn decide(&self, _: &PolicyRequest, _: Option<&dyn AgentRuleSet>) -> Decision {
        Decision::Allow {
            reasons: vec!["load test: policy disabled".into()],
        }
    }
}

fn payload(size: usize, t0: Instant) -> Bytes {
    let mut b = BytesMut::with_capacity(size.max(8));
    b.put_u64(t0.elapsed().as_nanos() as u64);
    b.resize(size.max(8), 0xab);
    b.freeze()
}

fn sent_at(p: &[u8], t0: Instant) -> Duration {
    let ns = u64::from_be_bytes(p[..8].try_into().unwrap());
    t0.elapsed().saturating_sub(Duration::from_nanos(ns))
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_nanos() as f64 / 1000.0;
    (at(0.50), at(0.99))
}

fn settings(cfg: &LoadTestConfig, mode: BusSecurityMode, nats_url: Option<&str>) -> BusSettings {
    BusSettings {
        security: mode,
        status_capacity: cfg.status_capacity,
        rate_limit_per_agent: 0,
        queue_capacity: 65_536,
        queue_bytes: 512 << 20,
        send_timeout: Duration::from_secs(30),
        nats_url: nats_url.unwrap_or("nats://127.0.0.1:4222").to_string(),
        nats_prefix: format!("bench{}", &AgentId::new().to_string()[..8]),
        ..BusSettings::default()
    }
}

async fn make_bus(
    cfg: &LoadTestConfig,
    mode: BusSecurityMode,
    nats: bool,
) -> Result<Bus, crate::BusError> {
    let provider = symbi_crypto::provider(&cfg.crypto_provider)
        .map_err(|e| crate::BusError::Config(e.to_string()))?;
    let mut master = [0u8; 32];
    provider
        .fill_random(&mut master)
        .map_err(|e| crate::BusError::Keys(e.to_string()))?;
    let keys = Arc::new(KeyRing::new(provider, master));
    if nats {
        let s = settings(cfg, mode, cfg.nats_url.as_deref());
        Bus::nats(s, keys, Arc::new(AllowAll), Arc::new(NullSink)).await
    } else {
        Bus::memory(
            settings(cfg, mode, None),
            keys,
            Arc::new(AllowAll),
            Arc::new(NullSink),
        )
    }
}

async fn agents(bus: &Bus, n: usize) -> Result<Vec<Principal>, crate::BusError> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let id = AgentId::new();
        let name = format!("bench-{i}");
        bus.register_agent(id, &name).await?;
        v.push(Principal {
            agent_id: Some(id),
            ..Principal::agent(name)
        });
    }
    Ok(v)
}

/// Direct messages through the bus: (msgs/s, p50, p99).
async fn bus_direct(
    bus: &Bus,
    size: usize,
    n: usize,
    samples: usize,
) -> Result<(f64, f64, f64), crate::BusError> {
    let a = agents(bus, 2).await?;
    let (from, to) = (a[0].clone(), a[1].agent_id.unwrap());
    let mut inbox = bus.inbox(to).await?;
    let t0 = Instant::now();
    // Latency: one in flight.
    let mut lat = Vec::with_capacity(samples);
    for _ in 0..samples {
        bus.send(&from, to, payload(size, t0), SendOptions::default())
            .await?;
        let d = inbox.recv().await.ok_or(crate::BusError::Closed)?;
        lat.push(sent_at(&d.message().payload, t0));
        d.ack().await?;
    }
    // Throughput.
    let receiver = tokio::spawn(async move {
        for _ in 0..n {
            let Some(d) = inbox.recv().await else {
                return Err(crate::BusError::Closed);
            };
            d.ack().await?;
        }
        Ok::<_, crate::BusError>(Instant::now())
    });
    let start = Instant::now();
    let body = payload(size, t0);
    for _ in 0..n {
        bus.send(&from, to, body.clone(), SendOptions::default())
            .await?;
    }
    let end = receiver
        .await
        .map_err(|e| crate::BusError::Backend(e.to_string()))??;
    let (p50, p99) = percentiles(lat);
    Ok((n as f64 / (end - start).as_secs_f64(), p50, p99))
}

/// Publish/subscribe through the bus: (msgs/s, p50, p99) with `subs` subscribers.
async fn bus_pubsub(
    bus: &Bus,
    size: usize,
    n: usize,
    subs: usize,
    samples: usize,
) -> Result<(f64, f64, f64), crate::BusError> {
    let a = agents(bus, 2).await?;
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(subs);
    let mut subscriptions = Vec::with_capacity(subs);
    for _ in 0..subs {
        subscriptions.push(
            bus.subscribe(&a[1], "bench/load", SendOptions::default())
                .await?,
        );
    }
    // Latency with the first subscriber timing (all subscribers drain).
    let mut lat = Vec::with_capacity(samples);
    for _ in 0..samples {
        bus.publish(
            &a[0],
            "bench/load",
            payload(size, t0),
            SendOptions::default(),
        )
        .await?;
        for (i, s) in subscriptions.iter_mut().enumerate() {
            let m = s.recv().await.ok_or(crate::BusError::Closed)?;
            if i == 0 {
                lat.push(sent_at(&m.payload, t0));
            }
        }
    }
    for mut s in subscriptions {
        handles.push(tokio::spawn(async move {
            for _ in 0..n {
                s.recv().await?;
            }
            Some(Instant::now())
        }));
    }
    let start = Instant::now();
    let body = payload(size, t0);
    for _ in 0..n {
        bus.publish(&a[0], "bench/load", body.clone(), SendOptions::default())
            .await?;
    }
    let mut end = start;
    for h in handles {
        let t = h
            .await
            .map_err(|e| crate::BusError::Backend(e.to_string()))?
            .ok_or(crate::BusError::Closed)?;
        end = end.max(t);
    }
    let (p50, p99) = percentiles(lat);
    Ok((n as f64 / (end - start).as_secs_f64(), p50, p99))
}

/// The bare baseline: bounded `tokio::sync::mpsc` channels, one per receiver.
async fn mpsc_baseline(size: usize, n: usize, subs: usize, samples: usize) -> (f64, f64, f64) {
    let t0 = Instant::now();
    let mut txs = Vec::with_capacity(subs);
    let mut rxs = Vec::with_capacity(subs);
    for _ in 0..subs {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(65_536);
        txs.push(tx);
        rxs.push(rx);
    }
    let mut lat = Vec::with_capacity(samples);
    for _ in 0..samples {
        let p = payload(size, t0);
        for tx in &txs {
            tx.send(p.clone()).await.unwrap();
        }
        for (i, rx) in rxs.iter_mut().enumerate() {
            let m = rx.recv().await.unwrap();
            if i == 0 {
                lat.push(sent_at(&m, t0));
            }
        }
    }
    let handles: Vec<_> = rxs
        .into_iter()
        .map(|mut rx| {
            tokio::spawn(async move {
                for _ in 0..n {
                    rx.recv().await.unwrap();
                }
                Instant::now()
            })
        })
        .collect();
    let start = Instant::now();
    // One shared buffer, cloned per message, exactly as the bus cases send theirs.
    let body = payload(size, t0);
    for _ in 0..n {
        for tx in &txs {
            tx.send(body.clone()).await.unwrap();
        }
    }
    let mut end = start;
    for h in handles {
        end = end.max(h.await.unwrap());
    }
    let (p50, p99) = percentiles(lat);
    (n as f64 / (end - start).as_secs_f64(), p50, p99)
}

/// Raw crypto per message on one core: Ed25519 sign + verify and AES-256-GCM seal + open of
/// a payload of `size` bytes. Returns messages/s.
pub fn raw_crypto_rate(provider: &str, size: usize, iterations: usize) -> f64 {
    let p = symbi_crypto::provider(provider).expect("known provider");
    let signer = p.signer_from_seed(&[1; 32]).unwrap();
    let verifier = p.verifier(&signer.public_key()).unwrap();
    let aead = p.aead(&[2; 32]).unwrap();
    let body = vec![0xabu8; size];
    let header = [0u8; 96];
    let start = Instant::now();
    for i in 0..iterations {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let ct = aead.seal(&nonce, &header, &body).unwrap();
        let sig = signer.sign(&ct);
        verifier.verify(&ct, &sig).unwrap();
        let pt = aead.open(&nonce, &header, &ct).unwrap();
        std::hint::black_box(pt);
    }
    iterations as f64 / start.elapsed().as_secs_f64()
}

/// Runs every case; `progress` is called with each finished row.
pub async fn run(
    cfg: &LoadTestConfig,
    mut progress: impl FnMut(&Row),
) -> Result<Vec<Row>, crate::BusError> {
    let mut rows = Vec::new();
    const ALL_MODES: [BusSecurityMode; 3] = [
        BusSecurityMode::Plaintext,
        BusSecurityMode::Session,
        BusSecurityMode::SignedEveryMessage,
    ];
    const PATTERNS: [&str; 2] = ["direct", "pubsub"];
    let mode_names = ALL_MODES.map(mode_str);
    check_names("security mode", &cfg.modes, &mode_names)?;
    check_names("pattern", &cfg.patterns, &PATTERNS)?;
    let wanted = |list: &[String], name: &str| list.is_empty() || list.iter().any(|s| s == name);
    let modes: Vec<BusSecurityMode> = ALL_MODES
        .into_iter()
        .filter(|&m| wanted(&cfg.modes, mode_str(m)))
        .collect();
    let (direct, pubsub) = (
        wanted(&cfg.patterns, PATTERNS[0]),
        wanted(&cfg.patterns, PATTERNS[1]),
    );
    for &size in &cfg.payload_sizes {
        let crypto = raw_crypto_rate(&cfg.crypto_provider, size, 2_000);
        let mut push = |mut r: Row, base: f64, rows: &mut Vec<Row>| {
            r.vs_mpsc = r.msgs_per_sec / base;
            if r.mode != "plaintext" && r.mode != "-" {
                r.vs_raw_crypto = Some(r.msgs_per_sec / crypto);
            }
            progress(&r);
            rows.push(r);
        };
        let row = |backend: &str,
                   mode: &str,
                   pattern: &str,
                   subs: usize,
                   n: usize,
                   (rate, p50, p99): (f64, f64, f64)| Row {
            backend: backend.into(),
            mode: mode.into(),
            pattern: pattern.into(),
            payload: size,
            subscribers: subs,
            messages: n,
            msgs_per_sec: rate,
            deliveries_per_sec: rate * subs as f64,
            p50_us: p50,
            p99_us: p99,
            vs_mpsc: 1.0,
            vs_raw_crypto: None,
        };
        push(
            row("crypto", "-", "raw", 1, 2_000, (crypto, f64::NAN, f64::NAN)),
            f64::NAN,
            &mut rows,
        );
        for &subs in &cfg.subscriber_counts {
            let n = if subs > 1 {
                (cfg.messages / 100).max(100)
            } else {
                cfg.messages
            };
            let secure_n = |mode: BusSecurityMode| match mode {
                BusSecurityMode::SignedEveryMessage => (n / 10).max(100),
                _ => n,
            };
            let samples = if subs > 1 {
                (cfg.latency_samples / 10).max(50)
            } else {
                cfg.latency_samples
            };
            let base = mpsc_baseline(size, n, subs, samples).await;
            push(
                row(
                    "mpsc",
                    "-",
                    if subs > 1 { "pubsub" } else { "direct" },
                    subs,
                    n,
                    base,
                ),
                base.0,
                &mut rows,
            );
            for &mode in &modes {
                let m = secure_n(mode);
                let name = mode_str(mode);
                if subs == 1 && direct {
                    let bus = make_bus(cfg, mode, false).await?;
                    let r = bus_direct(&bus, size, m, samples).await?;
                    push(row("memory", name, "direct", 1, m, r), base.0, &mut rows);
                    bus.close().await;
                }
                if pubsub {
                    let bus = make_bus(cfg, mode, false).await?;
                    let r = bus_pubsub(&bus, size, m, subs, samples).await?;
                    push(row("memory", name, "pubsub", subs, m, r), base.0, &mut rows);
                    bus.close().await;
                }
                if cfg.nats_url.is_some() && mode != BusSecurityMode::Session {
                    let m = (m / 10).max(100);
                    let s = samples.min(500);
                    if subs == 1 && direct {
                        let bus = make_bus(cfg, mode, true).await?;
                        let r = bus_direct(&bus, size, m, s).await?;
                        push(
                            row("nats-jetstream", name, "direct", 1, m, r),
                            base.0,
                            &mut rows,
                        );
                        bus.close().await;
                    }
                    if pubsub {
                        let bus = make_bus(cfg, mode, true).await?;
                        let r = bus_pubsub(&bus, size, m, subs, s).await?;
                        push(
                            row("nats-core", name, "pubsub", subs, m, r),
                            base.0,
                            &mut rows,
                        );
                        bus.close().await;
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// Fails on a name in `given` that is not one of `known` (a `--modes` / `--patterns` typo
/// must not silently measure nothing).
fn check_names(what: &str, given: &[String], known: &[&str]) -> Result<(), crate::BusError> {
    match given.iter().find(|g| !known.contains(&g.as_str())) {
        Some(bad) => Err(crate::BusError::Config(format!(
            "unknown {what} `{bad}` ({})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

fn mode_str(m: BusSecurityMode) -> &'static str {
    match m {
        BusSecurityMode::Plaintext => "plaintext",
        BusSecurityMode::Session => "session",
        BusSecurityMode::SignedEveryMessage => "signed_every_message",
    }
}

/// A plain-text table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<15} {:<21} {:<7} {:>6} {:>5} {:>9} {:>13} {:>13} {:>9} {:>9} {:>8} {:>9}\n",
        "backend",
        "mode",
        "pattern",
        "bytes",
        "subs",
        "messages",
        "msgs/s",
        "deliveries/s",
        "p50 µs",
        "p99 µs",
        "vs mpsc",
        "vs crypto"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<15} {:<21} {:<7} {:>6} {:>5} {:>9} {:>13.0} {:>13.0} {:>9.1} {:>9.1} {:>8.3} {:>9}\n",
            r.backend,
            r.mode,
            r.pattern,
            r.payload,
            r.subscribers,
            r.messages,
            r.msgs_per_sec,
            r.deliveries_per_sec,
            r.p50_us,
            r.p99_us,
            r.vs_mpsc,
            r.vs_raw_crypto.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()),
        ));
    }
    s
}
