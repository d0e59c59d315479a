//! Engine tests over a fake host: error texts, conversions through
//! `redis.call`, read-only rules, functions, kill.

use std::collections::HashMap;

use super::*;

/// GET / SET / INCR over a map, PING, and an error for anything else.
#[derive(Default)]
struct FakeHost {
    data: HashMap<Vec<u8>, Vec<u8>>,
    calls: usize,
}

impl Host for FakeHost {
    fn call(&mut self, argv: CallArgs<'_>, rules: &CallRules, out: &mut Vec<u8>) -> bool {
        let argv: Vec<&[u8]> = argv.iter().collect();
        self.calls += 1;
        let mut r = Reply::new(out, rules.resp3);
        let name = argv[0].to_ascii_lowercase();
        match (name.as_slice(), argv.len()) {
            (b"get", 2) => match self.data.get(argv[1]) {
                Some(v) => r.bulk(v),
                None => r.null(),
            },
            (b"set", 3) if rules.read_only => {
                r.error(b"ERR Write commands are not allowed from read-only scripts.")
            }
            (b"set", 3) => {
                self.data.insert(argv[1].to_vec(), argv[2].to_vec());
                r.ok();
                return true;
            }
            (b"ping", 1) => r.simple(b"PONG"),
            (b"hello", 1) => {
                r.map(1);
                r.bulk(b"proto");
                r.int(3);
            }
            _ => r.error(b"ERR Unknown Redis command called from script"),
        }
        false
    }

    /// GET and SET are known; this host's user may only GET.
    fn acl_check(&mut self, argv: CallArgs<'_>) -> Option<bool> {
        match argv.get(0).to_ascii_lowercase().as_slice() {
            b"get" => Some(true),
            b"set" => Some(false),
            _ => None,
        }
    }
}

fn engine() -> (Engine, Store) {
    let store = Store::new(None, 1);
    let e = Engine::new(store.busy.slot(0), Arc::new(|| false), "7.2.4").unwrap();
    (e, store)
}

/// `EVALSHA sha numkeys keys... args...` packed (`pack_line`).
fn eval_line(sha: &str, keys: &[&[u8]], args: &[&[u8]]) -> (Vec<u8>, Vec<Range<usize>>) {
    let numkeys = keys.len().to_string();
    let mut parts: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), numkeys.as_bytes()];
    parts.extend_from_slice(keys);
    parts.extend_from_slice(args);
    pack_line(&parts)
}

fn eval_with(
    e: &mut Engine,
    store: &Store,
    host: &mut FakeHost,
    body: &str,
    keys: &[&[u8]],
    args: &[&[u8]],
    ro: bool,
) -> String {
    let sha = sha1_hex(body.as_bytes());
    store.add_script(&sha, body.as_bytes());
    let mut buf = Vec::new();
    let mut out = Reply::new(&mut buf, false);
    let (line, spans) = eval_line(&sha, keys, args);
    let inv = Invocation {
        command: CallArgs {
            buf: &line,
            spans: &spans,
        },
        keys: 3..3 + keys.len(),
        ro_command: ro,
        out_limit: 1 << 20,
    };
    e.eval(store, &sha, &inv, &mut out, host);
    String::from_utf8(buf).unwrap()
}

fn eval(body: &str) -> String {
    let (mut e, store) = engine();
    eval_with(
        &mut e,
        &store,
        &mut FakeHost::default(),
        body,
        &[],
        &[],
        false,
    )
}

