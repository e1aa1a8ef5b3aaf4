//! The default turn and the mock's strictness, driven over loopback h2c by a raw h2 client.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use cursor_mock::*;
use cursor_proto::agent::v1 as pb;

fn split_words(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

async fn mock() -> MockServer {
    MockServer::builder()
        .heartbeat_interval(Duration::from_millis(100))
        .reply_timeout(Duration::from_secs(3))
        .start()
        .await
        .expect("start")
}

#[tokio::test]
async fn default_turn_follows_the_captured_order_and_constants() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    assert_eq!(call.status, 200);
    call.send_msg(&run_msg(run_request("composer-2.5", "hello")));
    let mut store = HashMap::new();
    let t = drive(&mut call, &mut store, |_| unreachable!("no tools declared")).await;

    assert_eq!(t.text, DEFAULT_TEXT);
    assert_eq!(t.thinking, DEFAULT_THINKING);
    let ended = t.turn_ended.expect("turn_ended");
    assert_eq!(ended.input_tokens, Some(DEFAULT_INPUT_TOKENS));
    assert_eq!(ended.output_tokens, Some(DEFAULT_OUTPUT_TOKENS));
    assert_eq!(ended.cache_read_tokens, Some(DEFAULT_CACHE_READ_TOKENS));
    assert_eq!(ended.cache_write_tokens, Some(DEFAULT_CACHE_WRITE_TOKENS));
    assert_eq!(ended.reasoning_tokens, Some(DEFAULT_REASONING_TOKENS));
    assert_eq!(t.end, Some(serde_json::json!({})));
    assert_eq!(t.end_raw.as_ref(), b"{}");
    // Heartbeats can interleave while the mock waits; the first one opens the turn.
    let mut order: Vec<String> = t.order.clone();
    assert_eq!(order[0], "heartbeat");
    order.retain(|l| l != "heartbeat");
    let order = collapse(&order);
    let words = split_words(DEFAULT_THINKING).len();
    let mut expected: Vec<&str> = vec!["kv_get", "exec_request_context", "kv_set"];
    expected.extend(std::iter::repeat_n(["thinking", "token"], words).flatten());
    expected.push("thinking_completed");
    let texts = t.order.iter().filter(|l| *l == "text").count();
    expected.extend(std::iter::repeat_n(["text", "token"], texts).flatten());
    expected.extend(["checkpoint", "turn_ended", "end"]);
    assert_eq!(order, expected);
    assert_eq!(t.checkpoints.len(), 3);
    assert_eq!(
        t.checkpoints[1], t.checkpoints[2],
        "checkpoints repeat identically"
    );
    assert_eq!(
        t.token_deltas,
        t.order.iter().filter(|l| *l == "token").count() as i64
    );
    // Text deltas are 1 to 4 characters; they concatenate to DEFAULT_TEXT (checked above).
    assert!(t.order.iter().filter(|l| *l == "text").count() >= DEFAULT_TEXT.len() / 4);

    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let calls = mock.received();
    assert_eq!(calls.len(), 1);
    let kinds: Vec<MessageKind> = calls[0].messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds[0], MessageKind::RunRequest);
    assert_eq!(kinds[1], MessageKind::KvGetResult);
    assert_eq!(kinds[2], MessageKind::ExecResult);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == MessageKind::KvSetResult)
            .count(),
        2
    );
    assert_eq!(calls[0].scenario, "default");
    assert_eq!(calls[0].model.as_deref(), Some("composer-2.5"));
    assert!(calls[0].messages[0].decode().is_ok());
    assert_eq!(mock.checkpoint("conv-1"), t.checkpoints.last().cloned());
}

