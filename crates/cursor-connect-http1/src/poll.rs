//! `RunPoll`: the server's half of a shim call as a series of long polls. Each poll is a
//! server-streaming call whose body is an enveloped `BidiPollRequest{request_id,
//! start_request}` and whose response is a Connect stream of `BidiPollResponse{seqno, data,
//! eof}`; `data` is the lowercase hex of one server message, as `BidiAppend` carries client
//! messages. Sequence numbers run from 0 across polls without gaps or repeats; the message with
//! `eof` is the last, and the end-stream of the poll that carries it is the call's end-stream.
//!
//! Cursor has never been seen answering `RunPoll` (reference/cursor-protocol.md §1.4: server
//! behaviour unverified), so this reading of the messages is ours; cursor-mock serves the
//! same. A poll that ends cleanly before `eof` is simply followed by the next one.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cursor_connect_frame::{ConnectError, DEFAULT_MAX_MESSAGE_SIZE};
use http::HeaderMap;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::append::{encode_request_id, put_len_field};
use crate::channel::Channel;
use crate::error::{Error, ErrorKind};
use crate::stream::{ServerStream, StreamOptions, wait_fault};

/// Settings of the polling side of a shim call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollOptions {
    /// Bound on one poll, from the request to its end-stream (default 90 s: longer than any
    /// long-poll window a server holds a poll open for).
    pub poll_timeout: Duration,
    /// Pause before the next poll when one brought no message (default 100 ms), so a server
    /// that answers empty polls at once is not polled in a busy loop.
    pub empty_poll_delay: Duration,
    /// Largest message accepted, decompressed (default 4 MiB); a `BidiPollResponse` carries
    /// its message in hex, so this bounds the poll message, twice the server message.
    pub max_message_size: usize,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            poll_timeout: Duration::from_secs(90),
            empty_poll_delay: Duration::from_millis(100),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// One decoded `BidiPollResponse`.
#[derive(Debug, Default, PartialEq, Eq)]
struct PollMessage {
    seqno: i64,
    data: Bytes,
    eof: bool,
}

/// The current poll and when it must be over.
struct Poll {
    stream: ServerStream,
    due: Instant,
    messages: u64,
}

/// Receives the server's messages of a shim call by polling (`RunPoll`).
///
/// [`message`](PollStream::message) has the contract of [`ServerStream::message`]: every
/// message in order, `Ok(None)` only after `eof` and a clean end-stream, and one sticky error
/// otherwise. Besides the stream's own errors it fails with [`ErrorKind::PollGap`] when a
/// seqno is skipped, [`ErrorKind::DuplicateSeqno`] when one repeats, and
/// [`ErrorKind::Deadline`] when a poll outlives [`PollOptions::poll_timeout`]. A failed append
/// of the same call ends it at once.
pub struct PollStream {
    channel: Channel,
    path: String,
    headers: HeaderMap,
    request_id: String,
    opts: PollOptions,
    current: Option<Poll>,
    polls: u64,
    next_seqno: i64,
    eof: bool,
    fault: Option<watch::Receiver<Option<ConnectError>>>,
    sticky: Option<ConnectError>,
    ended: bool,
}

impl std::fmt::Debug for PollStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollStream")
            .field("request_id", &self.request_id)
            .field("polls", &self.polls)
            .field("next_seqno", &self.next_seqno)
            .field("sticky", &self.sticky)
            .finish_non_exhaustive()
    }
}

impl PollStream {
    pub(crate) fn new(
        channel: Channel,
        path: &str,
        headers: HeaderMap,
        request_id: String,
        opts: PollOptions,
        fault: Option<watch::Receiver<Option<ConnectError>>>,
    ) -> Self {
        let mut s = Self {
            channel,
            path: path.to_owned(),
            headers,
            request_id,
            opts,
            current: None,
            polls: 0,
            next_seqno: 0,
            eof: false,
            fault,
            sticky: None,
            ended: false,
        };
        // The first poll goes out at once, before the first append, as the stream does.
        s.start_poll();
        s
    }

    /// Polls made so far (the first one included).
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// The seqno the next message must carry.
    pub fn next_seqno(&self) -> i64 {
        self.next_seqno
    }

    fn start_poll(&mut self) {
        let body = encode_poll_request(&self.request_id, self.polls == 0);
        let opts = StreamOptions {
            head_timeout: self.opts.poll_timeout,
            idle_timeout: None,
            max_message_size: self.opts.max_message_size,
            first_byte_timeout: None,
        };
        let stream = ServerStream::start(
            &self.channel,
            &self.path,
            self.headers.clone(),
            &body,
            opts,
            None,
        );
        self.polls += 1;
        self.current = Some(Poll {
            stream,
            due: Instant::now() + self.opts.poll_timeout,
            messages: 0,
        });
    }

    /// The next server message; `Ok(None)` only after `eof` and a clean end-stream.
    pub async fn message(&mut self) -> Result<Option<Bytes>, ConnectError> {
        if let Some(e) = &self.sticky {
            return Err(e.clone());
        }
        if self.ended {
            return Ok(None);
        }
        let mut fault = self.fault.clone();
        let r = match fault.as_mut() {
            Some(f) => {
                tokio::select! {
                    biased;
                    r = self.next() => r,
                    e = wait_fault(f) => Err(e),
                }
            }
            None => self.next().await,
        };
        match &r {
            Err(e) => {
                self.sticky = Some(e.clone());
                self.current = None;
            }
            Ok(None) => self.ended = true,
            Ok(Some(_)) => {}
        }
        r
    }

