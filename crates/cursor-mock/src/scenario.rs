//! Scripted turns: what the mock sends on a Run stream, step by step, and the built-in scenarios
//! that a client picks by model name or by the `x-mock-scenario` header.

use std::time::Duration;

use bytes::Bytes;

use crate::error_spec::ErrorSpec;

/// Token counters sent in `turn_ended` (all five are always present on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// `TurnEndedUpdate.input_tokens` (field 1).
    pub input_tokens: i64,
    /// `TurnEndedUpdate.output_tokens` (field 2).
    pub output_tokens: i64,
    /// `TurnEndedUpdate.cache_read_tokens` (field 3).
    pub cache_read_tokens: i64,
    /// `TurnEndedUpdate.cache_write_tokens` (field 4).
    pub cache_write_tokens: i64,
    /// `TurnEndedUpdate.reasoning_tokens` (field 5).
    pub reasoning_tokens: i64,
}

/// Input tokens of the default turn's `turn_ended`.
pub const DEFAULT_INPUT_TOKENS: i64 = 1_200;
/// Output tokens of the default turn's `turn_ended`.
pub const DEFAULT_OUTPUT_TOKENS: i64 = 48;
/// Cache-read tokens of the default turn's `turn_ended`.
pub const DEFAULT_CACHE_READ_TOKENS: i64 = 1_024;
/// Cache-write tokens of the default turn's `turn_ended`.
pub const DEFAULT_CACHE_WRITE_TOKENS: i64 = 64;
/// Reasoning tokens of the default turn's `turn_ended`.
pub const DEFAULT_REASONING_TOKENS: i64 = 16;

/// The default turn's counters, as one value.
pub const DEFAULT_USAGE: Usage = Usage {
    input_tokens: DEFAULT_INPUT_TOKENS,
    output_tokens: DEFAULT_OUTPUT_TOKENS,
    cache_read_tokens: DEFAULT_CACHE_READ_TOKENS,
    cache_write_tokens: DEFAULT_CACHE_WRITE_TOKENS,
    reasoning_tokens: DEFAULT_REASONING_TOKENS,
};

/// The thinking text of the default turn (sent as several `thinking_delta`s).
pub const DEFAULT_THINKING: &str = "The user said hello. I should answer briefly.";
/// The assistant text of the default turn (sent as `text_delta`s of 1 to 4 characters).
pub const DEFAULT_TEXT: &str = "Hello from cursor-mock! This is a scripted answer.";
/// Every tool result the client returns is echoed back as text: this prefix, the tool name,
/// `": "`, the result text and a newline.
pub const TOOL_ECHO_PREFIX: &str = "\ntool ";
/// Value of each `token_delta` the default turn sends (one after every thinking or text delta).
pub const TOKEN_DELTA: i32 = 1;
/// Text of the thinking scenario ([`names::THINKING`]).
pub const LONG_THINKING: &str =
    "First, consider the question. Then weigh two options. The second one is simpler, so pick it.";
/// The text the [`names::ERROR_AFTER_DATA`] scenario sends before its error.
pub const PARTIAL_TEXT: &str = "Partial answer";
/// How many copies of [`DEFAULT_TEXT`] the [`names::FLOOD`] scenario sends, one character per frame.
pub const FLOOD_REPEAT: usize = 40;
/// Duration reported by the default turn's `thinking_completed`.
pub const THINKING_DURATION_MS: i32 = 420;

