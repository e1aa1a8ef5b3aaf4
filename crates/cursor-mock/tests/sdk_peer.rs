//! Cursor's own TypeScript SDK (`@cursor/sdk` from npm) as the referee: a local agent runs
//! against cursor-mock over `https://` (so it takes its HTTP/2 `Run` path) and every case is
//! asserted from both ends, what the SDK returned and what the mock recorded. Needs
//! `tests/sdk-peer/setup.sh` first; fails without it.

mod sdk_peer {
    pub(crate) mod harness;
}

use bytes::Bytes;
use cursor_mock::*;
use cursor_proto::agent::v1 as pb;
use prost::Message as _;
use sdk_peer::harness::*;
use serde_json::json;

fn usage_json() -> serde_json::Value {
    json!({
        "inputTokens": DEFAULT_INPUT_TOKENS,
        "outputTokens": DEFAULT_OUTPUT_TOKENS,
        "cacheReadTokens": DEFAULT_CACHE_READ_TOKENS,
        "cacheWriteTokens": DEFAULT_CACHE_WRITE_TOKENS,
        "reasoningTokens": DEFAULT_REASONING_TOKENS,
        "totalTokens": DEFAULT_INPUT_TOKENS + DEFAULT_OUTPUT_TOKENS
            + DEFAULT_CACHE_READ_TOKENS + DEFAULT_CACHE_WRITE_TOKENS,
    })
}

