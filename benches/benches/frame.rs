//! Frame codec throughput: our decoders and encoder against a copying decoder (the shape of
//! tonic and connect-rust), connect-rust's own `Envelope::decode_with_limit`, and a plain
//! memcpy of the same bytes; gzip encode/decode. Prints a table of medians and ratios at the
//! end (read back from criterion's estimates).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

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

fn label(size: usize, chunk: usize) -> String {
    let s = if size >= 1 << 20 {
        format!("{}m", size >> 20)
    } else if size >= 1024 {
        format!("{}k", size >> 10)
    } else {
        format!("{size}b")
    };
    if chunk == 0 {
        s
    } else {
        format!("{s}_in_{}k", chunk >> 10)
    }
}

fn decode(c: &mut Criterion) {
    for size in SIZES {
        for chunk in CHUNKS {
            let count = frame_count(size);
            let stream = envelope_stream(size, count);
            let pieces = chunks(&stream, chunk);
            let mut g = c.benchmark_group("decode");
            g.throughput(Throughput::Bytes(stream.len() as u64));
            let id = label(size, chunk);

            g.bench_with_input(BenchmarkId::new("ours_chunk", &id), &pieces, |b, pieces| {
                b.iter(|| {
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
                })
            });
            g.bench_with_input(
                BenchmarkId::new("ours_bytesmut", &id),
                &pieces,
                |b, pieces| {
                    b.iter(|| {
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
                    })
                },
            );
            g.bench_with_input(BenchmarkId::new("copying", &id), &pieces, |b, pieces| {
                b.iter(|| {
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
                })
            });
            g.bench_with_input(BenchmarkId::new("connectrpc", &id), &pieces, |b, pieces| {
                b.iter(|| {
                    let mut buf = BytesMut::new();
                    let mut n = 0;
                    for p in pieces {
                        buf.extend_from_slice(p);
                        while let Some(f) =
                            connectrpc::envelope::Envelope::decode_with_limit(&mut buf, LIMIT)
                                .unwrap()
                        {
                            black_box(&f);
                            n += 1;
                        }
                    }
                    assert_eq!(n, count);
                })
            });
            g.bench_with_input(BenchmarkId::new("memcpy", &id), &pieces, |b, pieces| {
                let mut dst = Vec::with_capacity(stream.len());
                b.iter(|| {
                    dst.clear();
                    for p in pieces {
                        dst.extend_from_slice(p);
                    }
                    black_box(&dst);
                })
            });
            g.finish();
        }
    }
}

fn encode(c: &mut Criterion) {
    for size in SIZES {
        let count = frame_count(size);
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let total = (5 + size) * count;
        let mut g = c.benchmark_group("encode");
        g.throughput(Throughput::Bytes(total as u64));
        let id = label(size, 0);
        g.bench_function(BenchmarkId::new("ours", &id), |b| {
            let mut enc = Encoder::new();
            let mut dst = BytesMut::with_capacity(total);
            b.iter(|| {
                dst.clear();
                for _ in 0..count {
                    enc.encode(&payload, &mut dst).unwrap();
                }
                black_box(&dst);
            })
        });
        let shared = Bytes::from(payload.clone());
        g.bench_function(BenchmarkId::new("connectrpc", &id), |b| {
            b.iter(|| {
                for _ in 0..count {
                    let env = connectrpc::envelope::Envelope {
                        flags: connectrpc::envelope::flags::DATA,
                        data: shared.clone(),
                    };
                    black_box(env.encode());
                }
            })
        });
        g.bench_function(BenchmarkId::new("memcpy", &id), |b| {
            let mut dst = Vec::with_capacity(total);
            b.iter(|| {
                dst.clear();
                for _ in 0..count {
                    dst.extend_from_slice(&payload);
                }
                black_box(&dst);
            })
        });
        g.finish();
    }
}