#[tokio::test]
async fn declared_tools_are_called_in_parallel_and_results_echoed() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    let run = with_tools(
        run_request("composer-2.5", "use tools"),
        &["alpha", "beta", "gamma", "delta"],
    );
    call.send_msg(&run_msg(run));
    let mut store = HashMap::new();
    let t = drive(&mut call, &mut store, |name| format!("{name}-result")).await;

    assert_eq!(t.tool_calls.len(), 3, "at most three declared tools");
    assert_eq!(t.max_outstanding_tools, 3, "all requests before any result");
    let names: Vec<&str> = t.tool_calls.iter().map(|(_, _, n)| n.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let echo = format!(
        "{TOOL_ECHO_PREFIX}alpha: alpha-result{TOOL_ECHO_PREFIX}beta: beta-result{TOOL_ECHO_PREFIX}gamma: gamma-result"
    );
    assert_eq!(t.text, format!("{DEFAULT_TEXT}{echo}"));
    assert_eq!(t.end, Some(serde_json::json!({})));
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    // Results were answered in reverse order; the mock accepted them by id.
    let results = mock.received()[0]
        .messages_of(MessageKind::ExecResult)
        .count();
    assert_eq!(results, 4, "request context + three tools");
}

#[tokio::test]
async fn second_turn_echoes_checkpoint_and_serves_the_root_blob() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut store = HashMap::new();

    let mut first = open_run(&mut h2, &[]).await;
    first.send_msg(&run_msg(run_request("composer-2.5", "one")));
    let t1 = drive(&mut first, &mut store, |_| String::new()).await;
    let checkpoint = t1.checkpoints.last().cloned().expect("checkpoint");

    let mut run = run_request("composer-2.5", "two");
    run.conversation_state = Some(checkpoint.clone());
    let mut second = open_run(&mut h2, &[]).await;
    second.send_msg(&run_msg(run));
    let t2 = drive(&mut second, &mut store, |_| String::new()).await;
    assert_eq!(
        t2.end,
        Some(serde_json::json!({})),
        "{:?}",
        mock.violations()
    );
    assert!(mock.violations().is_empty());
    // The second turn's checkpoint carries both turns.
    let state = cursor_proto::checkpoint::decode(t2.checkpoints.last().expect("checkpoint"))
        .expect("state");
    assert_eq!(state.turns.len(), 2);
    let root_get = mock.received()[1]
        .messages_of(MessageKind::KvGetResult)
        .next()
        .expect("kv get answered")
        .decode()
        .expect("decode");
    let Some(pb::agent_client_message::Message::KvClientMessage(kv)) = root_get.message else {
        panic!("kv message")
    };
    let Some(pb::kv_client_message::Message::GetBlobResult(result)) = kv.message else {
        panic!("get result")
    };
    assert!(
        result.blob_data.is_some_and(|d| !d.is_empty()),
        "root blob served from the store"
    );
}

#[tokio::test]
async fn a_wrong_blob_or_a_foreign_checkpoint_is_a_violation() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut store = HashMap::new();
    let mut first = open_run(&mut h2, &[]).await;
    first.send_msg(&run_msg(run_request("composer-2.5", "one")));
    let t1 = drive(&mut first, &mut store, |_| String::new()).await;

    // Corrupt every stored blob: the root blob comes back with different bytes.
    for value in store.values_mut() {
        *value = Bytes::from_static(b"corrupted");
    }
    let mut run = run_request("composer-2.5", "two");
    run.conversation_state = t1.checkpoints.last().cloned();
    let mut second = open_run(&mut h2, &[]).await;
    second.send_msg(&run_msg(run));
    let t2 = drive(&mut second, &mut store, |_| String::new()).await;
    let end = t2.end.expect("end-stream");
    assert_eq!(end["error"]["code"], "invalid_argument");
    assert!(
        mock.violations()[0].message.contains("differ"),
        "{:?}",
        mock.violations()
    );

    // A checkpoint the mock never sent for this conversation.
    let mut run = run_request("composer-2.5", "three");
    run.conversation_state = Some(Bytes::from_static(b"\x42\x00"));
    let mut third = open_run(&mut h2, &[]).await;
    third.send_msg(&run_msg(run));
    let In::End(end, _) = third.next_msg().await else {
        panic!("end-stream first")
    };
    assert_eq!(end["error"]["code"], "invalid_argument");
    assert_eq!(mock.violations().len(), 2);
}