#[test]
fn values_and_errors() {
    assert_eq!(eval("return 1"), ":1\r\n");
    assert_eq!(eval("return redis.call('ping')"), "+PONG\r\n");
    assert_eq!(eval("return redis.call('get', 'nope')"), "$-1\r\n");
    assert_eq!(
        eval("return tostring(redis.call('get', 'nope'))"),
        "$5\r\nfalse\r\n"
    );
    let sha = sha1_hex(b"error('boom')");
    assert_eq!(
        eval("error('boom')"),
        format!("-ERR user_script:1: boom script: {sha}, on @user_script:1.\r\n")
    );
    let body = "\nreturn redis.call('nosuch')";
    assert_eq!(
        eval(body),
        format!(
            "-ERR Unknown Redis command called from script script: {}, on @user_script:2.\r\n",
            sha1_hex(body.as_bytes())
        )
    );
    assert_eq!(
        eval("return redis.pcall('nosuch')"),
        "-ERR Unknown Redis command called from script\r\n"
    );
    assert!(eval("return redis.call()")
        .starts_with("-ERR Please specify at least one argument for this redis lib call script: "));
    assert!(eval("return redis.call('get', {})")
        .starts_with("-ERR Lua redis lib command arguments must be strings or integers script: "));
    assert!(eval("return x").starts_with(
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'x' script:"
    ));
    assert!(
        eval("x = 1").starts_with("-ERR user_script:1: Attempt to modify a readonly table script:")
    );
    assert_eq!(
        eval("return 1 +"),
        "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"
    );
    assert_eq!(eval("return redis.error_reply('My err')"), "-My err\r\n");
    assert_eq!(eval("return redis.error_reply('boom')"), "-ERR boom\r\n");
    assert_eq!(eval("return redis.status_reply('fine')"), "+fine\r\n");
    assert!(eval("error({err='X my'})").starts_with("-X my script: "));
    assert_eq!(
        // Redis 7.0's `pcall` hands a caught `{err=...}` over as its text.
        eval("local ok, e = pcall(redis.call, 'nosuch') return e"),
        "$44\r\nERR Unknown Redis command called from script\r\n"
    );
    assert_eq!(
        eval("return redis.sha1hex('')"),
        "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"
    );
    // Binary chunks are refused.
    assert!(eval("\x1bLua").starts_with("-ERR Error compiling script"));
}

/// KEYS and ARGV are refilled tables: no run sees what an earlier one
/// passed or added (more items, a field, a metatable).
#[test]
fn keys_argv_tables_start_clean() {
    let (mut e, store) = engine();
    let mut host = FakeHost::default();
    let mut eval = |body: &str, keys: &[&[u8]], args: &[&[u8]]| {
        eval_with(&mut e, &store, &mut host, body, keys, args, false)
    };
    let show = "return {#KEYS, #ARGV, tostring(KEYS.x), tostring(getmetatable(ARGV)), \
                tostring(KEYS[3]), tostring(ARGV[2]), KEYS[1] or 'none'}";
    assert_eq!(
        eval(show, &[b"a", b"b", b"c"], &[b"1", b"2"]),
        "*7\r\n:3\r\n:2\r\n$3\r\nnil\r\n$3\r\nnil\r\n$1\r\nc\r\n$1\r\n2\r\n$1\r\na\r\n"
    );
    let clean = "*7\r\n:1\r\n:0\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\nnil\r\n$1\r\nk\r\n";
    assert_eq!(eval(show, &[b"k"], &[]), clean);
    eval(
        "KEYS.x = 1 KEYS[9] = 2 setmetatable(ARGV, {}) return 1",
        &[b"k"],
        &[b"v"],
    );
    assert_eq!(eval(show, &[b"k"], &[]), clean);
    eval(
        "table.insert(KEYS, 'more') ARGV[1] = nil return 1",
        &[],
        &[b"v"],
    );
    assert_eq!(eval(show, &[b"k"], &[]), clean);
    assert_eq!(
        eval(show, &[], &[]),
        "*7\r\n:0\r\n:0\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\nnil\r\n$4\r\nnone\r\n"
    );
}

#[test]
fn keys_argv_and_writes() {
    let (mut e, store) = engine();
    let mut host = FakeHost::default();
    let body = "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])";
    assert_eq!(
        eval_with(&mut e, &store, &mut host, body, &[b"k"], &[b"v"], false),
        "$1\r\nv\r\n"
    );
    assert!(store.busy.slot(0).has_written());
    let r = eval_with(&mut e, &store, &mut host, body, &[b"k"], &[b"v"], true);
    assert!(
        r.starts_with("-ERR Write commands are not allowed from read-only scripts. script:"),
        "{r}"
    );
    let r = eval_with(&mut e, &store, &mut host, "#!lua\nreturn 1", &[], &[], true);
    assert_eq!(
        r,
        "-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    let r = eval_with(
        &mut e,
        &store,
        &mut host,
        "#!lua flags=no-writes\nreturn 1",
        &[],
        &[],
        true,
    );
    assert_eq!(r, ":1\r\n");
    let r = eval_with(
        &mut e,
        &store,
        &mut host,
        "#!lua flags=bogus\nreturn 1",
        &[],
        &[],
        false,
    );
    assert_eq!(r, "-ERR Unexpected flag in script shebang: bogus\r\n");
}