fn has(list: &serde_json::Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(item)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_turn_streams_to_completion_with_usage() {
    let peer = start(MockServer::builder()).await;
    let report = run(&peer, json!({"name": "plain", "prompts": ["hello"]})).await;
    let send = only_send(&report);
    assert_eq!(send["status"], "finished", "{report}");
    assert_eq!(send["result"], DEFAULT_TEXT, "{report}");
    assert_eq!(send["usage"], usage_json(), "{report}");
    assert!(has(&send["deltas"], "text-delta") && has(&send["deltas"], "turn-ended"));
    assert!(has(&send["messages"], "assistant"), "{report}");

    assert_no_violations(&peer);
    let runs = peer.runs();
    assert_eq!(runs.len(), 1, "one Run, no retries");
    let request = runs[0].run_request().expect("run request");
    let model = request
        .requested_model
        .as_ref()
        .map(|m| m.model_id.as_str());
    assert_eq!(model, Some("composer-2.5"));
    assert!(
        request.conversation_id().starts_with("agent-"),
        "{request:?}"
    );
    // The request-context exec was answered with the agent's workspace.
    let context = exec_results(&runs[0])
        .into_iter()
        .find_map(|e| match e.message {
            Some(pb::exec_client_message::Message::RequestContextResult(r)) => Some(r),
            _ => None,
        });
    let env = context
        .and_then(|r| match r.result {
            Some(pb::request_context_result::Result::Success(s)) => s.request_context,
            _ => None,
        })
        .and_then(|c| c.env)
        .expect("a request context with env");
    assert_eq!(env.workspace_paths.len(), 1, "{env:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_reaches_the_sdk_as_thinking() {
    let peer = start(MockServer::builder()).await;
    let report = run(&peer, json!({"name": "thinking", "model": names::THINKING})).await;
    let send = only_send(&report);
    assert_eq!(send["status"], "finished", "{report}");
    assert!(has(&send["deltas"], "thinking-delta"), "{report}");
    assert!(has(&send["deltas"], "thinking-completed"), "{report}");
    assert!(has(&send["messages"], "thinking"), "{report}");
    assert_no_violations(&peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_tool_is_called_answered_and_the_turn_continues() {
    let peer = start(MockServer::builder()).await;
    let report = run(&peer, json!({"name": "tool", "tools": ["lookup"]})).await;
    let send = only_send(&report);
    assert_eq!(send["status"], "finished", "{report}");
    // The SDK ran its own callback with the arguments the mock sent...
    let args: serde_json::Value = serde_json::from_str(DECLARED_TOOL_ARGUMENTS).expect("json");
    assert_eq!(
        report["toolCalls"],
        json!([{"name": "lookup", "args": args}])
    );
    // ...and the mock echoed the result it got back into the text after the call.
    assert_lookup_echoed(&report);
    assert_no_violations(&peer);
    let request = peer.runs()[0].run_request().expect("run request");
    let tools = request.mcp_tools.expect("mcp_tools").mcp_tools;
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].provider_identifier, "custom-user-tools");
    assert_eq!(tools[0].tool_name, "lookup");
}

/// A server exec of `message` with `id`, as Cursor sends built-in tool calls.
fn exec(id: u32, message: pb::exec_server_message::Message) -> Step {
    let exec_id = format!("mock-exec-{id}");
    let payload = pb::AgentServerMessage {
        message: Some(pb::agent_server_message::Message::ExecServerMessage(
            pb::ExecServerMessage {
                id,
                exec_id: exec_id.clone(),
                message: Some(message),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    Step::RawExec {
        id,
        exec_id,
        payload: Bytes::from(payload.encode_to_vec()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_execs_run_in_the_sdk_and_come_back_with_their_output() {
    use pb::exec_server_message::Message as E;
    let workspace = tempdir("builtins");
    std::fs::write(workspace.join("notes.txt"), "sdk-peer-marker-4711\n").expect("file");
    std::fs::create_dir_all(workspace.join("listed-dir")).expect("dir");
    // The SDK's ls leaves out empty directories.
    std::fs::write(workspace.join("listed-dir/inner.txt"), "x").expect("file");
    let ws = workspace.to_string_lossy().into_owned();
    let steps = vec![
        Step::Heartbeat,
        Step::RequestContext,
        exec(
            11,
            E::ReadArgs(pb::ReadArgs {
                path: format!("{ws}/notes.txt"),
                tool_call_id: "call-read".into(),
            }),
        ),
        exec(
            12,
            E::LsArgs(pb::LsArgs {
                path: ws.clone(),
                tool_call_id: "call-ls".into(),
                ..Default::default()
            }),
        ),
        shell_exec(13, "echo sdk-peer-shell-$((6*7))", &ws),
        Step::Text("done".into()),
        Step::TurnEnded(DEFAULT_USAGE),
        Step::EndOk,
    ];
    let peer = start(MockServer::builder().named("sdk-builtins", Scenario::new(steps))).await;
    let report = run(
        &peer,
        json!({"name": "builtins", "model": "sdk-builtins", "cwd": ws}),
    )
    .await;
    let send = only_send(&report);
    assert_eq!(send["status"], "finished", "{report}");
    assert_eq!(send["result"], "done", "{report}");
    assert_no_violations(&peer);

    let run = &peer.runs()[0];
    let raw = |id: u32| {
        let found = run.exec_answer(id).map(|m| m.payload.clone());
        let found = found.unwrap_or_else(|| panic!("no answer to exec {id}"));
        String::from_utf8_lossy(&found).into_owned()
    };
    assert!(
        raw(11).contains("sdk-peer-marker-4711"),
        "read: {:?}",
        raw(11)
    );
    assert!(
        raw(12).contains("notes.txt") && raw(12).contains("listed-dir"),
        "ls: {:?}",
        raw(12)
    );
    assert!(
        raw(13).contains("sdk-peer-shell-42"),
        "shell: {:?}",
        raw(13)
    );
    let _ = std::fs::remove_dir_all(workspace);
}

/// `ShellArgs` with the parsed form of a one-word command: the SDK refuses a shell exec without
/// `parsing_result` ("Parsing result is required").
fn shell_exec(id: u32, command: &str, cwd: &str) -> Step {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Arg {
        #[prost(string, tag = "1")]
        kind: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Executable {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, repeated, tag = "2")]
        args: Vec<Arg>,
        #[prost(string, tag = "3")]
        full_text: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Parsing {
        #[prost(message, repeated, tag = "2")]
        executable_commands: Vec<Executable>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Shell {
        #[prost(string, tag = "1")]
        command: String,
        #[prost(string, tag = "2")]
        working_directory: String,
        #[prost(int32, tag = "3")]
        timeout: i32,
        #[prost(string, tag = "4")]
        tool_call_id: String,
        #[prost(string, repeated, tag = "5")]
        simple_commands: Vec<String>,
        #[prost(message, optional, tag = "8")]
        parsing_result: Option<Parsing>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Exec {
        #[prost(uint32, tag = "1")]
        id: u32,
        #[prost(message, optional, tag = "2")]
        shell_args: Option<Shell>,
        #[prost(string, tag = "15")]
        exec_id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Server {
        #[prost(message, optional, tag = "2")]
        exec_server_message: Option<Exec>,
    }
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    let exec_id = format!("mock-exec-{id}");
    let shell = Shell {
        command: command.into(),
        working_directory: cwd.into(),
        timeout: 30_000,
        tool_call_id: format!("call-{id}"),
        simple_commands: vec![command.into()],
        parsing_result: Some(Parsing {
            executable_commands: vec![Executable {
                name: name.into(),
                args: vec![Arg {
                    kind: "word".into(),
                    value: rest.into(),
                }],
                full_text: command.into(),
            }],
        }),
    };
    let payload = Server {
        exec_server_message: Some(Exec {
            id,
            shell_args: Some(shell),
            exec_id: exec_id.clone(),
        }),
    };
    Step::RawExec {
        id,
        exec_id,
        payload: Bytes::from(payload.encode_to_vec()),
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sdk-peer-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.canonicalize().expect("canonical temp dir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_send_carries_the_checkpoint_and_its_blobs_come_back() {
    let peer = start(MockServer::builder()).await;
    let report = run(&peer, json!({"name": "two", "prompts": ["hello", "again"]})).await;
    assert!(report.get("thrown").is_none(), "{report}");
    for send in report["sends"].as_array().expect("sends") {
        assert_eq!(send["status"], "finished", "{report}");
    }
    // The mock checks that an echoed checkpoint is one it sent and that a stored blob comes
    // back byte for byte; either breach would be a violation.
    assert_no_violations(&peer);
    let runs = peer.runs();
    assert_eq!(runs.len(), 2, "one Run per send");
    let (first, second) = (
        runs[0].run_request().expect("run request"),
        runs[1].run_request().expect("run request"),
    );
    assert_eq!(first.conversation_id, second.conversation_id);
    let state = second.conversation_state.unwrap_or_default();
    assert!(!state.is_empty(), "the second send carries a checkpoint");
    // The root-prompt blob the mock stored in turn one was served back by the SDK in turn two.
    let blob = runs[1]
        .client_messages()
        .into_iter()
        .find_map(|m| match m.message {
            Some(pb::agent_client_message::Message::KvClientMessage(kv)) => match kv.message {
                Some(pb::kv_client_message::Message::GetBlobResult(r)) => r.blob_data,
                _ => None,
            },
            _ => None,
        });
    assert!(
        blob.is_some_and(|b| !b.is_empty()),
        "the KV get in turn two returned the blob"
    );
}
