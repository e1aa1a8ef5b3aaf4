//! Unary calls (models, server config, JSON errors) and the TLS listener.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use cursor_mock::*;
use cursor_proto::agent::v1 as pb;
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;

async fn unary(
    h2: &mut h2::client::SendRequest<Bytes>,
    path: &str,
    content_type: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let mut builder = http::Request::post(format!("http://127.0.0.1{path}"))
        .header("content-type", content_type)
        .header("connect-protocol-version", "1");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut ready = h2.clone().ready().await.expect("ready");
    let (response, mut send) = ready
        .send_request(builder.body(()).expect("request"), false)
        .expect("send");
    send.send_data(body, true).expect("body");
    *h2 = ready;
    let response = tokio::time::timeout(STEP, response)
        .await
        .expect("in time")
        .expect("response");
    let (parts, mut recv) = response.into_parts();
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(STEP, recv.data())
        .await
        .expect("in time")
    {
        let chunk = chunk.expect("chunk");
        let _ = recv.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    (parts.status, parts.headers, Bytes::from(out))
}

#[tokio::test]
async fn model_lists_and_server_config() {
    let mock = MockServer::start(Scenario::default()).await.expect("start");
    let mut h2 = connect(mock.addr()).await;

    let request = pb::GetUsableModelsRequest::default().encode_to_vec();
    let (status, headers, body) = unary(
        &mut h2,
        cursor_proto::paths::AGENT_GET_USABLE_MODELS.path,
        "application/proto",
        Bytes::from(request),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/proto");
    let models = pb::GetUsableModelsResponse::decode(body).expect("decode");
    let ids: Vec<&str> = models.models.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(ids, MODEL_IDS);
    assert!(models.models[0].thinking_details.is_some());

    let (status, _, body) = unary(
        &mut h2,
        cursor_proto::paths::AGENT_GET_DEFAULT_MODEL_FOR_CLI.path,
        "application/proto",
        Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let default = pb::GetDefaultModelForCliResponse::decode(body).expect("decode");
    assert_eq!(default.model.expect("model").model_id, MODEL_IDS[0]);

    let (status, _, body) = unary(
        &mut h2,
        cursor_proto::paths::AISERVER_AVAILABLE_MODELS.path,
        "application/proto",
        Bytes::from_static(&[0x18, 0x01]),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let available = ai::AvailableModelsResponse::decode(body).expect("decode");
    assert_eq!(available.models.len(), MODEL_IDS.len());

    let (status, _, body) = unary(
        &mut h2,
        cursor_proto::paths::AISERVER_GET_SERVER_CONFIG.path,
        "application/proto",
        Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let config = ai::GetServerConfigResponse::decode(body).expect("decode");
    assert_eq!(
        config.agent_url_config.expect("agent urls").agent_url,
        mock.url()
    );

    let calls = mock.received();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[2].messages[0].kind, MessageKind::UnaryRequest);
    assert_eq!(calls[2].messages[0].payload.as_ref(), [0x18, 0x01]);
}

#[tokio::test]
async fn unary_errors_are_connect_json() {
    let mock = MockServer::start(Scenario::default()).await.expect("start");
    let mut h2 = connect(mock.addr()).await;
    let path = cursor_proto::paths::AGENT_GET_USABLE_MODELS.path;

    let (status, headers, body) = unary(
        &mut h2,
        path,
        "application/proto",
        Bytes::new(),
        &[(SCENARIO_HEADER, names::UNARY_UNAUTHENTICATED)],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["code"], "unauthenticated");
    assert_eq!(json["details"][0]["value"], NOT_LOGGED_IN_DETAILS_B64);
    let error = cursor_connect_frame::ConnectError::from_unary_response(status, &headers, &body);
    assert_eq!(error.code(), cursor_connect_frame::Code::Unauthenticated);
    assert_eq!(error.details().len(), 1);

    let (status, headers, body) = unary(
        &mut h2,
        path,
        "application/proto",
        Bytes::new(),
        &[(SCENARIO_HEADER, names::ERROR_RATE_LIMITED)],
    )
    .await;
    assert_eq!(status, 429);
    let error = cursor_connect_frame::ConnectError::from_unary_response(status, &headers, &body);
    assert_eq!(error.code(), cursor_connect_frame::Code::ResourceExhausted);

    let (status, _, body) = unary(
        &mut h2,
        "/agent.v1.AgentService/Nope",
        "application/proto",
        Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(status, 501);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["code"], "unimplemented");

    let (status, _, _) = unary(&mut h2, path, "application/json", Bytes::new(), &[]).await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn tls_with_the_generated_ca_completes_a_turn() {
    let mock = MockServer::start_tls(Scenario::default())
        .await
        .expect("start");
    assert!(mock.url().starts_with("https://127.0.0.1:"));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(mock.ca_certificate_der().expect("ca"))
        .expect("add root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(mock.addr())
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("tls handshake verifies against the test CA");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, connection) = h2::client::handshake(tls).await.expect("h2");
    tokio::spawn(connection);

    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(with_tools(
        run_request("composer-2.5", "hi"),
        &["search"],
    )));
    let mut store = std::collections::HashMap::new();
    let t = drive(&mut call, &mut store, |_| "found".to_owned()).await;
    assert_eq!(
        t.text,
        format!("{DEFAULT_TEXT}{TOOL_ECHO_PREFIX}search: found")
    );
    assert_eq!(t.end, Some(serde_json::json!({})));
    assert!(
        mock.ca_certificate_pem()
            .expect("pem")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    // The certificate is also valid for "localhost".
    let tcp = tokio::net::TcpStream::connect(mock.addr())
        .await
        .expect("tcp");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(mock.ca_certificate_der().expect("ca"))
        .expect("add root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("valid for localhost");
}

#[tokio::test]
async fn gzip_bodies_are_accepted_on_unary_and_streams() {
    let mock = MockServer::builder()
        .heartbeat_interval(std::time::Duration::from_millis(100))
        .start()
        .await
        .expect("start");
    let mut h2 = connect(mock.addr()).await;

    let request = ai::AvailableModelsRequest {
        exclude_max_named_models: true,
        ..Default::default()
    }
    .encode_to_vec();
    let gz = gzip(&request);
    let (status, _, body) = unary(
        &mut h2,
        cursor_proto::paths::AISERVER_AVAILABLE_MODELS.path,
        "application/proto",
        Bytes::from(gz),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(ai::AvailableModelsResponse::decode(body).is_ok());
    assert_eq!(
        mock.received()[0].messages[0].payload.as_ref(),
        request.as_slice()
    );

    let (status, _, _) = unary(
        &mut h2,
        cursor_proto::paths::AISERVER_AVAILABLE_MODELS.path,
        "application/proto",
        Bytes::from_static(b"not gzip"),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 400);

    // A Run whose messages are gzip-compressed envelopes (flag 0x01).
    let mut call = open_run(&mut h2, &[("connect-content-encoding", "gzip")]).await;
    let run = run_msg(run_request("composer-2.5", &"long text ".repeat(500)));
    let mut buf = bytes::BytesMut::new();
    cursor_connect_frame::Encoder::new()
        .compression(cursor_connect_frame::compression_for("gzip"))
        .compress_min_bytes(0)
        .encode(&run, &mut buf)
        .expect("encode");
    assert_eq!(buf[0], 0x01, "compressed flag");
    assert!(buf.len() < run.len());
    call.send.send_data(buf.freeze(), false).expect("send");
    let mut store = std::collections::HashMap::new();
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    assert_eq!(t.text, DEFAULT_TEXT);
    assert_eq!(mock.received()[2].messages[0].payload, run);
}

/// gzip with the frame crate's own compressor (no extra dependency).
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    cursor_connect_frame::compression_for("gzip")
        .expect("gzip")
        .compress(data, &mut out)
        .expect("compress");
    out
}
