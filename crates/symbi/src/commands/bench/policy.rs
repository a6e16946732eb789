//! `symbi bench policy`: decision latency and throughput with 10/100/1,000 policies, the
//! bare Cedar authorizer as the in-run baseline, the engine with its decision cache off
//! (cold) and on (warm). The measurement itself is `symbi_policy::loadtest`.

use clap::Args;
use std::process::ExitCode;
use symbi_policy::loadtest::{self, LoadOptions};

/// `symbi bench policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Operator policies per run (the shipped defaults come on top).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub policies: Vec<usize>,
    /// Distinct requests in the pool.
    #[arg(long, default_value_t = 1000)]
    pub pool: usize,
    /// Timed decisions per latency measurement (at most; also bounded by --seconds).
    #[arg(long, default_value_t = 50_000)]
    pub samples: usize,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Threads deciding concurrently (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

pub fn bench_policy(a: PolicyArgs) -> anyhow::Result<ExitCode> {
    if a.policies.is_empty() || a.pool == 0 || a.samples == 0 || a.seconds <= 0.0 {
        return Err(crate::exit::usage(
            "--policies, --pool, --samples and --seconds must be positive",
        ));
    }
    let mut o = LoadOptions {
        sizes: a.policies,
        pool: a.pool,
        samples: a.samples,
        seconds: a.seconds,
        ..LoadOptions::default()
    };
    if let Some(t) = a.threads {
        o.threads = t.max(1);
    }
    let text = a.format == crate::cli::Format::Text;
    if text {
        println!(
            "symbi bench policy — {} threads, {} s per throughput run, load average {}",
            o.threads,
            o.seconds,
            loadtest::load_average()
        );
        println!("{}", loadtest::Row::TABLE_HEADER);
    }
    let report = loadtest::run(&o, |r| {
        if text {
            println!("{}", r.table_line());
        }
    })?;
    if text {
        println!("load average at the end: {}", report.load_end);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
