//! The requests the mock has made of the client and is waiting on, and the checks applied to
//! each answer (ids echoed, kinds matching, blobs byte-exact).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::wire::{ClientMsg, ExecAnswer};

/// What the mock waits for, by request id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Kv(u32),
    Exec(u32),
    Interaction(u32),
}

/// What a pending request accepts as its answer.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// A get: `Some(data)` must come back exactly; `None` (unknown blob) must come back empty.
    KvGet(Option<Bytes>),
    KvSet,
    RequestContext {
        exec_id: String,
    },
    Mcp {
        exec_id: String,
        name: String,
    },
    /// An exec the client is expected to decline: any result with this id, or a throw.
    Unsupported {
        exec_id: String,
        kind: &'static str,
    },
    Interaction,
}

/// How an accepted client message affects the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    Fine,
    Cancel,
}

/// The outstanding requests of one turn.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pending: HashMap<Key, Expect>,
    issued_execs: HashSet<u32>,
    /// (exec id, tool name, result text).
    tool_results: Vec<(u32, String, String)>,
}

impl Ledger {
    pub(crate) fn expect(&mut self, key: Key, expect: Expect) {
        if let Key::Exec(id) = key {
            self.issued_execs.insert(id);
        }
        self.pending.insert(key, expect);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The pending keys, sorted, for error messages.
    pub(crate) fn describe(&self) -> String {
        let mut ids: Vec<String> = self.pending.keys().map(|k| format!("{k:?}")).collect();
        ids.sort();
        ids.join(", ")
    }

    /// Tool results so far, in exec id order; empties the list.
    pub(crate) fn take_tool_results(&mut self) -> Vec<(u32, String, String)> {
        let mut results = std::mem::take(&mut self.tool_results);
        results.sort_by_key(|(id, ..)| *id);
        results
    }

    /// Checks one client message against the pending requests. `Err` describes a violation.
    pub(crate) fn accept(&mut self, msg: ClientMsg) -> Result<Accepted, String> {
        match msg {
            ClientMsg::Heartbeat
            | ClientMsg::Empty
            | ClientMsg::OtherAction
            | ClientMsg::ExecHeartbeat => Ok(Accepted::Fine),
            ClientMsg::Cancel => Ok(Accepted::Cancel),
            ClientMsg::Run(_) | ClientMsg::Prewarm => {
                Err("a second run request on the same stream".to_owned())
            }
            ClientMsg::InteractionResponse { id } => {
                match self.pending.remove(&Key::Interaction(id)) {
                    Some(_) => Ok(Accepted::Fine),
                    None => Err(format!(
                        "interaction_response {id} matches no pending interaction query"
                    )),
                }
            }
            ClientMsg::KvGetResult { id, data, error } => self.kv_get(id, data, error),
            ClientMsg::KvSetResult { id, error } => match self.pending.remove(&Key::Kv(id)) {
                Some(Expect::KvSet) if !error => Ok(Accepted::Fine),
                Some(Expect::KvSet) => Err(format!("KV set {id}: the client reported an error")),
                Some(other) => Err(format!("KV set result for id {id}, which was {other:?}")),
                None => Err(format!(
                    "KV set result with id {id}, which matches no pending KV request"
                )),
            },
            ClientMsg::Exec {
                id,
                exec_id,
                answer,
            } => self.exec(id, &exec_id, answer),
            ClientMsg::ExecThrow { id, error } => match self.pending.remove(&Key::Exec(id)) {
                Some(Expect::Mcp { name, .. }) => {
                    self.tool_results.push((id, name, error));
                    Ok(Accepted::Fine)
                }
                Some(Expect::RequestContext { .. } | Expect::Unsupported { .. }) => {
                    Ok(Accepted::Fine)
                }
                _ => Err(format!(
                    "exec throw for id {id}, which matches no pending exec"
                )),
            },
            ClientMsg::ExecStreamClose { id } => {
                if self.issued_execs.contains(&id) {
                    Ok(Accepted::Fine)
                } else {
                    Err(format!(
                        "exec stream_close for id {id}, which the mock never issued"
                    ))
                }
            }
        }
    }

    fn kv_get(&mut self, id: u32, data: Option<Bytes>, error: bool) -> Result<Accepted, String> {
        match self.pending.remove(&Key::Kv(id)) {
            Some(Expect::KvGet(Some(expected))) => match data {
                Some(data) if data == expected => Ok(Accepted::Fine),
                Some(data) => Err(format!(
                    "KV get {id}: returned {} bytes that differ from the {} bytes stored",
                    data.len(),
                    expected.len()
                )),
                None if error => Err(format!("KV get {id}: error for a blob the mock stored")),
                None => Err(format!("KV get {id}: no data for a blob the mock stored")),
            },
            Some(Expect::KvGet(None)) => match data {
                Some(data) if !data.is_empty() => Err(format!(
                    "KV get {id}: {} bytes for a blob that was never stored",
                    data.len()
                )),
                _ => Ok(Accepted::Fine),
            },
            Some(other) => Err(format!("KV get result for id {id}, which was {other:?}")),
            None => Err(format!(
                "KV get result with id {id}, which matches no pending KV request"
            )),
        }
    }

    fn exec(&mut self, id: u32, exec_id: &str, answer: ExecAnswer) -> Result<Accepted, String> {
        let Some(expect) = self.pending.remove(&Key::Exec(id)) else {
            return Err(format!(
                "exec result for id {id}, which matches no pending exec"
            ));
        };
        let want = match &expect {
            Expect::RequestContext { exec_id }
            | Expect::Mcp { exec_id, .. }
            | Expect::Unsupported { exec_id, .. } => exec_id.clone(),
            _ => String::new(),
        };
        // Cursor's SDK answers by `id` alone and leaves `exec_id` empty (seen with 1.0.32, see
        // reference/cursor-sdk-peer.md): correlate by id, and check `exec_id` only when echoed.
        if !exec_id.is_empty() && want != exec_id {
            return Err(format!(
                "exec {id}: exec_id {exec_id:?} does not echo {want:?}"
            ));
        }
        match (expect, answer) {
            (Expect::RequestContext { .. }, ExecAnswer::RequestContext { .. }) => {
                Ok(Accepted::Fine)
            }
            (Expect::Mcp { name, .. }, ExecAnswer::Mcp { text, .. }) => {
                self.tool_results.push((id, name, text));
                Ok(Accepted::Fine)
            }
            (Expect::Unsupported { kind, .. }, answer) => match answer {
                ExecAnswer::Empty => Err(format!(
                    "exec {id}: the answer to a {kind} exec carries no result"
                )),
                _ => Ok(Accepted::Fine),
            },
            (expect, answer) => Err(format!(
                "exec {id}: answer {answer:?} does not fit the request {expect:?}"
            )),
        }
    }
}
