//! The client against the mock backend over loopback HTTP/2: turns, tools, concurrency,
//! checkpoints, heartbeats, cancellation, unknown execs.

mod common;

use std::time::Duration;

use common::{TOKEN, client, collect, collect_with, run_to_end, tool};
use cursor_connect::proto::agent::v1 as pb;
use cursor_connect::{Credentials, CursorClient, Event, HeaderStyle, RunRequest, ToolResult};
use cursor_mock::{MessageKind, MockServer, Scenario, Step, names};

fn usage_matches(u: cursor_connect::Usage) {
    let d = cursor_mock::DEFAULT_USAGE;
    assert_eq!(u.input_tokens, d.input_tokens as u64);
    assert_eq!(u.output_tokens, d.output_tokens as u64);
    assert_eq!(u.cache_read_tokens, d.cache_read_tokens as u64);
    assert_eq!(u.cache_write_tokens, d.cache_write_tokens as u64);
    assert_eq!(u.reasoning_tokens, d.reasoning_tokens as u64);
}

#[tokio::test]
async fn plain_turn() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let mut run = c
        .agent()
        .run(RunRequest::new("composer-2.5", "hello"))
        .await
        .unwrap();
    let out = collect(&mut run).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert_eq!(out.thinking, cursor_mock::DEFAULT_THINKING);
    assert_eq!(out.thinking_completed, 1);
    assert!(out.tool_calls.is_empty());
    assert!(out.tokens > 0);
    usage_matches(out.usage.unwrap());
    // Repeated identical checkpoints are reported once, and the run keeps the last one.
    assert!(!out.checkpoints.is_empty());
    assert!(out.checkpoints.windows(2).all(|w| w[0] != w[1]));
    assert_eq!(run.checkpoint().as_ref(), out.checkpoints.last());
    // Ok(None) is sticky too.
    assert!(run.next_event().await.unwrap().is_none());
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());

    let calls = mock.received();
    let call = calls
        .iter()
        .find(|c| c.path == "/agent.v1.AgentService/Run")
        .unwrap();
    assert_eq!(call.messages[0].kind, MessageKind::RunRequest);
    assert_eq!(
        call.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(call.headers["x-cursor-client-type"], "cli");
    assert_eq!(
        call.headers["x-request-id"],
        call.headers["x-original-request-id"]
    );
    assert_eq!(call.messages_of(MessageKind::KvSetResult).count(), 2);
    assert_eq!(call.messages_of(MessageKind::ExecResult).count(), 1);
    let Some(pb::agent_client_message::Message::RunRequest(req)) =
        call.messages[0].decode().unwrap().message
    else {
        panic!()
    };
    assert_eq!(req.conversation_id.as_deref(), Some(run.conversation_id()));
    assert_eq!(req.conversation_state.as_deref(), Some(&b""[..]));
}

#[tokio::test]
async fn thinking_turn() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let out = run_to_end(
        &client(&mock.url()),
        RunRequest::new(names::THINKING, "think").thinking(true),
    )
    .await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.thinking, cursor_mock::LONG_THINKING);
    assert_eq!(out.thinking_completed, 1);
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    let call = &mock.received()[0];
    let Some(pb::agent_client_message::Message::RunRequest(req)) =
        call.messages[0].decode().unwrap().message
    else {
        panic!()
    };
    assert!(req.model_details.unwrap().thinking_details.is_some());
}

