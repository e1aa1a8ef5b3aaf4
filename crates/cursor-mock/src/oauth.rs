//! `POST /oauth/token`, the refresh-token grant (reference §6.3): answers a new access token
//! whose `exp` is the server's token lifetime ahead (see [`crate::MockBuilder::token_lifetime`])
//! and a rotated refresh token, so a client's refresh ahead of expiry and its keeping of the
//! rotated token can be tested. The presented refresh token is not checked; the request body
//! is recorded (as a `UnaryRequest` message), so a test can see which one was presented.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cursor_connect_frame::Code;
use h2::RecvStream;
use h2::server::SendResponse;

use crate::error_spec::ErrorSpec;
use crate::record::MessageKind;
use crate::server::Shared;
use crate::unary::Reply;

/// The largest grant body read (a refresh token and two short fields).
const MAX_BODY: usize = 64 * 1024;

/// The path of the refresh-token grant.
pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";

/// Whether `path` is the grant.
pub(crate) fn serves(path: &str) -> bool {
    path == OAUTH_TOKEN_PATH
}

/// The grant's answer: `{access_token, refresh_token, shouldLogout: false}`, distinct tokens
/// on every call.
pub(crate) fn answer(shared: &Shared, method: &http::Method) -> Reply {
    if method != http::Method::POST {
        let error = ErrorSpec::new(Code::Unimplemented, format!("{method} {OAUTH_TOKEN_PATH}"));
        return Reply::error(&error, Some(http::StatusCode::METHOD_NOT_ALLOWED));
    }
    let serial = shared.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
    let body = serde_json::json!({
        "access_token": crate::rest::access_token(shared.settings.token_lifetime, serial),
        "refresh_token": format!("mock-refresh-{serial}"),
        "shouldLogout": false,
    });
    Reply::ok("application/json", Bytes::from(body.to_string()))
}

/// The grant over HTTP/2: the body is read (within the reply timeout) and recorded, then
/// answered.
pub(crate) async fn serve_h2(
    shared: &Shared,
    call: usize,
    method: &http::Method,
    body: RecvStream,
    respond: SendResponse<Bytes>,
) {
    let limit = shared.settings.reply_timeout;
    if let Ok(Ok(bytes)) = tokio::time::timeout(limit, crate::io::read_body(body, MAX_BODY)).await {
        shared.recorder.push(call, MessageKind::UnaryRequest, bytes);
    }
    crate::unary::respond_reply(respond, answer(shared, method)).await;
}
