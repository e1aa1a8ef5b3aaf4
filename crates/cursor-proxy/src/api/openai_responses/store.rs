//! Stored responses, for `previous_response_id`: the conversation each stored response ended
//! (its input messages plus its own output), kept in memory for [`TTL`], at most [`MAX`] of
//! them. A response created with `store: false` is not kept.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::engine::turn::Message;

/// How long a stored response can be continued.
pub const TTL: Duration = Duration::from_secs(60 * 60);
/// Most responses kept; the oldest go first.
pub const MAX: usize = 4096;

#[derive(Debug)]
struct Entry {
    messages: Vec<Message>,
    at: Instant,
}

fn map() -> &'static Mutex<HashMap<String, Entry>> {
    static MAP: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Keeps the conversation response `id` ended with.
pub fn put(id: &str, messages: Vec<Message>) {
    let now = Instant::now();
    let mut map = map().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, e| now.saturating_duration_since(e.at) < TTL);
    if map.len() >= MAX
        && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(id.to_owned(), Entry { messages, at: now });
}

/// The conversation response `id` ended with, if it is stored.
pub fn get(id: &str) -> Option<Vec<Message>> {
    let map = map().lock().unwrap_or_else(|e| e.into_inner());
    map.get(id)
        .filter(|e| e.at.elapsed() < TTL)
        .map(|e| e.messages.clone())
}
