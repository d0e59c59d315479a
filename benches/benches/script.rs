//! One run of a two-`redis.call` script (SET KEYS[1] ARGV[1]; GET
//! KEYS[2]) through the server's script engine (`citadel_server::script::
//! Engine`: sandbox, KEYS/ARGV, `redis.call` with Redis's reply
//! conversion, error handler, busy tracking) over an in-memory host, beside
//! the same script on a bare mlua state whose `redis.call` is a plain Rust
//! function over the same map: the engine's overhead over the floor that
//! any mlua-based engine pays. Instruction counts, stable on a shared
//! machine: `valgrind --tool=callgrind target/release/deps/script-* --bench
//! --profile-time 5 engine`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use citadel_resp::Reply;
use citadel_server::script::{sha1_hex, CallArgs, CallRules, Engine, Host, Invocation, Store};
use criterion::{criterion_group, criterion_main, Criterion};
use mlua::{Lua, MultiValue, Value};

const BODY: &str = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[2])";

/// GET and SET over a map, the rest an error.
#[derive(Default)]
struct MapHost(HashMap<Vec<u8>, Vec<u8>>);

impl Host for MapHost {
    fn call(&mut self, argv: CallArgs<'_>, rules: &CallRules, out: &mut Vec<u8>) -> bool {
        let mut r = Reply::new(out, rules.resp3);
        match (argv.get(0).to_ascii_lowercase().as_slice(), argv.len()) {
            (b"set", 3) => {
                self.0.insert(argv.get(1).to_vec(), argv.get(2).to_vec());
                r.ok();
                return true;
            }
            (b"get", 2) => match self.0.get(argv.get(1)) {
                Some(v) => r.bulk(v),
                None => r.null(),
            },
            _ => r.error(b"ERR unknown command"),
        }
        false
    }

    /// No ACL: GET and SET are allowed, the rest unknown.
    fn acl_check(&mut self, argv: CallArgs<'_>) -> Option<bool> {
        let name = argv.get(0).to_ascii_lowercase();
        (name == b"get" || name == b"set").then_some(true)
    }
}

fn keys(i: u64) -> (String, String) {
    (format!("k:{}", i % 1000), format!("c:{}", i % 997))
}

fn engine(c: &mut Criterion) {
    let store = Store::new(None, 1);
    let mut e = Engine::new(store.busy.slot(0), Arc::new(|| false), "7.4.0").unwrap();
    let sha = sha1_hex(BODY.as_bytes());
    store.add_script(&sha, BODY.as_bytes());
    let mut host = MapHost::default();
    let mut buf = Vec::new();
    let (mut line, mut spans) = (Vec::new(), Vec::new());
    let mut g = c.benchmark_group("script_2_calls");
    let mut i = 0u64;
    g.bench_function("engine", |b| {
        b.iter(|| {
            i += 1;
            let (k1, k2) = keys(i);
            // The command line as the server parsed it:
            // EVALSHA sha 2 k1 k2 v.
            line.clear();
            spans.clear();
            for part in [
                b"EVALSHA".as_slice(),
                sha.as_bytes(),
                b"2",
                k1.as_bytes(),
                k2.as_bytes(),
                b"v",
            ] {
                let start = line.len();
                line.extend_from_slice(part);
                spans.push(start..line.len());
            }
            let inv = Invocation {
                command: CallArgs {
                    buf: &line,
                    spans: &spans,
                },
                keys: 3..5,
                ro_command: false,
                out_limit: 1 << 20,
            };
            buf.clear();
            let mut out = Reply::new(&mut buf, false);
            e.eval(&store, &sha, &inv, &mut out, &mut host);
        })
    });
    let lua = Lua::new();
    let map = Rc::new(RefCell::new(HashMap::<Vec<u8>, Vec<u8>>::new()));
    let redis = lua.create_table().unwrap();
    let m = map.clone();
    let call = lua
        .create_function(move |lua, args: MultiValue| {
            let argv: Vec<Vec<u8>> = args
                .iter()
                .map(|a| match a {
                    Value::String(s) => s.as_bytes().to_vec(),
                    _ => Vec::new(),
                })
                .collect();
            let mut m = m.borrow_mut();
            match argv[0].to_ascii_lowercase().as_slice() {
                b"set" => {
                    m.insert(argv[1].clone(), argv[2].clone());
                    let ok = lua.create_table()?;
                    ok.set("ok", "OK")?;
                    Ok(Value::Table(ok))
                }
                _ => Ok(match m.get(&argv[1]) {
                    Some(v) => Value::String(lua.create_string(v)?),
                    None => Value::Boolean(false),
                }),
            }
        })
        .unwrap();
    redis.set("call", call).unwrap();
    lua.globals().set("redis", redis).unwrap();
    let func = lua.load(BODY).into_function().unwrap();
    g.bench_function("bare_mlua", |b| {
        b.iter(|| {
            i += 1;
            let (k1, k2) = keys(i);
            let g = lua.globals();
            g.raw_set(
                "KEYS",
                lua.create_sequence_from([k1.as_str(), k2.as_str()])
                    .unwrap(),
            )
            .unwrap();
            g.raw_set("ARGV", lua.create_sequence_from(["v"]).unwrap())
                .unwrap();
            func.call::<Value>(()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