fn gzip(c: &mut Criterion) {
    for size in [1024usize, 64 * 1024] {
        let text = json_text(size);
        let mut packed = Vec::new();
        Gzip::default().compress(&text, &mut packed).unwrap();
        let id = label(size, 0);
        let mut g = c.benchmark_group("gzip");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("encode_reused", &id), |b| {
            let mut gz = Gzip::default();
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                gz.compress(&text, &mut out).unwrap();
                black_box(&out);
            })
        });
        g.bench_function(BenchmarkId::new("decode_reused", &id), |b| {
            let mut gz = Gzip::default();
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                gz.decompress(&packed, &mut out, LIMIT).unwrap();
                black_box(&out);
            })
        });
        g.bench_function(BenchmarkId::new("decode_fresh", &id), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                Gzip::default()
                    .decompress(&packed, &mut out, LIMIT)
                    .unwrap();
                black_box(&out);
            })
        });
        g.finish();
    }
}

/// Criterion's output directory, as criterion itself resolves it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // <target>/release/deps/frame-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Median (ns per iteration) of a benchmark measured in this run.
fn median_ns(group: &str, function: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join(id)
        .join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn gbps(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns
}

fn report(since: SystemTime) {
    println!("\n## decode (median; GB/s; ns/frame for ours_chunk; ratios = ours_chunk speedup)");
    println!(
        "| payload | chunk | ours_chunk | ns/frame | ours_bytesmut | copying | connectrpc | memcpy | vs copying | vs connectrpc | % of memcpy |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for size in SIZES {
        for chunk in CHUNKS {
            let id = label(size, chunk);
            let bytes = (5 + size) * frame_count(size);
            let get = |f: &str| median_ns("decode", f, &id, since);
            let (Some(ours), Some(bm), Some(copy), Some(crpc), Some(mc)) = (
                get("ours_chunk"),
                get("ours_bytesmut"),
                get("copying"),
                get("connectrpc"),
                get("memcpy"),
            ) else {
                continue;
            };
            println!(
                "| {} | {} KiB | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.0}% |",
                label(size, 0),
                chunk >> 10,
                gbps(bytes, ours),
                ours / frame_count(size) as f64,
                gbps(bytes, bm),
                gbps(bytes, copy),
                gbps(bytes, crpc),
                gbps(bytes, mc),
                copy / ours,
                crpc / ours,
                100.0 * mc / ours,
            );
        }
    }
    println!("\n## encode (median GB/s)");
    println!("| payload | ours | ns/frame | connectrpc | memcpy | vs connectrpc |");
    println!("|---|---|---|---|---|---|");
    for size in SIZES {
        let id = label(size, 0);
        let bytes = (5 + size) * frame_count(size);
        let get = |f: &str| median_ns("encode", f, &id, since);
        let (Some(ours), Some(crpc), Some(mc)) = (get("ours"), get("connectrpc"), get("memcpy"))
        else {
            continue;
        };
        println!(
            "| {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2}x |",
            id,
            gbps(bytes, ours),
            ours / frame_count(size) as f64,
            gbps(bytes, crpc),
            gbps(bytes, mc),
            crpc / ours
        );
    }
    println!("\n## gzip (median per message; GB/s of uncompressed bytes)");
    println!("| message | encode | decode (reused state) | decode (fresh state) |");
    println!("|---|---|---|---|");
    for size in [1024usize, 64 * 1024] {
        let id = label(size, 0);
        let get = |f: &str| median_ns("gzip", f, &id, since);
        let (Some(e), Some(d), Some(f)) = (
            get("encode_reused"),
            get("decode_reused"),
            get("decode_fresh"),
        ) else {
            continue;
        };
        println!(
            "| {} | {:.1} µs, {:.3} GB/s | {:.1} µs, {:.3} GB/s | {:.1} µs, {:.3} GB/s |",
            id,
            e / 1e3,
            gbps(size, e),
            d / 1e3,
            gbps(size, d),
            f / 1e3,
            gbps(size, f)
        );
    }
}

fn main() {
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    decode(&mut c);
    encode(&mut c);
    gzip(&mut c);
    c.final_summary();
    report(since);
}
