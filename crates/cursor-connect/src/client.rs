//! The client, its builder, and the unary calls (model list, server config).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_h2::{CallOptions, Channel, Endpoint};
use cursor_proto::agent::v1 as pb;
use cursor_proto::aiserver::v1 as ai;
use prost::Message;

use crate::blob::{BlobStore, MemoryBlobStore};
use crate::config::{DEFAULT_BASE_URL, HeaderConfig, HeaderStyle};
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind};
use crate::ids::RequestIds;
use crate::run::{AgentClient, InteractionPolicy};
use crate::transport::{Choice, Transport};

/// The client heartbeat period (the CLI's fixed 5 s timer).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a run may go without any inbound frame before it fails as stalled (the CLI's 30 s).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The deadline of unary calls.
pub const DEFAULT_UNARY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct ClientInner {
    pub(crate) api_channel: Channel,
    pub(crate) agent_channel: Channel,
    pub(crate) credentials: Credentials,
    pub(crate) header_config: HeaderConfig,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) stall_timeout: Duration,
    pub(crate) first_output_timeout: Option<Duration>,
    pub(crate) unary_timeout: Duration,
    pub(crate) blob_store: Arc<dyn BlobStore>,
    pub(crate) interaction_policy: InteractionPolicy,
    pub(crate) request_context: pb::RequestContext,
    pub(crate) transport: Transport,
    pub(crate) http1_api: cursor_connect_http1::Channel,
    pub(crate) http1_agent: cursor_connect_http1::Channel,
    pub(crate) append_encoding: cursor_connect_http1::AppendEncoding,
    /// The fixed part of each HTTP/1.1 append's deadline; `None`: the CLI's 60 s.
    pub(crate) append_deadline: Option<Duration>,
    /// `Auto`'s decision from the server config and when it was made (refreshed after
    /// `AUTO_CONFIG_REFRESH`); the lock makes concurrent runs share one fetch.
    pub(crate) auto_choice: tokio::sync::Mutex<Option<(tokio::time::Instant, Choice)>>,
    /// Why and since when HTTP/2 is unavailable under `Auto` (tried again after
    /// `HTTP2_RETRY_AFTER`).
    pub(crate) http2_down: std::sync::Mutex<Option<(tokio::time::Instant, String)>>,
    /// Under `Auto`: when and why a streamed HTTP/1.1 response was found buffered (runs then
    /// poll for a while).
    pub(crate) stream_buffered: std::sync::Mutex<Option<(tokio::time::Instant, String)>>,
    /// Whether the agent host is `https://` (decides `Auto` when the config is unspecified).
    pub(crate) agent_tls: bool,
}

/// A Cursor client: one HTTP/2 connection per host, shared by every run and call made
/// through it and its clones.
#[derive(Clone)]
pub struct CursorClient {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for CursorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CursorClient")
            .field("credentials", &self.inner.credentials)
            .field("headers", &self.inner.header_config)
            .field("heartbeat_interval", &self.inner.heartbeat_interval)
            .field("stall_timeout", &self.inner.stall_timeout)
            .finish_non_exhaustive()
    }
}

/// A model the account may use (from `GetUsableModels`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The id to pass to [`RunRequest::new`](crate::RunRequest::new).
    pub id: String,
    /// The name shown in pickers.
    pub display_name: String,
    /// Whether the model reasons (the server marks it with `thinking_details`).
    pub thinking: bool,
    /// Whether max mode is on for this entry.
    pub max_mode: bool,
    /// Other ids the model answers to.
    pub aliases: Vec<String>,
}

impl ModelInfo {
    /// A model entry with no aliases, not reasoning, not max mode (for test doubles).
    pub fn new(id: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            display_name: display_name.into(),
            thinking: false,
            max_mode: false,
            aliases: Vec::new(),
        }
    }
}

impl ModelInfo {
    fn from_proto(m: pb::ModelDetails) -> Self {
        let display_name = if m.display_name.is_empty() {
            m.model_id.clone()
        } else {
            m.display_name
        };
        Self {
            id: m.model_id,
            display_name,
            thinking: m.thinking_details.is_some(),
            max_mode: m.max_mode.unwrap_or(false),
            aliases: m.aliases,
        }
    }
}

