//! Frame codec throughput: our decoders and encoder against a copying decoder (the shape of
//! tonic and connect-rust), connect-rust's own `Envelope::decode_with_limit`, and a plain
//! memcpy of the same bytes; gzip encode/decode.
//!
//! Criterion measures every variant on its own. Because this machine is shared, the ratio
//! table printed at the end comes from a second, *interleaved* pass: each round runs every
//! variant of a case once, so load changes hit all of them alike; the table shows per-variant
//! medians over the rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use cursor_connect_benches::{CopyingDecoder, chunks, envelope_stream, json_text};
use cursor_connect_frame::{ChunkDecoder, Compression, Decoder, Direction, Encoder, Gzip};

const SIZES: [usize; 5] = [16, 256, 4096, 64 * 1024, 1 << 20];
const CHUNKS: [usize; 2] = [16 * 1024, 64 * 1024];
const LIMIT: usize = 4 << 20;

/// Frames per iteration: 1 MiB of payload, but at least 4 frames.
fn frame_count(size: usize) -> usize {
    ((1 << 20) / size).max(4)
}

fn label(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{}m", size >> 20)
    } else if size >= 1024 {
        format!("{}k", size >> 10)
    } else {
        format!("{size}b")
    }
}

type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn decode_variants<'a>(pieces: &'a [Bytes], count: usize, total: usize) -> Vec<Variant<'a>> {
    let mut memcpy_dst = Vec::with_capacity(total);
    vec![
        (
            "ours_chunk",
            Box::new(move || {
                let mut d = ChunkDecoder::new(Decoder::new(Direction::Request));
                let mut n = 0;
                for p in pieces {
                    d.push(p.clone());
                    while let Some(f) = d.next_frame().unwrap() {
                        black_box(&f);
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            }),
        ),
        (
            "ours_bytesmut",
            Box::new(move || {
                let mut d = Decoder::new(Direction::Request);
                let mut buf = BytesMut::new();
                let mut n = 0;
                for p in pieces {
                    buf.extend_from_slice(p);
                    while let Some(f) = d.decode(&mut buf).unwrap() {
                        black_box(&f);
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            }),
        ),
        (
            "copying",
            Box::new(move || {
                let mut d = CopyingDecoder::default();
                let mut n = 0;
                for p in pieces {
                    d.push(p);
                    while let Some(f) = d.next_frame() {
                        black_box(&f);
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            }),
        ),
        (
            "connectrpc",
            Box::new(move || {
                let mut buf = BytesMut::new();
                let mut n = 0;
                for p in pieces {
                    buf.extend_from_slice(p);
                    while let Some(f) =
                        connectrpc::envelope::Envelope::decode_with_limit(&mut buf, LIMIT).unwrap()
                    {
                        black_box(&f);
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            }),
        ),
        (
            "memcpy",
            Box::new(move || {
                memcpy_dst.clear();
                for p in pieces {
                    memcpy_dst.extend_from_slice(p);
                }
                black_box(&memcpy_dst);
            }),
        ),
    ]
}

fn encode_variants<'a>(payload: &'a [u8], shared: &'a Bytes, count: usize) -> Vec<Variant<'a>> {
    let total = (5 + payload.len()) * count;
    let mut enc = Encoder::new();
    let mut dst = BytesMut::with_capacity(total);
    let mut memcpy_dst = Vec::with_capacity(total);
    vec![
        (
            "ours",
            Box::new(move || {
                dst.clear();
                for _ in 0..count {
                    enc.encode(payload, &mut dst).unwrap();
                }
                black_box(&dst);
            }),
        ),
        (
            "connectrpc",
            Box::new(move || {
                for _ in 0..count {
                    let env = connectrpc::envelope::Envelope {
                        flags: connectrpc::envelope::flags::DATA,
                        data: shared.clone(),
                    };
                    black_box(env.encode());
                }
            }),
        ),
        (
            "memcpy",
            Box::new(move || {
                memcpy_dst.clear();
                for _ in 0..count {
                    memcpy_dst.extend_from_slice(payload);
                }
                black_box(&memcpy_dst);
            }),
        ),
    ]
}

/// Runs every variant once per round, for up to `budget`, and returns each one's median
/// nanoseconds per iteration.
fn interleaved(variants: &mut [Variant<'_>], budget: Duration) -> Vec<f64> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for (_, f) in variants.iter_mut() {
        f(); // warm-up
    }
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 15 || (start.elapsed() < budget && rounds < 2000) {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            f();
            samples[i].push(t.elapsed().as_nanos() as f64);
        }
        rounds += 1;
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

fn gbps(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns
}

fn decode(c: &mut Criterion, table: &mut Vec<String>) {
    table.push(
        "\n## decode: interleaved medians, GB/s of wire bytes (ratios = ours_chunk speedup)".into(),
    );
    table.push("| payload | chunk | ours_chunk | ns/frame | ours_bytesmut | copying | connectrpc | memcpy | vs copying | vs connectrpc | % of memcpy |".into());
    table.push("|---|---|---|---|---|---|---|---|---|---|---|".into());
    for size in SIZES {
        for chunk in CHUNKS {
            let count = frame_count(size);
            let stream = envelope_stream(size, count);
            let pieces = chunks(&stream, chunk);
            let id = format!("{}_in_{}k", label(size), chunk >> 10);
            let mut variants = decode_variants(&pieces, count, stream.len());
            let mut g = c.benchmark_group("decode");
            g.throughput(Throughput::Bytes(stream.len() as u64));
            for (name, f) in variants.iter_mut() {
                g.bench_function(BenchmarkId::new(*name, &id), |b| b.iter(&mut *f));
            }
            g.finish();
            let m = interleaved(&mut variants, Duration::from_millis(1500));
            let bytes = stream.len();
            table.push(format!(
                "| {} | {} KiB | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.0}% |",
                label(size),
                chunk >> 10,
                gbps(bytes, m[0]),
                m[0] / count as f64,
                gbps(bytes, m[1]),
                gbps(bytes, m[2]),
                gbps(bytes, m[3]),
                gbps(bytes, m[4]),
                m[2] / m[0],
                m[3] / m[0],
                100.0 * m[4] / m[0],
            ));
        }
    }
}

fn encode(c: &mut Criterion, table: &mut Vec<String>) {
    table.push("\n## encode: interleaved medians, GB/s of wire bytes".into());
    table.push(
        "| payload | ours | ns/frame | connectrpc | memcpy | vs connectrpc | % of memcpy |".into(),
    );
    table.push("|---|---|---|---|---|---|---|".into());
    for size in SIZES {
        let count = frame_count(size);
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let shared = Bytes::from(payload.clone());
        let bytes = (5 + size) * count;
        let id = label(size);
        let mut variants = encode_variants(&payload, &shared, count);
        let mut g = c.benchmark_group("encode");
        g.throughput(Throughput::Bytes(bytes as u64));
        for (name, f) in variants.iter_mut() {
            g.bench_function(BenchmarkId::new(*name, &id), |b| b.iter(&mut *f));
        }
        g.finish();
        let m = interleaved(&mut variants, Duration::from_millis(1000));
        table.push(format!(
            "| {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2}x | {:.0}% |",
            id,
            gbps(bytes, m[0]),
            m[0] / count as f64,
            gbps(bytes, m[1]),
            gbps(bytes, m[2]),
            m[1] / m[0],
            100.0 * m[2] / m[0],
        ));
    }
}

fn gzip(c: &mut Criterion, table: &mut Vec<String>) {
    table.push(
        "\n## gzip (level 6): interleaved medians per message, GB/s of uncompressed bytes".into(),
    );
    table.push("| message | encode | decode, reused state | decode, fresh state |".into());
    table.push("|---|---|---|---|".into());
    for size in [1024usize, 64 * 1024] {
        let text = json_text(size);
        let mut packed = Vec::new();
        Gzip::default().compress(&text, &mut packed).unwrap();
        let id = label(size);
        let (mut gz_enc, mut gz_dec) = (Gzip::default(), Gzip::default());
        let (mut out_e, mut out_d, mut out_f) = (Vec::new(), Vec::new(), Vec::new());
        let mut variants: Vec<Variant<'_>> = vec![
            (
                "encode_reused",
                Box::new(|| {
                    out_e.clear();
                    gz_enc.compress(&text, &mut out_e).unwrap();
                    black_box(&out_e);
                }),
            ),
            (
                "decode_reused",
                Box::new(|| {
                    out_d.clear();
                    gz_dec.decompress(&packed, &mut out_d, LIMIT).unwrap();
                    black_box(&out_d);
                }),
            ),
            (
                "decode_fresh",
                Box::new(|| {
                    out_f.clear();
                    Gzip::default()
                        .decompress(&packed, &mut out_f, LIMIT)
                        .unwrap();
                    black_box(&out_f);
                }),
            ),
        ];
        let mut g = c.benchmark_group("gzip");
        g.throughput(Throughput::Bytes(size as u64));
        for (name, f) in variants.iter_mut() {
            g.bench_function(BenchmarkId::new(*name, &id), |b| b.iter(&mut *f));
        }
        g.finish();
        let m = interleaved(&mut variants, Duration::from_millis(1000));
        let cell = |ns: f64| format!("{:.1} µs, {:.3} GB/s", ns / 1e3, gbps(size, ns));
        table.push(format!(
            "| {} ({} B gzipped) | {} | {} | {} |",
            id,
            packed.len(),
            cell(m[0]),
            cell(m[1]),
            cell(m[2])
        ));
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let mut table = Vec::new();
    decode(&mut c, &mut table);
    encode(&mut c, &mut table);
    gzip(&mut c, &mut table);
    c.final_summary();
    println!("{}", table.join("\n"));
}
