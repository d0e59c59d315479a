//! `struct` (Roberto Ierusalimschy's lua-struct, as Redis ships it):
//! `pack(fmt, ...)`, `unpack(fmt, s [, pos])` (values, then the next
//! position) and `size(fmt)`. Formats: `<` `>` `=` endianness, `!n`
//! alignment, `x` padding, `b/B h/H l/L T i/In I/In` integers, `f` `d`
//! floats, `s` zero-terminated strings, `cn` fixed-size strings.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use super::err;

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

struct Fmt<'a> {
    f: &'a [u8],
    pos: usize,
    little: bool,
    align: usize,
}

enum Item {
    Int { size: usize, signed: bool },
    Float,
    Double,
    Pad,
    ZStr,
    Chars(usize),
}

impl Fmt<'_> {
    fn new(f: &[u8]) -> Fmt<'_> {
        Fmt {
            f,
            pos: 0,
            little: true,
            align: 1,
        }
    }

    fn num(&mut self, default: usize) -> usize {
        let start = self.pos;
        while self.pos < self.f.len() && self.f[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        std::str::from_utf8(&self.f[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    /// The next item (skipping the options), or None at the end.
    fn next(&mut self) -> mlua::Result<Option<Item>> {
        loop {
            let Some(&c) = self.f.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            let item = match c {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    let a = self.num(MAXALIGN);
                    if !a.is_power_of_two() {
                        return Err(err("alignment must be power of 2"));
                    }
                    self.align = a;
                    continue;
                }
                b'b' => Item::Int {
                    size: 1,
                    signed: true,
                },
                b'B' => Item::Int {
                    size: 1,
                    signed: false,
                },
                b'h' => Item::Int {
                    size: 2,
                    signed: true,
                },
                b'H' => Item::Int {
                    size: 2,
                    signed: false,
                },
                b'l' => Item::Int {
                    size: 8,
                    signed: true,
                },
                b'L' | b'T' => Item::Int {
                    size: 8,
                    signed: false,
                },
                b'i' | b'I' => {
                    let size = self.num(4);
                    if size == 0 || size > MAXINTSIZE {
                        return Err(err(format!(
                            "integral size {size} is larger than limit of {MAXINTSIZE}"
                        )));
                    }
                    Item::Int {
                        size,
                        signed: c == b'i',
                    }
                }
                b'f' => Item::Float,
                b'd' => Item::Double,
                b'x' => Item::Pad,
                b's' => Item::ZStr,
                b'c' => Item::Chars(self.num(1)),
                other => return Err(err(format!("invalid format option '{}'", other as char))),
            };
            return Ok(Some(item));
        }
    }

    /// Padding before an item of `size` at offset `total`.
    fn pad(&self, item: &Item, total: usize) -> usize {
        let size = match item {
            Item::Int { size, .. } => *size,
            Item::Float => 4,
            Item::Double => 8,
            _ => return 0,
        };
        if size <= 1 || self.align <= 1 {
            return 0;
        }
        let a = size.min(self.align);
        (a - (total & (a - 1))) & (a - 1)
    }
}

fn put_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let mut bytes = vec![0u8; size];
    let ext = if v < 0 { 0xff } else { 0 };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = if i < 8 { (v >> (8 * i)) as u8 } else { ext };
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_int(b: &[u8], signed: bool, little: bool) -> f64 {
    let mut v: u64 = 0;
    let n = b.len();
    for i in 0..n.min(8) {
        let byte = if little { b[i] } else { b[n - 1 - i] };
        v |= u64::from(byte) << (8 * i);
    }
    if signed && n < 8 {
        let shift = 64 - 8 * n as u32;
        ((v << shift) as i64 >> shift) as f64
    } else if signed {
        v as i64 as f64
    } else {
        v as f64
    }
}

fn pack(lua: &Lua, fmt: &[u8], args: &[Value]) -> mlua::Result<Vec<u8>> {
    let mut f = Fmt::new(fmt);
    let mut out = Vec::new();
    let mut arg = 0;
    let mut next_arg = |what: &str| -> mlua::Result<Value> {
        arg += 1;
        args.get(arg - 1).cloned().ok_or_else(|| {
            err(format!(
                "bad argument #{} to 'pack' ({what} expected, got no value)",
                arg + 1
            ))
        })
    };
    while let Some(item) = f.next()? {
        out.resize(out.len() + f.pad(&item, out.len()), 0);
        match item {
            Item::Int { size, .. } => {
                let n = number(lua, next_arg("number")?)?;
                put_int(&mut out, n as i64, size, f.little);
            }
            Item::Float => {
                let n = number(lua, next_arg("number")?)? as f32;
                let b = if f.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            Item::Double => {
                let n = number(lua, next_arg("number")?)?;
                let b = if f.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            Item::Pad => out.push(0),
            Item::ZStr | Item::Chars(_) => {
                let s = match lua.coerce_string(next_arg("string")?)? {
                    Some(s) => s.as_bytes().to_vec(),
                    None => return Err(err("bad argument to 'pack' (string expected)")),
                };
                match item {
                    Item::ZStr => {
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                    Item::Chars(n) => {
                        if s.len() < n {
                            return Err(err("bad argument to 'pack' (string too short)"));
                        }
                        let n = if n == 0 { s.len() } else { n };
                        out.extend_from_slice(&s[..n]);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn number(lua: &Lua, v: Value) -> mlua::Result<f64> {
    lua.coerce_number(v)?
        .ok_or_else(|| err("bad argument to 'pack' (number expected)"))
}

fn unpack(lua: &Lua, fmt: &[u8], data: &[u8], init: usize) -> mlua::Result<MultiValue> {
    let mut f = Fmt::new(fmt);
    let mut pos = init.saturating_sub(1);
    let mut values = Vec::new();
    let short = || err("bad argument #2 to 'unpack' (data string too short)");
    while let Some(item) = f.next()? {
        pos += f.pad(&item, pos);
        let take = |pos: usize, n: usize| data.get(pos..pos + n).ok_or_else(short);
        match item {
            Item::Int { size, signed } => {
                values.push(Value::Number(get_int(take(pos, size)?, signed, f.little)));
                pos += size;
            }
            Item::Float => {
                let b: [u8; 4] = take(pos, 4)?.try_into().map_err(|_| short())?;
                let v = if f.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                values.push(Value::Number(f64::from(v)));
                pos += 4;
            }
            Item::Double => {
                let b: [u8; 8] = take(pos, 8)?.try_into().map_err(|_| short())?;
                let v = if f.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                values.push(Value::Number(v));
                pos += 8;
            }
            Item::Pad => pos += 1,
            Item::ZStr => {
                let rest = data.get(pos..).ok_or_else(short)?;
                let end = rest
                    .iter()
                    .position(|&c| c == 0)
                    .ok_or_else(|| err("unfinished string in data"))?;
                values.push(Value::String(lua.create_string(&rest[..end])?));
                pos += end + 1;
            }
            Item::Chars(n) => {
                let n = if n == 0 {
                    match values.last() {
                        Some(Value::Number(len)) => *len as usize,
                        _ => return Err(err("format 'c0' needs a previous size")),
                    }
                } else {
                    n
                };
                values.push(Value::String(lua.create_string(take(pos, n)?)?));
                pos += n;
            }
        }
    }
    values.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(values))
}

fn size(fmt: &[u8]) -> mlua::Result<usize> {
    let mut f = Fmt::new(fmt);
    let mut total = 0;
    while let Some(item) = f.next()? {
        total += f.pad(&item, total);
        total += match item {
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            Item::Pad => 1,
            Item::Chars(n) => n,
            Item::ZStr => return Err(err("options 's' has no fixed size")),
        };
    }
    Ok(total)
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, (fmt, args): (mlua::LuaString, Variadic<Value>)| {
            lua.create_string(pack(lua, &fmt.as_bytes(), &args)?)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(
            |lua, (fmt, data, init): (mlua::LuaString, mlua::LuaString, Option<usize>)| {
                unpack(lua, &fmt.as_bytes(), &data.as_bytes(), init.unwrap_or(1))
            },
        )?,
    )?;
    t.set(
        "size",
        lua.create_function(|_, fmt: mlua::LuaString| size(&fmt.as_bytes()))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pack_unpack_size() {
        let lua = super::super::test_lua();
        let ok: bool = lua
            .load(
                r#"
                local s = struct.pack('>HiB', 0x0102, -2, 255)
                if s ~= '\1\2\255\255\255\254\255' then return false end
                local a, b, c, nxt = struct.unpack('>HiB', s)
                if a ~= 0x0102 or b ~= -2 or c ~= 255 or nxt ~= 8 then return false end
                local z, n = struct.unpack('s', struct.pack('s', 'hey'))
                if z ~= 'hey' or n ~= 5 then return false end
                local d = struct.unpack('<d', struct.pack('<d', 1.25))
                if d ~= 1.25 then return false end
                if struct.size('!4bi') ~= 8 or struct.size('<bi') ~= 5 then return false end
                local len, str = struct.unpack('Bc0', struct.pack('Bc0', 3, 'abc'))
                return len == 3 and str == 'abc'
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        assert!(lua.load("return struct.unpack('i', 'ab')").exec().is_err());
        assert!(lua.load("return struct.pack('q', 1)").exec().is_err());
    }
}
