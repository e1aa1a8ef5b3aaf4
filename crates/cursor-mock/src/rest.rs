//! The plain HTTP (non-Connect) endpoints Cursor's SDK calls before a turn: the API-key
//! exchange and the model list. Facts from `reference/cursor-sdk-peer.md` ("Running it here").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use cursor_connect_frame::Code;

use crate::error_spec::ErrorSpec;
use crate::server::Shared;
use crate::unary::Reply;

/// `POST`: trades the SDK's API key (`Authorization: Bearer <key>`) for an access token.
pub const EXCHANGE_API_KEY_PATH: &str = "/auth/exchange_user_api_key";
/// `GET`: the models a local agent may name, `{"items": [{"id", "aliases"}]}`.
pub const MODELS_PATH: &str = "/v1/models";

/// Whether `path` is one of these endpoints.
pub(crate) fn serves(path: &str) -> bool {
    path == EXCHANGE_API_KEY_PATH || path == MODELS_PATH
}

/// The answer to one request on these endpoints.
pub(crate) fn answer(
    shared: &Shared,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> Reply {
    match (method.as_str(), path) {
        ("POST", EXCHANGE_API_KEY_PATH) => exchange_api_key(headers),
        ("GET", MODELS_PATH) => models(shared),
        _ => Reply::error(
            &ErrorSpec::new(
                Code::Unimplemented,
                format!("cursor-mock does not serve {method} {path}"),
            ),
            Some(http::StatusCode::METHOD_NOT_ALLOWED),
        ),
    }
}

fn exchange_api_key(headers: &http::HeaderMap) -> Reply {
    let key = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    if key.is_empty() {
        let error = ErrorSpec::new(Code::Unauthenticated, "missing API key");
        return Reply::error(&error, Some(http::StatusCode::UNAUTHORIZED));
    }
    let body = serde_json::json!({ "accessToken": access_token(Duration::from_secs(86_400), 0) });
    Reply::ok("application/json", Bytes::from(body.to_string()))
}

/// A JWT-shaped token (unsigned: nothing verifies it) whose claims a client may read: a subject,
/// an expiry `lifetime` ahead and a serial (`jti`, so tokens minted in one second differ).
pub(crate) fn access_token(lifetime: Duration, serial: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let b64 = |value: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let header = b64(serde_json::json!({ "alg": "HS256", "typ": "JWT" }));
    let claims = b64(serde_json::json!({
        "sub": "auth0|cursor-mock-user",
        "iss": "https://authentication.cursor.sh",
        "iat": now,
        "exp": now + lifetime.as_secs(),
        "jti": serial,
    }));
    format!("{header}.{claims}.cursor-mock")
}

/// The mock's models, then every scenario name (built-in and registered), because the SDK
/// refuses a model it does not find here before it opens a turn, and tests pick scenarios by
/// model id.
fn models(shared: &Shared) -> Reply {
    let mut named: Vec<&str> = shared.named.keys().map(String::as_str).collect();
    named.sort_unstable();
    let mut items: Vec<serde_json::Value> = crate::wire::unary::MODELS
        .iter()
        .map(|(id, name, _)| serde_json::json!({ "id": id, "aliases": [], "displayName": name }))
        .collect();
    let scenarios = crate::scenario::names::ALL.iter().copied().chain(named);
    items.extend(
        scenarios.map(|id| serde_json::json!({ "id": id, "aliases": [], "displayName": id })),
    );
    let body = serde_json::json!({ "items": items });
    Reply::ok("application/json", Bytes::from(body.to_string()))
}
