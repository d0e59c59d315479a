//! Framing from the length headers alone (`frame`, what an overloaded core
//! refuses a command from) against the full parser on arbitrary bytes:
//! wherever framing answers, the parser must read one whole multibulk
//! command of the same length, argument count, name and second argument;
//! framing never panics and its spans lie inside the buffer.
#![no_main]

use citadel_resp::{frame, Parsed, RequestParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    // Small limits too, so "over the bulk limit" is reached.
    let max_bulk = 1usize << (control % 21);
    let Some(f) = frame::frame(input, max_bulk) else {
        return;
    };
    assert!(f.end <= input.len() && f.name.end <= input.len());
    let mut parser = RequestParser::default();
    let parsed = parser.parse(input, max_bulk, true);
    assert_eq!(
        parsed,
        Parsed::Command {
            end: f.end,
            inline: false
        }
    );
    assert_eq!(parser.args.len(), f.args);
    assert_eq!(parser.args.first(), Some(&f.name));
    assert_eq!(parser.args.get(1), f.second.as_ref());
});
