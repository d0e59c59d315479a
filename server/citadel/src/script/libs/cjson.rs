//! `cjson` as Redis ships it (lua-cjson 2.1): `encode`, `decode`, `null`
//! and the configuration functions. The nesting limits and
//! `encode_invalid_numbers` take effect (for the rest of the script VM's
//! life, as in Redis); `encode_sparse_array`, `encode_number_precision`
//! and `decode_invalid_numbers` answer and keep their defaults (decoding
//! NaN, Infinity or hex numbers is refused: the decoder is strict JSON).

use std::sync::{Arc, Mutex};

use mlua::{LightUserData, Lua, Table, Value};

use super::{array_len, err};

/// lua-cjson's default nesting limit, for encoding and decoding.
const MAX_DEPTH: usize = 1000;

/// What `encode` does with NaN and infinities (`encode_invalid_numbers`).
#[derive(Clone, Copy, PartialEq)]
enum Invalid {
    /// An error (the default).
    Refuse,
    /// `nan`, `inf`, `-inf`, as lua-cjson's `%.14g` writes them.
    Allow,
    /// `null`.
    Null,
}

/// The settings the configuration functions change.
#[derive(Clone, Copy)]
struct Config {
    encode_max_depth: usize,
    decode_max_depth: usize,
    invalid: Invalid,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            encode_max_depth: MAX_DEPTH,
            decode_max_depth: MAX_DEPTH,
            invalid: Invalid::Refuse,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn config(shared: &Shared) -> Config {
    *shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// lua-cjson's `%.14g`, through Lua's own number formatting.
fn number(lua: &Lua, n: f64, invalid: Invalid, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() {
        match invalid {
            Invalid::Refuse => return Err(err("Cannot serialise number: must not be NaN or Inf")),
            Invalid::Null => out.extend_from_slice(b"null"),
            Invalid::Allow if n.is_nan() => out.extend_from_slice(b"nan"),
            Invalid::Allow if n > 0.0 => out.extend_from_slice(b"inf"),
            Invalid::Allow => out.extend_from_slice(b"-inf"),
        }
        return Ok(());
    }
    let s = lua
        .coerce_string(Value::Number(n))?
        .ok_or_else(|| err("Cannot serialise number"))?;
    out.extend_from_slice(&s.as_bytes());
    Ok(())
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_value(
    lua: &Lua,
    v: &Value,
    (depth, c): (usize, Config),
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Number(n) => number(lua, *n, c.invalid, out)?,
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth >= c.encode_max_depth {
                return Err(err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            encode_table(lua, t, (depth + 1, c), out)?
        }
        other => {
            return Err(err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn encode_table(
    lua: &Lua,
    t: &Table,
    depth: (usize, Config),
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    let count = t.pairs::<Value, Value>().count();
    let as_array = if count == 0 {
        None
    } else {
        match sparse_array_len(t)? {
            Some(max) if max > 10 && max > count * 2 => {
                return Err(err("Cannot serialise table: excessively sparse array"))
            }
            other => other,
        }
    };
    if let Some(n) = as_array {
        out.push(b'[');
        for i in 1..=n {
            if i > 1 {
                out.push(b',');
            }
            encode_value(lua, &t.raw_get::<Value>(i)?, depth, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if !first {
            out.push(b',');
        }
        first = false;
        match &k {
            Value::String(s) => string(&s.as_bytes(), out),
            Value::Integer(i) => string(i.to_string().as_bytes(), out),
            Value::Number(n) => {
                let mut s = Vec::new();
                number(lua, *n, depth.1.invalid, &mut s)?;
                string(&s, out);
            }
            _ => {
                return Err(err(
                    "Cannot serialise table: table key must be a number or string",
                ))
            }
        }
        out.push(b':');
        encode_value(lua, &v, depth, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// All keys positive integers: the largest (holes allowed, as lua-cjson).
fn sparse_array_len(t: &Table) -> mlua::Result<Option<usize>> {
    if let Some(n) = array_len(t)? {
        return Ok(Some(n));
    }
    let mut max = 0;
    for pair in t.pairs::<Value, Value>() {
        match pair?.0 {
            Value::Integer(i) if i >= 1 => max = max.max(i as usize),
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
            _ => return Ok(None),
        }
    }
    Ok(Some(max))
}

/// `depth`: the arrays and objects `v` is inside of.
fn decode_value(lua: &Lua, v: &serde_json::Value, depth: usize, max: usize) -> mlua::Result<Value> {
    let inner = depth + 1;
    let nested = matches!(
        v,
        serde_json::Value::Array(_) | serde_json::Value::Object(_)
    );
    if nested && inner > max {
        return Err(err(format!(
            "Found too many nested data structures ({inner}) at character 1"
        )));
    }
    Ok(match v {
        serde_json::Value::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, decode_value(lua, item, inner, max)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table()?;
            for (k, item) in map {
                t.raw_set(lua.create_string(k)?, decode_value(lua, item, inner, max)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A depth setter: sets the limit when given one (a positive integer),
/// returns the limit in effect.
fn depth_setter(
    lua: &Lua,
    shared: &Shared,
    field: fn(&mut Config) -> &mut usize,
) -> mlua::Result<mlua::Function> {
    let shared = shared.clone();
    lua.create_function(move |_, depth: Option<i64>| {
        let mut c = shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = depth {
            if d < 1 {
                return Err(err(
                    "bad argument #1 to '?' (expected integer between 1 and 2147483647)",
                ));
            }
            *field(&mut c) = d as usize;
        }
        Ok(*field(&mut c) as i64)
    })
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let shared: Shared = Arc::default();
    let conf = shared.clone();
    let encode = lua.create_function(move |lua, v: Value| {
        let mut out = Vec::new();
        encode_value(lua, &v, (0, config(&conf)), &mut out)?;
        lua.create_string(&out)
    })?;
    t.set("encode", encode.clone())?;
    t.set("encode_keep_buffer", encode)?;
    let conf = shared.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, s: mlua::LuaString| {
            let v: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| err(format!("Expected value but found invalid token: {e}")))?;
            decode_value(lua, &v, 0, config(&conf).decode_max_depth)
        })?,
    )?;
    t.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.set(
        "encode_max_depth",
        depth_setter(lua, &shared, |c| &mut c.encode_max_depth)?,
    )?;
    t.set(
        "decode_max_depth",
        depth_setter(lua, &shared, |c| &mut c.decode_max_depth)?,
    )?;
    let conf = shared.clone();
    t.set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, setting: Value| {
            let mut c = conf.lock().unwrap_or_else(|e| e.into_inner());
            c.invalid = match setting {
                Value::Nil => c.invalid,
                Value::Boolean(true) => Invalid::Allow,
                Value::Boolean(false) => Invalid::Refuse,
                Value::String(s) if &*s.as_bytes() == b"null" => Invalid::Null,
                Value::String(s) if &*s.as_bytes() == b"on" => Invalid::Allow,
                Value::String(s) if &*s.as_bytes() == b"off" => Invalid::Refuse,
                _ => return Err(err("bad argument #1 to '?' (invalid option)")),
            };
            Ok(match c.invalid {
                Invalid::Allow => Value::Boolean(true),
                Invalid::Refuse => Value::Boolean(false),
                Invalid::Null => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    // Answered with the arguments, the defaults kept (module comment).
    for name in [
        "encode_sparse_array",
        "encode_number_precision",
        "decode_invalid_numbers",
    ] {
        t.set(
            name,
            lua.create_function(|_, args: mlua::MultiValue| Ok(args))?,
        )?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let lua = super::super::test_lua();
        let s: String = lua
            .load(r#"return cjson.encode({1, 2, "a/b", {x = true}})"#)
            .eval()
            .unwrap();
        assert_eq!(s, r#"[1,2,"a\/b",{"x":true}]"#);
        let s: String = lua.load("return cjson.encode({})").eval().unwrap();
        assert_eq!(s, "{}");
        let s: String = lua.load("return cjson.encode(1.5)").eval().unwrap();
        assert_eq!(s, "1.5");
        let ok: bool = lua
            .load(
                r#"
                local t = cjson.decode('{"a":[1,2,{"b":null}],"c":"d\\u00e9"}')
                return t.a[2] == 2 and t.a[3].b == cjson.null and t.c == 'd\195\169'
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        let ok: bool = lua
            .load(r#"local t = {1, nil, 3} return cjson.encode(t) == '[1,null,3]'"#)
            .eval()
            .unwrap();
        assert!(ok);
        assert!(lua.load("return cjson.decode('{bad')").exec().is_err());
        assert!(lua
            .load("local t = {} t[1000] = 1 return cjson.encode(t)")
            .exec()
            .is_err());
        assert!(lua.load("return cjson.encode(print)").exec().is_err());
    }

    /// The configuration functions Redis's own cjson test sets take
    /// effect, and answer the setting in effect.
    #[test]
    fn limits_and_invalid_numbers_are_configurable() {
        let lua = super::super::test_lua();
        let eval = |code: &str| -> String { lua.load(code).eval().unwrap() };
        let fails = |code: &str| lua.load(code).exec().is_err();
        assert!(!fails(r#"cjson.encode({a = {b = {1}}})"#));
        assert_eq!(eval("return tostring(cjson.encode_max_depth(2))"), "2");
        assert!(fails(r#"cjson.encode({a = {b = {1}}})"#));
        assert_eq!(eval("return cjson.encode({a = {1}})"), r#"{"a":[1]}"#);
        assert_eq!(eval("return tostring(cjson.encode_max_depth())"), "2");
        assert!(!fails(r#"cjson.decode('{"a": {}}')"#));
        eval("cjson.decode_max_depth(1) return ''");
        assert!(fails(r#"cjson.decode('{"a": {}}')"#));
        assert!(fails(r#"cjson.decode('[[1]]')"#));
        assert!(!fails(r#"cjson.decode('{"a": 1}')"#));
        assert!(fails("cjson.encode({0/0})"));
        assert_eq!(
            eval("return tostring(cjson.encode_invalid_numbers())"),
            "false"
        );
        eval("cjson.encode_invalid_numbers(true) return ''");
        assert_eq!(
            eval("return cjson.encode({1/0, -1/0, 0/0})"),
            "[inf,-inf,nan]"
        );
        eval("cjson.encode_invalid_numbers('null') return ''");
        assert_eq!(eval("return cjson.encode({1/0})"), "[null]");
        assert_eq!(eval("return cjson.encode_invalid_numbers()"), "null");
        assert!(fails("cjson.encode_max_depth(0)"));
        assert!(fails("cjson.encode_invalid_numbers('maybe')"));
    }
}
