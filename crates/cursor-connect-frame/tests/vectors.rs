//! Tests over real captured Cursor bytes (the workspace's one copy, in cursor-test-support's
//! `vectors/`; its README gives their provenance).

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{
    ChunkDecoder, Code, ConnectError, Decoder, Direction, EndStream, FrameError, Origin,
};
use http::{HeaderMap, StatusCode};

use cursor_test_support::vectors::{bytes as vector, hex as hex_vector};

/// Text vectors carry `#` comment lines from the capture notes; strip them.
fn text_vector(name: &str) -> Vec<u8> {
    cursor_test_support::vectors::body(name).into_bytes()
}

fn parse_error(name: &str) -> ConnectError {
    EndStream::parse(&vector(name))
        .unwrap()
        .into_result()
        .unwrap_err()
}

/// Decodes `wire` as a response stream split into chunks of `size`, through both decoders.
fn decode_all(wire: &[u8], size: usize) -> Vec<cursor_connect_frame::Frame> {
    let mut frames = Vec::new();
    let mut dec = Decoder::new(Direction::Response);
    let mut buf = BytesMut::new();
    for piece in wire.chunks(size) {
        buf.extend_from_slice(piece);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            frames.push(f);
        }
    }
    while let Some(f) = dec.decode_eof(&mut buf).unwrap() {
        frames.push(f);
    }
    let mut chunked = ChunkDecoder::new(Decoder::new(Direction::Response));
    let mut again = Vec::new();
    for piece in wire.chunks(size) {
        chunked.push(Bytes::copy_from_slice(piece));
        while let Some(f) = chunked.next_frame().unwrap() {
            again.push(f);
        }
    }
    while let Some(f) = chunked.finish().unwrap() {
        again.push(f);
    }
    assert_eq!(frames, again, "decoders disagree at chunk size {size}");
    frames
}

#[test]
fn e01_error_details_value_is_unpadded_standard_base64() {
    let b64 = String::from_utf8(vector("E01-errordetails-not-logged-in.b64")).unwrap();
    let json = format!(
        r#"{{"error":{{"code":"unauthenticated","details":[{{"type":"aiserver.v1.ErrorDetails","value":"{}"}}]}}}}"#,
        b64.trim()
    );
    let err = EndStream::parse(json.as_bytes())
        .unwrap()
        .into_result()
        .unwrap_err();
    let value = err.details()[0].value();
    assert_eq!(
        hex::encode(value),
        "080212550a1441757468656e7469636174696f6e206572726f721232496620796f7520617265206c6f6767656420696e2c20747279206c6f6767696e67206f757420616e64206261636b20696e2e200052070a056c6f67696e1801"
    );
    // Writing it back emits the same unpadded text.
    assert!(
        String::from_utf8(err.to_json())
            .unwrap()
            .contains(b64.trim())
    );
}

#[test]
fn e02_full_end_stream_frame() {
    let payload = vector("E02-endstream-model-no-longer-supported.json");
    assert_eq!(payload.len(), 608);
    // On the wire it was `02 00000260` + payload.
    let mut wire = vec![2u8, 0, 0, 2, 0x60];
    wire.extend_from_slice(&payload);
    let frames = decode_all(&wire, 7);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].is_end_stream());
    let end = EndStream::parse(&frames[0].payload).unwrap();
    assert!(end.metadata.is_empty());
    let err = end.into_result().unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "Error");
    assert_eq!(err.origin(), Origin::Remote);
    assert!(err.is_wire());
    assert_eq!(err.details().len(), 1);
    assert_eq!(err.details()[0].type_name(), "aiserver.v1.ErrorDetails");
    let debug: serde_json::Value = serde_json::from_str(err.details()[0].debug().unwrap()).unwrap();
    assert_eq!(debug["error"], "ERROR_MODEL_NO_LONGER_SUPPORTED");
    assert_eq!(
        debug["details"]["buttons"][0]["switchModel"]["suggestedModel"],
        "composer-2.5"
    );
    // Our writer keeps type, value and debug; reading it back gives the same detail.
    let again = EndStream::parse(
        &EndStream {
            error: Some(err.clone()),
            ..EndStream::ok()
        }
        .to_json(),
    )
    .unwrap()
    .error
    .unwrap();
    assert_eq!(again.details(), err.details());
    assert_eq!(
        hex::encode(err.details()[0].value()),
        "083d127e0a15436f6d706f736572203220697320726574697265641241576527726520757067726164696e6720796f7520746f20436f6d706f73657220322e352c206f7572206d6f737420706f77657266756c206d6f64656c207965742e20002800421e0a0c537769746368206d6f64656c1a0e0a0c636f6d706f7365722d322e351801"
    );
}