/// Names of the built-in scenarios. A client selects one by using it as the model id of the run
/// request, or by sending it in the `x-mock-scenario` header (which also works for unary calls).
pub mod names {
    /// The default turn (what any model name that is not a scenario name gets).
    pub const DEFAULT: &str = "mock-default";
    /// A turn with a longer thinking phase ([`super::LONG_THINKING`]) before the default text.
    pub const THINKING: &str = "mock-thinking";
    /// A turn that calls an MCP tool even if the client declared none (`mock_echo`).
    pub const TOOL_CALL: &str = "mock-tool-call";
    /// Heartbeat, then an `unauthenticated` end-stream with real ERROR_NOT_LOGGED_IN details.
    pub const ERROR_UNAUTHENTICATED: &str = "mock-error-unauthenticated";
    /// One text delta ([`super::PARTIAL_TEXT`]), then the `unauthenticated` end-stream.
    pub const ERROR_AFTER_DATA: &str = "mock-error-after-data";
    /// HTTP 200 with nothing but the `unauthenticated` end-stream.
    pub const ERROR_ONLY_END_STREAM: &str = "mock-error-only-end-stream";
    /// The captured retired-model end-stream (E02, `invalid_argument`, ERROR_MODEL_NO_LONGER_SUPPORTED).
    pub const ERROR_MODEL_RETIRED: &str = "mock-error-model-retired";
    /// `resource_exhausted` with ERROR_RATE_LIMITED details; unary calls answer HTTP 429.
    pub const ERROR_RATE_LIMITED: &str = "mock-error-rate-limited";
    /// `resource_exhausted` with ERROR_PROVIDER_ERROR and end-stream metadata.
    pub const ERROR_PROVIDER: &str = "mock-error-provider";
    /// Unary calls answer HTTP 401 with the ERROR_NOT_LOGGED_IN JSON; Run behaves like
    /// [`ERROR_UNAUTHENTICATED`].
    pub const UNARY_UNAUTHENTICATED: &str = "mock-unary-unauthenticated";
    /// RST_STREAM(REFUSED_STREAM) before any response header.
    pub const RESET_REFUSED: &str = "mock-reset-refused";
    /// Some text, then RST_STREAM(INTERNAL_ERROR).
    pub const RESET_AFTER_DATA: &str = "mock-reset-after-data";
    /// Some text, then GOAWAY(NO_ERROR) and the connection closes (in-flight streams fail).
    pub const GOAWAY: &str = "mock-goaway";
    /// Heartbeat and some text, then silence for a minute (to trip the client's stall detector).
    pub const STALL: &str = "mock-stall";
    /// [`super::FLOOD_REPEAT`] copies of the default text as one-character deltas, each envelope in
    /// its own small DATA frame (like Cursor's thousands of tiny frames), then `turn_ended` and `{}`.
    pub const FLOOD: &str = "mock-flood";
    /// The default text as one-character deltas with every envelope cut into 1-byte DATA frames
    /// (about 600 frames; trips h2's small-frame budget on a client with a 64 KiB window).
    pub const FLOOD_SPLIT: &str = "mock-flood-split";
    /// The default turn without `turn_ended` (clean end-stream `{}` nonetheless).
    pub const NO_TURN_ENDED: &str = "mock-no-turn-ended";
    /// The default turn's text, then the HTTP/2 stream ends without an end-stream frame.
    pub const NO_END_STREAM: &str = "mock-no-end-stream";
    /// Some text, then the TCP connection is dropped.
    pub const DROP_CONNECTION: &str = "mock-drop-connection";
    /// A shell exec, a read exec and a captured-style MCP-state exec without exec_id, each of
    /// which the client must decline, and an interaction query it must answer; then the default
    /// text, `turn_ended` and `{}`.
    pub const UNSUPPORTED_EXECS: &str = "mock-unsupported-execs";

    /// Every built-in scenario name.
    pub const ALL: &[&str] = &[
        DEFAULT,
        THINKING,
        TOOL_CALL,
        ERROR_UNAUTHENTICATED,
        ERROR_AFTER_DATA,
        ERROR_ONLY_END_STREAM,
        ERROR_MODEL_RETIRED,
        ERROR_RATE_LIMITED,
        ERROR_PROVIDER,
        UNARY_UNAUTHENTICATED,
        RESET_REFUSED,
        RESET_AFTER_DATA,
        GOAWAY,
        STALL,
        FLOOD,
        FLOOD_SPLIT,
        NO_TURN_ENDED,
        NO_END_STREAM,
        DROP_CONNECTION,
        UNSUPPORTED_EXECS,
    ];
}

/// Which MCP tools a [`Step::CallTools`] step asks the client to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolCalls {
    /// Up to this many of the tools the run request declared (`mcp_tools`), all at once; none if
    /// the client declared none.
    Declared(usize),
    /// These tools, by name, all at once, whether declared or not.
    Named(Vec<ToolCallSpec>),
}

/// One MCP tool call the mock makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallSpec {
    /// The tool name (`McpArgs.name` and `tool_name`).
    pub name: String,
    /// The arguments, a JSON object as text (sent as `map<string, google.protobuf.Value>`).
    pub arguments_json: String,
}

