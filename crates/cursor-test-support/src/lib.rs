//! Test machinery shared by the workspace's tests, benches and examples; never published and
//! only ever a dev-dependency (like h2's `h2-support`).
//!
//! * [`envelope`]: Connect envelopes built from raw bytes (`flags`, big-endian length,
//!   payload), end-stream bodies, and the reverse split.
//! * [`server`]: the one in-process HTTP/2 test server, with fault injection (resets, GOAWAY,
//!   socket drops, tiny windows), plus a raw-frame peer for frames `h2` will not produce.
//! * [`flow`]: a flow-controlled [`flow::send_all`] and a capacity-releasing body reader.
//! * [`vectors`]: the captured Cursor wire vectors, stored once in `vectors/`.
//! * `frame_drivers` (feature `frame`): one wire through both frame decoders in given pieces,
//!   shared by the frame crate's property tests and the fuzz target.
//! * [`report`]: bench report lines, printed and appended to `BENCH_REPORT`.
//! * `proxy` (feature `proxy`): cursor-proxy started in-process on cursor-mock backends, or as
//!   its binary in a child process (with a private `redis-server`), and the HTTP/1.1 caller its
//!   tests share.
//!
//! Everything but `proxy` and `frame_drivers` is generic over bytes, `http` and `h2` and
//! depends on no crate of this workspace, so any crate's tests can use it without a second copy
//! of their own types; see the README for why. `server` (default) gates everything async, so
//! the fuzz workspace can take the drivers without building h2 and tokio.
//!
//! ```
//! use cursor_test_support::envelope::{envelope, split_envelopes};
//! let wire = [envelope(0, b"a"), envelope(0, b"bc")].concat();
//! assert_eq!(split_envelopes(&wire), vec![&b"a"[..], &b"bc"[..]]);
//! ```
#![forbid(unsafe_code)]

pub mod envelope;
#[cfg(feature = "server")]
pub mod flow;
#[cfg(feature = "frame")]
pub mod frame_drivers;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod report;
#[cfg(feature = "server")]
pub mod server;
pub mod vectors;
