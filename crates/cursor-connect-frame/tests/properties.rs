//! Property tests: round trip, encoded length, chunk invariance, and no panics on any input.

use bytes::BytesMut;
use cursor_connect_frame::{Code, ConnectError, Decoder, Direction, Encoder, EndStream, Gzip};
use cursor_test_support::frame_drivers::{decode_buffered, decode_chunked};
use proptest::prelude::*;

fn gzip_decoder(direction: Direction, gz: bool) -> Decoder {
    let d = Decoder::new(direction);
    if gz {
        d.compression(Some(Box::new(Gzip::with_level(1))))
    } else {
        d
    }
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            // Compressible payloads so that gzip actually kicks in.
            (any::<u8>(), 0usize..3000).prop_map(|(b, n)| vec![b; n]),
            prop::collection::vec(any::<u8>(), 0..3000),
            // Big enough for the chunk decoder to keep pieces instead of coalescing them.
            (any::<u8>(), 4000usize..20_000).prop_map(|(b, n)| vec![b; n]),
        ],
        0..8,
    )
}

fn cuts(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..max.max(1), 0..12).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_and_encoded_len(
        msgs in payloads(),
        gz in any::<bool>(),
        min in prop_oneof![Just(0usize), Just(64), Just(1024)],
        fail in any::<bool>(),
    ) {
        let mut enc = Encoder::new().compress_min_bytes(min);
        if gz {
            enc = enc.compression(Some(Box::new(Gzip::with_level(1))));
        }
        let mut wire = BytesMut::new();
        for m in &msgs {
            let before = wire.len();
            let n = enc.encode(m, &mut wire).unwrap();
            prop_assert_eq!(n, wire.len() - before, "returned length = bytes written");
            if wire[before] & 1 == 0 {
                prop_assert_eq!(n, Encoder::encoded_len(m.len()));
            } else {
                prop_assert!(n < Encoder::encoded_len(m.len()), "compressed only when smaller");
            }
        }
        let end = if fail {
            EndStream { error: Some(ConnectError::new(Code::Aborted, "x")), ..EndStream::ok() }
        } else {
            EndStream::ok()
        };
        let before = wire.len();
        let n = enc.encode_end_stream(&end, &mut wire).unwrap();
        prop_assert_eq!(n, wire.len() - before);

        let (frames, err) = decode_buffered(gzip_decoder(Direction::Response, gz), &wire, &[]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(frames.len(), msgs.len() + 1);
        for (f, m) in frames.iter().zip(&msgs) {
            prop_assert_eq!(&f.payload[..], &m[..]);
            prop_assert!(!f.is_end_stream());
        }
        let last = EndStream::parse(&frames[msgs.len()].payload).unwrap();
        prop_assert_eq!(last.error.map(|e| e.code()), end.error.map(|e| e.code()));
    }

    #[test]
    fn chunk_invariance(msgs in payloads(), gz in any::<bool>(), cut_seed in cuts(1 << 16)) {
        let mut enc = Encoder::new().compress_min_bytes(0);
        if gz {
            enc = enc.compression(Some(Box::new(Gzip::with_level(1))));
        }
        let mut wire = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut wire).unwrap();
        }
        enc.encode_end_stream(&EndStream::ok(), &mut wire).unwrap();
        let cuts: Vec<usize> = cut_seed.iter().map(|c| c % (wire.len() + 1)).collect();
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = decode_buffered(gzip_decoder(Direction::Response, gz), &wire, &[]);
        let split = decode_buffered(gzip_decoder(Direction::Response, gz), &wire, &cuts);
        let chunked = decode_chunked(gzip_decoder(Direction::Response, gz), &wire, &cuts);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(whole.0.len(), msgs.len() + 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        wire in prop::collection::vec(any::<u8>(), 0..600),
        cut_seed in cuts(600),
        response in any::<bool>(),
        gz in any::<bool>(),
        limit in prop_oneof![Just(0usize), Just(16), Just(1 << 20)],
    ) {
        let dir = if response { Direction::Response } else { Direction::Request };
        let a = decode_buffered(gzip_decoder(dir, gz).max_message_size(limit), &wire, &cut_seed);
        let b = decode_chunked(gzip_decoder(dir, gz).max_message_size(limit), &wire, &cut_seed);
        // Both decoders agree on arbitrary input too.
        prop_assert_eq!(&a, &b);
        for f in &a.0 {
            prop_assert!(f.payload.len() <= limit);
        }
    }

    #[test]
    fn json_parsers_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), status in 100u16..600) {
        let _ = EndStream::parse(&body);
        let status = http::StatusCode::from_u16(status).unwrap();
        let e = ConnectError::from_unary_response(status, &http::HeaderMap::new(), &body);
        prop_assert_eq!(e.http_status_seen(), Some(status));
    }

    #[test]
    fn json_shaped_end_streams_never_panic(
        code in prop_oneof![Just("\"internal\"".to_owned()), Just("null".to_owned()), "\"[a-z_]{0,12}\"", Just("7".to_owned())],
        message in prop_oneof![Just("null".to_owned()), "\"[ -~]{0,20}\""],
        value in prop_oneof![Just("null".to_owned()), "\"[A-Za-z0-9+/=_-]{0,12}\""],
        meta in prop_oneof![Just("{}".to_owned()), Just("{\"a\":[\"b\"]}".to_owned()), Just("{\"a\":\"b\"}".to_owned()), Just("[]".to_owned()), Just("{\"a\":[1]}".to_owned())],
    ) {
        let json = format!(
            r#"{{"error":{{"code":{code},"message":{message},"details":[{{"type":"t","value":{value},"debug":{{}}}},7]}},"metadata":{meta}}}"#
        );
        if let Ok(end) = EndStream::parse(json.as_bytes()) {
            let err = end.error.unwrap();
            // Round trip through our writer is stable.
            let again = EndStream::parse(&EndStream { error: Some(err.clone()), metadata: end.metadata.clone() }.to_json()).unwrap();
            prop_assert_eq!(again.error.unwrap().code(), err.code());
            prop_assert_eq!(again.metadata, end.metadata);
        }
    }
}
