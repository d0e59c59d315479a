//! The pipeline messages on arbitrary bytes: every decoder either refuses
//! or returns slices inside the input that agree with its header (a frame's
//! pixels hold every row); options text either parses to options that
//! validate and print to a spelling that parses back the same, or is
//! refused.
#![no_main]

use citadel_proto::pipeline::{message_type, Call, CallOptions, End, FrameHeader, ResultMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = message_type(data);
    if let Ok(call) = Call::decode(data) {
        assert!(call.options.len() + call.input.len() <= data.len());
        if let Ok(o) = CallOptions::parse(call.options) {
            o.validate().expect("parsed options are valid");
            let text = o.to_string();
            let again = CallOptions::parse(&text).expect("the canonical text parses");
            assert_eq!(again.to_string(), text);
        }
    }
    if let Ok((h, pixels)) = FrameHeader::decode(data) {
        assert_eq!(pixels.len(), h.byte_len());
        assert!(h.stride as usize >= h.width as usize * h.format.bytes_per_pixel() as usize);
        let mut again = vec![0u8; h.record_len()];
        h.write(&mut again);
        assert_eq!(FrameHeader::decode(&again).unwrap().0, h);
    }
    if let Ok(r) = ResultMessage::decode(data) {
        assert_eq!(ResultMessage::decode(&r.encode()).unwrap(), r);
    }
    if let Ok(e) = End::decode(data) {
        assert_eq!(End::decode(&e.encode()).unwrap(), e);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(o) = CallOptions::parse(text) {
            assert_eq!(CallOptions::parse(&o.to_string()).unwrap(), o);
        }
    }
});
