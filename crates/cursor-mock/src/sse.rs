//! `RunSSE` and `BidiAppend` over HTTP/1.1: the stream of a turn, and the calls that carry the
//! client's messages into it (see [`crate::bidi`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Code, Decoder, Direction};
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};

use crate::error_spec::ErrorSpec;
use crate::io::{BodyFrame, Out, READ_AHEAD};
use crate::server::{SCENARIO_HEADER, Shared};
use crate::unary::Reply;

/// How long a stalled append (`MockBuilder::stall_appends_from`) goes unanswered.
const STALLED_APPEND: std::time::Duration = std::time::Duration::from_secs(60);

/// What the connection answers to a RunSSE request.
pub(crate) enum SseAnswer {
    /// A plain answer (the request was refused).
    Reply(Reply),
    /// `200` and a streamed body.
    Stream(mpsc::Receiver<BodyFrame>),
    /// The scenario reset the stream before any header: the connection is aborted.
    Abort,
}

/// What a shim stream carries: an agent `Run`, or a legacy ChatService turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnKind {
    Agent,
    Legacy,
}

impl TurnKind {
    /// Starts a turn of this kind for `request_id` (see [`start_turn`]).
    pub(crate) async fn start(
        self,
        shared: &Arc<Shared>,
        call: usize,
        headers: &http::HeaderMap,
        request_id: &str,
    ) -> Result<TurnOutput, Reply> {
        match self {
            Self::Agent => start_turn(shared, call, headers, request_id).await,
            Self::Legacy => crate::legacy::start_turn(shared, call, headers, request_id).await,
        }
    }
}

/// Starts the turn of one RunSSE (or legacy SSE) request and waits for its response headers.
pub(crate) async fn run_sse(
    shared: &Arc<Shared>,
    call: usize,
    headers: &http::HeaderMap,
    body: Bytes,
    kind: TurnKind,
) -> SseAnswer {
    if let Some(refused) = refuse_content_type(headers, "RunSSE") {
        return SseAnswer::Reply(refused);
    }
    let request_id = match bidi_request_id(&body) {
        Ok(id) => id,
        Err(message) => return SseAnswer::Reply(refuse(shared, call, message)),
    };
    let (head_rx, body_rx) = match kind.start(shared, call, headers, &request_id).await {
        Ok(halves) => halves,
        Err(reply) => return SseAnswer::Reply(reply),
    };
    match head_rx.await {
        Ok(()) => SseAnswer::Stream(body_rx),
        Err(_) => SseAnswer::Abort,
    }
}

/// `415` unless the request is a Connect proto stream.
pub(crate) fn refuse_content_type(headers: &http::HeaderMap, method: &str) -> Option<Reply> {
    let content_type = crate::io::header_str(headers, http::header::CONTENT_TYPE.as_str());
    if content_type.starts_with("application/connect+proto") {
        return None;
    }
    let error = ErrorSpec::new(
        Code::Unknown,
        format!("{method} needs application/connect+proto, got {content_type:?}"),
    );
    Some(Reply::error(
        &error,
        Some(http::StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ))
}

/// Records `message` as a violation and answers `invalid_argument` with it.
pub(crate) fn refuse(shared: &Shared, call: usize, message: String) -> Reply {
    shared.recorder.violation(call, message.clone());
    let error = ErrorSpec::new(Code::InvalidArgument, format!("cursor-mock: {message}"));
    Reply::error(&error, None)
}

/// The two ends of a turn's HTTP/1.1 response: `head` fires when the turn sends its headers
/// (dropped unfired: it reset the stream first), `body` carries its bytes.
pub(crate) type TurnOutput = (oneshot::Receiver<()>, mpsc::Receiver<BodyFrame>);

/// Binds `request_id`'s appends to a new turn recorded under `call` and starts it. `Err` is
/// the answer to give (a violation is recorded).
pub(crate) async fn start_turn(
    shared: &Arc<Shared>,
    call: usize,
    headers: &http::HeaderMap,
    request_id: &str,
) -> Result<TurnOutput, Reply> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    if let Err(error) = shared.bidi.claim(shared, request_id, tx, call, false).await {
        shared.recorder.violation(call, error.message().to_owned());
        return Err(Reply::error(&error, None));
    }
    let scenario = headers
        .get(SCENARIO_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (head_tx, head_rx) = oneshot::channel();
    let (body_tx, body_rx) = mpsc::channel(16);
    let out = Out::http1(head_tx, body_tx, shared.settings.write_timeout);
    // Reading cannot be paused on this path (appends are acknowledged one by one).
    let (pause, _) = tokio::sync::watch::channel(false);
    let turn_shared = shared.clone();
    let request_id = request_id.to_owned();
    shared.spawn_turn(async move {
        crate::run::drive(turn_shared.clone(), call, scenario, out, rx, pause, None).await;
        turn_shared.bidi.end(&request_id).await;
        turn_shared.recorder.update(call, |c| c.finished = true);
    });
    Ok((head_rx, body_rx))
}

/// The one enveloped message of a stream request's body (`method` names it in errors).
pub(crate) fn one_envelope(body: &Bytes, method: &str) -> Result<Bytes, String> {
    let mut decoder = Decoder::new(Direction::Request).max_message_size(64 << 10);
    let mut buf = BytesMut::from(body.as_ref());
    let frame = decoder
        .decode_eof(&mut buf)
        .map_err(|e| format!("{method} body is not one Connect envelope: {e}"))?
        .ok_or_else(|| format!("{method} body is empty"))?;
    Ok(frame.payload)
}

/// The request id in a RunSSE body: one enveloped `BidiRequestId`.
fn bidi_request_id(body: &Bytes) -> Result<String, String> {
    let id = ai::BidiRequestId::decode(one_envelope(body, "RunSSE")?)
        .map_err(|e| format!("RunSSE body is not a BidiRequestId: {e}"))?;
    if id.request_id.is_empty() {
        return Err("RunSSE BidiRequestId has an empty request_id".to_owned());
    }
    Ok(id.request_id)
}

/// One `BidiAppend`: the client message goes to its stream in seqno order; the answer is the
/// empty `BidiAppendResponse`.
pub(crate) async fn bidi_append(shared: &Shared, call: usize, body: Bytes) -> Reply {
    let refuse = |message: String| refuse(shared, call, message);
    let request = match ai::BidiAppendRequest::decode(body) {
        Ok(request) => request,
        Err(e) => return refuse(format!("BidiAppend body is not a BidiAppendRequest: {e}")),
    };
    let request_id = request
        .request_id
        .as_ref()
        .map(|r| r.request_id.clone())
        .unwrap_or_default();
    if request_id.is_empty() {
        return refuse("BidiAppend without a request_id".to_owned());
    }
    if let Some(from) = shared.settings.stall_appends_from
        && request.append_seqno >= from
    {
        // A fault for the client's append deadline: no answer until the client gives up.
        tokio::time::sleep(STALLED_APPEND).await;
        return Reply::error(
            &ErrorSpec::new(Code::DeadlineExceeded, "cursor-mock stalled this append"),
            None,
        );
    }
    let payload = match crate::bidi::append_payload(&request) {
        Ok(payload) => payload,
        Err(message) => return refuse(format!("BidiAppend {}: {message}", request.append_seqno)),
    };
    match shared
        .bidi
        .append(shared, &request_id, request.append_seqno, payload)
        .await
    {
        Ok(()) => Reply::ok("application/proto", Bytes::new()),
        Err(error) => {
            shared.recorder.violation(call, error.message().to_owned());
            Reply::error(&error, None)
        }
    }
}
