//! Raw cost of the primitives per provider: the baseline the bus and audit benchmarks
//! report their ratios against.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    for name in ["ring", "rustcrypto"] {
        let p = symbi_crypto::provider(name).unwrap();
        let signer = p.signer_from_seed(&[3u8; 32]).unwrap();
        let verifier = p.verifier(&signer.public_key()).unwrap();
        let aead = p.aead(&[4u8; 32]).unwrap();
        for size in [64usize, 4096] {
            let msg = vec![0xabu8; size];
            let sig = signer.sign(&msg);
            let mut g = c.benchmark_group(format!("{name}/{size}B"));
            g.throughput(Throughput::Elements(1));
            g.bench_function("ed25519_sign", |b| b.iter(|| signer.sign(black_box(&msg))));
            g.bench_function("ed25519_verify", |b| {
                b.iter(|| verifier.verify(black_box(&msg), &sig).unwrap())
            });
            g.bench_function("aes256gcm_seal", |b| {
                b.iter(|| aead.seal(&[0u8; 12], b"", black_box(&msg)).unwrap())
            });
            g.bench_function("sha256", |b| b.iter(|| p.sha256(black_box(&msg))));
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
