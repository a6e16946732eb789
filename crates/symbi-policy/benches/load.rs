//! The `symbi bench policy` load test in an optimized build of this crate alone:
//! `cargo bench -p symbi-policy --bench load [-- SECONDS]`. See `symbi_policy::loadtest`.

fn main() {
    let mut o = symbi_policy::loadtest::LoadOptions::default();
    if let Some(s) = std::env::args().skip(1).find_map(|a| a.parse::<f64>().ok()) {
        o.seconds = s;
    }
    println!(
        "policy load test: {} threads, {} s per throughput run, load average {}",
        o.threads,
        o.seconds,
        symbi_policy::loadtest::load_average()
    );
    println!("{}", symbi_policy::loadtest::Row::TABLE_HEADER);
    let report =
        symbi_policy::loadtest::run(&o, |r| println!("{}", r.table_line())).expect("load test");
    println!("load average at the end: {}", report.load_end);
}
