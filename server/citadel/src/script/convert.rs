//! Redis's conversion rules between RESP replies and Lua values, both ways.
//!
//! RESP → Lua (what `redis.call` returns): integer → number, bulk →
//! string, null bulk / null array → false (RESP2) or nil (RESP3), array →
//! table, status → `{ok=...}`, error → `{err=...}`; with `redis.setresp(3)`
//! also map → `{map={...}}`, set → `{set={[e]=true}}`, double →
//! `{double=n}`, boolean → boolean, big number → `{big_number=s}`,
//! verbatim → `{verbatim_string={format=..., string=...}}`.
//!
//! Lua → RESP (what a script returns): number → integer (truncated),
//! string → bulk, true → `:1` (`#t` under RESP3), false / nil → null,
//! `{err=}` → error, `{ok=}` → status, `{double=}`, `{big_number=}`,
//! `{map=}`, `{set=}`, `{verbatim_string=}` as RESP3 types (degraded for
//! RESP2 callers), other tables → arrays up to their first nil.

use citadel_resp::{num, Reply};
use mlua::{Lua, Table, Value};

/// Deepest nesting converted either way.
const MAX_DEPTH: usize = 1000;

/// Normalizes an error text the way Redis's `luaPushErrorBuff` does:
/// `-CODE msg` keeps its code, a code-less `-msg` and plain text get `ERR`.
pub fn error_text(raw: &[u8]) -> Vec<u8> {
    match raw.strip_prefix(b"-") {
        Some(rest) if rest.contains(&b' ') => rest.to_vec(),
        Some(rest) => [b"ERR ".as_slice(), rest].concat(),
        None => [b"ERR ".as_slice(), raw].concat(),
    }
}

/// `{err = msg}`.
pub fn error_table(lua: &Lua, msg: &[u8]) -> mlua::Result<Table> {
    one_field(lua, "err", Value::String(lua.create_string(msg)?))
}

/// `{key = v}`: a new table sized for its one field (an empty table's
/// first field allocates and rehashes its hash part: ~600 instructions a
/// `{ok=...}` status reply, for each call), set raw (a new table has no
/// metatable to ask).
fn one_field(lua: &Lua, key: &str, v: Value) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set(key, v)?;
    Ok(t)
}

/// Parses the one reply at the start of `buf`: (value, is an error reply).
pub fn reply_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<(Value, bool)> {
    let mut p = Parser { buf, pos: 0 };
    let is_error = buf.first() == Some(&b'-');
    let v = p.value(lua, 0)?;
    Ok((v, is_error))
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad() -> mlua::Error {
    mlua::Error::RuntimeError("ERR malformed reply from a command called by a script".into())
}

impl Parser<'_> {
    fn line(&mut self) -> mlua::Result<&[u8]> {
        let rest = self.buf.get(self.pos..).ok_or_else(bad)?;
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        self.pos += end + 2;
        Ok(&rest[..end])
    }

    fn int(&mut self) -> mlua::Result<i64> {
        num::parse_i64(self.line()?).ok_or_else(bad)
    }

    fn bulk(&mut self, len: i64) -> mlua::Result<&[u8]> {
        let len = usize::try_from(len).map_err(|_| bad())?;
        let s = self.buf.get(self.pos..self.pos + len).ok_or_else(bad)?;
        self.pos += len + 2;
        Ok(s)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        if depth > MAX_DEPTH {
            return Err(bad());
        }
        let tag = *self.buf.get(self.pos).ok_or_else(bad)?;
        self.pos += 1;
        Ok(match tag {
            b':' => Value::Number(self.int()? as f64),
            b'$' => match self.int()? {
                -1 => Value::Boolean(false),
                n => Value::String(lua.create_string(self.bulk(n)?)?),
            },
            b'+' => {
                let status = Value::String(lua.create_string(self.line()?)?);
                Value::Table(one_field(lua, "ok", status)?)
            }
            b'-' => {
                let msg = self.line()?.to_vec();
                Value::Table(error_table(
                    lua,
                    &error_text(&[b"-", msg.as_slice()].concat()),
                )?)
            }
            b'*' | b'>' => match self.int()? {
                -1 => Value::Boolean(false),
                n => {
                    let t = lua.create_table_with_capacity(n.clamp(0, 1024) as usize, 0)?;
                    for i in 0..n {
                        t.raw_set(i + 1, self.value(lua, depth + 1)?)?;
                    }
                    Value::Table(t)
                }
            },
            b'%' => {
                let n = self.int()?;
                let map = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua, depth + 1)?;
                    let v = self.value(lua, depth + 1)?;
                    map.raw_set(k, v)?;
                }
                wrap(lua, "map", Value::Table(map))?
            }
            b'~' => {
                let n = self.int()?;
                let set = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua, depth + 1)?;
                    set.raw_set(k, true)?;
                }
                wrap(lua, "set", Value::Table(set))?
            }
            b'|' => {
                // Attributes are skipped, the value after them is the reply.
                let n = self.int()?;
                for _ in 0..2 * n {
                    self.value(lua, depth + 1)?;
                }
                self.value(lua, depth)?
            }
            b'_' => Value::Nil,
            b'#' => Value::Boolean(self.line()? == b"t"),
            b',' => {
                let d = num::parse_f64(self.line()?).ok_or_else(bad)?;
                wrap(lua, "double", Value::Number(d))?
            }
            b'(' => {
                let s = lua.create_string(self.line()?)?;
                wrap(lua, "big_number", Value::String(s))?
            }
            b'=' => {
                let n = self.int()?;
                let body = self.bulk(n)?;
                let (format, text) = if body.len() >= 4 && body[3] == b':' {
                    (&body[..3], &body[4..])
                } else {
                    (&b"txt"[..], body)
                };
                let v = lua.create_table()?;
                v.set("format", lua.create_string(format)?)?;
                v.set("string", lua.create_string(text)?)?;
                wrap(lua, "verbatim_string", Value::Table(v))?
            }
            _ => return Err(bad()),
        })
    }
}