impl ToolCallSpec {
    /// A call of `name` with JSON object `arguments_json`.
    pub fn new(name: impl Into<String>, arguments_json: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            arguments_json: arguments_json.into(),
        }
    }
}

/// An exec kind the mock can send that a client is expected to decline (a rejected/error result
/// with the same id, or an exec-control `throw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExecKind {
    /// `shell_args` (`ls -la` in `/tmp`).
    Shell,
    /// `read_args`.
    Read,
    /// `write_args`.
    Write,
    /// `delete_args`.
    Delete,
    /// `ls_args`.
    Ls,
    /// `grep_args`.
    Grep,
    /// `fetch_args`.
    Fetch,
    /// Field 36 (`mcp_state_exec_args`) with a span context, field 55 and **no exec_id**, shaped
    /// like a real 2026-10 capture (vector F04).
    McpState,
}

impl ExecKind {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Shell => "shell",
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Ls => "ls",
            Self::Grep => "grep",
            Self::Fetch => "fetch",
            Self::McpState => "mcp_state",
        }
    }
}

/// Arguments the mock sends to declared tools: `{"query":"mock"}`.
pub const DECLARED_TOOL_ARGUMENTS: &str = r#"{"query":"mock"}"#;

/// One scripted action on a Run stream.
///
/// Steps that ask the client for something (KV, execs) wait for the matching answer, sending
/// heartbeats meanwhile, and check it: a wrong id or a wrong result kind ends the stream with an
/// `invalid_argument` end-stream and is recorded in [`crate::MockServer::violations`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// `interaction_update.heartbeat`.
    Heartbeat,
    /// A KV get of the conversation's root prompt blob: the blob the mock stored on the previous
    /// turn (found through the echoed checkpoint), whose bytes the client must return exactly;
    /// on a first turn an unknown id, which the client answers with an empty result or an error.
    KvGetRootPrompt,
    /// A KV set of `data` under its SHA-256; the client must acknowledge with the same id.
    KvSet(Bytes),
    /// A request-context exec (exec id 0); waits for `request_context_result`.
    RequestContext,
    /// An exec of this kind, which the client must decline with an answer carrying its id.
    UnsupportedExec(ExecKind),
    /// A server message sent verbatim (e.g. captured exec bytes such as vector F04) that the mock
    /// then treats as an exec to decline: it waits for any exec result or `throw` carrying `id`
    /// (and, for results, `exec_id`).
    RawExec {
        /// The exec id inside `payload` that the answer must carry.
        id: u32,
        /// The exec_id inside `payload` (empty when the field is absent).
        exec_id: String,
        /// The `AgentServerMessage` bytes.
        payload: Bytes,
    },
    /// An `interaction_query` (a web-search approval request) that the client must answer with
    /// an `interaction_response` carrying the same id.
    InteractionQuery,
    /// `interaction_update.thinking_delta`.
    ThinkingDelta(String),
    /// `interaction_update.thinking_completed` with this duration.
    ThinkingCompleted(i32),
    /// `interaction_update.text_delta`.
    TextDelta(String),
    /// `interaction_update.text_delta` with `is_server_notice = true`.
    Notice(String),
    /// `interaction_update.token_delta`.
    TokenDelta(i32),
    /// Text as deltas of 1 to 4 characters, each followed by a token delta.
    Text(String),
    /// MCP exec requests, all sent before any result, then a wait for every result.
    CallTools(ToolCalls),
    /// Echoes each tool result of this turn as text ([`TOOL_ECHO_PREFIX`]); nothing if no tool ran.
    EchoToolResults,
    /// A checkpoint built from this turn (root prompt blob id, turn texts, token details).
    Checkpoint,
    /// A checkpoint with these exact bytes.
    CheckpointBytes(Bytes),
    /// `interaction_update.turn_ended` with these counters.
    TurnEnded(Usage),
    /// End-stream `{}` and the end of the HTTP/2 stream.
    EndOk,
    /// An end-stream error and the end of the HTTP/2 stream.
    EndError(ErrorSpec),
    /// A data frame with this payload (any bytes, e.g. an undecodable message).
    RawMessage(Bytes),
    /// Bytes written to the HTTP/2 stream as they are (e.g. a malformed envelope).
    RawBytes(Bytes),
    /// Waits, sending heartbeats at the server's heartbeat interval.
    Sleep(Duration),
    /// Waits without sending anything at all (client messages are still read and recorded).
    Stall(Duration),
    /// Stops reading the request body for this long (heartbeats still go out), so no flow-control
    /// window is released: with a small [`crate::MockBuilder::stream_window`] the client's sends block.
    PauseReading(Duration),
    /// RST_STREAM with this HTTP/2 error code (before the response headers if none were sent).
    Reset(u32),
    /// GOAWAY with this error code on the connection, which then closes.
    GoAway(u32),
    /// Closes the TCP connection without any HTTP/2 goodbye.
    DropConnection,
    /// From now on, cut every write into HTTP/2 DATA frames of at most this many bytes.
    SplitWrites(usize),
    /// Ends the HTTP/2 stream (END_STREAM flag) without an end-stream envelope.
    FinishWithoutEndStream,
}

