//! The INCRBYFLOAT number parser (Redis's `string2ld` over an x87 extended
//! float), and the f64 hex-float reader beside it, on arbitrary bytes:
//! never a panic; an accepted finite value prints as a number that parses
//! again and fits Redis's 5 KiB buffer;
//! adding its negation gives zero; addition commutes.
#![no_main]

use std::ops::Add;

use citadel_resp::ext_float::{ExtFloat, MAX_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&c| c == b'|').unwrap_or(data.len());
    let (left, right) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    // The f64 hex-float reader (ZADD and GEO scores): a hex text it takes
    // is one the extended reader takes too (same grammar, wider range).
    if let Some(v) = citadel_resp::num::parse_hex_f64(left) {
        assert!(v.is_finite());
        if left.len() < MAX_CHARS {
            assert!(ExtFloat::parse(left).is_some(), "{:?}", String::from_utf8_lossy(left));
        }
    }
    let Some(x) = ExtFloat::parse(left) else {
        return;
    };
    if let Some(y) = ExtFloat::parse(right) {
        assert_eq!(x.add(y), y.add(x));
    }
    let ExtFloat::Finite { neg, mant, exp } = x else {
        return;
    };
    let negated = ExtFloat::Finite { neg: !neg, mant, exp };
    assert_eq!(x.add(negated), ExtFloat::ZERO);
    let mut text = Vec::new();
    x.write_human(&mut text).expect("finite values print");
    assert!(text.len() < MAX_CHARS);
    assert!(ExtFloat::parse(&text).is_some(), "{:?}", String::from_utf8_lossy(&text));
});
