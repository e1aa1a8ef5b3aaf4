//! Arbitrary end-stream payloads: parsing never panics, and whatever parses survives our own
//! writer unchanged (code, message, details, metadata).
#![no_main]

use cursor_connect_frame::EndStream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(end) = EndStream::parse(data) else {
        return;
    };
    let json = end.to_json();
    let again = EndStream::parse(&json).expect("our own end-stream JSON must parse");
    assert_eq!(again.metadata, end.metadata);
    match (&end.error, &again.error) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(a.code(), b.code());
            assert_eq!(a.message(), b.message());
            assert_eq!(a.details(), b.details());
        }
        _ => panic!("error presence changed in round trip"),
    }
});
