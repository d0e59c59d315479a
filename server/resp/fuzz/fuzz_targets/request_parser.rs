//! The request parser on arbitrary bytes, fed as the server feeds it: in
//! pieces (the first input byte picks the piece size), keeping a partial
//! request's bytes and re-offering them with the next piece, for a client
//! that is authenticated or not. Every outcome must be a request, an
//! incomplete request, or a protocol error; never a panic, and every
//! argument span must lie inside the bytes it was parsed from.
#![no_main]

use citadel_resp::{Parsed, RequestParser};
use libfuzzer_sys::fuzz_target;

const MAX_BULK: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(control & 0x3f) + 1;
    let authed = control & 0x40 != 0;
    let mut parser = RequestParser::default();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in input.chunks(piece) {
        pending.extend_from_slice(chunk);
        loop {
            match parser.parse(&pending, MAX_BULK, authed) {
                Parsed::Command { end, inline } => {
                    assert!(end <= pending.len() && end > 0);
                    let buf = parser.buf(&pending, inline);
                    for span in &parser.args {
                        assert!(span.start <= span.end && span.end <= buf.len());
                    }
                    pending.drain(..end);
                }
                Parsed::Empty { end } => {
                    assert!(end <= pending.len() && end > 0);
                    pending.drain(..end);
                }
                Parsed::Incomplete { need } => {
                    assert!(need == 0 || need > pending.len());
                    break;
                }
                Parsed::Error(e) => {
                    // The server answers with the error text and closes.
                    assert!(e.to_string().starts_with("ERR Protocol error: "));
                    return;
                }
            }
        }
    }
});