fn wrap(lua: &Lua, key: &str, v: Value) -> mlua::Result<Value> {
    one_field(lua, key, v).map(Value::Table)
}

/// Why a script's return value could not become a reply.
#[derive(Debug)]
pub enum ToRespError {
    TooLarge,
    TooDeep,
    Lua(mlua::Error),
}

impl From<mlua::Error> for ToRespError {
    fn from(e: mlua::Error) -> Self {
        ToRespError::Lua(e)
    }
}

/// Writes a script's return value; `script_resp3` is the script's
/// `redis.setresp` (booleans), `out.resp3` the caller's protocol. Fails
/// past `limit` bytes of output.
pub fn lua_to_reply(
    v: &Value,
    out: &mut Reply<'_>,
    script_resp3: bool,
    limit: usize,
) -> Result<(), ToRespError> {
    let start = out.buf.len();
    Writer {
        out,
        script_resp3,
        limit: start.saturating_add(limit),
    }
    .value(v, 0)
}

struct Writer<'r, 'a> {
    out: &'r mut Reply<'a>,
    script_resp3: bool,
    limit: usize,
}

fn string_field(t: &Table, key: &str) -> mlua::Result<Option<mlua::LuaString>> {
    Ok(match t.raw_get::<Value>(key)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

impl Writer<'_, '_> {
    fn value(&mut self, v: &Value, depth: usize) -> Result<(), ToRespError> {
        if self.out.buf.len() > self.limit {
            return Err(ToRespError::TooLarge);
        }
        if depth > MAX_DEPTH {
            return Err(ToRespError::TooDeep);
        }
        match v {
            Value::String(s) => self.out.bulk(&s.as_bytes()),
            Value::Integer(i) => self.out.int(*i),
            Value::Number(n) => self.out.int(*n as i64),
            Value::Boolean(b) => {
                if self.script_resp3 {
                    self.out.boolean(*b)
                } else if *b {
                    self.out.int(1)
                } else {
                    self.out.null()
                }
            }
            Value::Table(t) => self.table(t, depth)?,
            _ => self.out.null(),
        }
        Ok(())
    }

    fn table(&mut self, t: &Table, depth: usize) -> Result<(), ToRespError> {
        if let Some(err) = string_field(t, "err")? {
            let msg = err.as_bytes();
            let mut line = Vec::with_capacity(msg.len());
            line.extend_from_slice(&msg);
            self.out.error(&line);
            return Ok(());
        }
        if let Some(ok) = string_field(t, "ok")? {
            let s: Vec<u8> = ok
                .as_bytes()
                .iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                .collect();
            self.out.simple(&s);
            return Ok(());
        }
        if let Value::Number(d) = t.raw_get::<Value>("double")? {
            self.out.double(d);
            return Ok(());
        }
        if let Value::Integer(d) = t.raw_get::<Value>("double")? {
            self.out.double(d as f64);
            return Ok(());
        }
        if let Some(big) = string_field(t, "big_number")? {
            let b = big.as_bytes();
            if self.out.resp3 {
                self.out.buf.push(b'(');
                self.out.buf.extend_from_slice(&b);
                self.out.crlf();
            } else {
                self.out.bulk(&b);
            }
            return Ok(());
        }
        if let Value::Table(map) = t.raw_get::<Value>("map")? {
            self.out.map(map.pairs::<Value, Value>().count());
            for pair in map.pairs::<Value, Value>() {
                let (k, v) = pair?;
                self.value(&k, depth + 1)?;
                self.value(&v, depth + 1)?;
            }
            return Ok(());
        }
        if let Value::Table(set) = t.raw_get::<Value>("set")? {
            self.out.set(set.pairs::<Value, Value>().count());
            for pair in set.pairs::<Value, Value>() {
                self.value(&pair?.0, depth + 1)?;
            }
            return Ok(());
        }
        if let Value::Table(vt) = t.raw_get::<Value>("verbatim_string")? {
            if let (Some(format), Some(text)) =
                (string_field(&vt, "format")?, string_field(&vt, "string")?)
            {
                let (format, text) = (format.as_bytes(), text.as_bytes());
                if self.out.resp3 && format.len() == 3 {
                    self.out.buf.push(b'=');
                    num::push_i64(self.out.buf, text.len() as i64 + 4);
                    self.out.crlf();
                    self.out.buf.extend_from_slice(&format);
                    self.out.buf.push(b':');
                    self.out.buf.extend_from_slice(&text);
                    self.out.crlf();
                } else {
                    self.out.bulk(&text);
                }
                return Ok(());
            }
        }
        // An array up to the first nil (counted first, then written one
        // by one: no Lua references pile up).
        let mut n = 0;
        while !t.raw_get::<Value>(n + 1)?.is_nil() {
            n += 1;
        }
        self.out.array(n);
        for i in 1..=n {
            self.value(&t.raw_get::<Value>(i)?, depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_resp(lua: &Lua, code: &str, resp3: bool, script_resp3: bool) -> String {
        let v: Value = lua.load(code).eval().unwrap();
        let mut buf = Vec::new();
        let mut out = Reply::new(&mut buf, resp3);
        lua_to_reply(&v, &mut out, script_resp3, 1 << 20).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn lua_to_resp2() {
        let lua = Lua::new();
        assert_eq!(
            to_resp(&lua, "return {1, 2, 3.7, 'x', nil, 5}", false, false),
            "*4\r\n:1\r\n:2\r\n:3\r\n$1\r\nx\r\n"
        );
        assert_eq!(
            to_resp(
                &lua,
                "return {true, false, {ok='fine'}, {err='bad'}}",
                false,
                false
            ),
            "*4\r\n:1\r\n$-1\r\n+fine\r\n-bad\r\n"
        );
        assert_eq!(to_resp(&lua, "return nil", false, false), "$-1\r\n");
        assert_eq!(to_resp(&lua, "return nil", true, false), "_\r\n");
        assert_eq!(
            to_resp(&lua, "return {double=1.5}", false, false),
            "$3\r\n1.5\r\n"
        );
        assert_eq!(to_resp(&lua, "return {double=1.5}", true, true), ",1.5\r\n");
        assert_eq!(to_resp(&lua, "return true", true, true), "#t\r\n");
        assert_eq!(
            to_resp(&lua, "return {map={a=1}}", true, true),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            to_resp(&lua, "return {map={a=1}}", false, true),
            "*2\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            to_resp(&lua, "return {set={a=true}}", true, true),
            "~1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            to_resp(&lua, "return {big_number='123'}", true, true),
            "(123\r\n"
        );
    }

    #[test]
    fn too_large_and_cycles() {
        let lua = Lua::new();
        let v: Value = lua
            .load("local t = {} for i = 1, 10000 do t[i] = 'xxxxxxxxxx' end return t")
            .eval()
            .unwrap();
        let mut buf = Vec::new();
        let mut out = Reply::new(&mut buf, false);
        assert!(matches!(
            lua_to_reply(&v, &mut out, false, 1000),
            Err(ToRespError::TooLarge)
        ));
        let v: Value = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        let mut buf = Vec::new();
        let mut out = Reply::new(&mut buf, false);
        assert!(matches!(
            lua_to_reply(&v, &mut out, false, 1 << 30),
            Err(ToRespError::TooDeep)
        ));
    }

    #[test]
    fn resp_to_lua() {
        let lua = Lua::new();
        let check = |bytes: &[u8], code: &str| {
            let (v, _) = reply_to_lua(&lua, bytes).unwrap();
            lua.globals().set("v", v).unwrap();
            let ok: bool = lua.load(code).eval().unwrap();
            assert!(ok, "{}: {code}", String::from_utf8_lossy(bytes));
        };
        check(b":5\r\n", "return v == 5");
        check(b"$-1\r\n", "return v == false");
        check(b"*-1\r\n", "return v == false");
        check(b"$3\r\nabc\r\n", "return v == 'abc'");
        check(b"+OK\r\n", "return v.ok == 'OK'");
        check(b"-ERR bad thing\r\n", "return v.err == 'ERR bad thing'");
        check(b"-WRONGTYPE x y\r\n", "return v.err == 'WRONGTYPE x y'");
        check(b"*2\r\n:1\r\n$-1\r\n", "return v[1] == 1 and v[2] == false");
        check(b"%1\r\n$1\r\na\r\n:2\r\n", "return v.map.a == 2");
        check(b"~1\r\n$1\r\na\r\n", "return v.set.a == true");
        check(b",1.5\r\n", "return v.double == 1.5");
        check(b"#t\r\n", "return v == true");
        check(b"_\r\n", "return v == nil");
        check(b"(12\r\n", "return v.big_number == '12'");
        check(
            b"=8\r\ntxt:abcd\r\n",
            "return v.verbatim_string.format == 'txt' and v.verbatim_string.string == 'abcd'",
        );
        assert!(reply_to_lua(&lua, b"$5\r\nab").is_err());
    }

    #[test]
    fn error_texts() {
        assert_eq!(error_text(b"-My err"), b"My err");
        assert_eq!(error_text(b"-boom"), b"ERR boom");
        assert_eq!(error_text(b"plain text"), b"ERR plain text");
    }
}
