//! HTTP/1.1 connections (TLS with ALPN `http/1.1`, or cleartext without the HTTP/2 preface):
//! the REST endpoints and Connect unary calls, as Cursor's SDK makes them with `fetch`, and
//! the HTTP/1.1 shim: `RunSSE` or `RunPoll` plus `BidiAppend`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::Code;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error_spec::ErrorSpec;
use crate::record::MessageKind;
use crate::server::{SCENARIO_HEADER, Shared};
use crate::unary::{MAX_UNARY_BODY, Reply};

/// Serves one HTTP/1.1 connection until the peer closes it.
pub(crate) async fn serve<T>(io: T, shared: Arc<Shared>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { handle(&shared, request).await }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), service);
    let _ = connection.await;
}

/// A response body: a whole answer, or a RunSSE stream.
type Body = BoxBody<Bytes, std::io::Error>;

/// Answers one request. `Err` aborts the connection (a RunSSE scenario that resets the stream
/// before any header).
async fn handle(
    shared: &Arc<Shared>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Body>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let call = shared.recorder.start_call(&path, parts.headers.clone());
    let limit = shared.settings.reply_timeout;
    let body = match tokio::time::timeout(limit, Limited::new(body, MAX_UNARY_BODY).collect()).await
    {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(ErrorSpec::new(
            Code::ResourceExhausted,
            format!("request body unreadable or over {MAX_UNARY_BODY} bytes: {e}"),
        )),
        Err(_) => Err(ErrorSpec::new(
            Code::DeadlineExceeded,
            "request body did not arrive",
        )),
    };
    let reply = if let Some((poll, kind)) = shim_stream(&path) {
        let answer = match body {
            Ok(body) if poll => {
                crate::poll::run_poll(shared, call, &parts.headers, body, kind).await
            }
            Ok(body) => crate::sse::run_sse(shared, call, &parts.headers, body, kind).await,
            Err(error) => crate::sse::SseAnswer::Reply(Reply::error(&error, None)),
        };
        match answer {
            crate::sse::SseAnswer::Reply(reply) => reply,
            crate::sse::SseAnswer::Stream(frames) => return Ok(streaming(frames)),
            crate::sse::SseAnswer::Abort => {
                return Err(std::io::Error::other("cursor-mock reset the stream"));
            }
        }
    } else if path == cursor_proto::paths::AISERVER_BIDI_APPEND.path {
        match body {
            Ok(body) => {
                shared
                    .recorder
                    .push(call, MessageKind::UnaryRequest, body.clone());
                crate::sse::bidi_append(shared, call, body).await
            }
            Err(error) => Reply::error(&error, None),
        }
    } else if crate::rest::serves(&path) {
        if let Ok(body) = &body {
            shared
                .recorder
                .push(call, MessageKind::UnaryRequest, body.clone());
        }
        crate::rest::answer(shared, &parts.method, &path, &parts.headers)
    } else if crate::oauth::serves(&path) {
        if let Ok(body) = &body {
            shared
                .recorder
                .push(call, MessageKind::UnaryRequest, body.clone());
        }
        crate::oauth::answer(shared, &parts.method)
    } else if crate::login::serves(&path) {
        crate::login::answer(&parts.method, &parts.uri)
    } else if crate::unary::serves(&path) {
        let scenario = parts
            .headers
            .get(SCENARIO_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        crate::unary::answer(shared, call, &path, &parts.headers, scenario, body)
    } else {
        crate::unary::unexpected(shared, call, &parts.method, &path)
    };
    shared.recorder.update(call, |c| c.finished = true);
    Ok(into_response(reply))
}

/// The shim's stream methods: (polling?, what the turn is).
fn shim_stream(path: &str) -> Option<(bool, crate::sse::TurnKind)> {
    use crate::sse::TurnKind::{Agent, Legacy};
    use cursor_proto::paths as p;
    match path {
        _ if path == p::AGENT_RUN_SSE.path => Some((false, Agent)),
        _ if path == p::AGENT_RUN_POLL.path => Some((true, Agent)),
        _ if path == p::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_SSE.path => Some((false, Legacy)),
        _ if path == p::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_POLL.path => Some((true, Legacy)),
        _ => None,
    }
}

/// `200` with the Connect streaming content type and the turn's body.
fn streaming(frames: tokio::sync::mpsc::Receiver<crate::io::BodyFrame>) -> http::Response<Body> {
    let stream = tokio_stream::wrappers::ReceiverStream::new(frames);
    let mut response = http::Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/connect+proto"),
    );
    response
}

fn into_response(reply: Reply) -> http::Response<Body> {
    let mut builder = http::Response::builder()
        .status(reply.status)
        .header(http::header::CONTENT_TYPE, reply.content_type);
    for (key, values) in &reply.metadata {
        for value in values {
            builder = builder.header(key.as_str(), value.as_str());
        }
    }
    builder.body(full(reply.body)).unwrap_or_else(|e| {
        // Only a scenario's own metadata can be malformed here; say so instead of a bare 200.
        let mut response =
            http::Response::new(full(Bytes::from(format!("cursor-mock: bad reply: {e}"))));
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}
