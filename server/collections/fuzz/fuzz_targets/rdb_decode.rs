//! RESTORE's payload decoder on arbitrary bytes: it must never panic, hang
//! or allocate without bound; an `RdbError` is fine. Half the inputs get a
//! valid version and checksum appended, so the object readers (lengths,
//! LZF, listpack, ziplist, intset, quicklist, stream) are reached, not just the
//! checksum test. A value that decodes must encode and decode to itself,
//! and so must the input as a string (the LZF compressor's round trip).
//! The direct path to the stored form (`decode_stored`) must give what
//! the general one gives (`decode`, then `stored`), error or value.
#![no_main]

use citadel_collections::rdb::{crc64, decode, decode_stored, encode, stored, RdbValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seal, object)) = data.split_first() else {
        return;
    };
    let sealed;
    let payload = if seal & 1 == 1 {
        let mut bytes = object.to_vec();
        bytes.extend_from_slice(&u16::from(seal >> 5).min(10).to_le_bytes());
        let crc = crc64(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        sealed = bytes;
        &sealed[..]
    } else {
        object
    };
    let string = RdbValue::String(data.to_vec());
    assert_eq!(decode(&encode(&string)), Ok(string));
    assert_eq!(decode_stored(payload), decode(payload).map(stored));
    if let Ok(value) = decode(payload) {
        assert_eq!(decode(&encode(&value)), Ok(value));
    }
});
