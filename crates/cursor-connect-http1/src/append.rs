//! `BidiAppend`: each client message of an HTTP/1.1 shim call is its own unary call, bound to
//! the stream by the request id and ordered by `append_seqno` (from 0, no gaps).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cursor_connect_frame::{Code, ConnectError, TransportCause, TransportKind};
use http::HeaderMap;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::channel::Channel;

/// How a client message is carried in a `BidiAppendRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AppendEncoding {
    /// Field 1 `data`: lowercase hex of the serialized message, as Cursor's SDK and CLI send.
    #[default]
    Hex,
    /// Field 4 `data_binary`: the serialized message as bytes (newer servers).
    Binary,
}

/// Settings of the append side of a shim call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppendOptions {
    /// How messages are carried (hex by default).
    pub encoding: AppendEncoding,
    /// Appends in flight at once; `send` waits for a slot beyond it (default 16, the CLI's).
    pub max_in_flight: usize,
    /// The fixed part of each append's deadline (default 60 s, the CLI's).
    pub deadline_base: Duration,
    /// Bytes per extra second of deadline (default 128 KiB, the CLI's), counted on the
    /// encoded body (hex doubles it).
    pub deadline_bytes_per_sec: u64,
    /// Attempts per append when the connection fails (each reuses its seqno; default 3).
    pub attempts: u32,
}

impl Default for AppendOptions {
    fn default() -> Self {
        Self {
            encoding: AppendEncoding::Hex,
            max_in_flight: 16,
            deadline_base: Duration::from_secs(60),
            deadline_bytes_per_sec: 128 << 10,
            attempts: 3,
        }
    }
}

impl AppendOptions {
    /// The deadline of one append carrying `len` encoded bytes (60 s + ⌈len / 128 KiB⌉ s by
    /// default).
    pub fn deadline_for(&self, len: usize) -> Duration {
        let per = self.deadline_bytes_per_sec.max(1);
        let extra = (len as u64).div_ceil(per);
        self.deadline_base + Duration::from_secs(extra)
    }
}

/// Sends the client messages of one shim call as `BidiAppend` calls.
///
/// [`send`](Appender::send) assigns the next seqno and starts the append without waiting for
/// its answer (at most [`AppendOptions::max_in_flight`] at once). An append that fails, after
/// its retries, fails the whole call: the error is returned by the next `send` and ends the
/// paired [`ServerStream`](crate::ServerStream) at once. Dropping the appender aborts the
/// appends in flight.
pub struct Appender {
    channel: Channel,
    path: String,
    headers: HeaderMap,
    request_id: String,
    next_seqno: i64,
    opts: AppendOptions,
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
    fault: Arc<watch::Sender<Option<ConnectError>>>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("request_id", &self.request_id)
            .field("next_seqno", &self.next_seqno)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Appender {
    pub(crate) fn new(
        channel: Channel,
        path: &str,
        headers: HeaderMap,
        request_id: String,
        opts: AppendOptions,
        fault: watch::Sender<Option<ConnectError>>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(opts.max_in_flight.max(1)));
        Self {
            channel,
            path: path.to_owned(),
            headers,
            request_id,
            next_seqno: 0,
            opts,
            slots,
            tasks: JoinSet::new(),
            fault: Arc::new(fault),
        }
    }

    /// The seqno the next message gets.
    pub fn next_seqno(&self) -> i64 {
        self.next_seqno
    }

    /// Appends in flight (sent, not yet answered).
    pub fn in_flight(&self) -> usize {
        self.opts
            .max_in_flight
            .max(1)
            .saturating_sub(self.slots.available_permits())
    }

    fn failed(&self) -> Option<ConnectError> {
        self.fault.borrow().clone()
    }

