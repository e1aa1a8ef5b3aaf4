//! `cursor-connect` sends what Cursor's own SDK sends. The same turn (the mock's default: KV,
//! the request-context exec, one custom tool, KV sets) is played once by `@cursor/sdk` 1.0.32
//! against a TLS mock and once by this client in the SDK header style against an h2c mock; the
//! test compares what each mock recorded: header names and value shapes, the run request's
//! fields (on the wire, so empty-but-present fields count), KV answers, exec results and the
//! exec stream closes. The differences kept on purpose are listed here and in the README.

mod common;
mod sdk_parity {
    pub(crate) mod wire_fields;
}

use std::collections::BTreeSet;

use cursor_connect::proto::agent::v1 as pb;
use cursor_connect::{HeaderStyle, RunRequest, ToolResult};
use cursor_mock::sdk_peer::SdkPeer;
use cursor_mock::{MockServer, RUN_PATH, ReceivedCall};
use sdk_parity::wire_fields::{field, numbers};

/// Headers only one side sends, on purpose: `te: trailers` is what our HTTP/2 transport sends
/// for gRPC-style servers; the SDK's transport omits it.
const OURS_ONLY_HEADERS: &[&str] = &["te"];
/// `exec_id` (15): we echo the server's id; the SDK leaves it empty (the server correlates by id).
const OURS_ONLY_EXEC_FIELDS: &[u32] = &[15];
/// Request-context env fields the SDK fills from its local agent and we leave out: we run no
/// shell, terminals or sandbox and keep no notes, transcripts or working directory on disk:
/// 3 shell, 7 terminals_folder, 8 agent_shared_notes_folder, 12 agent_transcripts_folder,
/// 20 is_working_dir_home_dir, 21 process_working_directory,
/// 22 smart_mode_classifier_auto_mode_enabled. And 2 workspace_paths and 11 project_folder,
/// which we send when the caller configures a workspace path (this test does not).
const SDK_ONLY_ENV_FIELDS: &[u32] = &[2, 3, 7, 8, 11, 12, 20, 21, 22];

async fn sdk_turn() -> ReceivedCall {
    let peer = SdkPeer::start(MockServer::builder())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = serde_json::json!({"name": "parity", "prompts": ["hello"], "tools": ["lookup"]});
    let report = peer.run(&spec).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["sends"][0]["status"], "finished", "{report}");
    assert!(
        peer.mock().violations().is_empty(),
        "{:?}",
        peer.mock().violations()
    );
    peer.runs().pop().expect("the SDK ran a turn")
}