#[tokio::test]
async fn tool_call_answered_inline_and_text_continues() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let req = RunRequest::new(names::TOOL_CALL, "use the tool").tools(vec![tool("mock_echo")]);
    let mut run = c.agent().run(req).await.unwrap();
    let out = collect_with(&mut run, 1, |call| {
        assert_eq!(call.name, "mock_echo");
        assert_eq!(call.arguments, r#"{"text":"ping"}"#);
        ToolResult::text("pong")
    })
    .await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.tool_calls.len(), 1);
    let expected_tail = format!("{}mock_echo: pong", cursor_mock::TOOL_ECHO_PREFIX);
    assert!(out.text.starts_with("Let me call a tool."), "{}", out.text);
    assert!(out.text.ends_with(&expected_tail), "{}", out.text);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn three_parallel_tool_calls_are_outstanding_together() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let req = RunRequest::new("composer-2.5", "tools").tools(vec![
        tool("alpha"),
        tool("beta"),
        tool("gamma"),
    ]);
    let mut run = c.agent().run(req).await.unwrap();
    // Answer only once all three are outstanding, in reverse order.
    let out = collect_with(&mut run, 3, |call| {
        ToolResult::text(format!("{}-ok", call.name))
    })
    .await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    let mut names: Vec<&str> = out.tool_calls.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    assert_eq!(
        out.tool_calls[0].arguments,
        cursor_mock::DECLARED_TOOL_ARGUMENTS
    );
    for name in ["alpha", "beta", "gamma"] {
        assert!(
            out.text.contains(&format!("{name}: {name}-ok")),
            "{}",
            out.text
        );
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn respond_to_unknown_call_is_a_usage_error() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let mut run = c
        .agent()
        .run(RunRequest::new("composer-2.5", "x"))
        .await
        .unwrap();
    let e = run
        .respond("nope", ToolResult::text("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), cursor_connect::ErrorKind::Usage);
    let out = collect(&mut run).await;
    assert!(matches!(out.end, Some(Ok(()))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_runs_share_one_connection() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let mut tasks = Vec::new();
    for i in 0..10 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let req = RunRequest::new("composer-2.5", format!("run {i}")).tools(vec![tool("t")]);
            let mut run = c.agent().run(req).await.unwrap();
            collect(&mut run).await
        }));
    }
    for t in tasks {
        let out = t.await.unwrap();
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        assert!(out.text.starts_with(cursor_mock::DEFAULT_TEXT));
        assert_eq!(out.tool_calls.len(), 1);
    }
    assert_eq!(mock.connections(), 1);
    assert_eq!(mock.received().len(), 10);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn second_turn_echoes_checkpoint_byte_exact() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let mut run = c
        .agent()
        .run(RunRequest::new("composer-2.5", "first").conversation_id("conv-1"))
        .await
        .unwrap();
    let first = collect(&mut run).await;
    assert!(matches!(first.end, Some(Ok(()))));
    let cp = run.checkpoint().expect("checkpoint");
    assert_eq!(Some(&cp), mock.checkpoint("conv-1").as_ref());

    let req = RunRequest::new("composer-2.5", "second")
        .conversation_id("conv-1")
        .checkpoint(cp.clone());
    let mut run2 = c.agent().run(req).await.unwrap();
    let second = collect(&mut run2).await;
    assert!(matches!(second.end, Some(Ok(()))), "{:?}", second.end);
    // The mock checks the echoed state is one it sent, and that the root prompt blob it
    // stored on the first turn comes back byte for byte through the KV get.
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let calls = mock.received();
    let Some(pb::agent_client_message::Message::RunRequest(req)) =
        calls[1].messages[0].decode().unwrap().message
    else {
        panic!()
    };
    assert_eq!(req.conversation_state, Some(cp));
    assert_eq!(req.conversation_id.as_deref(), Some("conv-1"));
    assert_eq!(calls[1].messages_of(MessageKind::KvGetResult).count(), 1);
}

#[tokio::test]
async fn heartbeats_at_the_configured_rate() {
    let mock = MockServer::builder()
        .named(
            "slow",
            Scenario::new(vec![
                Step::Heartbeat,
                Step::Sleep(Duration::from_millis(1050)),
                Step::TextDelta("done".into()),
                Step::TurnEnded(cursor_mock::DEFAULT_USAGE),
                Step::EndOk,
            ]),
        )
        .heartbeat_interval(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let c = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let out = run_to_end(&c, RunRequest::new("slow", "x")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    let times = mock.received()[0].heartbeat_times();
    eprintln!(
        "heartbeats at 100 ms over ~1.05 s: {} at {times:?}",
        times.len()
    );
    // About 10 in 1.05 s at 100 ms; the machine is shared, so allow slack but not silence
    // or a burst.
    assert!(
        (7..=12).contains(&times.len()),
        "{} heartbeats: {times:?}",
        times.len()
    );
    assert!(
        times[0] >= Duration::from_millis(80),
        "first heartbeat too early: {times:?}"
    );
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(50), "burst: {times:?}");
    }
    assert_eq!(mock.heartbeats_seen(), times.len() as u64);
}

