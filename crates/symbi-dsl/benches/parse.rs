//! Parse throughput on a generated ~10 MB program (issue "Numbers": parse + check
//! throughput in MB/s), with baselines measured in the same run:
//!
//! * `lex_only` — the logos lexer alone over the same text (the floor of any parser);
//! * `serde_json` — `serde_json::from_str::<Value>` on a generated JSON document of the
//!   same size and a similar mix of objects, arrays, strings and numbers.
//!
//! Run: `cargo bench -p symbi-dsl --bench parse`. Results and ratios are recorded in
//! `docs/benchmarks/dsl-syntax.md`.
//!
//! The static checker adds its own group `parse_check` here (parse followed by
//! `symbi_dsl::check`), on the same generated program, so the two figures compare.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use symbi_dsl::generate::{generate_json, generate_program};

const SIZE: usize = 10 << 20;

fn parse(c: &mut Criterion) {
    let src = generate_program(SIZE);
    let json = generate_json(src.len());
    assert!(!symbi_dsl::parse(&src, "bench.symbi").has_errors());

    let mut g = c.benchmark_group("parse_10mb");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes(src.len() as u64));
    g.bench_function("symbi_parse", |b| {
        b.iter(|| black_box(symbi_dsl::parser::parse_text(black_box(&src))))
    });
    g.bench_function("lex_only", |b| {
        b.iter(|| black_box(symbi_dsl::lexer::lex(black_box(&src))))
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(&json)).unwrap()))
    });
    g.finish();

    // Parse followed by the static checker (semantic half), same program.
    let mut g = c.benchmark_group("parse_check_10mb");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes(src.len() as u64));
    let opts = symbi_dsl::CheckOptions::default();
    g.bench_function("symbi_parse_check", |b| {
        b.iter(|| {
            let p = symbi_dsl::parse(black_box(&src), "bench.symbi");
            black_box(symbi_dsl::check(&p, &opts))
        })
    });
    g.finish();

    // The formatter on a 1 MB slice (it is not on any hot path; recorded for reference).
    let small = generate_program(1 << 20);
    let mut g = c.benchmark_group("fmt_1mb");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("format_source", |b| {
        b.iter(|| black_box(symbi_dsl::fmt::format_source(black_box(&small)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
