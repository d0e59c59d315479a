//! The loader codec on arbitrary bytes: every decoder either refuses or
//! returns values that lie inside the input; a request written in place
//! decodes to what was written.
#![no_main]

use citadel_proto::load::{
    decode_error_reply, decode_invalidation, decode_reply_ref, decode_request, request_len,
    write_request,
};
use citadel_proto::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_request(Format::FlatBuffer, data) {
        assert!(!req.key.is_empty());
        let _ = req.args().count();
    }
    let _ = decode_reply_ref(data);
    let _ = decode_error_reply(data);
    if let Ok(inv) = decode_invalidation(data) {
        let _ = inv.keys().count();
    }
    // Round trip: split the input into a key and a command.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (key, rest) = data.split_at(split);
    let command = String::from_utf8_lossy(rest);
    let mut buf = vec![0xEE; request_len(key.len(), command.len())];
    let n = write_request(&mut buf, key, &command).unwrap();
    assert_eq!(n, buf.len());
    match decode_request(Format::FlatBuffer, &buf) {
        Ok(req) => {
            assert_eq!(req.key, key);
            assert_eq!(req.command, Some(&*command));
        }
        Err(e) => assert!(key.is_empty(), "{e}"),
    }
});