#[tokio::test]
async fn first_message_must_be_a_run_request_exact_bytes() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&heartbeat_msg());
    assert!(matches!(call.next_msg().await, In::Msg(_)));
    assert!(matches!(call.next_msg().await, In::End(..)));
    assert!(call.next().await.expect("clean").is_none());
    let expected = cursor_test_support::vectors::hex("F02-run-heartbeat-then-invalid-argument.hex");
    assert_eq!(call.raw.as_ref(), expected.as_slice(), "byte-exact F02");
    assert_eq!(mock.violations().len(), 1);
    assert_eq!(mock.heartbeats_seen(), 1);
}

#[tokio::test]
async fn kv_ids_must_be_echoed() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let mut end = None;
    for _ in 0..20 {
        match call.next_msg().await {
            In::Msg(pb::AgentServerMessage {
                message: Some(pb::agent_server_message::Message::KvServerMessage(kv)),
                ..
            }) => {
                let reply = pb::KvClientMessage {
                    id: kv.id + 100,
                    message: Some(pb::kv_client_message::Message::GetBlobResult(
                        pb::GetBlobResult::default(),
                    )),
                };
                call.send_msg(&client(pb::agent_client_message::Message::KvClientMessage(
                    reply,
                )));
            }
            In::Msg(_) => {}
            In::End(json, _) => {
                end = Some(json);
                break;
            }
        }
    }
    let end = end.expect("end-stream");
    assert_eq!(end["error"]["code"], "invalid_argument");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("id 101")
    );
    assert_eq!(mock.violations().len(), 1);
}

#[tokio::test]
async fn unanswered_request_context_times_out_with_heartbeats() {
    let mock = MockServer::builder()
        .heartbeat_interval(Duration::from_millis(50))
        .reply_timeout(Duration::from_millis(400))
        .start()
        .await
        .expect("start");
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let mut heartbeats = 0;
    let mut end = None;
    for _ in 0..100 {
        match call.next_msg().await {
            In::Msg(pb::AgentServerMessage {
                message: Some(pb::agent_server_message::Message::KvServerMessage(kv)),
                ..
            }) => {
                let reply = pb::KvClientMessage {
                    id: kv.id,
                    message: Some(pb::kv_client_message::Message::GetBlobResult(
                        pb::GetBlobResult::default(),
                    )),
                };
                call.send_msg(&client(pb::agent_client_message::Message::KvClientMessage(
                    reply,
                )));
            }
            In::Msg(pb::AgentServerMessage {
                message:
                    Some(pb::agent_server_message::Message::InteractionUpdate(pb::InteractionUpdate {
                        message: Some(pb::interaction_update::Message::Heartbeat(_)),
                        ..
                    })),
                ..
            }) => heartbeats += 1,
            In::Msg(_) => {}
            In::End(json, _) => {
                end = Some(json);
                break;
            }
        }
    }
    assert_eq!(end.expect("end")["error"]["code"], "invalid_argument");
    assert!(heartbeats >= 4, "heartbeats while waiting: {heartbeats}");
    assert!(mock.violations()[0].message.contains("request-context"));
}

#[tokio::test]
async fn client_heartbeats_are_counted_with_times() {
    let mock = scripted(vec![
        Step::Heartbeat,
        Step::Sleep(Duration::from_millis(600)),
        Step::EndOk,
    ])
    .await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        call.send_msg(&heartbeat_msg());
    }
    loop {
        if let In::End(json, _) = call.next_msg().await {
            assert_eq!(json, serde_json::json!({}));
            break;
        }
    }
    assert_eq!(mock.heartbeats_seen(), 3);
    let times = mock.received()[0].heartbeat_times();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|w| w[1] >= w[0]));
    assert!(
        times[2] - times[0] >= Duration::from_millis(150),
        "{times:?}"
    );
}

