//! Building the client's answers to server requests: exec results and declines, KV replies,
//! interaction responses.

use std::collections::HashMap;

use cursor_proto::agent::v1 as pb;

use super::driver::{InteractionPolicy, client_message};
use super::event::ToolResult;
use crate::blob::BlobStore;

/// Why built-in tools are declined: the library runs no local tools.
const DECLINE_REASON: &str = "this client does not execute built-in tools";

fn exec_message(
    id: u32,
    exec_id: String,
    m: pb::exec_client_message::Message,
) -> pb::AgentClientMessage {
    client_message(pb::agent_client_message::Message::ExecClientMessage(
        pb::ExecClientMessage {
            id,
            message: Some(m),
            exec_id,
            local_execution_time_ms: None,
            hook_additional_contexts: Vec::new(),
        },
    ))
}

/// `exec_client_control_message{stream_close{id}}`: the client is done with exec `id`.
pub(crate) fn stream_close(id: u32) -> pb::AgentClientMessage {
    client_message(pb::agent_client_message::Message::ExecClientControlMessage(
        pb::ExecClientControlMessage {
            message: Some(pb::exec_client_control_message::Message::StreamClose(
                pb::ExecClientStreamClose { id },
            )),
        },
    ))
}

/// `exec_client_message{mcp_result{success{content=[text], is_error}}}`.
pub(crate) fn mcp_result(id: u32, exec_id: String, result: &ToolResult) -> pb::AgentClientMessage {
    let success = pb::McpSuccess {
        content: vec![pb::McpToolResultContentItem {
            content: Some(pb::mcp_tool_result_content_item::Content::Text(
                pb::McpTextContent {
                    text: result.text.clone(),
                    output_location: None,
                },
            )),
        }],
        is_error: result.is_error,
        structured_content: None,
    };
    exec_message(
        id,
        exec_id,
        pb::exec_client_message::Message::McpResult(pb::McpResult {
            result: Some(pb::mcp_result::Result::Success(success)),
        }),
    )
}

/// `mcp_result{tool_not_found{name, available_tools}}` for a tool the request did not declare.
pub(crate) fn mcp_tool_not_found(
    id: u32,
    exec_id: String,
    name: &str,
    available: &[String],
) -> pb::AgentClientMessage {
    exec_message(
        id,
        exec_id,
        pb::exec_client_message::Message::McpResult(pb::McpResult {
            result: Some(pb::mcp_result::Result::ToolNotFound(pb::McpToolNotFound {
                name: name.to_owned(),
                available_tools: available.to_vec(),
            })),
        }),
    )
}

/// `request_context_result{success{request_context}}`.
pub(crate) fn request_context_result(
    id: u32,
    exec_id: String,
    ctx: pb::RequestContext,
) -> pb::AgentClientMessage {
    exec_message(
        id,
        exec_id,
        pb::exec_client_message::Message::RequestContextResult(pb::RequestContextResult {
            result: Some(pb::request_context_result::Result::Success(
                pb::RequestContextSuccess {
                    request_context: Some(ctx),
                    served_from_disk_cache: None,
                },
            )),
        }),
    )
}

