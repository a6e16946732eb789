//! Loopback load generation for `symbi bench api`, and the baseline it is compared with: a
//! bare axum server (no auth, no layers, no engine) answering the same shapes, started in
//! the same process so both sides share the machine's load at the same moment.
//!
//! The load generator is closed-loop: `concurrency` workers, each with its own keep-alive
//! connection, send the next request as soon as the previous answer is read, for a fixed
//! time after a warm-up. Latencies go into HDR histograms (microseconds).
//!
//! ```no_run
//! # async fn f() {
//! use symbi_api::bench::{LoadOptions, baseline_server, load};
//! let base = baseline_server().await.unwrap();
//! let client = reqwest::Client::new();
//! let url = format!("http://{}/api/v1/health", base.addr);
//! let r = load(&LoadOptions::default(), move || client.get(&url)).await;
//! println!("{:.0} req/s, p99 {} µs", r.requests_per_sec, r.p99_us);
//! # }
//! ```

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The HTTP client crate the load generator uses (so callers build requests without
/// depending on it themselves).
pub use reqwest;

/// How hard and how long to push.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Concurrent closed-loop workers (one connection each).
    pub concurrency: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before (connections open, caches warm).
    pub warmup: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
        }
    }
}

/// What one load run measured.
#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    /// Answers received in the measured window.
    pub requests: u64,
    /// Answers that were not 2xx, or transport errors.
    pub errors: u64,
    /// `requests / duration`.
    pub requests_per_sec: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Worst latency, µs.
    pub max_us: u64,
}

/// Runs a closed-loop load test; `make` builds each request (its client must allow one
/// idle connection per worker, which reqwest's default pool does).
pub async fn load<F>(opts: &LoadOptions, make: F) -> LoadResult
where
    F: Fn() -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let until = measure_from + opts.duration;
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let make = make.clone();
        workers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut errors = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let ok = match make().send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        // The body is read so the connection is reused and the cost counted.
                        r.bytes().await.is_ok() && ok
                    }
                    Err(_) => false,
                };
                if t0 >= measure_from {
                    h.saturating_record(t0.elapsed().as_micros().max(1) as u64);
                    if !ok {
                        errors += 1;
                    }
                }
            }
            (h, errors)
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut errors = 0;
    for w in workers {
        if let Ok((h, e)) = w.await {
            all.add(&h).expect("same bounds");
            errors += e;
        }
    }
    let requests = all.len();
    LoadResult {
        requests,
        errors,
        requests_per_sec: requests as f64 / opts.duration.as_secs_f64(),
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
        max_us: all.max(),
    }
}

/// The bare baseline server.
pub struct Baseline {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Baseline {
    /// Stops it.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts a bare axum server on `127.0.0.1:0` with `GET /api/v1/health` (a JSON object of
/// the health endpoint's size) and `POST /api/v1/agents/{id}/execute` (parses the JSON body,
/// answers a fresh execution id) — the same wire work as the real routes, nothing else.
pub async fn baseline_server() -> std::io::Result<Baseline> {
    let app = Router::new()
        .route(
            "/api/v1/health",
            get(|| async {
                Json(json!({
                    "status": "healthy", "uptime_seconds": 1, "timestamp": chrono::Utc::now().to_rfc3339(),
                    "version": env!("CARGO_PKG_VERSION"),
                }))
            }),
        )
        .route(
            "/api/v1/agents/{id}/execute",
            post(|Json(_body): Json<Value>| async {
                Json(json!({ "execution_id": uuid::Uuid::new_v4().to_string(), "status": "execution_started" }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(s.cancelled_owned())
            .await;
    });
    Ok(Baseline { addr, stop, task })
}
