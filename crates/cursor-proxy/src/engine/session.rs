//! Conversation identity (the checkpoints themselves live in the [`Store`](crate::store::Store)).
//!
//! A conversation is keyed by a hash of the caller's key, the model, the first 200 characters of
//! the system prompt and the first user message, so two callers never share one. When Claude Code
//! says which session it is (its session id, or the `cch` hash in its billing header), that wins.

use sha2::{Digest, Sha256};

use crate::engine::turn::Turn;

/// Characters of the system prompt that go into the session key.
pub const SYSTEM_PREFIX_CHARS: usize = 200;

/// Derives the stable conversation id (UUID-shaped) for a request from `caller_key`.
pub fn conversation_id(caller_key: &str, req: &Turn) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field(caller_key);
    if let Some(id) = req.client_session.as_deref().filter(|s| !s.is_empty()) {
        field("client-session");
        field(id);
    } else if let Some(cch) = req.system.as_deref().and_then(billing_hash) {
        field("billing-cch");
        field(cch);
    } else {
        field("derived");
        field(&req.model);
        let system = req.system.as_deref().unwrap_or("");
        let end = system
            .char_indices()
            .nth(SYSTEM_PREFIX_CHARS)
            .map_or(system.len(), |(i, _)| i);
        field(&system[..end]);
        field(&req.first_user_text());
    }
    uuid_from(&h.finalize())
}

/// The `cch=` value of Claude Code's `x-anthropic-billing-header` line in a system prompt.
pub fn billing_hash(system: &str) -> Option<&str> {
    let at = system.find("x-anthropic-billing-header:")?;
    let line = system[at..].lines().next()?;
    let start = line.find("cch=")? + 4;
    let rest = &line[start..];
    let end = rest.find([';', ' ', '"']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

/// Claude Code's session id from Anthropic `metadata.user_id`: either
/// `user_<hash>_account_<uuid>_session_<uuid>` or a JSON object with `session_id`.
pub fn claude_code_session(user_id: &str) -> Option<String> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(user_id) {
        return o
            .get("session_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
    }
    let at = user_id.rfind("_session_")?;
    Some(user_id[at + 9..].to_owned()).filter(|s| !s.is_empty())
}

fn uuid_from(d: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::turn::{Message, Part, Role};

    fn req(model: &str, system: &str, first: &str) -> Turn {
        Turn {
            model: model.into(),
            system: Some(system.into()).filter(|s: &String| !s.is_empty()),
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text(first.into())],
            }],
            ..Turn::default()
        }
    }

    #[test]
    fn key_depends_on_caller_model_system_prefix_and_first_message() {
        let base = conversation_id("k1", &req("m", "sys", "hello"));
        assert_eq!(base, conversation_id("k1", &req("m", "sys", "hello")));
        assert_ne!(
            base,
            conversation_id("k2", &req("m", "sys", "hello")),
            "two callers never share"
        );
        assert_ne!(base, conversation_id("k1", &req("m2", "sys", "hello")));
        assert_ne!(base, conversation_id("k1", &req("m", "sys2", "hello")));
        assert_ne!(base, conversation_id("k1", &req("m", "sys", "hello2")));
        let long = "x".repeat(SYSTEM_PREFIX_CHARS);
        assert_eq!(
            conversation_id("k1", &req("m", &format!("{long}A"), "q")),
            conversation_id("k1", &req("m", &format!("{long}B"), "q")),
            "only the first 200 characters count"
        );
        // Later turns keep the id.
        let mut later = req("m", "sys", "hello");
        later.messages.push(Message {
            role: Role::Assistant,
            parts: vec![Part::Text("hi".into())],
        });
        assert_eq!(base, conversation_id("k1", &later));
        assert_eq!(base.len(), 36);
    }

    #[test]
    fn claude_code_ids_win() {
        let mut a = req("m", "sys", "one");
        a.client_session = claude_code_session("user_abc_account_11_session_0f0f-aa");
        let mut b = req("m", "other", "two");
        b.client_session = claude_code_session(r#"{"device_id":"d","session_id":"0f0f-aa"}"#);
        assert_eq!(a.client_session.as_deref(), Some("0f0f-aa"));
        assert_eq!(conversation_id("k", &a), conversation_id("k", &b));
        assert_ne!(conversation_id("k", &a), conversation_id("other", &a));
        let sys =
            "x-anthropic-billing-header: cc_version=1.0; cch=abc123; more\nYou are Claude Code.";
        assert_eq!(billing_hash(sys), Some("abc123"));
        assert_eq!(
            conversation_id("k", &req("m", sys, "one")),
            conversation_id("k", &req("m2", sys, "different"))
        );
        assert_eq!(billing_hash("no header"), None);
    }
}