#[tokio::test]
async fn cancel_sends_cancel_action() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let req = RunRequest::new(names::TOOL_CALL, "x").tools(vec![tool("mock_echo")]);
    let mut run = c.agent().run(req).await.unwrap();
    let mut canceled = false;
    let mut ended = None;
    let fut = async {
        loop {
            match run.next_event().await {
                Ok(Some(Event::ToolCall(_))) if !canceled => {
                    run.cancel().await.unwrap();
                    canceled = true;
                }
                Ok(Some(Event::TurnEnded(u))) => ended = Some(u),
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    };
    let end = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap();
    assert!(canceled);
    assert!(end.is_ok(), "{end:?}");
    assert!(ended.is_some());
    let call = &mock.received()[0];
    let action = call
        .messages_of(MessageKind::ConversationAction)
        .next()
        .expect("cancel sent");
    let Some(pb::agent_client_message::Message::ConversationAction(a)) =
        action.decode().unwrap().message
    else {
        panic!()
    };
    assert!(matches!(
        a.action,
        Some(pb::conversation_action::Action::CancelAction(_))
    ));
}

#[tokio::test]
async fn unsupported_and_unknown_execs_and_queries_are_answered() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let out = run_to_end(
        &client(&mock.url()),
        RunRequest::new(names::UNSUPPORTED_EXECS, "x"),
    )
    .await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let call = &mock.received()[0];
    let decoded = |kind| -> Vec<pb::AgentClientMessage> {
        call.messages_of(kind)
            .map(|m| m.decode().unwrap())
            .collect()
    };
    use pb::agent_client_message::Message as M;
    use pb::exec_client_message::Message as R;
    let results: Vec<R> = decoded(MessageKind::ExecResult)
        .into_iter()
        .filter_map(|m| match m.message {
            Some(M::ExecClientMessage(e)) => e.message,
            _ => None,
        })
        .collect();
    assert!(
        results.iter().any(|r| matches!(r, R::ShellResult(_))),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| matches!(r, R::ReadResult(_))),
        "{results:?}"
    );
    // The exec kind no descriptor has (F04 shape, no exec_id) is answered with a throw; every
    // result is followed by a stream_close, as the SDK does.
    use pb::exec_client_control_message::Message as Control;
    let controls: Vec<Control> = decoded(MessageKind::ExecControl)
        .into_iter()
        .filter_map(|m| match m.message {
            Some(M::ExecClientControlMessage(c)) => c.message,
            _ => None,
        })
        .collect();
    let throws = controls.iter().filter(|c| matches!(c, Control::Throw(_)));
    assert_eq!(throws.count(), 1, "{controls:?}");
    let closes = controls
        .iter()
        .filter(|c| matches!(c, Control::StreamClose(_)));
    assert_eq!(closes.count(), results.len(), "{controls:?}");
    assert_eq!(decoded(MessageKind::InteractionResponse).len(), 1);
}

#[tokio::test]
async fn every_builtin_exec_kind_is_declined() {
    use cursor_mock::ExecKind;
    let kinds = [
        ExecKind::Shell,
        ExecKind::Read,
        ExecKind::Write,
        ExecKind::Delete,
        ExecKind::Ls,
        ExecKind::Grep,
        ExecKind::Fetch,
        ExecKind::McpState,
    ];
    let mut steps = vec![Step::Heartbeat];
    steps.extend(kinds.iter().map(|k| Step::UnsupportedExec(*k)));
    steps.extend([
        Step::TextDelta("ok".into()),
        Step::TurnEnded(cursor_mock::DEFAULT_USAGE),
        Step::EndOk,
    ]);
    let mock = MockServer::builder()
        .named("all-execs", Scenario::new(steps))
        .start()
        .await
        .unwrap();
    let out = run_to_end(&client(&mock.url()), RunRequest::new("all-execs", "x")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let call = &mock.received()[0];
    let results = call.messages_of(MessageKind::ExecResult).count();
    use pb::exec_client_control_message::Message as Control;
    let controls: Vec<Control> = call
        .messages_of(MessageKind::ExecControl)
        .filter_map(|m| match m.decode().ok()?.message {
            Some(pb::agent_client_message::Message::ExecClientControlMessage(c)) => c.message,
            _ => None,
        })
        .collect();
    let throws = controls
        .iter()
        .filter(|c| matches!(c, Control::Throw(_)))
        .count();
    let closes = controls.len() - throws;
    // Each kind answered once (a result or a throw); each result closed, as the SDK does.
    assert_eq!(results + throws, kinds.len());
    assert_eq!(closes, results, "{controls:?}");
}

#[tokio::test]
async fn flood_of_tiny_frames() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let out = run_to_end(&c, RunRequest::new(names::FLOOD, "x")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(
        out.text,
        cursor_mock::DEFAULT_TEXT.repeat(cursor_mock::FLOOD_REPEAT)
    );
    // One byte per HTTP/2 DATA frame.
    let out = run_to_end(&c, RunRequest::new(names::FLOOD_SPLIT, "x")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
}

#[tokio::test]
async fn ide_headers_are_accepted() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .header_style(HeaderStyle::Ide)
        .build()
        .unwrap();
    let out = run_to_end(&c, RunRequest::new("composer-2.5", "x")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    let h = &mock.received()[0].headers;
    assert_eq!(h["x-cursor-client-type"], "ide");
    let checksum = h["x-cursor-checksum"].to_str().unwrap();
    assert!(cursor_connect::checksum::decode_prefix(checksum).is_some());
}

#[tokio::test]
async fn unary_calls() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let models = c.usable_models().await.unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, cursor_mock::MODEL_IDS);
    assert!(models.iter().any(|m| m.thinking));
    let cfg = c.server_config().await.unwrap();
    assert!(!cfg.config_version.is_empty());
    let avail = c.available_models().await.unwrap();
    assert!(!avail.models.is_empty());
}

