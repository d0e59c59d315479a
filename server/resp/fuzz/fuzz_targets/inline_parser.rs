//! Inline commands (redis-cli/telnet style lines with Redis's quoting) on
//! arbitrary bytes: split either succeeds with every argument span inside
//! the unescaped buffer, or reports unbalanced quotes; never a panic. An
//! argument never holds more bytes than the line (unescaping only shrinks).
#![no_main]

use citadel_resp::inline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    if inline::split(line, &mut buf, &mut spans).is_ok() {
        assert!(buf.len() <= line.len());
        let mut last = 0;
        for span in &spans {
            assert!(span.start >= last && span.start <= span.end && span.end <= buf.len());
            last = span.end;
        }
    }
});
