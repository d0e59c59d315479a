//! LuaBitOp (`bit`): 32-bit operations on Lua numbers.

use mlua::{Lua, Table, Variadic};

/// LuaBitOp's normalization: round to nearest, keep the low 32 bits.
fn tobit(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    let r = x.round_ties_even();
    r.rem_euclid(4_294_967_296.0) as u64 as u32 as i32
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", lua.create_function(|_, x: f64| Ok(tobit(x)))?)?;
    t.set("bnot", lua.create_function(|_, x: f64| Ok(!tobit(x)))?)?;
    t.set(
        "bswap",
        lua.create_function(|_, x: f64| Ok(tobit(x).swap_bytes()))?,
    )?;
    type Op = fn(i32, i32) -> i32;
    let folds: [(&str, Op); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        t.set(
            name,
            lua.create_function(move |_, (first, rest): (f64, Variadic<f64>)| {
                Ok(rest.iter().fold(tobit(first), |acc, &x| op(acc, tobit(x))))
            })?,
        )?;
    }
    let shifts: [(&str, Op); 5] = [
        ("lshift", |x, n| ((x as u32) << (n & 31)) as i32),
        ("rshift", |x, n| ((x as u32) >> (n & 31)) as i32),
        ("arshift", |x, n| x >> (n & 31)),
        ("rol", |x, n| (x as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |x, n| {
            (x as u32).rotate_right((n & 31) as u32) as i32
        }),
    ];
    for (name, op) in shifts {
        t.set(
            name,
            lua.create_function(move |_, (x, n): (f64, f64)| Ok(op(tobit(x), tobit(n))))?,
        )?;
    }
    t.set(
        "tohex",
        lua.create_function(|_, (x, n): (f64, Option<f64>)| {
            let mut n = n.map(tobit).unwrap_or(8);
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(1, 8) as usize;
            let v = tobit(x) as u32;
            let s = if upper {
                format!("{v:08X}")
            } else {
                format!("{v:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bitop() {
        let lua = super::super::test_lua();
        let ok: bool = lua
            .load(
                r#"
                return bit.tobit(0xffffffff) == -1
                   and bit.tobit(2^32 + 5) == 5
                   and bit.bnot(0) == -1
                   and bit.band(0xff, 0x0f, 0x3) == 3
                   and bit.bor(1, 2, 4) == 7
                   and bit.bxor(5, 1) == 4
                   and bit.lshift(1, 31) == -2147483648
                   and bit.rshift(-1, 28) == 15
                   and bit.arshift(-256, 4) == -16
                   and bit.rol(0x12345678, 8) == 0x34567812
                   and bit.ror(0x12345678, 8) == 0x78123456
                   and bit.bswap(0x12345678) == 0x78563412
                   and bit.tohex(255) == '000000ff'
                   and bit.tohex(255, -2) == 'FF'
                   and bit.tohex(-1, 4) == 'ffff'
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
    }
}