#[tokio::test]
async fn expired_token_is_refreshed_before_the_run() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let expired = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"HS256"}"#),
        b64(r#"{"exp":1000,"sub":"auth0|user_1"}"#)
    );
    let fresh = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"HS256"}"#),
        b64(r#"{"exp":99999999999}"#)
    );
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (fresh2, calls2) = (fresh.clone(), calls.clone());
    let creds = Credentials::from_tokens(
        cursor_connect::TokenSet::from_access_token(expired).with_refresh_token("rt"),
    )
    .with_refresh_fn(move |tokens: cursor_connect::TokenSet| {
        let (fresh, calls) = (fresh2.clone(), calls2.clone());
        async move {
            assert_eq!(tokens.refresh_token.unwrap().expose(), "rt");
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(cursor_connect::TokenSet::from_access_token(fresh))
        }
    });
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = CursorClient::builder()
        .base_url(mock.url())
        .credentials(creds)
        .build()
        .unwrap();
    for _ in 0..2 {
        let out = run_to_end(&c, RunRequest::new("composer-2.5", "x")).await;
        assert!(matches!(out.end, Some(Ok(()))));
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    for call in mock.received() {
        assert_eq!(
            call.headers["authorization"],
            format!("Bearer {fresh}").as_str()
        );
    }
}

#[tokio::test]
async fn undeclared_tool_is_answered_tool_not_found() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let req = RunRequest::new(names::TOOL_CALL, "x").tools(vec![tool("something_else")]);
    let out = run_to_end(&client(&mock.url()), req).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert!(out.tool_calls.is_empty());
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let call = &mock.received()[0];
    let found = call.messages_of(MessageKind::ExecResult).any(|m| {
        matches!(
            m.decode().unwrap().message,
            Some(pb::agent_client_message::Message::ExecClientMessage(
                pb::ExecClientMessage {
                    message: Some(pb::exec_client_message::Message::McpResult(pb::McpResult {
                        result: Some(pb::mcp_result::Result::ToolNotFound(_))
                    })),
                    ..
                }
            ))
        )
    });
    assert!(found);
}

#[tokio::test]
async fn interaction_queries_follow_the_policy() {
    use cursor_connect::InteractionPolicy;
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    for (policy, approve) in [
        (InteractionPolicy::RejectAll, false),
        (InteractionPolicy::ApproveAll, true),
    ] {
        let c = CursorClient::builder()
            .base_url(mock.url())
            .credentials(Credentials::access_token(TOKEN))
            .interaction_policy(policy)
            .build()
            .unwrap();
        let out = run_to_end(&c, RunRequest::new(names::UNSUPPORTED_EXECS, "x")).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        let calls = mock.received();
        let reply = calls
            .last()
            .unwrap()
            .messages_of(MessageKind::InteractionResponse)
            .next()
            .unwrap()
            .decode()
            .unwrap();
        let Some(pb::agent_client_message::Message::InteractionResponse(r)) = reply.message else {
            panic!()
        };
        let Some(pb::interaction_response::Result::WebSearchRequestResponse(d)) = r.result else {
            panic!("{r:?}")
        };
        let approved = matches!(
            d.result,
            Some(pb::web_search_request_response::Result::Approved(_))
        );
        assert_eq!(approved, approve);
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