#[test]
fn e03_e04_cut_values_still_decode_as_bytes() {
    for (name, hex_value) in [
        ("E03-endstream-unpaid-invoice.json", "083212"),
        ("E04-endstream-too-many-computers.json", "081d12"),
    ] {
        let err = parse_error(name);
        assert_eq!(err.code(), Code::ResourceExhausted, "{name}");
        assert_eq!(hex::encode(err.details()[0].value()), hex_value, "{name}");
        assert!(
            err.details()[0]
                .debug()
                .unwrap()
                .contains("\"isExpected\":true")
        );
    }
}

#[test]
fn e05_truncated_capture_is_a_json_error_not_a_panic() {
    let text = text_vector("E05-endstream-model-not-allowed.txt");
    // Drop the printable prefix byte ("4") the terminal showed.
    let json = &text[1..];
    assert!(matches!(
        EndStream::parse(json),
        Err(FrameError::EndStreamJson { .. })
    ));
}

#[test]
fn e06_elided_unary_body_falls_back_to_http_status() {
    let text = text_vector("E06-unary-401-not-logged-in-debug.txt");
    let body_start = text.iter().position(|&b| b == b'{').unwrap();
    let err = ConnectError::from_unary_response(
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        &text[body_start..],
    );
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(!err.is_wire(), "the body was not valid JSON");
    assert_eq!(err.http_status_seen(), Some(StatusCode::UNAUTHORIZED));
}

#[test]
fn e07_e08_metadata_and_unusable_detail_values() {
    for (name, kind) in [
        ("E07-endstream-provider-error-422.json", "PROVIDER_ERROR"),
        (
            "E08-endstream-resource-exhausted-provider.json",
            "RESOURCE_EXHAUSTED",
        ),
    ] {
        let end = EndStream::parse(&vector(name)).unwrap();
        assert_eq!(
            end.metadata.get("x-cursor-inference-request-error-type"),
            Some(kind)
        );
        let err = end.into_result().unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(
            err.metadata().get("X-Cursor-Inference-Request-Error-Type"),
            Some(kind)
        );
        // `"value":"x"` is not base64: the detail keeps its type and debug with an empty value.
        let d = &err.details()[0];
        assert_eq!(d.type_name(), "aiserver.v1.ErrorDetails", "{name}");
        assert!(d.value().is_empty(), "{name}");
        let debug: serde_json::Value = serde_json::from_str(d.debug().unwrap()).unwrap();
        assert_eq!(debug["error"], format!("ERROR_{kind}"), "{name}");
    }
}

#[test]
fn e09_e10_unary_bodies_use_the_json_code() {
    let err = ConnectError::from_unary_response(
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        &vector("E09-unary-429-rate-limited-github.json"),
    );
    // The JSON code wins over the 429 -> unavailable mapping.
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(err.message(), "[resource_exhausted] Error");
    assert!(err.is_wire());
    let d = &err.details()[0];
    assert_eq!(
        (d.type_name(), d.value().len()),
        ("", 0),
        "debug-only detail"
    );
    let debug: serde_json::Value = serde_json::from_str(d.debug().unwrap()).unwrap();
    assert_eq!(debug["error"], "ERROR_RATE_LIMITED");
    assert_eq!(debug["details"]["additionalInfo"]["retryAfter"], "60");

    let err = ConnectError::from_unary_response(
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        &vector("E10-unary-failed-precondition-payment-method.json"),
    );
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.details().len(), 1);
    assert_eq!(err.details()[0].type_name(), "aiserver.v1.ErrorDetails");
    assert!(err.details()[0].value().is_empty());
    assert!(
        err.details()[0]
            .debug()
            .unwrap()
            .contains("ERROR_BAD_REQUEST")
    );
}

