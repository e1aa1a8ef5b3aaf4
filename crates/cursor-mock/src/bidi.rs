//! The HTTP/1.1 shim Cursor's clients fall back to when HTTP/2 is not available: a `RunSSE`
//! server stream carries the server's messages, and each client message arrives in its own
//! unary `BidiAppend` call, bound to the stream by the request id and ordered by
//! `append_seqno` (reference/cursor-protocol.md §1.4).
//!
//! The mock is strict the way the server is described: appends are delivered in seqno order
//! (ahead-of-order ones wait, at most [`MAX_AHEAD`]), a repeated seqno is de-duplicated (a retry
//! reuses its number), an append after the stream ended or for a request id no stream claims
//! within the reply timeout is refused and recorded as a violation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cursor_connect_frame::Code;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error_spec::ErrorSpec;
use crate::io::{Inbound, forward};
use crate::server::Shared;

/// How far ahead of the next expected seqno an append may arrive (the CLI keeps at most 16 in
/// flight).
pub const MAX_AHEAD: i64 = 64;
/// Request ids remembered at once; ended ones are forgotten first.
const MAX_ENTRIES: usize = 256;
/// Bytes of early appends one request id may park (with [`MAX_ENTRIES`], a bound on what
/// clients can make the mock hold).
const MAX_WAITING_BYTES: usize = 4 << 20;

/// The streams by request id.
#[derive(Debug, Default)]
pub(crate) struct BidiTable {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

#[derive(Debug)]
struct Entry {
    /// The RunSSE turn's inbound channel and its recorded call, once the stream is there.
    /// `true`: a legacy ChatService turn, which takes the raw payloads.
    stream: Option<(mpsc::Sender<Inbound>, usize, bool)>,
    /// The next seqno to deliver.
    next: i64,
    /// Appends that came early (ahead of `next`, or before the stream), by seqno.
    waiting: BTreeMap<i64, Bytes>,
    created: Instant,
    ended: bool,
}

impl BidiTable {
    fn entry(&self, request_id: &str) -> Result<Arc<tokio::sync::Mutex<Entry>>, ErrorSpec> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get(request_id) {
            return Ok(entry.clone());
        }
        if entries.len() >= MAX_ENTRIES {
            // Forget finished streams; what is left is live and stays.
            entries.retain(|_, e| e.try_lock().map_or(true, |e| !e.ended));
        }
        if entries.len() >= MAX_ENTRIES {
            return Err(ErrorSpec::new(
                Code::ResourceExhausted,
                format!("more than {MAX_ENTRIES} open BidiAppend request ids"),
            ));
        }
        let entry = Arc::new(tokio::sync::Mutex::new(Entry {
            stream: None,
            next: 0,
            waiting: BTreeMap::new(),
            created: Instant::now(),
            ended: false,
        }));
        entries.insert(request_id.to_owned(), entry.clone());
        Ok(entry)
    }

    /// Binds a RunSSE stream to `request_id` and delivers the appends that came before it.
    pub(crate) async fn claim(
        &self,
        shared: &Shared,
        request_id: &str,
        tx: mpsc::Sender<Inbound>,
        call: usize,
        raw: bool,
    ) -> Result<(), ErrorSpec> {
        let entry = self.entry(request_id)?;
        let mut entry = entry.lock().await;
        if entry.stream.is_some() || entry.ended {
            return Err(ErrorSpec::new(
                Code::AlreadyExists,
                format!("a RunSSE stream already used request id {request_id:?}"),
            ));
        }
        entry.stream = Some((tx, call, raw));
        entry.deliver(shared).await;
        Ok(())
    }

    /// Takes one append. `Err` is the answer to give, and a violation to record.
    pub(crate) async fn append(
        &self,
        shared: &Shared,
        request_id: &str,
        seqno: i64,
        payload: Bytes,
    ) -> Result<(), ErrorSpec> {
        let entry = self.entry(request_id)?;
        let mut entry = entry.lock().await;
        if entry.ended {
            return Err(ErrorSpec::new(
                Code::FailedPrecondition,
                format!("append {seqno} after the end of stream {request_id:?}"),
            ));
        }
        if seqno < entry.next || entry.waiting.contains_key(&seqno) {
            // A retry reuses its seqno: de-duplicated, acknowledged again.
            return Ok(());
        }
        if seqno > entry.next + MAX_AHEAD {
            return Err(ErrorSpec::new(
                Code::InvalidArgument,
                format!(
                    "append_seqno {seqno} is more than {MAX_AHEAD} ahead of {} on {request_id:?}",
                    entry.next
                ),
            ));
        }
        let waited = entry.created.elapsed();
        if entry.stream.is_none() && waited > shared.settings.reply_timeout {
            return Err(ErrorSpec::new(
                Code::NotFound,
                format!(
                    "no RunSSE stream has request id {request_id:?} ({waited:?} after its first append)"
                ),
            ));
        }
        let parked: usize = entry.waiting.values().map(Bytes::len).sum();
        if parked + payload.len() > MAX_WAITING_BYTES {
            return Err(ErrorSpec::new(
                Code::ResourceExhausted,
                format!("more than {MAX_WAITING_BYTES} bytes of early appends on {request_id:?}"),
            ));
        }
        entry.waiting.insert(seqno, payload);
        entry.deliver(shared).await;
        Ok(())
    }

    /// The stream of `request_id` is over: later appends are refused.
    pub(crate) async fn end(&self, request_id: &str) {
        let entry = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(request_id)
            .cloned();
        if let Some(entry) = entry {
            let mut entry = entry.lock().await;
            entry.ended = true;
            entry.stream = None;
            entry.waiting.clear();
        }
    }
}

impl Entry {
    /// Hands the in-order appends to the turn, recording each under the stream's call.
    async fn deliver(&mut self, shared: &Shared) {
        let Some((tx, call, raw)) = self.stream.clone() else {
            return;
        };
        while let Some(payload) = self.waiting.remove(&self.next) {
            self.next += 1;
            let limit = shared.settings.reply_timeout;
            let pass = async {
                if raw {
                    // The legacy turn records what it reads itself.
                    tx.send(Inbound::Raw(payload)).await.is_ok()
                } else {
                    forward(&shared.recorder, call, payload, &tx).await
                }
            };
            let sent = tokio::time::timeout(limit, pass);
            if !matches!(sent.await, Ok(true)) {
                // The turn is gone or stuck; the stream's own deadlines end it.
                return;
            }
        }
    }
}

/// The client message in a `BidiAppendRequest`: `data_binary`, else the hex `data`. Cursor's
/// SDK puts an enveloped message there; older clients the bare message. A protobuf message never
/// starts with 0x00 or 0x01 (field 0 does not exist), so an envelope is told by its first byte.
pub(crate) fn append_payload(
    request: &cursor_proto::aiserver::v1::BidiAppendRequest,
) -> Result<Bytes, String> {
    let raw = if request.data_binary.is_empty() {
        Bytes::from(hex::decode(&request.data).map_err(|e| format!("data is not hex: {e}"))?)
    } else {
        request.data_binary.clone()
    };
    match raw.first() {
        Some(0x00 | 0x01) => {
            if raw.first() == Some(&0x01) {
                return Err("compressed append envelopes are not supported by cursor-mock".into());
            }
            let len = raw
                .get(1..5)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
            match len {
                Some(len) if raw.len() == 5 + len => Ok(raw.slice(5..)),
                _ => Err(format!(
                    "append envelope length does not match its {} bytes",
                    raw.len()
                )),
            }
        }
        _ => Ok(raw),
    }
}
