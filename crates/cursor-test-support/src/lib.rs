//! Test machinery shared by the workspace's tests, benches and examples; never published and
//! only ever a dev-dependency (like h2's `h2-support`).
//!
//! * [`envelope`]: Connect envelopes built from raw bytes (`flags`, big-endian length,
//!   payload), end-stream bodies, and the reverse split.
//! * [`server`]: the one in-process HTTP/2 test server, with fault injection (resets, GOAWAY,
//!   socket drops, tiny windows), plus a raw-frame peer for frames `h2` will not produce.
//! * [`flow`]: a flow-controlled [`flow::send_all`] and a capacity-releasing body reader.
//! * [`vectors`]: the captured Cursor wire vectors, stored once in `vectors/`.
//! * `proxy` (feature `proxy`): cursor-proxy started in-process on cursor-mock backends.
//!
//! Everything but `proxy` is generic over bytes, `http` and `h2` and depends on no crate of
//! this workspace, so any crate's tests can use it without a second copy of their own types;
//! see the README for why.
//!
//! ```
//! use cursor_test_support::envelope::{envelope, split_envelopes};
//! let wire = [envelope(0, b"a"), envelope(0, b"bc")].concat();
//! assert_eq!(split_envelopes(&wire), vec![&b"a"[..], &b"bc"[..]]);
//! ```
#![forbid(unsafe_code)]

pub mod envelope;
pub mod flow;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod server;
pub mod vectors;