#[tokio::test]
async fn cancel_ends_the_turn_cleanly() {
    let mock = scripted(vec![
        Step::Heartbeat,
        Step::Sleep(Duration::from_secs(5)),
        Step::EndOk,
    ])
    .await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    assert!(matches!(call.next_msg().await, In::Msg(_)));
    let started = std::time::Instant::now();
    call.send_msg(&client(
        pb::agent_client_message::Message::ConversationAction(pb::ConversationAction {
            action: Some(pb::conversation_action::Action::CancelAction(
                pb::CancelAction {
                    reason: "user".into(),
                },
            )),
            ..Default::default()
        }),
    ));
    let mut saw_turn_ended = false;
    loop {
        match call.next_msg().await {
            In::Msg(m) => {
                saw_turn_ended |= matches!(
                    m.message,
                    Some(pb::agent_server_message::Message::InteractionUpdate(
                        pb::InteractionUpdate {
                            message: Some(pb::interaction_update::Message::TurnEnded(_)),
                            ..
                        }
                    ))
                );
            }
            In::End(json, _) => {
                assert_eq!(json, serde_json::json!({}));
                break;
            }
        }
    }
    assert!(saw_turn_ended);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tiny_stream_window_still_completes_a_big_run_request() {
    let mock = MockServer::builder()
        .stream_window(16)
        .heartbeat_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("start");
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    let big = "x".repeat(64 * 1024);
    call.send_msg_flow(&run_msg(run_request("composer-2.5", &big)))
        .await;
    let mut store = HashMap::new();
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    assert_eq!(t.text, DEFAULT_TEXT);
    let run = mock.received()[0].messages[0].payload.len();
    assert!(run > 64 * 1024, "run request arrived whole: {run} bytes");
}

#[tokio::test]
async fn unsupported_execs_and_interaction_queries_must_be_answered() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(names::UNSUPPORTED_EXECS, "hi")));
    let mut store = HashMap::new();
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    let declined: Vec<&str> = t
        .order
        .iter()
        .filter(|l| l.starts_with("exec_declined") || *l == "interaction_query")
        .map(String::as_str)
        .collect();
    assert_eq!(
        declined,
        [
            "exec_declined shell",
            "exec_declined read",
            "exec_declined mcp_state",
            "interaction_query"
        ]
    );
    assert_eq!(t.text, DEFAULT_TEXT);
    assert_eq!(t.end, Some(serde_json::json!({})));
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn an_ignored_exec_is_a_violation() {
    let mock = MockServer::builder()
        .scenario(Scenario::new(vec![
            Step::UnsupportedExec(ExecKind::McpState),
            Step::EndOk,
        ]))
        .heartbeat_interval(Duration::from_millis(50))
        .reply_timeout(Duration::from_millis(300))
        .start()
        .await
        .expect("start");
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let mut exec = None;
    let end = loop {
        match call.next_msg().await {
            In::Msg(pb::AgentServerMessage {
                message: Some(pb::agent_server_message::Message::ExecServerMessage(e)),
                ..
            }) => exec = Some(e),
            In::Msg(_) => {}
            In::End(json, _) => break json,
        }
    };
    let exec = exec.expect("exec sent");
    assert!(exec.exec_id.is_empty(), "MCP-state execs carry no exec_id");
    assert!(matches!(
        exec.message,
        Some(pb::exec_server_message::Message::McpStateExecArgs(_))
    ));
    assert_eq!(end["error"]["code"], "invalid_argument");
    assert!(mock.violations()[0].message.contains("decline"));
}

