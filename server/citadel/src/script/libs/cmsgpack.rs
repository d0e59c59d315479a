//! `cmsgpack` as Redis ships it (lua-cmsgpack): `pack(...)` encodes each
//! argument and concatenates them, `unpack(s)` decodes every object in
//! `s`; also `unpack_one(s [, offset])` and `unpack_limit(s, n [, offset])`
//! returning the next offset first.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use super::{array_len, err};

/// lua-cmsgpack's nesting limit: deeper tables encode as nil.
const MAX_NESTING: usize = 16;

fn pack_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        let u = i as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn pack_len(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, t16: u8, t32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(t16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(t32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack(v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_int(out, *i),
        Value::Number(n) => {
            let n = *n;
            if n.fract() == 0.0 && n.is_finite() && n.abs() < 9.2e18 {
                pack_int(out, n as i64);
            } else if f64::from(n as f32) == n || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_NESTING => match array_len(t)? {
            Some(n) => {
                pack_len(out, n, 0x90, 15, 0xdc, 0xdd);
                for i in 1..=n {
                    pack(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
            }
            None => {
                // Counted, then packed pair by pair: each key and value a
                // Lua reference while it is held, and Lua 5.1 holds at most
                // 8,000 (a map of 70,000 string keys collected first ran
                // out of Lua stack).
                let n = t.pairs::<Value, Value>().count();
                pack_len(out, n, 0x80, 15, 0xde, 0xdf);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    pack(&k, depth + 1, out)?;
                    pack(&v, depth + 1, out)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

fn truncated() -> mlua::Error {
    err("Missing bytes in input.")
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let s = self.b.get(self.pos..self.pos + n).ok_or_else(truncated)?;
        self.pos += n;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &c| (a << 8) | u64::from(c)))
    }
    fn int(&mut self, n: usize) -> mlua::Result<i64> {
        let u = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((u << shift) as i64) >> shift)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > 1000 {
            return Err(err("Bad data format in input."));
        }
        let c = self.take(1)?[0];
        Ok(match c {
            0x00..=0x7f => Value::Number(f64::from(c)),
            0xe0..=0xff => Value::Number(f64::from(c as i8)),
            0x80..=0x8f => self.map(lua, usize::from(c & 0x0f), depth)?,
            0x90..=0x9f => self.array(lua, usize::from(c & 0x0f), depth)?,
            0xa0..=0xbf => self.string(lua, usize::from(c & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)?
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)?
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)?
            }
            0xca => Value::Number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xcc => Value::Number(self.uint(1)? as f64),
            0xcd => Value::Number(self.uint(2)? as f64),
            0xce => Value::Number(self.uint(4)? as f64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Number(self.int(1)? as f64),
            0xd1 => Value::Number(self.int(2)? as f64),
            0xd2 => Value::Number(self.int(4)? as f64),
            0xd3 => Value::Number(self.int(8)? as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n, depth)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n, depth)?
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n, depth)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n, depth)?
            }
            _ => return Err(err("Bad data format in input.")),
        })
    }
    fn string(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        Ok(Value::String(lua.create_string(self.take(n)?)?))
    }
    fn array(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for i in 0..n {
            t.raw_set(i + 1, self.value(lua, depth + 1)?)?;
        }
        Ok(Value::Table(t))
    }
    fn map(&mut self, lua: &Lua, n: usize, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua, depth + 1)?;
            let v = self.value(lua, depth + 1)?;
            if !k.is_nil() {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}

/// Decodes up to `limit` objects (0: all) from `offset`: (next offset or
/// -1 at the end, values).
fn unpack_from(
    lua: &Lua,
    s: &[u8],
    offset: usize,
    limit: usize,
) -> mlua::Result<(i64, Vec<Value>)> {
    let mut r = Reader { b: s, pos: offset };
    let mut values = Vec::new();
    while r.pos < s.len() && (limit == 0 || values.len() < limit) {
        values.push(r.value(lua, 0)?);
    }
    let next = if r.pos >= s.len() { -1 } else { r.pos as i64 };
    Ok((next, values))
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(err("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for a in args.iter() {
                pack(a, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, s: mlua::LuaString| {
            let (_, values) = unpack_from(lua, &s.as_bytes(), 0, 0)?;
            Ok(MultiValue::from_iter(values))
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (mlua::LuaString, Option<usize>)| {
            let (next, values) = unpack_from(lua, &s.as_bytes(), offset.unwrap_or(0), 1)?;
            Ok(MultiValue::from_iter(
                std::iter::once(Value::Number(next as f64)).chain(values),
            ))
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(
            |lua, (s, limit, offset): (mlua::LuaString, usize, Option<usize>)| {
                let (next, values) = unpack_from(lua, &s.as_bytes(), offset.unwrap_or(0), limit)?;
                Ok(MultiValue::from_iter(
                    std::iter::once(Value::Number(next as f64)).chain(values),
                ))
            },
        )?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let lua = super::super::test_lua();
        let hex: String = lua
            .load(
                r#"
                local s = cmsgpack.pack({1, 2, 3}, 'abc', -1, 300, 1.5, true, {a = 1})
                return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end))
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(hex, "93010203a3616263ffcd012cca3fc00000c381a16101");
        let ok: bool = lua
            .load(
                r#"
                local a, b, c, d = cmsgpack.unpack(cmsgpack.pack({1, {x = 'y'}}, 'z', -70000, 2^40))
                return a[1] == 1 and a[2].x == 'y' and b == 'z' and c == -70000 and d == 2^40
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        assert!(lua
            .load("return cmsgpack.unpack('\\205\\1')")
            .exec()
            .is_err());
    }

    /// A map of more string keys than Lua 5.1 holds references (8,000)
    /// packs and unpacks (Redis's cmsgpack smoke test uses 70,000).
    #[test]
    fn a_map_of_many_keys_round_trips() {
        let lua = super::super::test_lua();
        let got: i64 = lua
            .load(
                "local t = {} for i = 1, 70000 do t['k' .. i] = i end \
                 local d = cmsgpack.unpack(cmsgpack.pack(t)) return d.k69999",
            )
            .eval()
            .unwrap();
        assert_eq!(got, 69999);
    }
}
