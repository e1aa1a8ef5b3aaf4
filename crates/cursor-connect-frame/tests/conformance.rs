//! Client-side parsing cases of the Connect conformance suite (connectrpc/conformance,
//! `internal/app/connectconformance/testsuites/data/`), mirrored as table tests with byte
//! fixtures of our own. The runner itself cannot run here (see connect-protocol.md §3.1).
//!
//! Mirrored: 36 cases.
//! * `connect_client_error_endstream.yaml`: all 11 active cases (6 unary `error/*`,
//!   5 `end-stream/*`).
//! * `client_http_to_rpc_code.yaml`: all 14 statuses.
//! * `connect_client_compressed_error_endstream.yaml`: both cases (`error/compressed`,
//!   `end-stream/compressed`).
//! * `connect_client_unexpected.yaml`: the 9 cases decided by body bytes
//!   (`unexpected-error-body`, `client-stream/ok-but-no-response`,
//!   `client-stream/multiple-responses`, the three `*/no-end-stream`,
//!   `unexpected-compressed-message`, `server-stream/incomplete-message`,
//!   `server-stream/incomplete-message-prefix`). Its other 4 cases (`unexpected-content-type`,
//!   `unexpected-codec`, `unexpected-stream-codec`, `unexpected-compression`) are decided by
//!   response headers, which this sans-IO crate never sees; the transport owns them.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{
    ChunkDecoder, Code, ConnectError, Decoder, Direction, EndStream, Frame, FrameError, Gzip,
    compression_for,
};
use http::{HeaderMap, HeaderValue, StatusCode};

/// The detail every "allow-unrecognized" case carries: a FileDescriptorProto named test.proto.
const DETAIL_VALUE: &[u8] = b"\x0a\x0atest.proto";

fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// What a client's streaming receive loop observes: every message, then the terminal result.
#[derive(Debug)]
struct StreamOutcome {
    messages: Vec<Bytes>,
    result: Result<(), Code>,
    error: Option<ConnectError>,
}