    async fn next(&mut self) -> Result<Option<Bytes>, ConnectError> {
        loop {
            let Some(poll) = self.current.as_mut() else {
                return Err(Error::new(ErrorKind::Closed)
                    .detail("poll stream already ended")
                    .into());
            };
            let (due, n) = (poll.due, self.polls);
            let got = tokio::time::timeout_at(due, poll.stream.message())
                .await
                .map_err(|_| {
                    Error::new(ErrorKind::Deadline).detail(format!(
                        "poll_deadline_exceeded: poll {n} did not end within {:.1}s",
                        self.opts.poll_timeout.as_secs_f64()
                    ))
                })?;
            match got? {
                Some(raw) => {
                    poll.messages += 1;
                    let m = decode_poll_response(&raw)?;
                    if let Some(data) = self.accept(m)? {
                        return Ok(Some(data));
                    }
                }
                None if self.eof => {
                    self.current = None;
                    return Ok(None);
                }
                None => {
                    // The long-poll window closed before the end: poll again.
                    let empty = poll.messages == 0;
                    self.current = None;
                    if empty {
                        tokio::time::sleep(self.opts.empty_poll_delay).await;
                    }
                    self.start_poll();
                }
            }
        }
    }

    /// Checks one poll message's place in the sequence; `Some` is a message to hand out.
    fn accept(&mut self, m: PollMessage) -> Result<Option<Bytes>, Error> {
        if self.eof {
            return Err(Error::new(ErrorKind::Protocol)
                .response_started(true)
                .detail(format!("poll message {} after eof", m.seqno)));
        }
        if m.seqno < self.next_seqno {
            return Err(Error::new(ErrorKind::DuplicateSeqno)
                .response_started(true)
                .detail(format!(
                    "seqno {} again (expected {})",
                    m.seqno, self.next_seqno
                )));
        }
        if m.seqno > self.next_seqno {
            return Err(Error::new(ErrorKind::PollGap)
                .response_started(true)
                .detail(format!(
                    "seqno {} after {}: {} message(s) missing",
                    m.seqno,
                    self.next_seqno - 1,
                    m.seqno - self.next_seqno
                )));
        }
        self.next_seqno += 1;
        if m.eof {
            self.eof = true;
            // An eof marker alone carries no message.
            if m.data.is_empty() {
                return Ok(None);
            }
        }
        Ok(Some(m.data))
    }
}

/// `BidiPollRequest { BidiRequestId request_id = 1; optional bool start_request = 2; }`
/// (`start_request` written only on the first poll).
pub fn encode_poll_request(request_id: &str, start: bool) -> Bytes {
    let mut buf = BytesMut::with_capacity(request_id.len() + 8);
    put_len_field(&mut buf, 0x0a, &encode_request_id(request_id));
    if start {
        buf.put_slice(&[0x10, 0x01]);
    }
    buf.freeze()
}

fn bad(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol)
        .response_started(true)
        .detail(format!("undecodable BidiPollResponse: {}", detail.into()))
}

fn varint(buf: &mut &[u8]) -> Result<u64, Error> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some((&b, rest)) = buf.split_first() else {
            return Err(bad("truncated varint"));
        };
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint longer than 10 bytes"))
}

fn take<'a>(buf: &mut &'a [u8], n: u64) -> Result<&'a [u8], Error> {
    let n = usize::try_from(n).map_err(|_| bad("length overflows"))?;
    if buf.len() < n {
        return Err(bad("field longer than the message"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn unhex(text: &[u8]) -> Result<Bytes, Error> {
    if !text.len().is_multiple_of(2) {
        return Err(bad("data has an odd number of hex digits"));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(bad("data is not hex")),
    };
    let mut out = BytesMut::with_capacity(text.len() / 2);
    for pair in text.chunks_exact(2) {
        out.put_u8(digit(pair[0])? << 4 | digit(pair[1])?);
    }
    Ok(out.freeze())
}

/// `BidiPollResponse { int64 seqno = 1; string data = 2; optional bool eof = 3; }`; unknown
/// fields are skipped, as protobuf readers must.
fn decode_poll_response(raw: &[u8]) -> Result<PollMessage, Error> {
    let mut m = PollMessage::default();
    let mut buf = raw;
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, 0) => m.seqno = varint(&mut buf)? as i64,
            (2, 2) => {
                let n = varint(&mut buf)?;
                m.data = unhex(take(&mut buf, n)?)?;
            }
            (3, 0) => m.eof = varint(&mut buf)? != 0,
            (0, _) => return Err(bad("field number 0")),
            (_, 0) => {
                varint(&mut buf)?;
            }
            (_, 1) => {
                take(&mut buf, 8)?;
            }
            (_, 2) => {
                let n = varint(&mut buf)?;
                take(&mut buf, n)?;
            }
            (_, 5) => {
                take(&mut buf, 4)?;
            }
            (f, w) => return Err(bad(format!("field {f} has wire type {w}"))),
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_request_encoding() {
        assert_eq!(
            &encode_poll_request("id", true)[..],
            b"\x0a\x04\x0a\x02id\x10\x01"
        );
        assert_eq!(&encode_poll_request("id", false)[..], b"\x0a\x04\x0a\x02id");
    }

    #[test]
    fn poll_response_decoding() {
        let m = decode_poll_response(b"\x08\x05\x12\x040a0B\x18\x01\x28\x07").unwrap();
        assert_eq!(
            m,
            PollMessage {
                seqno: 5,
                data: Bytes::from_static(&[0x0a, 0x0b]),
                eof: true
            }
        );
        assert!(decode_poll_response(b"\x12\x03abc").is_err());
        assert!(decode_poll_response(b"\x12\x09ab").is_err());
        assert!(decode_poll_response(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").is_err());
        assert!(decode_poll_response(b"\x0f").is_err());
    }
}