#[tokio::test]
async fn ten_concurrent_runs_on_one_connection() {
    let mock = mock().await;
    // Ten turns of tiny frames at once exceed h2's small-frame budget of a 64 KiB connection
    // window (GOAWAY ENHANCE_YOUR_CALM from the client's own h2); a real client needs a big one.
    let mut builder = h2::client::Builder::new();
    builder.initial_connection_window_size(8 << 20);
    let (h2, connection) = connect_with(mock.addr(), builder).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let mut h2 = h2.clone();
        tasks.spawn(async move {
            let mut call = open_run(&mut h2, &[]).await;
            let mut run = with_tools(run_request("composer-2.5", "hi"), &["t"]);
            run.conversation_id = Some(format!("conv-{i}"));
            call.send_msg(&run_msg(run));
            let mut store = HashMap::new();
            drive(&mut call, &mut store, move |_| format!("r{i}")).await
        });
    }
    let mut done = 0;
    while let Some(t) = tasks.join_next().await {
        let t = t.expect("run task");
        assert!(t.text.starts_with(DEFAULT_TEXT), "{}", t.text);
        assert_eq!(t.end, Some(serde_json::json!({})));
        done += 1;
    }
    assert_eq!(done, 10);
    assert!(!connection.is_finished(), "the connection survived");
    assert_eq!(mock.connections(), 1);
    assert_eq!(mock.received().len(), 10);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn captured_f04_exec_bytes_are_declined_with_a_throw() {
    let f04 = hex(
        "124c08019a01360a2035643966646435323964343435353930623239363434653430383234306134661210363765643565633635386264386163321800a2020b0a096f6d6e69726f757465b80300",
    );
    let mock = scripted(vec![
        Step::RawExec {
            id: 1,
            exec_id: String::new(),
            payload: Bytes::from(f04),
        },
        Step::TextDelta("after".into()),
        Step::EndOk,
    ])
    .await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let mut store = HashMap::new();
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    assert!(t.order.contains(&"exec_declined mcp_state".to_string()));
    assert_eq!(t.text, "after");
    assert_eq!(t.end, Some(serde_json::json!({})));
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn malformed_client_bytes_end_the_stream_without_panicking() {
    let mock = mock().await;
    let mut h2 = connect(mock.addr()).await;
    let cases: [(&str, Bytes); 3] = [
        // An end-stream flag on a request envelope.
        (
            "envelope",
            Bytes::from_static(&[0x02, 0, 0, 0, 2, b'{', b'}']),
        ),
        // A declared length beyond the 4 MiB limit.
        (
            "envelope",
            Bytes::from_static(&[0x00, 0x7f, 0xff, 0xff, 0xff]),
        ),
        // A valid envelope whose payload is not an AgentClientMessage (truncated varint).
        (
            "undecodable",
            Bytes::from_static(&[0x00, 0, 0, 0, 2, 0x08, 0xff]),
        ),
    ];
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        let mut call = open_run(&mut h2, &[]).await;
        call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
        call.send.send_data(bytes, false).expect("send");
        let end = loop {
            if let In::End(json, _) = call.next_msg().await {
                break json;
            }
        };
        assert_eq!(end["error"]["code"], "invalid_argument", "case {i}");
        let violations = mock.violations();
        assert!(violations[i].message.contains(what), "{:?}", violations[i]);
        assert_eq!(violations[i].call, i);
    }
}

#[tokio::test]
async fn a_client_flooding_a_busy_stream_is_held_back_by_flow_control() {
    let mock = mock().await;
    // A 1-byte receive window: the mock's first write blocks, so it reads nothing for a while.
    let (mut h2, _conn) = connect_with(
        mock.addr(),
        h2::client::Builder::new().initial_window_size(1).clone(),
    )
    .await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    for _ in 0..3000 {
        call.send_msg(&heartbeat_msg());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What the mock took off the wire (and holds) while it could not act on it is bounded by
    // its read-ahead, not by what the client chose to send.
    let taken = mock.received()[0].messages.len();
    assert!(taken <= 100, "the mock buffered {taken} messages");
}
