//! Frame codec throughput: our decoders and encoder against connect-rust's own envelope
//! codec (`connectrpc`, pinned in the workspace), a copying decoder (the shape of tonic and
//! connect-rust's streaming path) and a memcpy of the same bytes with the same buffer reuse.
//!
//! * **warm**: about 1 MiB of frames that stays in cache, measured by criterion per variant
//!   and then in interleaved rounds;
//! * **cold**: at least 64 MiB of frames per case (`FRAME_COLD_MIB`), 32 times this machine's
//!   L2, cut into 16 KiB and 64 KiB pieces as HTTP/2 DATA frames deliver them, each decoder
//!   once keeping the frames and once with a consumer that reads every payload byte;
//! * **encode** and **gzip**.
//!
//! Every ratio comes from interleaved rounds: each round runs every variant of a case once
//! (rotating which goes first), so load changes on a shared machine hit all of them alike;
//! the tables show per-variant medians and the round count.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use cursor_connect_benches::{
    Medians, Variant, chunks, emit, envelope_stream, interleaved, json_text, read_all,
};
use cursor_connect_frame::{Compression, Gzip};

#[path = "frame/variants.rs"]
mod variants;
use variants::{LIMIT, decoders, encoders, memcpy};

const SIZES: [usize; 5] = [16, 256, 4096, 64 * 1024, 1 << 20];
const CHUNKS: [usize; 2] = [16 * 1024, 64 * 1024];

