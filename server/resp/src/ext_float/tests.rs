//! Known values (checked against redis-server 7.0, i.e. glibc's strtold
//! and printf on x87 long double) and properties of the rounding.

use std::ops::Add;

use proptest::prelude::*;

use super::parse::{big_decimal, small_decimal};
use super::ExtFloat;

fn ext(s: &str) -> ExtFloat {
    ExtFloat::parse(s.as_bytes()).unwrap_or_else(|| panic!("{s:?} should parse"))
}

fn human(v: ExtFloat) -> String {
    let mut out = Vec::new();
    v.write_human(&mut out).expect("finite");
    String::from_utf8(out).expect("ascii")
}

/// What INCRBYFLOAT replies on a key holding `a` incremented by `b`.
fn sum(a: &str, b: &str) -> String {
    human(ext(a).add(ext(b)))
}

#[test]
fn sums_print_as_redis_prints_them() {
    assert_eq!(sum("0.1", "0.2"), "0.3");
    assert_eq!(sum("10.5", "0.1"), "10.6");
    assert_eq!(sum("5.0e3", "200"), "5200");
    assert_eq!(sum("0", "-0.25"), "-0.25");
    assert_eq!(sum("-0", "-0"), "0");
    assert_eq!(sum("0", "-1e-20"), "0");
    assert_eq!(sum("3.0e3", "1.5"), "3001.5");
    assert_eq!(
        human(ext("1e300"))[..80],
        *"10000000000000000000089973240795591938705239442732907479382600823212656465961809"
    );
    assert_eq!(
        human(ext("123456789012345678901234567890")),
        "123456789012345678899921813504"
    );
    assert_eq!(human(ext("0X1.8P1")), "3");
    assert_eq!(human(ext("0x.8p1")), "1");
    assert_eq!(human(ext("0x1.fffffffffffffffffp0")), "2");
    assert_eq!(human(ext("+5")), "5");
    assert_eq!(human(ext("5.")), "5");
    assert_eq!(human(ext(".5")), "0.5");
}

#[test]
fn printing_rounds_ties_to_even_on_the_exact_binary_value() {
    // 2^-18 = 0.000003814697265625: the 18th decimal is a tie.
    assert_eq!(human(ext("0x1p-18")), "0.00000381469726562");
    // 3 * 2^-18 = 0.000011444091796875: a tie rounding up to even.
    assert_eq!(human(ext("0x3p-18")), "0.00001144409179688");
    // 2^-58 is below half of 10^-17: zero, and "-0" prints as "0".
    assert_eq!(human(ext("-0x1p-58")), "0");
    assert_eq!(human(ext("-0x1p-57")), "-0.00000000000000001");
}

#[test]
fn parse_refuses_what_string2ld_refuses() {
    for bad in [
        "",
        " 1",
        "\t1",
        "1 ",
        "x",
        "1x",
        ".",
        "1e",
        "1e+",
        "0x",
        "0x1p",
        "0x.p1",
        "nan",
        "-nan",
        "infin",
        "+-1",
        "1\u{0}",
        "1e-5000",
        "1.2e4932",
        "0x1p-16446",
        "0x1p-16447",
        "0x1p16384",
    ] {
        assert_eq!(ExtFloat::parse(bad.as_bytes()), None, "{bad:?}");
    }
    assert_eq!(ExtFloat::parse(&[b'1'; 5 * 1024]), None);
    assert!(ExtFloat::parse(&[b'1'; 5000]).is_none(), "overflow");
    assert!(ExtFloat::parse(&[b'1'; 4000]).is_some());
    assert!(ExtFloat::parse(&[b'0'; 5 * 1024 - 1]).is_some());
}

#[test]
fn infinities_parse_and_only_meet_as_nan() {
    let inf = ext("inf");
    assert_eq!(inf, ExtFloat::Infinite { neg: false });
    assert_eq!(ext("-Infinity"), ExtFloat::Infinite { neg: true });
    assert_eq!(inf.add(ext("-inf")), ExtFloat::Nan);
    assert_eq!(inf.add(ext("1")), inf);
    assert!(!inf.add(ext("1")).is_finite());
}