/// Declines an exec kind the client does not run: the kind's own rejected/error result where
/// the schema has one, otherwise an exec-control `throw` with the same id (unknown kinds
/// included, addenda 2: unanswered execs hang the turn).
pub(crate) fn decline(
    id: u32,
    exec_id: String,
    kind: Option<pb::exec_server_message::Message>,
) -> pb::AgentClientMessage {
    use pb::exec_client_message::Message as R;
    use pb::exec_server_message::Message as X;
    let reason = DECLINE_REASON.to_owned();
    let result = match kind {
        Some(X::ShellArgs(a)) => R::ShellResult(pb::ShellResult {
            result: Some(pb::shell_result::Result::Rejected(pb::ShellRejected {
                command: a.command,
                working_directory: a.working_directory,
                reason: reason.clone(),
                is_readonly: false,
            })),
        }),
        Some(X::WriteArgs(a)) => R::WriteResult(pb::WriteResult {
            result: Some(pb::write_result::Result::Rejected(pb::WriteRejected {
                path: a.path,
                reason: reason.clone(),
            })),
        }),
        Some(X::DeleteArgs(a)) => R::DeleteResult(pb::DeleteResult {
            result: Some(pb::delete_result::Result::Rejected(pb::DeleteRejected {
                path: a.path,
                reason: reason.clone(),
            })),
        }),
        Some(X::ReadArgs(a)) => R::ReadResult(pb::ReadResult {
            result: Some(pb::read_result::Result::Rejected(pb::ReadRejected {
                path: a.path,
                reason: reason.clone(),
            })),
        }),
        Some(X::LsArgs(a)) => R::LsResult(pb::LsResult {
            result: Some(pb::ls_result::Result::Rejected(pb::LsRejected {
                path: a.path,
                reason: reason.clone(),
            })),
        }),
        Some(X::GrepArgs(_)) => R::GrepResult(pb::GrepResult {
            result: Some(pb::grep_result::Result::Error(pb::GrepError {
                error: reason.clone(),
            })),
        }),
        Some(X::FetchArgs(a)) => R::FetchResult(pb::FetchResult {
            result: Some(pb::fetch_result::Result::Error(pb::FetchError {
                url: a.url,
                error: reason.clone(),
            })),
        }),
        other => {
            let what = match &other {
                None => "unknown exec kind",
                Some(_) => "exec kind not supported",
            };
            return throw(id, format!("{what}: {reason}"));
        }
    };
    exec_message(id, exec_id, result)
}

/// `exec_client_control_message{throw{id, error}}`.
pub(crate) fn throw(id: u32, error: String) -> pb::AgentClientMessage {
    client_message(pb::agent_client_message::Message::ExecClientControlMessage(
        pb::ExecClientControlMessage {
            message: Some(pb::exec_client_control_message::Message::Throw(
                pb::ExecClientThrow {
                    id,
                    error,
                    stack_trace: None,
                    error_code: None,
                },
            )),
        },
    ))
}

/// Answers a KV request from the blob store, echoing its id.
pub(crate) fn kv_reply(store: &dyn BlobStore, kv: pb::KvServerMessage) -> pb::AgentClientMessage {
    use pb::kv_client_message::Message as C;
    use pb::kv_server_message::Message as S;
    let message = match kv.message {
        Some(S::GetBlobArgs(a)) => Some(C::GetBlobResult(match store.get(&a.blob_id) {
            Some(data) => pb::GetBlobResult {
                blob_data: Some(data),
                error: None,
            },
            // An empty result, no error: what Cursor's SDK answers for a blob it lacks.
            None => pb::GetBlobResult {
                blob_data: None,
                error: None,
            },
        })),
        Some(S::SetBlobArgs(a)) => Some(C::SetBlobResult(pb::SetBlobResult {
            error: store.set(a.blob_id, a.blob_data).err().map(|e| pb::Error {
                message: e.to_string(),
            }),
        })),
        // An unknown KV kind still gets its id echoed, so the server is not left waiting.
        None => None,
    };
    client_message(pb::agent_client_message::Message::KvClientMessage(
        pb::KvClientMessage { id: kv.id, message },
    ))
}