    /// Starts the append of one serialized client message. Waits only for an in-flight slot.
    pub async fn send(&mut self, message: Bytes) -> Result<(), ConnectError> {
        while self.tasks.try_join_next().is_some() {}
        if let Some(e) = self.failed() {
            return Err(e);
        }
        let permit = tokio::select! {
            biased;
            p = self.slots.clone().acquire_owned() => p.map_err(|_| closed())?,
            e = fault_of(&self.fault) => return Err(e),
        };
        let seqno = self.next_seqno;
        self.next_seqno += 1;
        let body = encode_append(self.opts.encoding, &message, &self.request_id, seqno);
        let deadline = self.opts.deadline_for(body.len());
        let (channel, path, headers) = (
            self.channel.clone(),
            self.path.clone(),
            self.headers.clone(),
        );
        let (attempts, fault) = (self.opts.attempts.max(1), self.fault.clone());
        self.tasks.spawn(async move {
            let _permit = permit;
            let call = append_with_retries(&channel, &path, headers, body, deadline, attempts);
            let err = match tokio::time::timeout(deadline, call).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(_) => ConnectError::transport(
                    Code::DeadlineExceeded,
                    format!(
                        "bidi_append_deadline_exceeded: append {seqno} got no answer within {:.1}s",
                        deadline.as_secs_f64()
                    ),
                    TransportCause::new(TransportKind::Timeout),
                ),
            };
            // The first failure is the one reported.
            fault.send_if_modified(|f| {
                if f.is_none() {
                    *f = Some(err);
                    true
                } else {
                    false
                }
            });
        });
        Ok(())
    }

    /// Waits until every append sent so far is acknowledged (each bounded by its deadline);
    /// returns the first failure.
    pub async fn flush(&mut self) -> Result<(), ConnectError> {
        while self.tasks.join_next().await.is_some() {}
        match self.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

async fn append_with_retries(
    channel: &Channel,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
    deadline: Duration,
    attempts: u32,
) -> Result<(), ConnectError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The outer deadline bounds every attempt together.
        let r = channel
            .unary(path, headers.clone(), body.clone(), deadline)
            .await;
        match r {
            Ok(_) => return Ok(()),
            // The server de-duplicates by seqno, so resending after a lost connection is safe.
            Err(e) if e.transport_cause().is_some() && attempt < attempts => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn fault_of(fault: &watch::Sender<Option<ConnectError>>) -> ConnectError {
    let mut rx = fault.subscribe();
    let got = rx
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|v| v.clone());
    match got {
        Some(e) => e,
        // The appender is gone: no more faults can come.
        None => std::future::pending().await,
    }
}

fn closed() -> ConnectError {
    ConnectError::transport(
        Code::Canceled,
        "appender closed",
        TransportCause::new(TransportKind::Closed),
    )
}

/// Protobuf varint.
fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

pub(crate) fn put_len_field(buf: &mut BytesMut, tag: u8, bytes: &[u8]) {
    buf.put_u8(tag);
    put_varint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

/// `BidiRequestId { string request_id = 1; }`.
pub(crate) fn encode_request_id(request_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(request_id.len() + 4);
    if !request_id.is_empty() {
        put_len_field(&mut buf, 0x0a, request_id.as_bytes());
    }
    buf.freeze()
}

/// `BidiAppendRequest { string data = 1; BidiRequestId request_id = 2; int64 append_seqno = 3;
/// bytes data_binary = 4; }`, fields in number order, defaults omitted (as prost writes it).
pub fn encode_append(
    encoding: AppendEncoding,
    message: &[u8],
    request_id: &str,
    seqno: i64,
) -> Bytes {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = BytesMut::with_capacity(message.len() * 2 + request_id.len() + 24);
    if encoding == AppendEncoding::Hex && !message.is_empty() {
        buf.put_u8(0x0a);
        put_varint(&mut buf, message.len() as u64 * 2);
        for b in message {
            buf.put_u8(HEX[usize::from(b >> 4)]);
            buf.put_u8(HEX[usize::from(b & 0x0f)]);
        }
    }
    put_len_field(&mut buf, 0x12, &encode_request_id(request_id));
    if seqno != 0 {
        buf.put_u8(0x18);
        put_varint(&mut buf, seqno as u64);
    }
    if encoding == AppendEncoding::Binary && !message.is_empty() {
        put_len_field(&mut buf, 0x22, message);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_encoding() {
        let b = encode_append(AppendEncoding::Hex, &[0x3a, 0x00], "id", 0);
        assert_eq!(&b[..], b"\x0a\x043a00\x12\x04\x0a\x02id");
        let b = encode_append(AppendEncoding::Binary, &[7], "id", 300);
        assert_eq!(&b[..], b"\x12\x04\x0a\x02id\x18\xac\x02\x22\x01\x07");
    }

    #[test]
    fn deadlines_grow_with_size() {
        let o = AppendOptions::default();
        assert_eq!(o.deadline_for(0), Duration::from_secs(60));
        assert_eq!(o.deadline_for(1), Duration::from_secs(61));
        assert_eq!(o.deadline_for(256 << 10), Duration::from_secs(62));
    }
}
