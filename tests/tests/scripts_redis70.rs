//! Scripts and functions against a real redis-server, where Redis
//! 7.0.15's own suite found Citadel answering differently: every reply
//! is compared byte for byte unless a value is the server's own (memory).

use citadel_tests::differential::Pair;

/// INFO memory's `name:value` lines whose name is one of `names`.
fn fields(info: &str, names: &[&str]) -> Vec<(String, String)> {
    info.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .filter(|(k, _)| names.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const SCRIPT_FIELDS: &[&str] = &[
    "used_memory_lua",
    "used_memory_vm_eval",
    "used_memory_lua_human",
    "used_memory_scripts_eval",
    "number_of_cached_scripts",
    "number_of_functions",
    "number_of_libraries",
    "used_memory_vm_functions",
    "used_memory_vm_total",
    "used_memory_vm_total_human",
    "used_memory_functions",
    "used_memory_scripts",
    "used_memory_scripts_human",
];

const COUNTS: &[&str] = &[
    "number_of_cached_scripts",
    "number_of_functions",
    "number_of_libraries",
];

/// Redis's script fields, in its order, with the same counts.
fn same_script_info(p: &mut Pair) {
    let (redis, citadel) = p.each_on(0, &["info", "memory"]);
    let names = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let (r, c) = (
        fields(&redis, SCRIPT_FIELDS),
        fields(&citadel, SCRIPT_FIELDS),
    );
    assert_eq!(names(&c), names(&r), "{citadel}");
    assert_eq!(fields(&citadel, COUNTS), fields(&redis, COUNTS));
}

#[test]
fn info_memory_counts_scripts_and_functions() {
    let mut p = Pair::start();
    same_script_info(&mut p);
    for i in 0..5 {
        p.same_str(&["script", "load", &format!("return {i}")]);
    }
    p.same_str(&["eval", "return 'x'", "0"]);
    let lib = "#!lua name=lib\nredis.register_function('f1', function() return 1 end)\nredis.register_function('f2', function() return 2 end)";
    p.same_str(&["function", "load", lib]);
    p.same_str(&["fcall", "f1", "0"]);
    same_script_info(&mut p);
    let (_, citadel) = p.each_on(0, &["info", "memory"]);
    let vm = fields(&citadel, &["used_memory_vm_eval"]);
    assert!(vm[0].1.parse::<u64>().unwrap() > 0, "{citadel}");
    p.same_str(&["script", "flush", "async"]);
    p.same_str(&["function", "flush"]);
    same_script_info(&mut p);
}

/// Redis sorts a set's SORT BY <constant> (no sort) when a script asks,
/// so the result does not hang on the set's layout; lists keep theirs.
#[test]
fn sort_by_constant_in_a_script_is_sorted() {
    let mut p = Pair::start();
    let mut sadd = vec!["sadd".to_string(), "s".to_string()];
    sadd.extend(["b", "a", "d", "c", "x", "10", "2", "z"].map(String::from));
    p.same_strings(&sadd);
    p.same_str(&["rpush", "l", "b", "a", "c"]);
    for (key, extra) in [
        ("s", ""),
        ("s", ", 'desc'"),
        ("s", ", 'limit', 1, 3"),
        ("s", ", 'get', '#'"),
        ("l", ""),
        ("l", ", 'desc'"),
    ] {
        let script = format!("return redis.call('sort', KEYS[1], 'by', 'nosort'{extra})");
        p.same_str(&["eval", &script, "1", key]);
    }
    let ro = "return redis.call('sort_ro', KEYS[1], 'by', 'nosort')";
    p.same_str(&["eval", ro, "1", "s"]);
    p.same_str(&["sort", "s", "by", "nosort", "store", "dst"]);
    p.same_str(&["lrange", "dst", "0", "-1"]);
}

#[test]
fn function_flush_argument_errors() {
    let mut p = Pair::start();
    p.same_str(&["function", "flush", "bad_arg"]);
    p.same_str(&["function", "flush", "sync", "extra_arg"]);
    p.same_str(&["function", "flush", "async"]);
    p.same_str(&["function", "flush", "SYNC"]);
    p.same_str(&["Function", "Flush", "sync", "x"]);
    p.same_str(&["function", "restore", "payload", "append", "x"]);
}

/// What a library's top-level code sees: only `redis.register_function`,
/// `redis.log` and its levels and the version; its functions see the
/// whole environment but not register_function.
#[test]
fn library_load_environment() {
    let mut p = Pair::start();
    for body in [
        "return math.random()",
        "return redis.call('ping')",
        "return redis.setresp(3)",
        "return redis.set_repl(redis.REPL_NONE)",
        "return redis.pcall('ping')",
        "redis.math.random()",
        "redis.redis.call('ping')",
        "a = 1",
        "mt = getmetatable(_G)",
        "return string.len('x')",
        "redis.log(redis.LOG_NOTICE, redis.REDIS_VERSION)",
    ] {
        p.same_str(&[
            "function",
            "load",
            "replace",
            &format!("#!lua name=lib2\n{body}"),
        ]);
    }
    let lib = "#!lua name=lib1\nlocal lib = redis\n\
        lib.register_function('f1', function() lib.math = math return {ok='OK'} end)\n\
        lib.register_function('f2', function() lib.register_function('f1', function() end) end)\n\
        redis.register_function('f3', function() redis.register_function('f4', function() end) end)\n\
        redis.register_function('f5', function() return {string.len('abc'), redis.call('ping')} end)";
    p.same_str(&["function", "load", lib]);
    for f in ["f1", "f2", "f3", "f5"] {
        let reply = p.same_str(&["fcall", f, "0"]);
        assert!(!reply.is_empty());
    }
}

/// A library whose code never ends is stopped with Redis's error (its
/// load-time code has no pcall to catch it) and its core serves again.
#[test]
fn endless_library_code_times_out() {
    let mut p = Pair::start();
    for body in [
        "local a = 1\nwhile 1 do a = a + 1 end",
        "local function f() return f() end\nf()",
        "while 1 do pcall(function() while 1 do end end) end",
    ] {
        p.same_str(&["function", "load", &format!("#!lua name=lib\n{body}")]);
    }
    p.same_str(&["ping"]);
    p.same_str(&["function", "list"]);
}

/// The metadata line's errors come in Redis's order and texts; the name
/// may be quoted, `name=` in any case.
#[test]
fn library_metadata_line() {
    let mut p = Pair::start();
    let body = "\nredis.register_function('foo', function() return 1 end)";
    for line in [
        "#! name=test",
        "#!lua name=test foo=bar",
        "#!lua",
        "#!lua name=foo name=bar",
        "#!lua name=\"foo\"",
        "#!lua NAME=foo2",
        "#!nosuch",
        "#!nosuch name=x",
        "#!lua name=a-b",
        "#!LUA name=upper",
        "#!l\"ua\" na\"me=quoted\"",
        "#!lua name=\"unbalanced",
        "#!lua name=nul\0",
        "#!\x0bname=vt",
    ] {
        p.same_str(&["function", "load", "replace", &format!("{line}{body}")]);
    }
    p.same_str(&["function", "load", "#!lua name=nolf"]);
    p.same_str(&["function", "list"]);
}

/// A subcommand a script calls that the server lacks: Redis's lookup
/// finds no command, except CLUSTER RESET, which Redis has but refuses
/// to scripts.
#[test]
fn scripts_calling_missing_subcommands() {
    let mut p = Pair::start();
    for call in [
        "redis.pcall('cluster', 'reset')",
        "redis.pcall('cluster', 'RESET', 'hard')",
        "redis.pcall('config', 'nosuch')",
        "redis.pcall('object', 'nosuch', 'k')",
        "redis.call('cluster', 'reset')",
    ] {
        p.same_str(&["eval", &format!("return {call}"), "0"]);
    }
}

/// redis.register_function's arguments as Redis reads them: named
/// arguments and flags in any case, numbers taken as text, each wrong one
/// with its own error; FUNCTION LIST shows the flags once each, in
/// Redis's order.
#[test]
fn register_function_arguments() {
    let mut p = Pair::start();
    let f = "function() return 1 end";
    for args in [
        format!("{{function_name={f}, callback={f}}}"),
        format!("{{function_name='f', callback={f}, description={f}}}"),
        format!("{{function_name='f', callback={f}, [1]='x'}}"),
        format!("{{function_name='f', callback={f}, flags={{'no-writes', 7}}}}"),
        format!("{{function_name='f', callback={f}, flags='no-writes'}}"),
        format!("{{FUNCTION_NAME='f', Callback={f}, Description=12.5, FLAGS={{'ALLOW-OOM', 'no-writes', 'No-Writes'}}}}"),
        format!("{{function_name=123, callback={f}, flags={{'allow-stale', 'no-cluster', 'no-writes'}}}}"),
        format!("(42, {f})"),
        format!("(1.5, {f})"),
        format!("({f}, {f})"),
    ] {
        let code = format!("#!lua name=args\nredis.register_function{args}");
        p.same_str(&["function", "load", "replace", &code]);
        p.same_str(&["function", "list", "libraryname", "args"]);
    }
}

/// FUNCTION LIST takes each option once: a second is an unknown argument.
#[test]
fn function_list_arguments() {
    let mut p = Pair::start();
    let code = "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)";
    p.same_str(&["function", "load", code]);
    for args in [
        &["libraryname"][..],
        &["withcode", "withcode"],
        &["withcode", "libraryname", "lib*", "libraryname", "x"],
        &["WITHCODE", "LIBRARYNAME", "lib*"],
        &["libraryname", "nosuch*"],
        &["libraryname", "lib1", "withcode"],
        &["bad"],
    ] {
        let mut cmd = vec!["function", "list"];
        cmd.extend_from_slice(args);
        p.same_str(&cmd);
    }
}