#[test]
fn subnormals_and_extremes() {
    // Exact zeros are fine however far the exponent goes.
    assert_eq!(human(ext("0e-99999")), "0");
    assert_eq!(human(ext("0x0p99999999999999999999")), "0");
    // The smallest subnormal, and 0.75 of it rounding up to it.
    let tiny = ext("0x1p-16445");
    assert_eq!(ext("0x1.8p-16446"), tiny);
    assert_eq!(human(tiny), "0");
    assert_eq!(ext("3.6451995318824746025e-4951"), tiny);
    // The largest finite value; one more ulp overflows.
    let max = ext("0x1.fffffffffffffffep16383");
    let text = human(max);
    assert_eq!(text.len(), 4933);
    assert!(text.starts_with("118973149535723176502"));
    assert_eq!(ext(&text), max);
    assert_eq!(max.add(ext("0x1p16320")), ExtFloat::Infinite { neg: false });
    assert_eq!(max.add(ext("0x1p16318")), max);
    assert!(ext("1e4932").is_finite());
    assert_eq!(
        human(ext("1e4932"))[..60],
        *"100000000000000000000601894938796389132383777425453311477378"
    );
}

#[test]
fn addition_rounds_to_64_bits_ties_to_even() {
    // 2^63 + 0.5 is a tie between 2^63 and 2^63 + 1: even is 2^63.
    assert_eq!(sum("9223372036854775808", "0.5"), "9223372036854775808");
    assert_eq!(sum("9223372036854775809", "0.5"), "9223372036854775810");
    // The addend is rounded first: 0.5 + 1e-20 is 0.5, a tie again.
    assert_eq!(
        sum("9223372036854775808", "0.50000000000000000001"),
        "9223372036854775808"
    );
    // A far smaller part of the addend (2^-60, 64 bits below) breaks it.
    assert_eq!(
        sum("0x1p64", "0x1.000000000000001p0"),
        "18446744073709551618"
    );
    assert_eq!(sum("0x1p64", "1"), "18446744073709551616");
    // Cancellation is exact.
    assert_eq!(sum("1e-10", "-1e-10"), "0");
    assert_eq!(sum("18446744073709551615", "-18446744073709551614"), "1");
}

/// The extended value equal to a finite nonzero double, from its bits.
fn from_f64(x: f64) -> ExtFloat {
    let bits = x.to_bits();
    let (field, frac) = ((bits >> 52) & 0x7ff, bits & ((1 << 52) - 1));
    let (mant, exp) = match field {
        0 => (frac, -1074),
        _ => (frac | 1 << 52, field as i32 - 1075),
    };
    let lz = mant.leading_zeros();
    ExtFloat::Finite {
        neg: x < 0.0,
        mant: mant << lz,
        exp: exp - lz as i32,
    }
}

fn digits_strategy() -> impl Strategy<Value = (String, i64)> {
    ("[1-9][0-9]{0,18}", -17i64..=38).prop_map(|(d, e)| {
        let trimmed = d.trim_end_matches('0').to_string();
        let e = e + (d.len() - trimmed.len()) as i64;
        (trimmed, e)
    })
}

proptest! {
    #[test]
    fn small_and_big_decimal_paths_agree((digits, exp10) in digits_strategy(), neg: bool) {
        if let Some(fast) = small_decimal(neg, digits.as_bytes(), exp10) {
            prop_assert_eq!(fast, big_decimal(neg, digits.as_bytes(), exp10));
        }
    }

    #[test]
    fn integer_sums_are_exact(a in -(1i64 << 62)..(1i64 << 62), b in -(1i64 << 62)..(1i64 << 62)) {
        let v = ext(&a.to_string()).add(ext(&b.to_string()));
        prop_assert_eq!(human(v), (i128::from(a) + i128::from(b)).to_string());
    }

    #[test]
    fn f64_values_convert_exactly(x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL) {
        // Every double is an extended value: its exact decimal expansion
        // parses to it, and the sum with its negation is zero.
        let exact = format!("{x:.1100}");
        prop_assert_eq!(ext(&exact), from_f64(x));
        prop_assert_eq!(human(ext(&exact).add(from_f64(-x))), "0");
    }

    #[test]
    fn addition_commutes_and_parse_never_panics(a in "[-+]?[0-9]{0,25}(\\.[0-9]{0,25})?(e[-+]?[0-9]{1,4})?", b in any::<Vec<u8>>()) {
        let _ = ExtFloat::parse(&b);
        if let (Some(x), Some(y)) = (ExtFloat::parse(a.as_bytes()), ExtFloat::parse(&b)) {
            prop_assert_eq!(x.add(y), y.add(x));
        }
    }
}
