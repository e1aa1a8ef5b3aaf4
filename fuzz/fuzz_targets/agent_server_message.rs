//! Arbitrary bytes as `agent.v1.AgentServerMessage` (what the server streams to us): decoding
//! never panics, and a decoded message re-encodes to exactly `encoded_len` bytes that decode
//! again.
#![no_main]

use cursor_proto::agent::v1::AgentServerMessage;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = AgentServerMessage::decode(data) else {
        return;
    };
    let bytes = msg.encode_to_vec();
    assert_eq!(bytes.len(), msg.encoded_len());
    let again = AgentServerMessage::decode(&bytes[..]).expect("re-encoded message must decode");
    assert_eq!(again.encoded_len(), bytes.len());
});