async fn our_turn() -> ReceivedCall {
    let mock = MockServer::builder().start().await.expect("mock");
    let client = cursor_connect::CursorClient::builder()
        .base_url(mock.url())
        .credentials(cursor_connect::Credentials::access_token(common::TOKEN))
        .header_style(HeaderStyle::Sdk)
        .build()
        .expect("client");
    let request = RunRequest::new("composer-2.5", "hello").tools(vec![common::tool("lookup")]);
    let mut run = client.agent().run(request).await.expect("run");
    let out = common::collect_with(&mut run, 1, |_| ToolResult::text("ours ran lookup")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let calls = mock.received().into_iter().filter(|c| c.path == RUN_PATH);
    calls.last().expect("our turn")
}

fn header(call: &ReceivedCall, name: &str) -> String {
    let value = call.headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    value.unwrap_or_default().to_owned()
}

fn is_uuid_v4(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && s.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
        && groups[2].starts_with('4')
}

/// The raw run request (field 1 of the first client message).
fn run_request(call: &ReceivedCall) -> Vec<u8> {
    let first = &call.messages[0].payload;
    field(first, 1).expect("a run request first").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_connect_sends_what_the_sdk_sends() {
    let (sdk, ours) = (sdk_turn().await, our_turn().await);

    // Headers: the same names; the same values where they are not per-call ids or secrets.
    let names = |c: &ReceivedCall| -> BTreeSet<String> {
        let all = c.headers.keys().map(|k| k.as_str().to_owned());
        all.filter(|k| !OURS_ONLY_HEADERS.contains(&k.as_str()))
            .collect()
    };
    assert_eq!(names(&sdk), names(&ours), "header names");
    for name in [
        "user-agent",
        "content-type",
        "connect-protocol-version",
        "x-cursor-client-type",
        "x-cursor-client-version",
        "x-ghost-mode",
        "traceparent",
        "backend-traceparent",
    ] {
        assert_eq!(header(&sdk, name), header(&ours, name), "header {name}");
    }
    for call in [&sdk, &ours] {
        let id = header(call, "x-request-id");
        assert!(is_uuid_v4(&id), "x-request-id {id:?}");
        assert_eq!(header(call, "x-original-request-id"), id);
        let key = header(call, "x-blob-encryption-key");
        assert!(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key:?}"
        );
        assert!(header(call, "authorization").starts_with("Bearer "));
    }

    // The run request: the same fields present, at every level a client fills.
    let (sdk_run, our_run) = (run_request(&sdk), run_request(&ours));
    assert_eq!(
        numbers(&sdk_run),
        numbers(&our_run),
        "AgentRunRequest fields"
    );
    let path = |run: &[u8], steps: &[u32]| -> Vec<u8> {
        let mut at = run.to_vec();
        for step in steps {
            at = field(&at, *step).unwrap_or_default().to_vec();
        }
        at
    };
    for (what, steps) in [
        ("action", &[2][..]),
        ("user_message_action", &[2, 1]),
        ("user_message", &[2, 1, 1]),
        ("requested_model", &[9]),
    ] {
        let (a, b) = (path(&sdk_run, steps), path(&our_run, steps));
        assert_eq!(numbers(&a), numbers(&b), "{what} fields");
    }
    for (call, run) in [(&sdk, &sdk_run), (&ours, &our_run)] {
        let decoded = <pb::AgentRunRequest as prost::Message>::decode(run.as_slice()).expect("run");
        assert!(decoded.conversation_id().starts_with("agent-"));
        assert_eq!(decoded.run_id(), header(call, "x-original-request-id"));
        let model = decoded.requested_model.expect("requested_model");
        assert_eq!(model.model_id, "composer-2.5");
    }

    // Answers to the server, in order per channel (the two channels interleave by timing):
    // KV results, and exec results each followed by its stream_close.
    let channel = |c: &ReceivedCall, kv: bool| -> Vec<String> {
        let all = answers(c).into_iter();
        all.filter(|a| a.starts_with("kv-") == kv).collect()
    };
    assert_eq!(channel(&sdk, true), channel(&ours, true), "KV answers");
    assert_eq!(channel(&sdk, false), channel(&ours, false), "exec answers");
    // Exec results carry the same fields, but for exec_id.
    for id in [1, 2] {
        let exec = |c: &ReceivedCall| {
            let raw = c.exec_answer(id).expect("exec answer").payload.clone();
            let exec = field(&raw, 2).expect("exec_client_message").to_vec();
            let mut fields = numbers(&exec);
            fields.retain(|n| !OURS_ONLY_EXEC_FIELDS.contains(n));
            fields
        };
        assert_eq!(exec(&sdk), exec(&ours), "exec {id} result fields");
    }
    // The request context: we send a subset of what the SDK sends, missing exactly the list.
    let env = |c: &ReceivedCall| {
        let raw = c.exec_answer(1).expect("request context").payload.clone();
        numbers(&path(&raw, &[2, 10, 1, 1, 4]))
    };
    let (sdk_env, our_env) = (env(&sdk), env(&ours));
    let os_version = |c: &ReceivedCall| {
        let raw = c.exec_answer(1).expect("request context").payload.clone();
        let env = path(&raw, &[2, 10, 1, 1, 4]);
        String::from_utf8_lossy(field(&env, 1).unwrap_or_default()).into_owned()
    };
    // Both the same machine: `linux <kernel release>`.
    assert_eq!(os_version(&sdk), os_version(&ours));
    assert!(our_env.is_subset(&sdk_env), "{our_env:?} ⊄ {sdk_env:?}");
    let missing: BTreeSet<u32> = sdk_env.difference(&our_env).copied().collect();
    assert_eq!(
        missing,
        SDK_ONLY_ENV_FIELDS.iter().copied().collect(),
        "env fields we omit"
    );
}

/// What the client answered, in order, reduced to its kind and shape: `kv-get(fields)`,
/// `kv-set`, `exec <id> <result field>`, `close <id>`, `throw <id>`; heartbeats left out
/// (their timing differs).
fn answers(call: &ReceivedCall) -> Vec<String> {
    use pb::agent_client_message::Message as M;
    let mut out = Vec::new();
    for m in &call.messages[1..] {
        let Ok(decoded) = m.decode() else { continue };
        match decoded.message {
            Some(M::KvClientMessage(kv)) => {
                let raw = field(&m.payload, 3).unwrap_or_default().to_vec();
                let result = match kv.message {
                    Some(pb::kv_client_message::Message::GetBlobResult(_)) => {
                        format!("kv-get{:?}", numbers(&path_one(&raw, 2)))
                    }
                    _ => "kv-set".to_owned(),
                };
                out.push(result);
            }
            Some(M::ExecClientMessage(e)) => {
                let raw = field(&m.payload, 2).unwrap_or_default().to_vec();
                let result: Vec<u32> = numbers(&raw)
                    .into_iter()
                    .filter(|n| ![1, 15, 39].contains(n))
                    .collect();
                out.push(format!("exec {} {result:?}", e.id));
            }
            Some(M::ExecClientControlMessage(c)) => out.push(match c.message {
                Some(pb::exec_client_control_message::Message::StreamClose(s)) => {
                    format!("close {}", s.id)
                }
                other => format!("control {other:?}"),
            }),
            Some(M::ClientHeartbeat(_)) => {}
            other => out.push(format!("{other:?}")),
        }
    }
    out
}

fn path_one(raw: &[u8], n: u32) -> Vec<u8> {
    field(raw, n).unwrap_or_default().to_vec()
}
