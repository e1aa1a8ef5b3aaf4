//! The workspace's shared HTTP/2 test server (cursor-test-support) plus the one helper that
//! needs this crate's types.
// Not every test binary uses every helper.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub use cursor_test_support::envelope::{end_err, end_ok, split_envelopes};
pub use cursor_test_support::flow::read_body;
pub use cursor_test_support::server::*;

use bytes::Bytes;
use http::HeaderMap;

/// A message envelope (flags 0).
pub fn env(payload: &[u8]) -> Bytes {
    cursor_test_support::envelope::message(payload)
}

/// An envelope with the given flags.
pub fn env_flags(flags: u8, payload: &[u8]) -> Bytes {
    cursor_test_support::envelope::envelope(flags, payload)
}

/// Opens a server-streaming call with no extra headers, an empty request and default options:
/// the shape most fault tests need before they look at what the server sends back.
pub async fn open_server_stream(
    ch: &cursor_connect_h2::Channel,
    path: &str,
) -> cursor_connect_h2::RecvHalf {
    ch.server_stream(
        path,
        HeaderMap::new(),
        Bytes::new(),
        cursor_connect_h2::CallOptions::default(),
    )
    .await
    .expect("server stream opens")
}