/// Answers an interaction query by policy, with the response case matching the query case.
pub(crate) fn interaction_reply(
    q: pb::InteractionQuery,
    policy: InteractionPolicy,
) -> pb::AgentClientMessage {
    use pb::interaction_query::Query as Q;
    use pb::interaction_response::Result as R;
    // Approving sends each case's first (approval or success) case, empty; rejecting sends the
    // case's rejection with a reason, or its failure/error where the schema has no rejection.
    // Setting up a VM cannot be declined: its result is sent without a case.
    let approve = matches!(policy, InteractionPolicy::ApproveAll);
    let reason = || "rejected by client policy".to_owned();
    // The approve/reject pair most cases share (nested types of the same shape per case).
    macro_rules! decide {
        ($case:ident, $module:ident, $ty:ident) => {
            R::$case(pb::$ty {
                result: Some(if approve {
                    pb::$module::Result::Approved(Default::default())
                } else {
                    pb::$module::Result::Rejected(pb::$module::Rejected { reason: reason() })
                }),
            })
        };
    }
    let result = q.query.map(|query| match query {
        Q::WebSearchRequestQuery(_) => decide!(
            WebSearchRequestResponse,
            web_search_request_response,
            WebSearchRequestResponse
        ),
        Q::AskQuestionInteractionQuery(_) => {
            R::AskQuestionInteractionResponse(pb::AskQuestionInteractionResponse {
                result: Some(pb::AskQuestionResult {
                    result: (!approve).then(|| {
                        pb::ask_question_result::Result::Rejected(pb::AskQuestionRejected {
                            reason: reason(),
                        })
                    }),
                }),
            })
        }
        Q::SwitchModeRequestQuery(_) => decide!(
            SwitchModeRequestResponse,
            switch_mode_request_response,
            SwitchModeRequestResponse
        ),
        Q::ExaSearchRequestQuery(_) => decide!(
            ExaSearchRequestResponse,
            exa_search_request_response,
            ExaSearchRequestResponse
        ),
        Q::ExaFetchRequestQuery(_) => decide!(
            ExaFetchRequestResponse,
            exa_fetch_request_response,
            ExaFetchRequestResponse
        ),
        Q::CreatePlanRequestQuery(_) => {
            R::CreatePlanRequestResponse(pb::CreatePlanRequestResponse {
                result: Some(pb::CreatePlanResult {
                    result: (!approve).then(|| {
                        pb::create_plan_result::Result::Error(pb::CreatePlanError {
                            error: reason(),
                        })
                    }),
                    plan_uri: String::new(),
                }),
            })
        }
        Q::SetupVmEnvironmentArgs(_) => R::SetupVmEnvironmentResult(pb::SetupVmEnvironmentResult {
            result: approve.then_some(pb::setup_vm_environment_result::Result::Success(
                pb::SetupVmEnvironmentSuccess {},
            )),
        }),
        Q::WebFetchRequestQuery(_) => decide!(
            WebFetchRequestResponse,
            web_fetch_request_response,
            WebFetchRequestResponse
        ),
        Q::PrManagementRequestQuery(_) => R::PrManagementResult(pb::PrManagementResult {
            result: Some(if approve {
                pb::pr_management_result::Result::Success(Default::default())
            } else {
                pb::pr_management_result::Result::Rejected(pb::PrManagementRejected {
                    reason: reason(),
                })
            }),
        }),
        Q::McpAuthRequestQuery(_) => decide!(
            McpAuthRequestResponse,
            mcp_auth_request_response,
            McpAuthRequestResponse
        ),
        Q::GenerateImageRequestQuery(_) => decide!(
            GenerateImageRequestResponse,
            generate_image_request_response,
            GenerateImageRequestResponse
        ),
        Q::ReplaceEnvArgs(_) => R::ReplaceEnvResult(pb::ReplaceEnvResult {
            result: Some(if approve {
                pb::replace_env_result::Result::Success(Default::default())
            } else {
                pb::replace_env_result::Result::Failure(pb::ReplaceEnvFailure {
                    error_message: reason(),
                    setup_logs: String::new(),
                })
            }),
        }),
        Q::ConnectScmRequestQuery(_) => decide!(
            ConnectScmRequestResponse,
            connect_scm_request_response,
            ConnectScmRequestResponse
        ),
    });
    client_message(pb::agent_client_message::Message::InteractionResponse(
        pb::InteractionResponse { id: q.id, result },
    ))
}

