//! Token endpoints over a real HTTP/2 socket: a tiny h2 server plays Cursor's auth REST calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cursor_connect::auth::{ApiKeyExchange, OAuthRefresh};
use cursor_connect::{Credentials, ErrorKind, TokenSet};
use tokio::net::TcpListener;

/// What the server saw: (path, authorization, body).
type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// Serves the two token endpoints; a key or refresh token containing "bad" gets HTTP 401.
async fn token_server() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                // The connection is driven by accept(); each request is served on its own task.
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(serve(req, respond, seen.clone()));
                }
            });
        }
    });
    (url, seen)
}

async fn serve(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    seen: Seen,
) {
    let (parts, mut body) = req.into_parts();
    let mut data = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = String::from_utf8(data).unwrap();
    seen.lock()
        .unwrap()
        .push((parts.uri.path().to_owned(), auth.clone(), text.clone()));
    let bad = auth.as_deref().unwrap_or("").contains("bad") || text.contains("bad");
    let (status, json) = if bad {
        (
            401,
            r#"{"code":"unauthenticated","message":"bad credentials"}"#,
        )
    } else if parts.uri.path() == "/oauth/token" {
        (
            200,
            r#"{"access_token":"from-oauth","id_token":"x","shouldLogout":false}"#,
        )
    } else {
        (
            200,
            r#"{"accessToken":"from-exchange","refreshToken":"new-rt"}"#,
        )
    };
    let resp = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    if let Ok(mut send) = respond.send_response(resp, false) {
        let _ = send.send_data(Bytes::from_static(json.as_bytes()), true);
    }
}

#[tokio::test]
async fn api_key_exchange_over_http2() {
    let (url, seen) = token_server().await;
    let creds =
        Credentials::api_key("key_live_123").with_refresh(ApiKeyExchange::new(&url).unwrap());
    let token = tokio::time::timeout(Duration::from_secs(10), creds.current())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.secret().expose(), "from-exchange");
    let tokens = creds.tokens().await;
    assert_eq!(tokens.refresh_token.unwrap().expose(), "new-rt");
    assert_eq!(tokens.api_key.unwrap().expose(), "key_live_123");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "/auth/exchange_user_api_key");
    assert_eq!(seen[0].1.as_deref(), Some("Bearer key_live_123"));
    assert_eq!(seen[0].2, "{}");
}

#[tokio::test]
async fn oauth_refresh_over_http2() {
    let (url, seen) = token_server().await;
    let creds = Credentials::from_tokens(TokenSet::default().with_refresh_token("rt-1"))
        .with_refresh(OAuthRefresh::new(&url).unwrap());
    let token = tokio::time::timeout(Duration::from_secs(10), creds.current())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.secret().expose(), "from-oauth");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/oauth/token");
    assert_eq!(seen[0].1, None);
    let body: serde_json::Value = serde_json::from_str(&seen[0].2).unwrap();
    assert_eq!(body["grant_type"], "refresh_token");
    assert_eq!(body["refresh_token"], "rt-1");
}

#[tokio::test]
async fn rejected_exchange_is_a_credentials_error_without_the_key() {
    let (url, _) = token_server().await;
    let creds =
        Credentials::api_key("bad-key-SECRET").with_refresh(ApiKeyExchange::new(&url).unwrap());
    let e = tokio::time::timeout(Duration::from_secs(10), creds.current())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credentials);
    let source = std::error::Error::source(&e).expect("the endpoint's error is the source");
    assert!(source.to_string().contains("unauthenticated"), "{source}");
    assert!(!format!("{e} {e:?} {source}").contains("SECRET"));
}

#[tokio::test]
async fn refused_refresh_token_falls_back_to_the_api_key() {
    let (url, seen) = token_server().await;
    let creds = Credentials::from_tokens(
        TokenSet::default()
            .with_refresh_token("bad-rt")
            .with_api_key("key_ok"),
    )
    .with_refresh(OAuthRefresh::new(&url).unwrap());
    let token = tokio::time::timeout(Duration::from_secs(10), creds.current())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.secret().expose(), "from-exchange");
    let paths: Vec<String> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(paths, ["/oauth/token", "/auth/exchange_user_api_key"]);
}