#[test]
fn resp3_from_script() {
    let (mut e, store) = engine();
    let mut host = FakeHost::default();
    let r = eval_with(
        &mut e,
        &store,
        &mut host,
        "redis.setresp(3) return redis.call('hello').map.proto",
        &[],
        &[],
        false,
    );
    assert_eq!(r, ":3\r\n");
    // setresp is reset for the next run.
    let r = eval_with(
        &mut e,
        &store,
        &mut host,
        "return redis.call('hello')",
        &[],
        &[],
        false,
    );
    assert_eq!(r, "*2\r\n$5\r\nproto\r\n:3\r\n");
}

#[test]
fn random_is_seedable() {
    let (mut e, store) = engine();
    let mut host = FakeHost::default();
    let body = "math.randomseed(7) return {math.random(1000), math.random(1000)}";
    let a = eval_with(&mut e, &store, &mut host, body, &[], &[], false);
    let b = eval_with(&mut e, &store, &mut host, body, &[], &[], false);
    assert_eq!(a, b);
    let body = "local r = math.random(5, 10) return r >= 5 and r <= 10";
    assert_eq!(
        eval_with(&mut e, &store, &mut host, body, &[], &[], false),
        ":1\r\n"
    );
}

/// Loads library `name` into `e` and the store's registry.
fn register(e: &mut Engine, store: &Store, name: &str, code: &str) {
    let reg = e.load_library(code, Some(busy::LOAD_TIMEOUT_MS)).unwrap();
    let metas: Vec<_> = reg.iter().map(|r| r.meta()).collect();
    let generation = store.next_generation();
    store
        .functions_mut()
        .add(
            Library {
                name: name.into(),
                code: code.into(),
                functions: metas,
                generation,
            },
            false,
        )
        .unwrap();
}

/// FCALL `name` with key "k" and argument "a"; the reply as text.
fn fcall(e: &mut Engine, store: &Store, name: &str, ro: bool) -> String {
    let mut buf = Vec::new();
    let mut out = Reply::new(&mut buf, false);
    let (line, spans) = pack_line(&[b"FCALL", name.as_bytes(), b"1", b"k", b"a"]);
    let inv = Invocation {
        command: CallArgs {
            buf: &line,
            spans: &spans,
        },
        keys: 3..4,
        ro_command: ro,
        out_limit: 1 << 20,
    };
    e.fcall(store, name, &inv, &mut out, &mut FakeHost::default());
    String::from_utf8(buf).unwrap()
}

/// A library's top-level code sees only Redis's library API (no
/// `redis.call`, no `math`), its functions the whole environment; a
/// `redis.call` kept by a function still reaches each later run's host.
#[test]
fn library_load_sees_only_the_library_api() {
    let (mut e, store) = engine();
    for (code, missing) in [
        ("local call = redis.call", "call"),
        ("return redis.setresp(3)", "setresp"),
        ("return math.random()", "math"),
        ("return string.format('x')", "string"),
        ("mt = getmetatable(_G)", "getmetatable"),
    ] {
        let err = e
            .load_library(
                &format!("#!lua name=x\n{code}"),
                Some(busy::LOAD_TIMEOUT_MS),
            )
            .err()
            .unwrap();
        let want = format!("Script attempted to access nonexistent global variable '{missing}'");
        assert!(err.contains(&want), "{code}: {err}");
    }
    let err = e
        .load_library("#!lua name=x\na = 1", Some(busy::LOAD_TIMEOUT_MS))
        .err()
        .unwrap();
    assert!(err.contains("Attempt to modify a readonly table"), "{err}");
    let code = "#!lua name=cap\nlocal lib = redis\nlib.log(lib.LOG_DEBUG, lib.REDIS_VERSION)\n\
        local call\n\
        redis.register_function('c', function() call = call or redis.call return call('ping') end)\n\
        redis.register_function('p', function() return redis.pcall('nosuch') end)\n\
        redis.register_function('e', function() return redis.call('nosuch') end)\n\
        redis.register_function('m', function() lib.math = math end)\n\
        redis.register_function('r', function() return type(redis.register_function) end)";
    register(&mut e, &store, "cap", code);
    assert_eq!(fcall(&mut e, &store, "c", false), "+PONG\r\n");
    assert_eq!(fcall(&mut e, &store, "c", false), "+PONG\r\n");
    let ro = fcall(&mut e, &store, "m", false);
    assert!(ro.contains("Attempt to modify a readonly table"), "{ro}");
    assert_eq!(fcall(&mut e, &store, "r", false), "$3\r\nnil\r\n");
    assert_eq!(fcall(&mut e, &store, "c", false), "+PONG\r\n");
    assert_eq!(
        fcall(&mut e, &store, "p", false),
        "-ERR Unknown Redis command called from script\r\n"
    );
    let raised = fcall(&mut e, &store, "e", false);
    assert!(
        raised.starts_with(
            "-ERR Unknown Redis command called from script script: e, on @user_function:7."
        ),
        "{raised}"
    );
}

