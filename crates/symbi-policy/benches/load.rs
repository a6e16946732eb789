//! The `symbi bench policy` load test in an optimized build of this crate alone:
//! `cargo bench -p symbi-policy --bench load [-- SECONDS]`. See `symbi_policy::loadtest`.

fn main() {
    let mut o = symbi_policy::loadtest::LoadOptions::default();
    if let Some(s) = std::env::args().skip(1).find_map(|a| a.parse::<f64>().ok()) {
        o.seconds = s;
    }
    println!("policy load test: {} threads, {} s per throughput run, load average {}", o.threads, o.seconds, symbi_policy::loadtest::load_average());
    println!("{:<11} {:>6} {:>10} {:>10} {:>14} {:>9} {:>6}", "path", "n", "p50 µs", "p99 µs", "decisions/s", "vs bare", "hits");
    let report = symbi_policy::loadtest::run(&o, |r| {
        println!(
            "{:<11} {:>6} {:>10.2} {:>10.2} {:>14.0} {:>8.2}x {:>6}",
            r.path,
            r.policies,
            r.p50_us,
            r.p99_us,
            r.per_second,
            r.vs_bare,
            r.hit_ratio.map(|h| format!("{:.0}%", h * 100.0)).unwrap_or_default()
        )
    })
    .expect("load test");
    println!("load average at the end: {}", report.load_end);
}