/// Finds which declared tool an MCP exec means: its bare `tool_name`, its (possibly
/// qualified) `name`, or a declared name that `name` ends with after a separator
/// (`provider-tool`, `mcp_provider_tool`, `server/tool`); the longest such match wins.
pub(crate) fn resolve_tool(declared: &[String], tool_name: &str, name: &str) -> Option<String> {
    for candidate in [tool_name, name] {
        if !candidate.is_empty() && declared.iter().any(|d| d == candidate) {
            return Some(candidate.to_owned());
        }
    }
    declared
        .iter()
        .filter(|d| {
            name.len() > d.len()
                && name.ends_with(d.as_str())
                && matches!(
                    name.as_bytes()[name.len() - d.len() - 1],
                    b'-' | b'_' | b':' | b'.' | b'/'
                )
        })
        .max_by_key(|d| d.len())
        .cloned()
}

/// The MCP arguments as JSON object text (keys sorted, so the text is deterministic).
pub(crate) fn args_json(args: &HashMap<String, prost_types::Value>) -> String {
    serde_json::Value::Object(cursor_proto::json::fields_to_json(args)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::MemoryBlobStore;
    use bytes::Bytes;
    use prost::Message as _;

    fn exec_of(m: &pb::AgentClientMessage) -> &pb::ExecClientMessage {
        match &m.message {
            Some(pb::agent_client_message::Message::ExecClientMessage(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_exec_kind_from_capture_f04_is_thrown() {
        // F04: exec_server_message{id=1, span_context, field 36, field 55}, no exec_id.
        let bytes = cursor_test_support::vectors::hex("F04-exec-server-mcp-state-args.hex");
        let msg = pb::AgentServerMessage::decode(bytes.as_slice()).unwrap();
        let Some(pb::agent_server_message::Message::ExecServerMessage(e)) = msg.message else {
            panic!()
        };
        assert_eq!(e.id, 1);
        assert_eq!(e.exec_id, "");
        let reply = decline(e.id, e.exec_id, e.message);
        let Some(pb::agent_client_message::Message::ExecClientControlMessage(c)) = reply.message
        else {
            panic!()
        };
        let Some(pb::exec_client_control_message::Message::Throw(t)) = c.message else {
            panic!()
        };
        assert_eq!(t.id, 1);
        assert!(!t.error.is_empty());
    }

    #[test]
    fn builtins_get_their_own_rejections() {
        use pb::exec_server_message::Message as X;
        let shell = decline(
            3,
            "e3".into(),
            Some(X::ShellArgs(pb::ShellArgs {
                command: "rm".into(),
                ..Default::default()
            })),
        );
        let e = exec_of(&shell);
        assert_eq!((e.id, e.exec_id.as_str()), (3, "e3"));
        assert!(matches!(
            e.message,
            Some(pb::exec_client_message::Message::ShellResult(_))
        ));
        // Wire check: ShellResult.rejected is field 4 (descriptor number, not CPA's 5).
        let Some(pb::exec_client_message::Message::ShellResult(sr)) = &e.message else {
            panic!()
        };
        assert_eq!(sr.encode_to_vec()[0], 0x22);
        let read = decline(
            4,
            String::new(),
            Some(X::ReadArgs(pb::ReadArgs {
                path: "/x".into(),
                ..Default::default()
            })),
        );
        assert!(matches!(
            exec_of(&read).message,
            Some(pb::exec_client_message::Message::ReadResult(_))
        ));
        let grep = decline(5, String::new(), Some(X::GrepArgs(Default::default())));
        assert!(matches!(
            exec_of(&grep).message,
            Some(pb::exec_client_message::Message::GrepResult(_))
        ));
        let diag = decline(
            6,
            String::new(),
            Some(X::DiagnosticsArgs(Default::default())),
        );
        assert!(matches!(
            diag.message,
            Some(pb::agent_client_message::Message::ExecClientControlMessage(
                _
            ))
        ));
    }

    #[test]
    fn kv_round_trip_and_miss() {
        let store = MemoryBlobStore::default();
        let set = pb::KvServerMessage {
            id: 7,
            message: Some(pb::kv_server_message::Message::SetBlobArgs(
                pb::SetBlobArgs {
                    blob_id: Bytes::from_static(b"id"),
                    blob_data: Bytes::from_static(b"data"),
                },
            )),
            span_context: None,
        };
        let reply = kv_reply(&store, set);
        // F05 is a real kv_client_message{id=1, set_blob_result{}}; ours has the same shape.
        let mut f05_like = reply.clone();
        if let Some(pb::agent_client_message::Message::KvClientMessage(k)) = &mut f05_like.message {
            k.id = 1;
        }
        assert_eq!(
            f05_like.encode_to_vec(),
            [0x1a, 0x04, 0x08, 0x01, 0x1a, 0x00]
        );
        let get = |id: &'static [u8]| pb::KvServerMessage {
            id: 8,
            message: Some(pb::kv_server_message::Message::GetBlobArgs(
                pb::GetBlobArgs {
                    blob_id: Bytes::from_static(id),
                },
            )),
            span_context: None,
        };
        let Some(pb::agent_client_message::Message::KvClientMessage(k)) =
            kv_reply(&store, get(b"id")).message
        else {
            panic!()
        };
        assert_eq!(k.id, 8);
        let Some(pb::kv_client_message::Message::GetBlobResult(r)) = k.message else {
            panic!()
        };
        assert_eq!(r.blob_data.unwrap(), "data");
        let Some(pb::agent_client_message::Message::KvClientMessage(k)) =
            kv_reply(&store, get(b"nope")).message
        else {
            panic!()
        };
        let Some(pb::kv_client_message::Message::GetBlobResult(r)) = k.message else {
            panic!()
        };
        // A miss is an empty result, as the SDK answers it.
        assert_eq!(r, pb::GetBlobResult::default());
    }

    #[test]
    fn interaction_answers_match_query_case() {
        let q = pb::InteractionQuery {
            id: 9,
            query: Some(pb::interaction_query::Query::WebSearchRequestQuery(
                Default::default(),
            )),
        };
        let Some(pb::agent_client_message::Message::InteractionResponse(r)) =
            interaction_reply(q, InteractionPolicy::RejectAll).message
        else {
            panic!()
        };
        assert_eq!(r.id, 9);
        let Some(pb::interaction_response::Result::WebSearchRequestResponse(d)) = r.result else {
            panic!()
        };
        assert!(matches!(
            d.result,
            Some(pb::web_search_request_response::Result::Rejected(_))
        ));
    }

    #[test]
    fn tool_names_resolve_bare_qualified_and_prefixed() {
        let declared = vec!["read".to_owned(), "file_read".to_owned(), "ls".to_owned()];
        assert_eq!(
            resolve_tool(&declared, "read", "whatever").as_deref(),
            Some("read")
        );
        assert_eq!(resolve_tool(&declared, "", "ls").as_deref(), Some("ls"));
        assert_eq!(
            resolve_tool(&declared, "", "cursor-connect-ls").as_deref(),
            Some("ls")
        );
        // Longest declared suffix wins.
        assert_eq!(
            resolve_tool(&declared, "", "mcp_proxy_file_read").as_deref(),
            Some("file_read")
        );
        // A suffix without a separator is a different tool.
        assert_eq!(resolve_tool(&declared, "", "unls"), None);
        assert_eq!(resolve_tool(&declared, "", ""), None);
        assert_eq!(resolve_tool(&declared, "nope", "nope"), None);
    }

    #[test]
    fn args_are_sorted_json() {
        let mut m = HashMap::new();
        m.insert(
            "b".to_owned(),
            cursor_proto::json::value_from_json(&serde_json::json!(2)),
        );
        m.insert(
            "a".to_owned(),
            cursor_proto::json::value_from_json(&serde_json::json!("x")),
        );
        assert_eq!(args_json(&m), r#"{"a":"x","b":2}"#);
    }
}