#[test]
fn e11_to_e14_end_stream_errors() {
    let err = EndStream::parse(&text_vector("E11-endstream-unauthorized-suspicious.txt"))
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().starts_with("Your request has been blocked"));
    assert_eq!(err.details()[0].type_name(), "aiserver.v1.ErrorDetails");

    assert!(
        err.details()[0]
            .debug()
            .unwrap()
            .contains("ERROR_UNAUTHORIZED")
    );

    for (name, code, error) in [
        (
            "E12-endstream-bad-model-name-auto.json",
            Code::NotFound,
            "ERROR_BAD_MODEL_NAME",
        ),
        (
            "E13-endstream-rate-limited-changeable-free-plan.json",
            Code::ResourceExhausted,
            "ERROR_RATE_LIMITED_CHANGEABLE",
        ),
        (
            "E14-endstream-not-logged-in-chatservice.json",
            Code::Unauthenticated,
            "ERROR_NOT_LOGGED_IN",
        ),
    ] {
        let err = parse_error(name);
        assert_eq!(err.code(), code, "{name}");
        assert_eq!(err.message(), "Error");
        // Only `debug` was sent: the detail is kept for it.
        let d = &err.details()[0];
        assert_eq!((d.type_name(), d.value().len()), ("", 0), "{name}");
        let debug: serde_json::Value = serde_json::from_str(d.debug().unwrap()).unwrap();
        assert_eq!(debug["error"], error, "{name}");
    }
}

#[test]
fn f01_heartbeat_frame() {
    let wire = hex_vector("F01-heartbeat-frame.hex");
    let mut buf = BytesMut::from(&wire[..]);
    let mut dec = Decoder::new(Direction::Response);
    let f = dec.decode(&mut buf).unwrap().unwrap();
    assert!(!f.flags.is_compressed() && !f.is_end_stream());
    assert_eq!(&f.payload[..], b"\x0a\x02\x6a\x00");
    // A heartbeat alone is not a finished response.
    assert_eq!(dec.decode_eof(&mut buf), Err(FrameError::MissingEndStream));
}

#[test]
fn f02_heartbeat_then_invalid_argument_under_every_chunking() {
    let wire = hex_vector("F02-run-heartbeat-then-invalid-argument.hex");
    assert_eq!(wire.len(), 118);
    for size in 1..=wire.len() {
        let frames = decode_all(&wire, size);
        assert_eq!(frames.len(), 2, "chunk size {size}");
        assert_eq!(&frames[0].payload[..], b"\x0a\x02\x6a\x00");
        assert_eq!(frames[1].payload.len(), 0x68);
        let err = EndStream::parse(&frames[1].payload)
            .unwrap()
            .into_result()
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(
            err.message(),
            "First message must be a run request or prewarm request"
        );
        assert!(err.details().is_empty());
    }
    // Cut anywhere before the end, the stream is an error, never a clean end.
    for cut in 0..wire.len() {
        let mut dec = Decoder::new(Direction::Response);
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut result = Ok(None);
        for _ in 0..4 {
            result = dec.decode_eof(&mut buf);
            if !matches!(result, Ok(Some(_))) {
                break;
            }
        }
        assert!(result.is_err(), "cut at {cut}: {result:?}");
    }
}

#[test]
fn padded_base64_is_accepted_too() {
    let b64 = String::from_utf8(vector("E01-errordetails-not-logged-in.b64")).unwrap();
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64.trim())
        .unwrap();
    let padded = base64::engine::general_purpose::STANDARD.encode(&raw);
    assert!(padded.ends_with('='));
    let json = format!(
        r#"{{"error":{{"code":"internal","details":[{{"type":"t","value":"{padded}"}}]}}}}"#
    );
    let err = EndStream::parse(json.as_bytes())
        .unwrap()
        .into_result()
        .unwrap_err();
    assert_eq!(&err.details()[0].value()[..], &raw[..]);
}

#[cfg(feature = "prost")]
mod typed {
    use super::*;

    /// The two scalar fields of `aiserver.v1.ErrorDetails` this test needs (the full schema
    /// lives in cursor-proto, which this crate must not depend on).
    #[derive(Clone, PartialEq, prost::Message)]
    struct ErrorDetailsHead {
        #[prost(int32, tag = "1")]
        error: i32,
        #[prost(bool, tag = "3")]
        is_expected: bool,
    }

    #[test]
    fn details_decode_through_prost() {
        let err = parse_error("E02-endstream-model-no-longer-supported.json");
        let d: ErrorDetailsHead = err.details()[0].decode().unwrap();
        assert_eq!(d.error, 61, "ERROR_MODEL_NO_LONGER_SUPPORTED");
        assert!(d.is_expected);

        // E03's value was cut mid-field by its publisher: decoding reports it.
        let cut = parse_error("E03-endstream-unpaid-invoice.json");
        assert!(cut.details()[0].decode::<ErrorDetailsHead>().is_err());
    }
}
