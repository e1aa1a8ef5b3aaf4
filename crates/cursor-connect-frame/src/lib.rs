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
//!   flate2's pure-Rust zlib-rs backend.
//! * [`EndStream`] parses and writes the end-stream JSON, [`ConnectError`] is the RPC error
//!   (code, message, details, metadata, origin), [`Code`] the status codes.
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
#![forbid(unsafe_code)]

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