/// What `GetServerConfig` says about this client (the parts the client uses).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Sent back as `x-cursor-config-version` by the IDE.
    pub config_version: String,
    /// The raw `Http2Config` value (0 unspecified, 2/4 force HTTP/2, 1/3 disable it).
    pub http2_config: i32,
    /// The agent host for ghost mode on, if the server names one.
    pub agent_url: Option<String>,
    /// The agent host for ghost mode off, if the server names one.
    pub agentn_url: Option<String>,
}

impl ServerConfig {
    /// The agent host to use for this ghost-mode setting, as the CLI picks it.
    pub fn agent_url_for(&self, ghost_mode: bool) -> Option<&str> {
        if ghost_mode {
            self.agent_url.as_deref()
        } else {
            self.agentn_url.as_deref()
        }
    }
}

impl CursorClient {
    /// A builder with the defaults: `https://api2.cursor.sh`, CLI headers, 5 s heartbeats,
    /// 30 s stall timeout, in-memory blob store.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Starts agent runs.
    pub fn agent(&self) -> AgentClient {
        AgentClient {
            inner: self.inner.clone(),
        }
    }

    /// Starts calls of the legacy `aiserver.v1.ChatService` (`StreamUnifiedChatWithTools`),
    /// which Cursor is sunsetting; prefer [`CursorClient::agent`].
    pub fn legacy_chat(&self) -> crate::LegacyChatClient {
        crate::LegacyChatClient {
            inner: self.inner.clone(),
        }
    }

    /// The credentials (shared with every clone of this client).
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// The blob store that serves the KV channel.
    pub fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blob_store
    }

    /// `agent.v1.AgentService/GetUsableModels`: the models this account may use.
    pub async fn usable_models(&self) -> Result<Vec<ModelInfo>, Error> {
        let resp: pb::GetUsableModelsResponse = self
            .unary(
                &self.inner.api_channel,
                cursor_proto::paths::AGENT_GET_USABLE_MODELS.path,
                &pb::GetUsableModelsRequest::default(),
            )
            .await?;
        Ok(resp.models.into_iter().map(ModelInfo::from_proto).collect())
    }

    /// `aiserver.v1.ServerConfigService/GetServerConfig`.
    pub async fn server_config(&self) -> Result<ServerConfig, Error> {
        let resp: ai::GetServerConfigResponse = self
            .unary(
                &self.inner.api_channel,
                cursor_proto::paths::AISERVER_GET_SERVER_CONFIG.path,
                &ai::GetServerConfigRequest::default(),
            )
            .await?;
        let urls = resp.agent_url_config.unwrap_or_default();
        let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
        Ok(ServerConfig {
            config_version: resp.config_version,
            http2_config: resp.http2_config,
            agent_url: non_empty(urls.agent_url),
            agentn_url: non_empty(urls.agentn_url),
        })
    }

    /// `aiserver.v1.AiService/AvailableModels`: the rich model catalogue (request as the IDE
    /// sends it: `exclude_max_named_models = true`).
    pub async fn available_models(&self) -> Result<ai::AvailableModelsResponse, Error> {
        let req = ai::AvailableModelsRequest {
            exclude_max_named_models: true,
            ..Default::default()
        };
        self.unary(
            &self.inner.api_channel,
            cursor_proto::paths::AISERVER_AVAILABLE_MODELS.path,
            &req,
        )
        .await
    }

    async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        channel: &Channel,
        path: &str,
        req: &Req,
    ) -> Result<Resp, Error> {
        let token = self.inner.credentials.current().await?;
        let ids = RequestIds::new();
        let headers = self.inner.header_config.headers(&token, &ids)?;
        let opts = CallOptions::default().deadline(self.inner.unary_timeout);
        let body = Bytes::from(req.encode_to_vec());
        let resp = channel
            .unary(path, headers, body, opts)
            .await
            .map_err(|e| Error::call(ErrorKind::Call, e, true))?;
        // The transport already unwrapped an enveloped answer.
        Resp::decode(resp.message)
            .map_err(|e| Error::protocol(format!("undecodable response of {path}"), e))
    }
}

