//! Moved to `cursor_test_support::proxy::{http, process}` (one copy for every cursor-proxy
//! test); this re-export keeps tests written against the old module compiling.
#![allow(unused_imports, unreachable_pub)]

pub use cursor_test_support::proxy::http::{answer_text, chat_body, http_as, turn2_messages};
pub use cursor_test_support::proxy::process::*;
