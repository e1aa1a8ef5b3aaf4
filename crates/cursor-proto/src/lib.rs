#![forbid(unsafe_code)]
//! Cursor's `agent.v1` and `aiserver.v1` protocol messages as [`prost`] types.
//!
//! The types are generated at build time from the curated schema in the workspace's `proto/`
//! directory (`proto/agent/v1/*.proto`, `proto/aiserver/v1/*.proto`) with `protobuf-parse` in
//! pure-Rust mode and `prost-build`: no `protoc`, no network. `bytes` fields are
//! [`bytes::Bytes`]; `google.protobuf.*` maps to [`prost_types`]. Field documentation, sources
//! and the deliberate choices where public sources disagree are comments in the `.proto` files.
//!
//! Decoding is lenient by construction: fields and oneof cases a newer server adds decode as
//! unknown (skipped), never as an error. Fields whose shape no source publishes are left
//! undeclared rather than guessed, because a wrong wire type would fail the whole message.
//!
//! With the default feature `json`, the module `json` converts between `serde_json::Value` and
//! `google.protobuf.Value` (MCP tool arguments and input schemas), with documented choices for
//! non-finite numbers and nesting depth.
//!
//! # Example
//!
//! ```
//! use cursor_proto::agent::v1::{
//!     agent_client_message, agent_server_message, interaction_update, AgentClientMessage,
//!     AgentServerMessage, ClientHeartbeat,
//! };
//! use prost::Message;
//!
//! // The heartbeat every server sends: AgentServerMessage{interaction_update{heartbeat{}}}.
//! let msg = AgentServerMessage::decode(&[0x0a, 0x02, 0x6a, 0x00][..])?;
//! let Some(agent_server_message::Message::InteractionUpdate(update)) = &msg.message else {
//!     panic!("not an interaction update");
//! };
//! assert!(matches!(update.message, Some(interaction_update::Message::Heartbeat(_))));
//!
//! // The client's answer every 5 s.
//! let beat = AgentClientMessage {
//!     message: Some(agent_client_message::Message::ClientHeartbeat(ClientHeartbeat {})),
//! };
//! assert_eq!(beat.encode_to_vec(), [0x3a, 0x00]);
//! assert_eq!(cursor_proto::paths::AGENT_RUN.path, "/agent.v1.AgentService/Run");
//! # Ok::<(), prost::DecodeError>(())
//! ```
//!
//! # Covered messages
//!
//! | Area | Messages (package) | Notes |
//! |---|---|---|
//! | Agent service | every `AgentService` method of `@cursor/sdk` 1.0.32 (`Run`, `RunSSE`, `RunPoll`, `NameAgent`, `GetUsableModels`, `GetDefaultModelForCli`, `GetAllowedModelIntents`, `UpdateConversationMetadata`, `CreateTranscriptOverview`, `UploadConversationBlobs`, `UploadLocalAgentRunToPromptQuality`, `GetSignedUrlForAttachedMedia`, `NotifyConversationClone`, `GetNewChatNudge*ModelPicker`, `GetPromptContextUsage` with the usage tree, `ListLocalSubscriptionTools`, `CallLocalSubscriptionTool`, `StreamLocalAgentMailbox`) and their request/response messages (agent.v1) | paths in [`paths`] |
//! | Run stream | `AgentClientMessage` (8 cases), `AgentServerMessage` (6 cases + `ttft_breakdown`), `AgentRunRequest` (fields 1–33), `ModelDetails`, `RequestedModel`, `SubagentModelOverride`, `SystemPromptSpec`, credentials, `PreFetchedBlob`, `McpFileSystemOptions` (agent.v1) | checkpoint fields are `bytes` ([`checkpoint`]) |
//! | Turn content | `ConversationAction` (15 cases), `UserMessageAction`, `UserMessage`, `SelectedContext`, `SelectedImage`, `RequestContext` (every field, 2–53), `RequestContextEnv`, `CursorRule`, `McpTools`, `McpToolDefinition`, `ConversationHistory` with the SDK's content parts (agent.v1) | |
//! | Updates | `InteractionUpdate` (all 26 cases with payloads, `message_started_at_ms`, `TurnEndedUpdate`'s five counters), `ShellStream*`, `ToolCallDelta` cases, `ToolCall` (MCP case), `McpToolCall`, `McpToolResult`, `TtftBreakdown` (agent.v1) | |
//! | Interaction queries | `InteractionQuery` / `InteractionResponse` with every case's query and response type (approve/reject, ask-question, create-plan, PR management, replace-env, ...) (agent.v1) | argument types declared without fields |
//! | Exec channel | `ExecServerMessage` (all 41 kinds), `ExecClientMessage` (all 41 result kinds), `ExecClientControlMessage` (stream_close/throw/heartbeat), `ExecServerControlMessage` (abort), `McpArgs`, `McpResult` (7 cases), request-context args/result, args and rejection/error results of shell, write, delete, read, ls, grep, fetch (agent.v1) | kinds without modelled fields are declined with `throw` |
//! | KV channel | `KvServerMessage`, `KvClientMessage`, `GetBlobArgs`/`Result`, `SetBlobArgs`/`Result`, `Error`, `SpanContext` (agent.v1) | |
//! | Checkpoints | `ConversationStateStructure`, `ConversationTokenDetails`, `ConversationTurnStructure`, `AgentConversationTurnStructure`, `ConversationStep`, `AssistantMessage`, `ThinkingMessage` (agent.v1) | typed view only |
//! | Errors | `ErrorDetails` with the complete `Error` enum 0–65, `CustomErrorDetails`, `ErrorButton` (`switch_model` action), `SwitchModelAction`, `ErrorAnalyticsMetadata` (aiserver.v1) | helpers in [`error_details`] |
//! | HTTP/1.1 shim | `BidiRequestId`, `BidiAppendRequest`/`Response`, `BidiPollRequest`/`Response` (aiserver.v1) | |
//! | Models, config | `AvailableModelsRequest`/`Response`, `AvailableModel`, `GetServerConfigRequest`/`Response` (every field; `Http2Config`, `AgentUrlConfig`), `ServerConfigService`'s three methods (aiserver.v1) | config sub-messages declared without fields |
//! | Legacy chat | `StreamUnifiedChatRequestWithTools`/`ResponseWithTools`, `StreamUnifiedChatRequest` (subset), `StreamUnifiedChatResponse`, `ConversationMessage`, `ClientSideToolV2Call`/`Result` (MCP cases), `ClientSideToolV2`, `MCPParams`, `MCPResult`, `ToolResultError` (aiserver.v1) | not in `@cursor/sdk` |
//!
//! Every declared message, field, enum value and method agrees with `@cursor/sdk` 1.0.32's
//! schema tables (the test `sdk_schema`); types referenced but not modelled are declared without
//! fields (`proto/*/v1/referenced.proto`) and their content decodes as unknown fields.

