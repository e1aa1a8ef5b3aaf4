//! Unary calls: model lists and server config, or the selected scenario's JSON error.

use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::Code;
use h2::RecvStream;
use h2::server::SendResponse;

use crate::error_spec::ErrorSpec;
use crate::io::read_body;
use crate::record::MessageKind;
use crate::server::Shared;
use crate::wire;

/// Unary request bodies larger than this are refused.
const MAX_UNARY_BODY: usize = 1 << 20;

pub(crate) async fn serve(
    shared: &Shared,
    call: usize,
    path: &str,
    headers: &http::HeaderMap,
    scenario_header: Option<String>,
    body: RecvStream,
    respond: SendResponse<Bytes>,
) {
    let limit = shared.settings.reply_timeout;
    let body = match tokio::time::timeout(limit, read_body(body, MAX_UNARY_BODY)).await {
        Ok(Ok(body)) => body,
        Ok(Err(message)) => {
            let error = ErrorSpec::new(Code::ResourceExhausted, message);
            return respond_error(respond, &error, None).await;
        }
        Err(_) => {
            let error = ErrorSpec::new(Code::DeadlineExceeded, "request body did not arrive");
            return respond_error(respond, &error, None).await;
        }
    };
    let (name, scenario) = match shared.pick(scenario_header.as_deref(), None) {
        Ok(picked) => picked,
        Err(message) => {
            let error = ErrorSpec::new(Code::InvalidArgument, message);
            return respond_error(respond, &error, None).await;
        }
    };
    shared.recorder.update(call, |c| c.scenario = name);

    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/proto" {
        let error = ErrorSpec::new(
            Code::Unknown,
            format!("cursor-mock serves unary calls as application/proto, not {content_type:?}"),
        );
        return respond_error(
            respond,
            &error,
            Some(http::StatusCode::UNSUPPORTED_MEDIA_TYPE),
        )
        .await;
    }
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let body = match encoding {
        "identity" => body,
        "gzip" => {
            let mut out = Vec::new();
            let gunzip = cursor_connect_frame::compression_for("gzip")
                .map(|mut gzip| gzip.decompress(&body, &mut out, MAX_UNARY_BODY));
            if !matches!(gunzip, Some(Ok(()))) {
                let error = ErrorSpec::new(Code::InvalidArgument, "request body is not valid gzip");
                return respond_error(respond, &error, None).await;
            }
            Bytes::from(out)
        }
        other => {
            let error = ErrorSpec::new(
                Code::Unimplemented,
                format!(
                    "unsupported content-encoding {other:?}; cursor-mock accepts gzip, identity"
                ),
            );
            return respond_error(respond, &error, None).await;
        }
    };
    shared
        .recorder
        .push(call, MessageKind::UnaryRequest, body.clone());

    if let Some(error) = scenario.unary_error() {
        return respond_error(respond, error, None).await;
    }
    let answer = match path.rsplit('/').next().unwrap_or("") {
        "GetUsableModels" => wire::unary::usable_models(),
        "GetDefaultModelForCli" => wire::unary::default_model(),
        "AvailableModels" => wire::unary::available_models(),
        "GetServerConfig" => wire::unary::server_config(&shared.base_url),
        "NameAgent" => wire::unary::name_agent(),
        _ => {
            let error = ErrorSpec::new(Code::Unimplemented, format!("no handler for {path}"));
            return respond_error(respond, &error, None).await;
        }
    };
    respond_body(
        respond,
        http::StatusCode::OK,
        "application/proto",
        &[],
        answer,
    )
    .await;
}

/// Answers with the Connect unary error JSON; the HTTP status comes from the code unless given.
pub(crate) async fn respond_error(
    respond: SendResponse<Bytes>,
    error: &ErrorSpec,
    status: Option<http::StatusCode>,
) {
    let status = status.unwrap_or_else(|| error.code().http_status());
    respond_body(
        respond,
        status,
        "application/json",
        error.metadata(),
        error.unary_json(),
    )
    .await;
}

async fn respond_body(
    mut respond: SendResponse<Bytes>,
    status: http::StatusCode,
    content_type: &str,
    metadata: &[(String, Vec<String>)],
    body: Bytes,
) {
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-type", content_type);
    for (key, values) in metadata {
        for value in values {
            builder = builder.header(key.as_str(), value.as_str());
        }
    }
    let Ok(response) = builder.body(()) else {
        return;
    };
    let Ok(mut stream) = respond.send_response(response, body.is_empty()) else {
        return;
    };
    let write = async {
        let mut data = body;
        while !data.is_empty() {
            stream.reserve_capacity(data.len());
            match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(n)) if n > 0 => {
                    let chunk = data.split_to(n.min(data.len()));
                    if stream.send_data(chunk, data.is_empty()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .is_err()
    {
        stream.send_reset(h2::Reason::CANCEL);
    }
}