/// A scripted Run turn plus how unary calls answer when this scenario is selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    steps: Vec<Step>,
    unary_error: Option<ErrorSpec>,
}

impl Default for Scenario {
    /// The realistic default turn, in the order a real Cursor session uses (see the crate docs).
    fn default() -> Self {
        Self::new(default_turn(None))
    }
}

impl Scenario {
    /// A scenario running `steps` on Run streams. If the steps end without `EndOk`/`EndError`,
    /// the stream is finished without an end-stream envelope.
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps,
            unary_error: None,
        }
    }

    /// Unary calls answer with this error (HTTP status from its code, JSON body).
    pub fn with_unary_error(mut self, error: ErrorSpec) -> Self {
        self.unary_error = Some(error);
        self
    }

    /// HTTP 200, one heartbeat, then this end-stream error.
    pub fn end_stream_error(error: ErrorSpec) -> Self {
        Self::new(vec![Step::Heartbeat, Step::EndError(error)])
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The unary error, if any.
    pub fn unary_error(&self) -> Option<&ErrorSpec> {
        self.unary_error.as_ref()
    }

    /// A built-in scenario by name ([`names`]), or `None`.
    pub fn named(name: &str) -> Option<Self> {
        use names::*;
        let text = || Step::Text(PARTIAL_TEXT.to_owned());
        let scenario = match name {
            DEFAULT => Self::default(),
            THINKING => Self::new(default_turn(Some(LONG_THINKING))),
            TOOL_CALL => Self::new(tool_turn()),
            ERROR_UNAUTHENTICATED => Self::end_stream_error(ErrorSpec::not_logged_in()),
            ERROR_AFTER_DATA => Self::new(vec![
                Step::Heartbeat,
                Step::TextDelta(PARTIAL_TEXT.to_owned()),
                Step::EndError(ErrorSpec::not_logged_in()),
            ]),
            ERROR_ONLY_END_STREAM => Self::new(vec![Step::EndError(ErrorSpec::not_logged_in())]),
            ERROR_MODEL_RETIRED => Self::end_stream_error(ErrorSpec::model_retired()),
            ERROR_RATE_LIMITED => Self::end_stream_error(ErrorSpec::rate_limited())
                .with_unary_error(ErrorSpec::rate_limited()),
            ERROR_PROVIDER => Self::end_stream_error(ErrorSpec::provider_error()),
            UNARY_UNAUTHENTICATED => Self::end_stream_error(ErrorSpec::not_logged_in())
                .with_unary_error(ErrorSpec::not_logged_in()),
            RESET_REFUSED => Self::new(vec![Step::Reset(0x7)]),
            RESET_AFTER_DATA => Self::new(vec![Step::Heartbeat, text(), Step::Reset(0x2)]),
            GOAWAY => Self::new(vec![Step::Heartbeat, text(), Step::GoAway(0x0)]),
            STALL => Self::new(vec![
                Step::Heartbeat,
                text(),
                Step::Stall(Duration::from_secs(60)),
                Step::EndOk,
            ]),
            FLOOD => {
                let mut steps = vec![Step::Heartbeat];
                let text = DEFAULT_TEXT.repeat(FLOOD_REPEAT);
                steps.extend(text.chars().map(|c| Step::TextDelta(c.to_string())));
                steps.extend([Step::TurnEnded(DEFAULT_USAGE), Step::EndOk]);
                Self::new(steps)
            }
            FLOOD_SPLIT => {
                let mut steps = vec![Step::SplitWrites(1), Step::Heartbeat];
                steps.extend(DEFAULT_TEXT.chars().map(|c| Step::TextDelta(c.to_string())));
                steps.extend([Step::TurnEnded(DEFAULT_USAGE), Step::EndOk]);
                Self::new(steps)
            }
            NO_TURN_ENDED => {
                let mut steps = default_turn(None);
                steps.retain(|s| !matches!(s, Step::TurnEnded(_)));
                Self::new(steps)
            }
            NO_END_STREAM => Self::new(vec![
                Step::Heartbeat,
                Step::Text(DEFAULT_TEXT.to_owned()),
                Step::FinishWithoutEndStream,
            ]),
            DROP_CONNECTION => Self::new(vec![Step::Heartbeat, text(), Step::DropConnection]),
            UNSUPPORTED_EXECS => Self::new(vec![
                Step::Heartbeat,
                Step::RequestContext,
                Step::UnsupportedExec(ExecKind::Shell),
                Step::UnsupportedExec(ExecKind::Read),
                Step::UnsupportedExec(ExecKind::McpState),
                Step::InteractionQuery,
                Step::Text(DEFAULT_TEXT.to_owned()),
                Step::TurnEnded(DEFAULT_USAGE),
                Step::EndOk,
            ]),
            _ => return None,
        };
        Some(scenario)
    }
}