/// The payload sizes to run: `FRAME_SIZES` (comma-separated bytes) or all of [`SIZES`].
fn sizes() -> Vec<usize> {
    std::env::var("FRAME_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| SIZES.to_vec())
}

/// Warm frames per case: 1 MiB of payload, but at least 4 frames.
fn warm_count(size: usize) -> usize {
    ((1 << 20) / size).max(4)
}

fn label(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else if size >= 1024 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

fn gbps(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns
}

/// The cells both decode tables start with: payload, chunk, rounds, ours (GB/s and ns per
/// frame), ours_bytesmut, connectrpc, copying, the memcpy ceiling (`ceiling_ns`), and ours'
/// speedup over connectrpc and over copying (variants 0 to 3 of `m`, in that order).
fn decode_cells(
    size: usize,
    chunk: usize,
    m: &Medians,
    bytes: usize,
    frames: usize,
    ceiling_ns: f64,
) -> String {
    let ns = &m.ns;
    format!(
        "{} | {} KiB | {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x",
        label(size),
        chunk >> 10,
        m.rounds,
        gbps(bytes, ns[0]),
        ns[0] / frames as f64,
        gbps(bytes, ns[1]),
        gbps(bytes, ns[2]),
        gbps(bytes, ns[3]),
        gbps(bytes, ceiling_ns),
        ns[2] / ns[0],
        ns[3] / ns[0],
    )
}

fn sum_of(pieces: &[Bytes], size: usize) -> u64 {
    // Payload bytes only: skip each 5-byte header.
    let stream: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
    stream
        .chunks(5 + size)
        .map(|f| read_all(&f[5..]))
        .fold(0u64, u64::wrapping_add)
}

fn warm_decode(c: &mut Criterion, out: &mut Vec<String>) {
    out.push("\n### Decode, cache-warm (about 1 MiB of frames per call)\n".into());
    out.push(
        "GB/s of wire bytes, medians of interleaved rounds; ratios are ours' speedup.\n".into(),
    );
    out.push("| payload | chunk | rounds | ours | ns/frame | ours_bytesmut | connectrpc | copying | memcpy | vs connectrpc | vs copying | % of memcpy |".into());
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    for size in sizes() {
        for chunk in CHUNKS {
            let count = warm_count(size);
            let stream = envelope_stream(size, count);
            let pieces = chunks(&stream, chunk);
            let mut vs = decoders::<false>(&pieces, count, 0);
            vs.push(memcpy(&pieces));
            let id = format!("{}_in_{}k", label(size).replace(' ', ""), chunk >> 10);
            let mut g = c.benchmark_group("decode_warm");
            g.throughput(Throughput::Bytes(stream.len() as u64));
            for (name, f) in vs.iter_mut() {
                g.bench_function(BenchmarkId::new(*name, &id), |b| b.iter(&mut *f));
            }
            g.finish();
            let m = interleaved(&mut vs, 15, 400, Duration::from_millis(600));
            let (b, ns) = (stream.len(), &m.ns);
            out.push(format!(
                "| {} | {:.0}% |",
                decode_cells(size, chunk, &m, b, count, ns[4]),
                100.0 * ns[4] / ns[0],
            ));
        }
    }
}

fn cold_decode(out: &mut Vec<String>) {
    let mib: usize = std::env::var("FRAME_COLD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    out.push(format!(
        "\n### Decode, cache-cold ({mib} MiB of frames per case, pieces allocated separately)\n"
    ));
    out.push("GB/s of wire bytes, medians of interleaved rounds (all nine variants of a case in every round). \"+read\" adds a consumer that reads every payload byte; its ceiling is memcpy.\n".into());
    out.push("| payload | chunk | rounds | ours | ns/frame | ours_bytesmut | connectrpc | copying | memcpy | vs connectrpc | vs copying | ours+read | connectrpc+read | copying+read | +read vs connectrpc | +read / memcpy |".into());
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    for size in sizes() {
        let count = (mib << 20).div_ceil(5 + size);
        let stream = envelope_stream(size, count);
        for chunk in CHUNKS {
            let pieces = chunks(&stream, chunk);
            let sum = sum_of(&pieces, size);
            let mut vs = decoders::<false>(&pieces, count, 0);
            vs.extend(decoders::<true>(&pieces, count, sum));
            vs.push(memcpy(&pieces));
            let m = interleaved(&mut vs, 7, 15, Duration::from_millis(3000));
            let (b, ns) = (stream.len(), &m.ns);
            out.push(format!(
                "| {} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.2}x |",
                decode_cells(size, chunk, &m, b, count, ns[8]),
                gbps(b, ns[4]),
                gbps(b, ns[6]),
                gbps(b, ns[7]),
                ns[6] / ns[4],
                ns[8] / ns[4],
            ));
        }
    }
}

fn encode(c: &mut Criterion, out: &mut Vec<String>) {
    out.push("\n### Encode (about 1 MiB of messages per call)\n".into());
    out.push("GB/s of wire bytes, medians of interleaved rounds. `ours` and `connectrpc` hand out each envelope as its own `Bytes`; `ours_one_buffer` appends all of them to one buffer.\n".into());
    out.push("| payload | rounds | ours | ns/frame | ours_one_buffer | connectrpc | memcpy | vs connectrpc | % of memcpy |".into());
    out.push("|---|---|---|---|---|---|---|---|---|".into());
    for size in sizes() {
        let count = warm_count(size);
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let shared = Bytes::from(payload.clone());
        let bytes = (5 + size) * count;
        let mut vs = encoders(&payload, &shared, count);
        let mut g = c.benchmark_group("encode");
        g.throughput(Throughput::Bytes(bytes as u64));
        for (name, f) in vs.iter_mut() {
            g.bench_function(BenchmarkId::new(*name, label(size).replace(' ', "")), |b| {
                b.iter(&mut *f)
            });
        }
        g.finish();
        let m = interleaved(&mut vs, 15, 400, Duration::from_millis(600));
        let ns = &m.ns;
        out.push(format!(
            "| {} | {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2}x | {:.0}% |",
            label(size),
            m.rounds,
            gbps(bytes, ns[0]),
            ns[0] / count as f64,
            gbps(bytes, ns[1]),
            gbps(bytes, ns[2]),
            gbps(bytes, ns[3]),
            ns[2] / ns[0],
            100.0 * ns[3] / ns[0],
        ));
    }
}

fn gzip(c: &mut Criterion, out: &mut Vec<String>) {
    out.push("\n### gzip (level 6), per message\n".into());
    out.push("| message | rounds | encode | decode, reused state | decode, fresh state |".into());
    out.push("|---|---|---|---|---|".into());
    for size in [1024usize, 64 * 1024] {
        let text = json_text(size);
        let mut packed = Vec::new();
        Gzip::default()
            .compress(&text, &mut packed)
            .expect("compress");
        let (mut gz_enc, mut gz_dec) = (Gzip::default(), Gzip::default());
        let (mut out_e, mut out_d, mut out_f) = (Vec::new(), Vec::new(), Vec::new());
        let mut vs: Vec<Variant<'_>> = vec![
            (
                "encode_reused",
                Box::new(|| {
                    out_e.clear();
                    gz_enc.compress(&text, &mut out_e).expect("compress");
                    black_box(&out_e);
                }),
            ),
            (
                "decode_reused",
                Box::new(|| {
                    out_d.clear();
                    gz_dec
                        .decompress(&packed, &mut out_d, LIMIT)
                        .expect("inflate");
                    black_box(&out_d);
                }),
            ),
            (
                "decode_fresh",
                Box::new(|| {
                    out_f.clear();
                    Gzip::default()
                        .decompress(&packed, &mut out_f, LIMIT)
                        .expect("inflate");
                    black_box(&out_f);
                }),
            ),
        ];
        let mut g = c.benchmark_group("gzip");
        g.throughput(Throughput::Bytes(size as u64));
        for (name, f) in vs.iter_mut() {
            g.bench_function(BenchmarkId::new(*name, label(size).replace(' ', "")), |b| {
                b.iter(&mut *f)
            });
        }
        g.finish();
        let m = interleaved(&mut vs, 15, 2000, Duration::from_millis(500));
        let cell = |ns: f64| format!("{:.1} µs, {:.3} GB/s", ns / 1e3, gbps(size, ns));
        out.push(format!(
            "| {} ({} B gzipped) | {} | {} | {} | {} |",
            label(size),
            packed.len(),
            m.rounds,
            cell(m.ns[0]),
            cell(m.ns[1]),
            cell(m.ns[2])
        ));
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .sample_size(10)
        .configure_from_args();
    // FRAME_BENCH=cold|warm|encode|gzip runs one section; FRAME_SIZES=16,256 only those
    // payload sizes; FRAME_COLD_MIB the cold stream size.
    let only = std::env::var("FRAME_BENCH").unwrap_or_default();
    let on = |s: &str| only.is_empty() || only == s;
    let mut out = vec!["\n## Frame codec (`benches/benches/frame.rs`)".to_string()];
    if on("cold") {
        cold_decode(&mut out);
    }
    if on("warm") {
        warm_decode(&mut c, &mut out);
    }
    if on("encode") {
        encode(&mut c, &mut out);
    }
    if on("gzip") {
        gzip(&mut c, &mut out);
    }
    c.final_summary();
    emit(&out);
}
