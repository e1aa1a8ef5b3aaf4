//! Sans-IO Connect protocol envelopes: framing, compression, end-stream and error JSON.
//!
//! A Connect stream is a sequence of envelopes, `flags:u8 | len:u32 BE | payload`. This crate
//! decodes and encodes them without doing any I/O:
//!
//! * [`Decoder`] (over a `BytesMut`) and [`ChunkDecoder`] (over `Bytes` chunks, zero-copy)
//!   check flags by [`Direction`], check the declared length against a limit before buffering
//!   anything, inflate compressed payloads within the same limit, and fail sticky.
//! * [`Encoder`] writes envelopes into a caller's `BytesMut`, compressing only when it helps.
//! * [`Compression`] is the per-message compression trait; [`Gzip`] implements it over
//!   flate2's pure-Rust zlib-rs backend. [`Encoding`] and [`Codec`] are the typed names a
//!   call negotiates (`gzip`/`identity`, `proto`/`json`), so transports never take strings.
//! * [`EndStream`] parses and writes the end-stream JSON, [`ConnectError`] is the RPC error
//!   (code, message, details, metadata, origin), [`Code`] the status codes, and [`Reason`]
//!   the HTTP/2 error code a transport failure carries in its [`TransportCause`].
//!
//! ```
//! use bytes::BytesMut;
//! use cursor_connect_frame::{Code, Decoder, Direction, EndStream, Encoder, ConnectError};
//!
//! // A server writes one message and a failing end-stream...
//! let mut wire = BytesMut::new();
//! let mut enc = Encoder::new();
//! enc.encode(b"partial answer", &mut wire)?;
//! let end = EndStream { error: Some(ConnectError::new(Code::ResourceExhausted, "slow down")), ..EndStream::ok() };
//! enc.encode_end_stream(&end, &mut wire)?;
//!
//! // ...and a client decodes them as the bytes arrive.
//! let mut dec = Decoder::new(Direction::Response);
//! let msg = dec.decode(&mut wire)?.expect("complete frame");
//! assert_eq!(&msg.payload[..], b"partial answer");
//! let last = dec.decode(&mut wire)?.expect("end-stream frame");
//! assert!(last.is_end_stream());
//! let err = EndStream::parse(&last.payload)?.into_result().unwrap_err();
//! assert_eq!(err.code(), Code::ResourceExhausted);
//! assert!(err.is_wire());
//! assert_eq!(dec.decode_eof(&mut wire)?, None);
//! # Ok::<(), cursor_connect_frame::FrameError>(())
//! ```
//!
//! # Policies
//!
//! * **Limits.** [`DEFAULT_MAX_MESSAGE_SIZE`] (4 MiB) applies to the declared length, checked at
//!   the header before anything is buffered, and again to the decompressed size, where gzip
//!   inflates at most `limit + 1` bytes. `0` means "empty messages only", never "unlimited".
//! * **Flags.** Reserved bits are rejected ([`FrameError::ReservedFlags`], `internal`), like
//!   tonic and connect-python; the end-stream bit is rejected on requests.
//! * **Ends.** Bytes left at end of input are [`FrameError::Truncated`]; a response without its
//!   end-stream is [`FrameError::MissingEndStream`]; bytes after it are
//!   [`FrameError::DataAfterEndStream`] (all `internal`, as the conformance suite expects).
//!   Errors are sticky.
//! * **JSON.** [`EndStream::parse`] and [`ConnectError::from_unary_response`] follow the
//!   conformance suite's client leniency (see their docs).
//!
//! # Conformance
//!
//! 36 client-parsing cases of the Connect conformance suite are mirrored as table tests in
//! `tests/conformance.rs`: all 11 of `connect_client_error_endstream`, all 14 of
//! `client_http_to_rpc_code`, both of `connect_client_compressed_error_endstream`, and the 9
//! body-level cases of `connect_client_unexpected` (its 4 header-level cases belong to the
//! transport). Real captured Cursor end-streams and frames are tested in `tests/vectors.rs`.
#![forbid(unsafe_code)]

mod base_url;
mod chunk;
mod code;
mod compression;
mod connect_error;
mod decoder;
mod encoder;
mod end_stream;
mod error;
mod frame;
mod metadata;
mod names;
mod reason;

pub use base_url::{BaseUrl, InvalidBaseUrl};
pub use chunk::ChunkDecoder;
pub use code::{Code, UnknownCode};
pub use compression::{Compression, Gzip, compression_for};
pub use connect_error::{ConnectError, ErrorDetail, Origin, TransportCause, TransportKind};
pub use decoder::{DEFAULT_MAX_MESSAGE_SIZE, Decoder};
pub use encoder::{DEFAULT_COMPRESS_MIN_BYTES, Encoder};
pub use end_stream::EndStream;
pub use error::FrameError;
pub use frame::{Direction, Flags, Frame, HEADER_LEN};
pub use metadata::Metadata;
pub use names::{Codec, Encoding};
pub use reason::Reason;

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
