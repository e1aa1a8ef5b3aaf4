//! Arbitrary unary error bodies with arbitrary statuses (optionally marked gzip): never
//! panics, always yields an error with the status recorded, and a wire error survives our
//! writer.
#![no_main]

use cursor_connect_frame::{ConnectError, EndStream};
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [s0, s1, body @ ..] = data else { return };
    let raw = u16::from_le_bytes([*s0, *s1]);
    let Ok(status) = StatusCode::from_u16(100 + raw % 900) else {
        return;
    };
    let mut headers = HeaderMap::new();
    if raw & 0x8000 != 0 {
        headers.insert("content-encoding", HeaderValue::from_static("gzip"));
    }
    let err = ConnectError::from_unary_response(status, &headers, body);
    assert_eq!(err.http_status_seen(), Some(status));
    let _ = err.to_string();
    if err.is_wire() {
        let json = format!(
            "{{\"error\":{}}}",
            String::from_utf8(err.to_json()).unwrap()
        );
        let again = EndStream::parse(json.as_bytes()).unwrap().error.unwrap();
        assert_eq!(again.code(), err.code());
        assert_eq!(again.message(), err.message());
    }
});
