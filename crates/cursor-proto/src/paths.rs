//! Full method paths and call kinds of the RPCs this crate covers.
//!
//! A path is what goes after the host in `POST https://<host><path>`. The kinds come from
//! Cursor's descriptors (which keep `stream` markers); a test checks every constant here
//! against the services declared in `proto/`.
//!
//! ```
//! use cursor_proto::paths::{self, MethodKind};
//!
//! assert_eq!(paths::AGENT_RUN.path, "/agent.v1.AgentService/Run");
//! assert_eq!(paths::AGENT_RUN.kind, MethodKind::Bidi);
//! assert_eq!(paths::MethodPath::find("/aiserver.v1.BidiService/BidiAppend"), Some(paths::AISERVER_BIDI_APPEND));
//! ```

/// How a method is called. Connect client streaming is not used by any Cursor method, so the
/// enum is deliberately exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// One request message, one response message (`application/proto`, no envelope).
    Unary,
    /// One enveloped request message, a stream of response messages.
    ServerStream,
    /// Streams in both directions on one HTTP/2 stream.
    Bidi,
}

impl MethodKind {
    /// Whether the call uses Connect envelopes (`application/connect+proto`).
    pub const fn is_streaming(self) -> bool {
        !matches!(self, Self::Unary)
    }
}

/// A method's full path and its call kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodPath {
    /// `/<package>.<Service>/<Method>`.
    pub path: &'static str,
    /// Unary, server stream or bidi.
    pub kind: MethodKind,
}

impl MethodPath {
    /// The constant for `path`, if this crate knows the method.
    pub fn find(path: &str) -> Option<Self> {
        ALL.iter().copied().find(|m| m.path == path)
    }

    /// The service part, e.g. `agent.v1.AgentService`.
    pub fn service(&self) -> &'static str {
        let trimmed = self.path.trim_start_matches('/');
        trimmed.split_once('/').map_or(trimmed, |(s, _)| s)
    }

    /// The method name, e.g. `Run`.
    pub fn method(&self) -> &'static str {
        self.path.rsplit_once('/').map_or(self.path, |(_, m)| m)
    }
}

const fn m(path: &'static str, kind: MethodKind) -> MethodPath {
    MethodPath { path, kind }
}

/// `agent.v1.AgentService/Run`: the agent conversation over HTTP/2.
pub const AGENT_RUN: MethodPath = m("/agent.v1.AgentService/Run", MethodKind::Bidi);
/// `agent.v1.AgentService/RunSSE`: the server half of the HTTP/1.1 shim (request: `BidiRequestId`).
pub const AGENT_RUN_SSE: MethodPath = m("/agent.v1.AgentService/RunSSE", MethodKind::ServerStream);
/// `agent.v1.AgentService/RunPoll`: poll mode (never used by the CLI).
pub const AGENT_RUN_POLL: MethodPath =
    m("/agent.v1.AgentService/RunPoll", MethodKind::ServerStream);
/// `agent.v1.AgentService/NameAgent`.
pub const AGENT_NAME_AGENT: MethodPath = m("/agent.v1.AgentService/NameAgent", MethodKind::Unary);
/// `agent.v1.AgentService/GetUsableModels`: the authoritative model allow-list.
pub const AGENT_GET_USABLE_MODELS: MethodPath =
    m("/agent.v1.AgentService/GetUsableModels", MethodKind::Unary);