#[test]
fn functions_load_and_call() {
    let (mut e, store) = engine();
    let code = "#!lua name=lib\nredis.register_function('f', function(keys, args) return {keys[1], args[1]} end)\nredis.register_function{function_name='g', callback=function() error('oops') end, flags={'no-writes'}}";
    register(&mut e, &store, "lib", code);
    let call = |e: &mut Engine, name: &str, ro: bool| fcall(e, &store, name, ro);
    assert_eq!(call(&mut e, "f", false), "*2\r\n$1\r\nk\r\n$1\r\na\r\n");
    assert_eq!(
        call(&mut e, "f", true),
        "-ERR Can not execute a script with write flag using *_ro command.\r\n"
    );
    assert_eq!(
        call(&mut e, "g", true),
        "-ERR user_function:3: oops script: g, on @user_function:3.\r\n"
    );
    assert_eq!(call(&mut e, "h", false), "-ERR Function not found\r\n");
    // Another thread's engine loads the library lazily.
    let (mut other, _) = engine();
    assert_eq!(call(&mut other, "f", false), "*2\r\n$1\r\nk\r\n$1\r\na\r\n");
    assert_eq!(
        e.load_library("#!lua name=x\nreturn 1", Some(busy::LOAD_TIMEOUT_MS))
            .err()
            .unwrap(),
        "ERR No functions registered"
    );
    assert_eq!(
        e.load_library("#!lua name=x\nredis.register_function('a', function() end) redis.register_function('a', function() end)", Some(busy::LOAD_TIMEOUT_MS)).err().unwrap(),
        "ERR Error registering functions: ERR Function already exists in the library"
    );
    assert_eq!(
        e.load_library("#!lua name=x\nreturn 1 +", Some(busy::LOAD_TIMEOUT_MS))
            .err()
            .unwrap(),
        "ERR Error compiling function: user_function:2: unexpected symbol near '<eof>'"
    );
}

#[test]
fn killed_script_stops() {
    let (mut e, store) = engine();
    let slot = store.busy.slot(0);
    let store = std::sync::Arc::new(store);
    let s2 = store.clone();
    let killer = std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if s2.busy.kill(true, 0).is_ok() {
            break;
        }
    });
    let r = eval_with(
        &mut e,
        &store,
        &mut FakeHost::default(),
        "while true do pcall(function() end) end",
        &[],
        &[],
        false,
    );
    killer.join().unwrap();
    assert!(
        r.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{r}"
    );
    assert!(!slot.has_written());
    // The engine still works afterwards.
    assert_eq!(
        eval_with(
            &mut e,
            &store,
            &mut FakeHost::default(),
            "return 2",
            &[],
            &[],
            false
        ),
        ":2\r\n"
    );
}

#[test]
fn huge_reply_is_bounded() {
    let (mut e, store) = engine();
    let body = "local t = {} for i = 1, 200000 do t[i] = 'xxxxxxxxxxxxxxxx' end return t";
    let r = eval_with(
        &mut e,
        &store,
        &mut FakeHost::default(),
        body,
        &[],
        &[],
        false,
    );
    assert_eq!(
        r,
        "-ERR the script's reply is larger than the client output limit\r\n"
    );
}

