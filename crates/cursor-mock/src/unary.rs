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
pub(crate) const MAX_UNARY_BODY: usize = 1 << 20;

/// One unary answer, independent of the HTTP version that carries it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: http::StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) metadata: Vec<(String, Vec<String>)>,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn ok(content_type: &'static str, body: Bytes) -> Self {
        Self {
            status: http::StatusCode::OK,
            content_type,
            metadata: Vec::new(),
            body,
        }
    }

    /// The Connect unary error JSON; the HTTP status comes from the code unless given.
    pub(crate) fn error(error: &ErrorSpec, status: Option<http::StatusCode>) -> Self {
        Self {
            status: status.unwrap_or_else(|| error.code().http_status()),
            content_type: "application/json",
            metadata: error.metadata().to_vec(),
            body: error.unary_json(),
        }
    }
}

/// Unary calls that clients make around a turn (privacy mode, feature flags, analytics) and that
/// carry nothing a test checks: the mock answers each with the empty message, in the request's
/// codec, so a client goes on as it would against Cursor.
pub const AMBIENT_PATHS: &[&str] = &[
    "/aiserver.v1.DashboardService/GetUserPrivacyMode",
    "/aiserver.v1.DashboardService/GetTeamAdminSettingsOrEmptyIfNotInTeam",
    "/aiserver.v1.DashboardService/GetTeamReposOrEmptyIfNotInTeam",
    "/aiserver.v1.AnalyticsService/BootstrapStatsig",
    "/aiserver.v1.AnalyticsService/TrackEvents",
    "/aiserver.v1.AnalyticsService/Batch",
];

/// Whether the mock answers `path` as a Connect unary call.
pub(crate) fn serves(path: &str) -> bool {
    crate::server::UNARY_PATHS.contains(&path) || AMBIENT_PATHS.contains(&path)
}

/// A call the mock does not know: answered `unimplemented` and recorded as a violation, so a
/// test learns about every call a client makes that the mock cannot vouch for.
pub(crate) fn unexpected(shared: &Shared, call: usize, method: &http::Method, path: &str) -> Reply {
    let message = format!("unexpected call: {method} {path}");
    shared.recorder.violation(call, message.clone());
    Reply::error(
        &ErrorSpec::new(Code::Unimplemented, format!("cursor-mock: {message}")),
        None,
    )
}

/// Reads the body of a unary call on HTTP/2 (bounded in size and time) and answers it.
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
        Ok(Ok(body)) => Ok(body),
        Ok(Err(message)) => Err(ErrorSpec::new(Code::ResourceExhausted, message)),
        Err(_) => Err(ErrorSpec::new(
            Code::DeadlineExceeded,
            "request body did not arrive",
        )),
    };
    let reply = answer(shared, call, path, headers, scenario_header, body);
    respond_reply(respond, reply).await;
}

/// The answer to one unary call whose body has been read (or failed to arrive: `Err`).
pub(crate) fn answer(
    shared: &Shared,
    call: usize,
    path: &str,
    headers: &http::HeaderMap,
    scenario_header: Option<String>,
    body: Result<Bytes, ErrorSpec>,
) -> Reply {
    let body = match body {
        Ok(body) => body,
        Err(error) => return Reply::error(&error, None),
    };
    let (name, scenario) = match shared.pick(scenario_header.as_deref(), None) {
        Ok(picked) => picked,
        Err(message) => {
            return Reply::error(&ErrorSpec::new(Code::InvalidArgument, message), None);
        }
    };
    shared.recorder.update(call, |c| c.scenario = name);

    let header = |name: &str| crate::io::header_str(headers, name);
    let content_type = header("content-type");
    let json = content_type.starts_with("application/json");
    if AMBIENT_PATHS.contains(&path) && json {
        shared
            .recorder
            .push(call, MessageKind::UnaryRequest, body.clone());
        return Reply::ok("application/json", Bytes::from_static(b"{}"));
    }
    if content_type != "application/proto" {
        let error = ErrorSpec::new(
            Code::Unknown,
            format!("cursor-mock serves unary calls as application/proto, not {content_type:?}"),
        );
        return Reply::error(&error, Some(http::StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let body = match decompress(header("content-encoding"), body) {
        Ok(body) => body,
        Err(error) => return Reply::error(&error, None),
    };
    shared
        .recorder
        .push(call, MessageKind::UnaryRequest, body.clone());

    if let Some(error) = scenario.unary_error() {
        return Reply::error(error, None);
    }
    let answer = match path.rsplit('/').next().unwrap_or("") {
        "GetUsableModels" => wire::unary::usable_models(),
        "GetDefaultModelForCli" => wire::unary::default_model(),
        "AvailableModels" => wire::unary::available_models(),
        "GetServerConfig" => {
            wire::unary::server_config(&shared.base_url, shared.settings.http2_config)
        }
        "NameAgent" => wire::unary::name_agent(),
        _ if AMBIENT_PATHS.contains(&path) => Bytes::new(),
        _ => {
            let error = ErrorSpec::new(Code::Unimplemented, format!("no handler for {path}"));
            return Reply::error(&error, None);
        }
    };
    Reply::ok("application/proto", answer)
}

fn decompress(encoding: &str, body: Bytes) -> Result<Bytes, ErrorSpec> {
    match encoding {
        "" | "identity" => Ok(body),
        "gzip" => {
            let mut out = Vec::new();
            let gunzip = cursor_connect_frame::compression_for("gzip")
                .map(|mut gzip| gzip.decompress(&body, &mut out, MAX_UNARY_BODY));
            match gunzip {
                Some(Ok(())) => Ok(Bytes::from(out)),
                _ => Err(ErrorSpec::new(
                    Code::InvalidArgument,
                    "request body is not valid gzip",
                )),
            }
        }
        other => Err(ErrorSpec::new(
            Code::Unimplemented,
            format!("unsupported content-encoding {other:?}; cursor-mock accepts gzip, identity"),
        )),
    }
}

/// Answers with the Connect unary error JSON; the HTTP status comes from the code unless given.
pub(crate) async fn respond_error(
    respond: SendResponse<Bytes>,
    error: &ErrorSpec,
    status: Option<http::StatusCode>,
) {
    respond_reply(respond, Reply::error(error, status)).await;
}

/// Writes `reply` on an HTTP/2 stream.
pub(crate) async fn respond_reply(respond: SendResponse<Bytes>, reply: Reply) {
    respond_body(
        respond,
        reply.status,
        reply.content_type,
        &reply.metadata,
        reply.body,
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