/// `agent.v1.AgentService/GetDefaultModelForCli`.
pub const AGENT_GET_DEFAULT_MODEL_FOR_CLI: MethodPath = m(
    "/agent.v1.AgentService/GetDefaultModelForCli",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/GetAllowedModelIntents`.
pub const AGENT_GET_ALLOWED_MODEL_INTENTS: MethodPath = m(
    "/agent.v1.AgentService/GetAllowedModelIntents",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/UpdateConversationMetadata`: renames a conversation.
pub const AGENT_UPDATE_CONVERSATION_METADATA: MethodPath = m(
    "/agent.v1.AgentService/UpdateConversationMetadata",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/CreateTranscriptOverview`: a short overview of a formatted transcript.
pub const AGENT_CREATE_TRANSCRIPT_OVERVIEW: MethodPath = m(
    "/agent.v1.AgentService/CreateTranscriptOverview",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/UploadConversationBlobs`: uploads a conversation's blobs.
pub const AGENT_UPLOAD_CONVERSATION_BLOBS: MethodPath = m(
    "/agent.v1.AgentService/UploadConversationBlobs",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/UploadLocalAgentRunToPromptQuality`: prompt-quality telemetry of a local run.
pub const AGENT_UPLOAD_LOCAL_AGENT_RUN_TO_PROMPT_QUALITY: MethodPath = m(
    "/agent.v1.AgentService/UploadLocalAgentRunToPromptQuality",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/GetSignedUrlForAttachedMedia`: upload/download URLs for an attachment.
pub const AGENT_GET_SIGNED_URL_FOR_ATTACHED_MEDIA: MethodPath = m(
    "/agent.v1.AgentService/GetSignedUrlForAttachedMedia",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/NotifyConversationClone`: a conversation was cloned.
pub const AGENT_NOTIFY_CONVERSATION_CLONE: MethodPath = m(
    "/agent.v1.AgentService/NotifyConversationClone",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/GetNewChatNudgeLegacyModelPicker`: a model nudge (legacy picker).
pub const AGENT_GET_NEW_CHAT_NUDGE_LEGACY_MODEL_PICKER: MethodPath = m(
    "/agent.v1.AgentService/GetNewChatNudgeLegacyModelPicker",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/GetNewChatNudgeParameterizedModelPicker`: a model nudge (parameterised picker).
pub const AGENT_GET_NEW_CHAT_NUDGE_PARAMETERIZED_MODEL_PICKER: MethodPath = m(
    "/agent.v1.AgentService/GetNewChatNudgeParameterizedModelPicker",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/GetPromptContextUsage`: how the prompt uses the context window.
pub const AGENT_GET_PROMPT_CONTEXT_USAGE: MethodPath = m(
    "/agent.v1.AgentService/GetPromptContextUsage",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/ListLocalSubscriptionTools`: tools of local subscriptions.
pub const AGENT_LIST_LOCAL_SUBSCRIPTION_TOOLS: MethodPath = m(
    "/agent.v1.AgentService/ListLocalSubscriptionTools",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/CallLocalSubscriptionTool`: calls a local subscription tool.
pub const AGENT_CALL_LOCAL_SUBSCRIPTION_TOOL: MethodPath = m(
    "/agent.v1.AgentService/CallLocalSubscriptionTool",
    MethodKind::Unary,
);
/// `agent.v1.AgentService/StreamLocalAgentMailbox`: the local agent mailbox stream.
pub const AGENT_STREAM_LOCAL_AGENT_MAILBOX: MethodPath = m(
    "/agent.v1.AgentService/StreamLocalAgentMailbox",
    MethodKind::ServerStream,
);
/// `aiserver.v1.AiService/AvailableModels`: the rich model catalogue.
pub const AISERVER_AVAILABLE_MODELS: MethodPath =
    m("/aiserver.v1.AiService/AvailableModels", MethodKind::Unary);
/// `aiserver.v1.ServerConfigService/GetServerConfig`: config version, HTTP/2 policy, agent hosts.
pub const AISERVER_GET_SERVER_CONFIG: MethodPath = m(
    "/aiserver.v1.ServerConfigService/GetServerConfig",
    MethodKind::Unary,
);
/// `aiserver.v1.ServerConfigService/ResolveNewRepoFlowBackendProbe`.
pub const AISERVER_RESOLVE_NEW_REPO_FLOW_BACKEND_PROBE: MethodPath = m(
    "/aiserver.v1.ServerConfigService/ResolveNewRepoFlowBackendProbe",
    MethodKind::Unary,
);
/// `aiserver.v1.ServerConfigService/GetNewRepoFlowConfig`.
pub const AISERVER_GET_NEW_REPO_FLOW_CONFIG: MethodPath = m(
    "/aiserver.v1.ServerConfigService/GetNewRepoFlowConfig",
    MethodKind::Unary,
);
/// `aiserver.v1.BidiService/BidiAppend`: the client half of the HTTP/1.1 shim.
pub const AISERVER_BIDI_APPEND: MethodPath =
    m("/aiserver.v1.BidiService/BidiAppend", MethodKind::Unary);
/// `aiserver.v1.ChatService/StreamUnifiedChatWithTools`: legacy chat over HTTP/2.
pub const AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS: MethodPath = m(
    "/aiserver.v1.ChatService/StreamUnifiedChatWithTools",
    MethodKind::Bidi,
);
/// `aiserver.v1.ChatService/StreamUnifiedChatWithToolsSSE`: legacy chat, HTTP/1.1 shim.
pub const AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_SSE: MethodPath = m(
    "/aiserver.v1.ChatService/StreamUnifiedChatWithToolsSSE",
    MethodKind::ServerStream,
);
/// `aiserver.v1.ChatService/StreamUnifiedChatWithToolsPoll`: legacy chat, poll mode.
pub const AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_POLL: MethodPath = m(
    "/aiserver.v1.ChatService/StreamUnifiedChatWithToolsPoll",
    MethodKind::ServerStream,
);

/// Every method above, agent.v1 first.
pub const ALL: &[MethodPath] = &[
    AGENT_RUN,
    AGENT_RUN_SSE,
    AGENT_RUN_POLL,
    AGENT_NAME_AGENT,
    AGENT_GET_USABLE_MODELS,
    AGENT_GET_DEFAULT_MODEL_FOR_CLI,
    AGENT_GET_ALLOWED_MODEL_INTENTS,
    AGENT_UPDATE_CONVERSATION_METADATA,
    AGENT_CREATE_TRANSCRIPT_OVERVIEW,
    AGENT_UPLOAD_CONVERSATION_BLOBS,
    AGENT_UPLOAD_LOCAL_AGENT_RUN_TO_PROMPT_QUALITY,
    AGENT_GET_SIGNED_URL_FOR_ATTACHED_MEDIA,
    AGENT_NOTIFY_CONVERSATION_CLONE,
    AGENT_GET_NEW_CHAT_NUDGE_LEGACY_MODEL_PICKER,
    AGENT_GET_NEW_CHAT_NUDGE_PARAMETERIZED_MODEL_PICKER,
    AGENT_GET_PROMPT_CONTEXT_USAGE,
    AGENT_LIST_LOCAL_SUBSCRIPTION_TOOLS,
    AGENT_CALL_LOCAL_SUBSCRIPTION_TOOL,
    AGENT_STREAM_LOCAL_AGENT_MAILBOX,
    AISERVER_AVAILABLE_MODELS,
    AISERVER_GET_SERVER_CONFIG,
    AISERVER_RESOLVE_NEW_REPO_FLOW_BACKEND_PROBE,
    AISERVER_GET_NEW_REPO_FLOW_CONFIG,
    AISERVER_BIDI_APPEND,
    AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS,
    AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_SSE,
    AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_POLL,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_and_method_split() {
        assert_eq!(AGENT_RUN.service(), "agent.v1.AgentService");
        assert_eq!(AGENT_RUN.method(), "Run");
        assert_eq!(AISERVER_BIDI_APPEND.service(), "aiserver.v1.BidiService");
        assert_eq!(AISERVER_BIDI_APPEND.method(), "BidiAppend");
    }

    #[test]
    fn find_is_exact() {
        assert_eq!(
            MethodPath::find("/agent.v1.AgentService/RunSSE"),
            Some(AGENT_RUN_SSE)
        );
        assert_eq!(MethodPath::find("/agent.v1.AgentService/run"), None);
        assert_eq!(MethodPath::find(""), None);
    }

    #[test]
    fn paths_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.path, b.path);
            }
        }
    }
}