/// A reply the script discards (`redis.call(...)` as a statement) is not
/// made, and nothing else changes: the command runs, a failure still
/// raises, and every position that keeps a value gets it.
#[test]
fn discarded_replies_are_not_made() {
    let (mut e, store) = engine();
    let mut host = FakeHost::default();
    let mut eval = |body: &str| eval_with(&mut e, &store, &mut host, body, &[], &[], false);
    // Under 1 KB allocated by 2000 discarded replies (the GC stopped
    // meanwhile, so a collection cannot hide a table made per call: made,
    // they would take ~190 KB; the state may grow its stack once).
    let grown = "collectgarbage('stop') local before = collectgarbage('count') \
                 for i = 1, 1000 do redis.call('set', 'k', 'v') redis.pcall('set', 'k', 'v') end \
                 local grown = collectgarbage('count') - before collectgarbage('restart') \
                 return math.floor(grown)";
    assert_eq!(eval(grown), ":0\r\n");
    assert_eq!(
        eval("redis.call('set', 'k', 'w') return redis.call('get', 'k')"),
        "$1\r\nw\r\n"
    );
    assert_eq!(
        eval("local r = redis.call('set', 'k', 'v') return r.ok"),
        "$2\r\nOK\r\n"
    );
    assert_eq!(
        eval("local a, b = redis.call('get', 'k') return {a, tostring(b)}"),
        "*2\r\n$1\r\nv\r\n$3\r\nnil\r\n"
    );
    assert_eq!(
        eval("return {redis.call('get', 'k'), tostring(redis.call('ping').ok), redis.call('get', 'k')}"),
        "*3\r\n$1\r\nv\r\n$4\r\nPONG\r\n$1\r\nv\r\n"
    );
    assert_eq!(
        eval("local ok, e = pcall(function() redis.call('nosuch') end) return e"),
        "$44\r\nERR Unknown Redis command called from script\r\n"
    );
    assert_eq!(eval("redis.pcall('nosuch') return 1"), ":1\r\n");
    let body = "redis.call('nosuch') return 1";
    assert_eq!(
        eval(body),
        format!(
            "-ERR Unknown Redis command called from script script: {}, on @user_script:1.\r\n",
            sha1_hex(body.as_bytes())
        )
    );
}

/// `redis.acl_check_cmd` asks the host about the script's user (Redis
/// 7.0.15's "Script ACL check": true, false, an unknown command raises).
#[test]
fn acl_check_cmd_asks_the_host() {
    assert_eq!(eval("return redis.acl_check_cmd('get', 'k')"), ":1\r\n");
    assert_eq!(eval("return redis.acl_check_cmd('set', 'k', 1)"), "$-1\r\n");
    assert!(eval("return redis.acl_check_cmd('nosuch', 'k')")
        .starts_with("-ERR Invalid command passed to redis.acl_check_cmd() script: "));
    assert!(eval("return redis.acl_check_cmd()")
        .starts_with("-ERR Please specify at least one argument for this redis lib call script: "));
}

/// A library's top-level code is stopped past the timeout a client's
/// FUNCTION LOAD gives it; a library already accepted (a thread's own copy,
/// one saved by an earlier run) loads without one, however long it takes.
#[test]
fn load_timeout_applies_only_when_asked() {
    let (mut e, _store) = engine();
    let slow = "#!lua name=slow\nlocal n = 0 for i = 1, 20000000 do n = n + i end\n\
                redis.register_function('f', function() return n end)";
    let err = e.load_library(slow, Some(1)).err().unwrap();
    assert!(err.contains(busy::LOAD_TIMEOUT), "{err}");
    assert_eq!(e.load_library(slow, None).map(|r| r.len()), Ok(1));
    let endless = "#!lua name=endless\nwhile true do end";
    let err = e
        .load_library(endless, Some(busy::LOAD_TIMEOUT_MS))
        .err()
        .unwrap();
    assert!(err.contains(busy::LOAD_TIMEOUT), "{err}");
}
