//! Unary Connect calls: a bare (optionally compressed) request body, a bare response body on
//! 200, a JSON Connect error otherwise.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Code, ConnectError, Decoder, Direction, Flags, compression_for};
use h2::client::ResponseFuture;
use http::{HeaderMap, StatusCode};

use crate::call::Call;
use crate::channel::{Channel, Shape};
use crate::error::{Error, ErrorKind};
use crate::options::CallOptions;
use crate::recv::{header_str, media_type, read_limited, wait};

/// Most bytes read from a non-200 unary body (a Connect error JSON is small).
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// A successful unary response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnaryResponse {
    /// Response headers (Connect unary trailers arrive here as `trailer-*` headers).
    pub headers: HeaderMap,
    /// The response message, decompressed, and unwrapped if the server put it in a Connect
    /// envelope (see [`Channel::unary`]).
    pub message: Bytes,
}

/// Resets the stream if the unary future is dropped (or fails) before the call ended.
struct ResetOnDrop(Arc<Call>);

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        self.0.reset(h2::Reason::CANCEL);
    }
}

impl Channel {
    /// Makes a unary call. Every failure, local or remote, is a `ConnectError`; transport
    /// failures keep their cause as data (`ConnectError::transport_cause`).
    ///
    /// Unary answers are bare messages, but some servers wrap them in a Connect envelope
    /// anyway. A body that is exactly one plain envelope (flags 0, length matching the rest of
    /// the body) is unwrapped. This is unambiguous for both codecs: a protobuf message never
    /// starts with byte 0 (field number 0 is invalid), and JSON text never does either.
    pub async fn unary(
        &self,
        path: &str,
        headers: HeaderMap,
        message: Bytes,
        opts: CallOptions,
    ) -> Result<UnaryResponse, ConnectError> {
        let body = match opts.send_compression.compression() {
            None => message,
            Some(mut c) => {
                let mut out = Vec::new();
                c.compress(&message, &mut out)?;
                Bytes::from(out)
            }
        };
        let (call, response) = self.start(path, headers, &opts, Shape::Unary).await?;
        let guard = ResetOnDrop(call.clone());
        let send = call.write(body, true);
        let recv = read_response(&call, response, &opts);
        tokio::pin!(send, recv);
        let mut sending = true;
        let result = loop {
            tokio::select! {
                // A failed send resets the stream, and the response side then reports the
                // typed cause, so only the response decides the outcome.
                _ = &mut send, if sending => sending = false,
                r = &mut recv => break r,
            }
        };
        if result.is_ok() && !sending {
            call.finish();
        }
        drop(guard);
        result
    }
}

async fn read_response(
    call: &Call,
    response: ResponseFuture,
    opts: &CallOptions,
) -> Result<UnaryResponse, ConnectError> {
    let resp = match wait(call, opts.idle_timeout, response).await? {
        Ok(r) => r,
        Err(e) => return Err(call.stream_error(e).await.into()),
    };
    call.mark_started();
    let (parts, mut body) = resp.into_parts();
    let encoding = header_str(&parts.headers, "content-encoding").to_owned();
    if parts.status != StatusCode::OK {
        // from_unary_response inflates a gzip body itself and falls back to the status.
        let raw = read_limited(call, opts.idle_timeout, body, ERROR_BODY_LIMIT).await;
        return Err(ConnectError::from_unary_response(
            parts.status,
            &parts.headers,
            &raw,
        ));
    }
    let ct = header_str(&parts.headers, "content-type");
    let want = opts.unary_content_type();
    // REST endpoints answer e.g. `application/json; charset=utf-8`: compare media types.
    if !media_type(ct).eq_ignore_ascii_case(want) {
        return Err(ConnectError::new(
            Code::Internal,
            format!("unexpected response content-type {ct:?} (wanted {want})"),
        )
        .with_http_status(parts.status));
    }
    let limit = opts.max_message_size;
    let mut raw = BytesMut::new();
    loop {
        match wait(call, opts.idle_timeout, body.data()).await? {
            Some(Ok(chunk)) => {
                // An empty DATA frame carries no output of the server.
                if !chunk.is_empty() {
                    call.mark_data();
                }
                let _ = body.flow_control().release_capacity(chunk.len());
                if raw.len() + chunk.len() > limit {
                    return Err(ConnectError::new(
                        Code::ResourceExhausted,
                        format!("unary response larger than the limit of {limit} bytes"),
                    ));
                }
                raw.extend_from_slice(&chunk);
            }
            Some(Err(e)) => return Err(call.stream_error(e).await.into()),
            None => break,
        }
    }
    let message = if encoding.is_empty() || encoding == "identity" {
        raw.freeze()
    } else {
        Bytes::from(decompress(&encoding, &raw, limit)?)
    };
    Ok(UnaryResponse {
        headers: parts.headers,
        message: strip_envelope(message),
    })
}

/// Unwraps a body that is exactly one plain Connect envelope (see [`Channel::unary`]); any
/// other body is returned as it is. The frame crate's decoder parses it, so the envelope
/// rules live in one place.
fn strip_envelope(body: Bytes) -> Bytes {
    if body.first() != Some(&0) {
        return body;
    }
    let mut buf = BytesMut::from(body.clone());
    match Decoder::new(Direction::Request)
        .max_message_size(usize::MAX)
        .decode_eof(&mut buf)
    {
        Ok(Some(frame)) if buf.is_empty() && frame.flags == Flags::NONE => frame.payload,
        _ => body,
    }
}

fn decompress(encoding: &str, raw: &[u8], limit: usize) -> Result<Vec<u8>, ConnectError> {
    let mut c = compression_for(encoding).ok_or_else(|| {
        ConnectError::from(
            Error::new(ErrorKind::Protocol).detail(format!("unsupported encoding {encoding:?}")),
        )
    })?;
    let mut out = Vec::new();
    c.decompress(raw, &mut out, limit)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_stripping() {
        let raw = Bytes::from_static(&[0x0a, 0x01, b'x']);
        assert_eq!(strip_envelope(raw.clone()), raw);
        let wrapped = Bytes::from_static(&[0, 0, 0, 0, 3, 0x0a, 0x01, b'x']);
        assert_eq!(strip_envelope(wrapped), raw);
        let wrong_len = Bytes::from_static(&[0, 0, 0, 0, 9, 0x0a]);
        assert_eq!(strip_envelope(wrong_len.clone()), wrong_len);
        let trailing = Bytes::from_static(&[0, 0, 0, 0, 1, 0x0a, 0x01]);
        assert_eq!(strip_envelope(trailing.clone()), trailing);
        let short = Bytes::from_static(&[0, 0, 0]);
        assert_eq!(strip_envelope(short.clone()), short);
        let empty = Bytes::from_static(&[0, 0, 0, 0, 0]);
        assert_eq!(strip_envelope(empty), Bytes::new());
        let json = Bytes::from_static(b"{}");
        assert_eq!(strip_envelope(json.clone()), json);
    }
}
