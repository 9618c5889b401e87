//! Micro-benchmarks of amsu's hot paths, in MB/s: the `LOAD DATA` row encoding
//! (`amsu_backup::encode`) and the SHA-256 checksum that image files carry.
//!
//! `cargo bench -p amsu-benches --bench hot_paths`; under `cargo test --all-targets`
//! each benchmark runs once, as a smoke test.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use amsu_backup::{push_field, push_values};
use amsu_mysql::SqlValue;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};

/// Rows shaped like sysbench's `sbtest` tables (id, k, c CHAR(120), pad CHAR(60)).
fn sbtest_rows(n: usize) -> Vec<Vec<SqlValue>> {
    (0..n)
        .map(|i| {
            let c: String = (0..11)
                .map(|j| format!("{:011}", (i * 7919 + j * 104729) % 100_000_000_000))
                .collect::<Vec<_>>()
                .join("-");
            let pad: String = (0..5)
                .map(|j| format!("{:011}", (i * 31 + j * 17) % 100_000_000_000))
                .collect::<Vec<_>>()
                .join("-");
            vec![
                SqlValue::Bytes((i + 1).to_string().into_bytes()),
                SqlValue::Bytes(((i * 37) % 1_000_000).to_string().into_bytes()),
                SqlValue::Bytes(c.into_bytes()),
                SqlValue::Bytes(pad.into_bytes()),
            ]
        })
        .collect()
}

/// Bytes with every escape-worthy byte sprinkled in (binary columns).
fn binary_blob(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

fn encode(c: &mut Criterion) {
    let rows = sbtest_rows(10_000);
    let raw: u64 = rows
        .iter()
        .flatten()
        .map(|v| match v {
            SqlValue::Bytes(b) => b.len() as u64,
            _ => 0,
        })
        .sum();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(raw));
    g.bench_function("push_values/sbtest_rows", |b| {
        let mut out = Vec::with_capacity(raw as usize * 2);
        b.iter(|| {
            out.clear();
            for r in &rows {
                push_values(&mut out, black_box(r));
            }
            black_box(out.len())
        })
    });
    let text = b"The quick brown fox jumps over the lazy dog 0123456789 ".repeat(20_000);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("push_field/plain_text", |b| {
        let mut out = Vec::with_capacity(text.len() * 2);
        b.iter(|| {
            out.clear();
            push_field(&mut out, Some(black_box(&text)));
            black_box(out.len())
        })
    });
    let blob = binary_blob(1 << 20);
    g.throughput(Throughput::Bytes(blob.len() as u64));
    g.bench_function("push_field/binary", |b| {
        let mut out = Vec::with_capacity(blob.len() * 2);
        b.iter(|| {
            out.clear();
            push_field(&mut out, Some(black_box(&blob)));
            black_box(out.len())
        })
    });
    g.finish();
}

fn checksum(c: &mut Criterion) {
    let data = binary_blob(4 << 20);
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("sha256/4MiB", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(&data))))
    });
    g.finish();
}

criterion_group!(benches, encode, checksum);
criterion_main!(benches);