/// Runs a response body through the decoder (whole, and byte by byte through the chunk
/// decoder, which must agree) the way a client does.
fn receive(body: &[u8], encoding: Option<&str>) -> StreamOutcome {
    let run = |chunk: usize| {
        let dec = Decoder::new(Direction::Response).compression(encoding.and_then(compression_for));
        let mut dec = ChunkDecoder::new(dec);
        let mut frames: Vec<Frame> = Vec::new();
        let mut failure = None;
        'feed: for piece in body.chunks(chunk.max(1)) {
            dec.push(Bytes::copy_from_slice(piece));
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e);
                        break 'feed;
                    }
                }
            }
        }
        if failure.is_none() {
            loop {
                match dec.finish() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        (frames, failure)
    };
    let (frames, failure) = run(body.len());
    let (frames_1, failure_1) = run(1);
    assert_eq!(frames, frames_1, "chunking changed the frames");
    assert_eq!(failure, failure_1, "chunking changed the error");

    let mut messages = Vec::new();
    for f in frames {
        if f.is_end_stream() {
            return match EndStream::parse(&f.payload) {
                Ok(end) => match end.into_result() {
                    Ok(_) => StreamOutcome {
                        messages,
                        result: Ok(()),
                        error: None,
                    },
                    Err(e) => StreamOutcome {
                        messages,
                        result: Err(e.code()),
                        error: Some(e),
                    },
                },
                Err(e) => StreamOutcome {
                    messages,
                    result: Err(e.code()),
                    error: None,
                },
            };
        }
        messages.push(f.payload);
    }
    let err = failure.expect("no end-stream and no error");
    StreamOutcome {
        messages,
        result: Err(err.code()),
        error: Some(err.into()),
    }
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

// ---- connect_client_error_endstream.yaml: unary error bodies (6) -------------------------

#[test]
fn error_endstream_unary_cases() {
    struct Case {
        name: &'static str,
        status: u16,
        body: &'static str,
        code: Code,
        message: Option<&'static str>,
        detail: bool,
    }
    let cases = [
        Case {
            name: "error/null",
            status: 401,
            body: "null",
            code: Code::Unauthenticated,
            message: None,
            detail: false,
        },
        Case {
            name: "error/null-code",
            status: 401,
            body: r#"{ "code": null, "message": "oops" }"#,
            code: Code::Unauthenticated,
            message: Some("oops"),
            detail: false,
        },
        Case {
            name: "error/missing-code",
            status: 401,
            body: r#"{ "message": "oops" }"#,
            code: Code::Unauthenticated,
            message: Some("oops"),
            detail: false,
        },
        Case {
            name: "error/unrecognized-code",
            status: 429,
            body: r#"{ "code": "foobar", "message": "oops" }"#,
            code: Code::Unavailable,
            message: Some("oops"),
            detail: false,
        },
        Case {
            name: "error/allow-unrecognized-fields",
            status: 422,
            body: r#"{ "code": "out_of_range", "message": "oops", "foobar": "baz" }"#,
            code: Code::OutOfRange,
            message: Some("oops"),
            detail: false,
        },
        Case {
            name: "error/allow-unrecognized-fields-in-details",
            status: 422,
            body: r#"{ "code": "out_of_range", "message": "oops", "details": [ { "type": "google.protobuf.FileDescriptorProto", "value": "Cgp0ZXN0LnByb3Rv", "frob": "nitz", "debug": { "name": "test.proto", "foobar": true } } ] }"#,
            code: Code::OutOfRange,
            message: Some("oops"),
            detail: true,
        },
    ];
    for c in cases {
        let status = StatusCode::from_u16(c.status).unwrap();
        let err = ConnectError::from_unary_response(status, &json_headers(), c.body.as_bytes());
        assert_eq!(err.code(), c.code, "{}", c.name);
        if let Some(m) = c.message {
            assert_eq!(err.message(), m, "{}", c.name);
        }
        assert_eq!(err.http_status_seen(), Some(status));
        if c.detail {
            let d = &err.details()[0];
            assert_eq!(d.type_name(), "google.protobuf.FileDescriptorProto");
            assert_eq!(&d.value()[..], DETAIL_VALUE, "{}", c.name);
        } else {
            assert!(err.details().is_empty(), "{}", c.name);
        }
    }
}

// ---- connect_client_error_endstream.yaml: end-stream cases (5) ----------------------------

#[test]
fn error_endstream_stream_cases() {
    let cases: [(&str, &str, Result<(), Code>, &str); 5] = [
        ("end-stream/null-error", r#"{ "error": null }"#, Ok(()), ""),
        (
            "end-stream/null-code",
            r#"{ "error": { "code": null, "message": "oops" } }"#,
            Err(Code::Unknown),
            "oops",
        ),
        (
            "end-stream/missing-code",
            r#"{ "error": { "message": "oops" } }"#,
            Err(Code::Unknown),
            "oops",
        ),
        (
            "end-stream/unrecognized-code",
            r#"{ "error": { "code": "foobar", "message": "oops" } }"#,
            Err(Code::Unknown),
            "oops",
        ),
        (
            "end-stream/allow-unrecognized-fields",
            r#"{ "error": { "code": "out_of_range", "message": "oops", "foobar": "baz", "details": [ { "type": "google.protobuf.FileDescriptorProto", "value": "Cgp0ZXN0LnByb3Rv", "frob": "nitz", "debug": { "name": "test.proto", "foobar": true } } ] } }"#,
            Err(Code::OutOfRange),
            "oops",
        ),
    ];
    for (name, json, want, message) in cases {
        let out = receive(&envelope(2, json.as_bytes()), None);
        assert!(out.messages.is_empty(), "{name}");
        assert_eq!(out.result, want, "{name}");
        if let Some(e) = out.error {
            assert_eq!(e.message(), message, "{name}");
            assert!(e.is_wire(), "{name}");
            if name.ends_with("fields") {
                assert_eq!(&e.details()[0].value()[..], DETAIL_VALUE);
            }
        }
    }
}

// ---- client_http_to_rpc_code.yaml (14) ----------------------------------------------------

#[test]
fn http_to_rpc_code_cases() {
    let cases = [
        ("bad-request", 400, Code::Internal),
        ("unauthorized", 401, Code::Unauthenticated),
        ("forbidden", 403, Code::PermissionDenied),
        ("not-found", 404, Code::Unimplemented),
        ("conflict", 409, Code::Unknown),
        ("precondition-failed", 412, Code::Unknown),
        ("payload-too-large", 413, Code::Unknown),
        ("unsupported-media-type", 415, Code::Unknown),
        ("too-many-requests", 429, Code::Unavailable),
        ("request-header-fields-too-large", 431, Code::Unknown),
        ("bad-gateway", 502, Code::Unavailable),
        ("service-unavailable", 503, Code::Unavailable),
        ("gateway-timeout", 504, Code::Unavailable),
        ("http-version-not-supported", 505, Code::Unknown),
    ];
    assert_eq!(cases.len(), 14);
    for (name, status, code) in cases {
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(Code::from_http_status(status), code, "{name}");
        // The raw response has no body at all.
        let err = ConnectError::from_unary_response(status, &HeaderMap::new(), b"");
        assert_eq!(err.code(), code, "{name}");
        assert!(!err.is_wire());
    }
}

// ---- connect_client_compressed_error_endstream.yaml (2) -----------------------------------

const COMPRESSED_ERROR: &str = r#"{ "code": "out_of_range", "message": "oops", "details": [ { "type": "google.protobuf.FileDescriptorProto", "value": "Cgp0ZXN0LnByb3Rv", "debug": { "name": "test.proto" } } ] }"#;

#[test]
fn compressed_error_unary() {
    let mut headers = json_headers();
    headers.insert("content-encoding", HeaderValue::from_static("gzip"));
    let err = ConnectError::from_unary_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &headers,
        &gzip(COMPRESSED_ERROR.as_bytes()),
    );
    assert_eq!(err.code(), Code::OutOfRange);
    assert_eq!(err.message(), "oops");
    assert_eq!(&err.details()[0].value()[..], DETAIL_VALUE);
}

#[test]
fn compressed_error_end_stream() {
    let json = format!(
        r#"{{ "error": {} }}"#,
        COMPRESSED_ERROR.replace("\"oops\",", "\"oops\", \"foobar\": \"baz\",")
    );
    let out = receive(&envelope(3, &gzip(json.as_bytes())), Some("gzip"));
    assert_eq!(out.result, Err(Code::OutOfRange));
    let e = out.error.unwrap();
    assert_eq!(e.message(), "oops");
    assert_eq!(&e.details()[0].value()[..], DETAIL_VALUE);
}

// ---- connect_client_unexpected.yaml (9 body-level cases) ----------------------------------

#[test]
fn unexpected_error_body() {
    // 403 with an application/proto body (an encoded empty UnaryResponse): body ignored.
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/proto"),
    );
    let err = ConnectError::from_unary_response(StatusCode::FORBIDDEN, &headers, b"");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = ConnectError::from_unary_response(StatusCode::FORBIDDEN, &headers, b"\x0a\x00");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[test]
fn client_stream_cardinality_cases() {
    // The end-stream holds an error object at the *top level*: not an error member, so the
    // stream ends successfully, and a client stream with no response is then `unimplemented`
    // (the client's cardinality check; here we verify the frame-level facts it relies on).
    let bogus_end = br#"{ "code": "out_of_range", "message": "oops" }"#;
    let out = receive(&envelope(2, bogus_end), None);
    assert_eq!(
        (out.messages.len(), out.result),
        (0, Ok(())),
        "client-stream/ok-but-no-response"
    );

    let mut body = envelope(0, b"");
    body.extend(envelope(0, b""));
    body.extend(envelope(2, bogus_end));
    let out = receive(&body, None);
    assert_eq!(
        (out.messages.len(), out.result),
        (2, Ok(())),
        "client-stream/multiple-responses"
    );
}

#[test]
fn no_end_stream_cases() {
    // client-stream/no-end-stream, server-stream/no-end-stream,
    // bidi-stream/half-duplex/no-end-stream: one data message then a clean EOF.
    for name in ["client-stream", "server-stream", "bidi-stream/half-duplex"] {
        let out = receive(&envelope(0, b""), None);
        assert_eq!(
            out.messages.len(),
            1,
            "{name}: the message is still delivered"
        );
        assert_eq!(out.result, Err(Code::Internal), "{name}");
        let src = std::error::Error::source(out.error.as_ref().unwrap()).unwrap();
        assert_eq!(
            src.downcast_ref::<FrameError>(),
            Some(&FrameError::MissingEndStream)
        );
    }
}

#[test]
fn unexpected_compressed_message() {
    // connect-content-encoding: identity, yet flags = 1.
    let mut body = envelope(1, b"\x0a\x0f\x0a\x0dtest response");
    body.extend(envelope(2, b"{}"));
    let out = receive(&body, Some("identity"));
    assert_eq!(out.result, Err(Code::Internal));
    assert!(out.messages.is_empty());
}

#[test]
fn incomplete_message_cases() {
    // server-stream/incomplete-message: one empty message, then a prefix promising 10 bytes
    // followed by only 3.
    let mut body = envelope(0, b"");
    body.extend_from_slice(&[0, 0, 0, 0, 10, 0, 0, 0]);
    let out = receive(&body, None);
    assert_eq!((out.messages.len(), out.result), (1, Err(Code::Internal)));

    // server-stream/incomplete-message-prefix: "AAAAAAAAAAA=" = 8 zero bytes: an empty
    // message, then 3 bytes of the next prefix.
    let out = receive(&[0u8; 8], None);
    assert_eq!((out.messages.len(), out.result), (1, Err(Code::Internal)));
    let src = std::error::Error::source(out.error.as_ref().unwrap()).unwrap();
    assert_eq!(
        src.downcast_ref::<FrameError>(),
        Some(&FrameError::Truncated {
            buffered: 3,
            expected: 5
        })
    );
}

#[cfg(feature = "prost")]
#[test]
fn conformance_detail_decodes_as_file_descriptor_proto() {
    let err = ConnectError::from_unary_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json_headers(),
        COMPRESSED_ERROR.as_bytes(),
    );
    let fd: prost_types::FileDescriptorProto = err.details()[0].decode().unwrap();
    assert_eq!(fd.name.as_deref(), Some("test.proto"));
}

#[test]
fn gzip_decoder_is_reused_across_frames() {
    // Not a conformance case: several compressed frames through one decoder instance.
    let mut body = Vec::new();
    for i in 0..5 {
        body.extend(envelope(1, &gzip(format!("message {i}").as_bytes())));
    }
    body.extend(envelope(2, b"{}"));
    let mut dec = Decoder::new(Direction::Response).compression(Some(Box::new(Gzip::default())));
    let mut buf = BytesMut::from(&body[..]);
    for i in 0..5 {
        let f = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.payload, format!("message {i}").into_bytes());
    }
    assert!(dec.decode(&mut buf).unwrap().unwrap().is_end_stream());
}