pub mod checkpoint;
pub mod error_details;
#[cfg(feature = "json")]
pub mod json;
pub mod paths;

/// Package `agent.v1`: the agent conversation protocol.
pub mod agent {
    /// Generated from `proto/agent/v1/*.proto`. Field documentation lives in those files.
    #[allow(
        missing_docs,
        clippy::large_enum_variant,
        clippy::doc_lazy_continuation
    )]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/agent.v1.rs"));
    }
}

/// Package `aiserver.v1`: errors, the bidi shim, models, server config and legacy chat.
pub mod aiserver {
    /// Generated from `proto/aiserver/v1/*.proto`. Field documentation lives in those files.
    #[allow(
        missing_docs,
        clippy::large_enum_variant,
        clippy::doc_lazy_continuation
    )]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aiserver.v1.rs"));
    }
}

/// The serialized `google.protobuf.FileDescriptorSet` of this crate's schema (`agent/v1/*`,
/// `aiserver/v1/*` and the well-known types they import), every file after its dependencies.
///
/// Lets tools without code generation (a protobuf-es or protobufjs test client, a reflection
/// based dumper) encode and decode the same messages.
///
/// ```
/// use prost::Message;
/// let set = prost_types::FileDescriptorSet::decode(cursor_proto::FILE_DESCRIPTOR_SET)?;
/// assert!(set.file.iter().any(|f| f.name() == "agent/v1/agent_service.proto"));
/// # Ok::<(), prost::DecodeError>(())
/// ```
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cursor_descriptor_set.bin"));

pub use prost;

/// Runs the README's Rust example as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