/// Configures a [`CursorClient`].
///
/// ```
/// use std::time::Duration;
/// use cursor_connect::{CursorClient, Credentials, HeaderStyle};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), cursor_connect::Error> {
/// let client = CursorClient::builder()
///     .base_url("http://127.0.0.1:1")
///     .credentials(Credentials::access_token("token"))
///     .header_style(HeaderStyle::Ide)
///     .heartbeat_interval(Duration::from_secs(5))
///     .stall_timeout(Duration::from_secs(30))
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
pub struct ClientBuilder {
    base_url: String,
    agent_url: Option<String>,
    api_channel: Option<Channel>,
    agent_channel: Option<Channel>,
    credentials: Option<Credentials>,
    header_style: HeaderStyle,
    client_version: Option<String>,
    client_type: Option<String>,
    ghost_mode: Option<bool>,
    timezone: Option<String>,
    config_version: Option<String>,
    heartbeat_interval: Duration,
    stall_timeout: Duration,
    first_output_timeout: Option<Duration>,
    unary_timeout: Duration,
    blob_store: Option<Arc<dyn BlobStore>>,
    interaction_policy: InteractionPolicy,
    workspace_paths: Vec<String>,
    extra_headers: http::HeaderMap,
    transport: Transport,
    http1_channel: Option<cursor_connect_http1::Channel>,
    append_encoding: cursor_connect_http1::AppendEncoding,
    append_deadline: Option<Duration>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            agent_url: None,
            api_channel: None,
            agent_channel: None,
            credentials: None,
            header_style: HeaderStyle::default(),
            client_version: None,
            client_type: None,
            ghost_mode: None,
            timezone: None,
            config_version: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            first_output_timeout: None,
            unary_timeout: DEFAULT_UNARY_TIMEOUT,
            blob_store: None,
            interaction_policy: InteractionPolicy::default(),
            workspace_paths: Vec::new(),
            extra_headers: http::HeaderMap::new(),
            transport: Transport::Http2,
            http1_channel: None,
            append_encoding: cursor_connect_http1::AppendEncoding::Hex,
            append_deadline: None,
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("agent_url", &self.agent_url)
            .field("credentials", &self.credentials)
            .field("header_style", &self.header_style)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The API host: `https://api2.cursor.sh` (default) or e.g. `http://127.0.0.1:PORT` (h2c).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// A dedicated agent host for runs (e.g. from [`ServerConfig::agent_url_for`]); runs use
    /// the API host when unset.
    pub fn agent_url(mut self, url: impl Into<String>) -> Self {
        self.agent_url = Some(url.into());
        self
    }

    /// Uses a ready-made channel for the API host (custom TLS roots, windows, keepalive).
    pub fn api_channel(mut self, channel: Channel) -> Self {
        self.api_channel = Some(channel);
        self
    }

    /// Uses a ready-made channel for runs.
    pub fn agent_channel(mut self, channel: Channel) -> Self {
        self.agent_channel = Some(channel);
        self
    }

    /// Which transport carries agent runs ([`Transport::Http2`] by default).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Uses a ready-made HTTP/1.1 channel (custom TLS roots, pool size) for the HTTP/1.1
    /// transport and `Auto`'s server-config fetch; by default one is made from the URLs.
    pub fn http1_channel(mut self, channel: cursor_connect_http1::Channel) -> Self {
        self.http1_channel = Some(channel);
        self
    }

    /// How HTTP/1.1 `BidiAppend` calls carry client messages: hex `data` (the default, what
    /// Cursor's SDK and CLI send) or `data_binary`.
    pub fn http1_append_encoding(mut self, encoding: cursor_connect_http1::AppendEncoding) -> Self {
        self.append_encoding = encoding;
        self
    }