/// The default turn, following the order of a real session (addenda §1).
fn default_turn(thinking: Option<&str>) -> Vec<Step> {
    let mut steps = vec![
        Step::Heartbeat,
        Step::KvGetRootPrompt,
        Step::RequestContext,
        Step::KvSet(Bytes::from_static(
            br#"{"role":"system","content":"You are a helpful assistant (cursor-mock)."}"#,
        )),
        Step::KvSet(Bytes::from_static(
            br#"{"role":"user","content":"turn blob"}"#,
        )),
    ];
    for piece in split_words(thinking.unwrap_or(DEFAULT_THINKING)) {
        steps.push(Step::ThinkingDelta(piece));
        steps.push(Step::TokenDelta(TOKEN_DELTA));
    }
    steps.extend([
        Step::ThinkingCompleted(THINKING_DURATION_MS),
        Step::Text(DEFAULT_TEXT.to_owned()),
        Step::CallTools(ToolCalls::Declared(3)),
        Step::Checkpoint,
        Step::EchoToolResults,
        Step::Checkpoint,
        Step::Checkpoint,
        Step::TurnEnded(DEFAULT_USAGE),
        Step::EndOk,
    ]);
    steps
}

fn tool_turn() -> Vec<Step> {
    vec![
        Step::Heartbeat,
        Step::RequestContext,
        Step::Text("Let me call a tool.".to_owned()),
        Step::CallTools(ToolCalls::Named(vec![ToolCallSpec::new(
            "mock_echo",
            r#"{"text":"ping"}"#,
        )])),
        Step::Checkpoint,
        Step::EchoToolResults,
        Step::Checkpoint,
        Step::TurnEnded(DEFAULT_USAGE),
        Step::EndOk,
    ]
}

/// Splits text after each space, keeping the spaces, so the pieces concatenate back exactly.
fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits text into pieces of 1 to 4 characters (a fixed 1,2,3,4 cycle), like Cursor's deltas.
pub(crate) fn small_pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut size = 1;
    while i < chars.len() {
        let end = (i + size).min(chars.len());
        out.push(chars[i..end].iter().collect());
        i = end;
        size = size % 4 + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_back() {
        let pieces = small_pieces(DEFAULT_TEXT);
        assert_eq!(pieces.concat(), DEFAULT_TEXT);
        assert!(pieces.iter().all(|p| (1..=4).contains(&p.chars().count())));
        assert_eq!(split_words(DEFAULT_THINKING).concat(), DEFAULT_THINKING);
    }

    #[test]
    fn every_name_resolves() {
        for name in names::ALL {
            assert!(Scenario::named(name).is_some(), "{name}");
        }
        assert!(Scenario::named("composer-2.5").is_none());
    }
}