    /// The fixed part of each HTTP/1.1 `BidiAppend`'s deadline (default 60 s, the CLI's; one
    /// second per 128 KiB of body is added). An append unanswered by then fails the run with
    /// `deadline_exceeded` "bidi_append_deadline_exceeded".
    pub fn http1_append_deadline(mut self, base: Duration) -> Self {
        self.append_deadline = Some(base);
        self
    }

    /// The credentials to authenticate with (required).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Which client the requests look like (CLI by default).
    pub fn header_style(mut self, style: HeaderStyle) -> Self {
        self.header_style = style;
        self
    }

    /// Overrides `x-cursor-client-version`.
    pub fn client_version(mut self, version: impl Into<String>) -> Self {
        self.client_version = Some(version.into());
        self
    }

    /// Overrides `x-cursor-client-type`.
    pub fn client_type(mut self, client_type: impl Into<String>) -> Self {
        self.client_type = Some(client_type.into());
        self
    }

    /// Ghost (privacy) mode, sent as `x-ghost-mode` (on by default, as the CLI fails closed).
    pub fn ghost_mode(mut self, on: bool) -> Self {
        self.ghost_mode = Some(on);
        self
    }

    /// Overrides the detected IANA time zone (`x-cursor-timezone`).
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = Some(tz.into());
        self
    }

    /// The server config version to send as `x-cursor-config-version` (IDE style).
    pub fn config_version(mut self, version: impl Into<String>) -> Self {
        self.config_version = Some(version.into());
        self
    }

    /// The client heartbeat period (5 s by default).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How long a run may receive nothing before it fails as stalled (30 s by default).
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// How long a run may wait for its first output (text, thinking or a tool call) while the
    /// server only sends heartbeats; past it the run fails as stalled (`ErrorKind::Stalled`,
    /// `deadline_exceeded`, safe to retry elsewhere since nothing was produced). No limit by
    /// default: long reasoning can take minutes before it shows.
    pub fn first_output_timeout(mut self, timeout: Duration) -> Self {
        self.first_output_timeout = Some(timeout);
        self
    }

    /// The deadline of unary calls (30 s by default).
    pub fn unary_timeout(mut self, timeout: Duration) -> Self {
        self.unary_timeout = timeout;
        self
    }

    /// The store that serves KV blobs (an in-memory store by default). Share one store across
    /// clients when checkpoints move between them.
    pub fn blob_store(mut self, store: Arc<dyn BlobStore>) -> Self {
        self.blob_store = Some(store);
        self
    }

    /// How interaction queries are answered (rejected by default).
    pub fn interaction_policy(mut self, policy: InteractionPolicy) -> Self {
        self.interaction_policy = policy;
        self
    }

    /// A workspace path reported in the request context (none by default).
    pub fn workspace_path(mut self, path: impl Into<String>) -> Self {
        self.workspace_paths.push(path.into());
        self
    }

    /// Adds a header to every request (after the standard set, replacing a standard header
    /// of the same name), e.g. `x-cursor-canary` or a test backend's scenario switch.
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.extra_headers.insert(name, value);
        self
    }

    /// Builds the client. Connections are made lazily, on the first call.
    pub fn build(self) -> Result<CursorClient, Error> {
        let Some(credentials) = self.credentials else {
            return Err(Error::config("no credentials given"));
        };
        if self.heartbeat_interval.is_zero()
            || self.stall_timeout.is_zero()
            || self.first_output_timeout.is_some_and(|t| t.is_zero())
        {
            return Err(Error::config(
                "heartbeat interval, stall timeout and first-output timeout must be non-zero",
            ));
        }
        // Timers past ~136 years mean "never"; larger values (say `Duration::MAX`) would
        // overflow the `Instant` arithmetic of every run's heartbeat and stall timers.
        let cap = Duration::from_secs(u64::from(u32::MAX));
        let (heartbeat_interval, stall_timeout) = (
            self.heartbeat_interval.min(cap),
            self.stall_timeout.min(cap),
        );
        let lazy = |url: &str| -> Result<Channel, Error> {
            let ep = Endpoint::from_url(url)
                .map_err(|e| {
                    Error::with_source(ErrorKind::Config, format!("invalid url {url:?}"), e)
                })?
                // The CLI pings every 10 s with a 20 s timeout on HTTP/2.
                .keepalive(Duration::from_secs(10), Duration::from_secs(20));
            Ok(Channel::lazy(ep))
        };
        let api_channel = match self.api_channel {
            Some(c) => c,
            None => lazy(&self.base_url)?,
        };
        let agent_channel = match (self.agent_channel, &self.agent_url) {
            (Some(c), _) => c,
            (None, Some(url))
                if url.trim_end_matches('/') != self.base_url.trim_end_matches('/') =>
            {
                lazy(url)?
            }
            (None, _) => api_channel.clone(),
        };
        let h1 = |url: &str| -> Result<cursor_connect_http1::Channel, Error> {
            let ep = cursor_connect_http1::Endpoint::from_url(url).map_err(|e| {
                Error::with_source(ErrorKind::Config, format!("invalid url {url:?}"), e)
            })?;
            Ok(cursor_connect_http1::Channel::new(ep))
        };
        let agent_url = self
            .agent_url
            .clone()
            .unwrap_or_else(|| self.base_url.clone());
        let (http1_api, http1_agent) = match self.http1_channel {
            Some(c) => (c.clone(), c),
            None => (h1(&self.base_url)?, h1(&agent_url)?),
        };
        let agent_tls = http1_agent.endpoint().scheme() == "https";
        let mut header_config = HeaderConfig::new(self.header_style);
        header_config.client_version = self.client_version;
        header_config.client_type = self.client_type;
        if let Some(g) = self.ghost_mode {
            header_config.ghost_mode = g;
        }
        if let Some(tz) = self.timezone {
            header_config.timezone = tz;
        }
        header_config.config_version = self.config_version;
        header_config.extra = self.extra_headers;
        let request_context = pb::RequestContext {
            env: Some(pb::RequestContextEnv {
                os_version: crate::config::os_version(&header_config.os),
                workspace_paths: self.workspace_paths.clone(),
                time_zone: header_config.timezone.clone(),
                project_folder: self.workspace_paths.first().cloned().unwrap_or_default(),
                // Said explicitly, as the SDK does: this client runs no sandboxed shell and no
                // computer use, so the server should not plan on them.
                sandbox_supported: Some(false),
                computer_use_supported: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let blob_store = self
            .blob_store
            .unwrap_or_else(|| Arc::new(MemoryBlobStore::default()));
        Ok(CursorClient {
            inner: Arc::new(ClientInner {
                api_channel,
                agent_channel,
                credentials,
                header_config,
                heartbeat_interval,
                stall_timeout,
                // Capped like the other timers (a huge value means no limit in practice).
                first_output_timeout: self.first_output_timeout.map(|t| t.min(cap)),
                unary_timeout: self.unary_timeout,
                blob_store,
                interaction_policy: self.interaction_policy,
                request_context,
                transport: self.transport,
                http1_api,
                http1_agent,
                append_encoding: self.append_encoding,
                append_deadline: self.append_deadline,
                auto_choice: tokio::sync::Mutex::new(None),
                http2_down: std::sync::Mutex::new(None),
                stream_buffered: std::sync::Mutex::new(None),
                agent_tls,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_requires_credentials_and_valid_urls() {
        let e = CursorClient::builder().build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = CursorClient::builder()
            .credentials(Credentials::access_token("t"))
            .base_url("ftp://nope")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn debug_has_no_secrets() {
        let c = CursorClient::builder()
            .credentials(Credentials::access_token("tok-SECRET-123"))
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
        let b = CursorClient::builder().credentials(Credentials::access_token("tok-SECRET-123"));
        assert!(!format!("{b:?}").contains("SECRET"));
    }

    #[test]
    fn server_config_picks_host_by_ghost_mode() {
        let c = ServerConfig {
            config_version: "v".into(),
            http2_config: 0,
            agent_url: Some("https://agent.example".into()),
            agentn_url: Some("https://agentn.example".into()),
        };
        assert_eq!(c.agent_url_for(true), Some("https://agent.example"));
        assert_eq!(c.agent_url_for(false), Some("https://agentn.example"));
    }
}
