//! Clients of a thread whose loop is inside a script past
//! busy-script-time. A server of one thread has no peer core to take its
//! new connections: the script's hook answers them as Redis answers
//! clients during a busy script (-BUSY, SCRIPT KILL, FUNCTION KILL,
//! SHUTDOWN NOSAVE), and the loop serves them whole once the script ends.
//! The thread's own connections (on a server of any thread count) are
//! answered the same way when nothing of theirs is pending in the loop,
//! MULTI and EXEC included. Before, a `redis-cli SCRIPT KILL` to such a
//! server waited for ever, and so did every connection already on the
//! script's thread.

use std::time::Duration;

use citadel_tests::reference::encode_command;
use citadel_tests::{RespReader, Server};

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";

fn one_thread(extra: &[&str]) -> Server {
    let mut args = vec!["--threads", "1", "--busy-script-time", "100"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A fresh connection that fails the test rather than hang it.
fn fresh(server: &Server) -> RespReader {
    let r = RespReader::new(server.raw());
    r.set_read_timeout(Some(Duration::from_secs(20)));
    r
}

fn send(r: &mut RespReader, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
}

fn reply(r: &mut RespReader) -> String {
    String::from_utf8_lossy(&r.raw_reply().expect("a reply")).into_owned()
}

fn reply_to(r: &mut RespReader, args: &[&str]) -> String {
    send(r, args);
    reply(r)
}

/// Starts `script` (EVAL, or FCALL of a loaded function) on a connection of
/// its own and waits past busy-script-time.
fn start_looping(server: &Server, command: &[&str]) -> RespReader {
    let mut looping = fresh(server);
    send(&mut looping, command);
    std::thread::sleep(Duration::from_millis(300));
    looping
}

#[test]
fn script_kill_reaches_a_script_on_the_only_thread() {
    let server = one_thread(&[]);
    let mut looping = start_looping(&server, &["eval", "while true do end", "0"]);
    let mut client = fresh(&server);
    assert_eq!(reply_to(&mut client, &["get", "x"]), BUSY_EVAL);
    assert_eq!(
        reply_to(&mut client, &["nosuch", "a"]),
        "-ERR unknown command 'nosuch', with args beginning with: 'a' \r\n"
    );
    assert_eq!(
        reply_to(&mut client, &["get"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        reply_to(&mut client, &["function", "kill"]),
        BUSY_EVAL,
        "FUNCTION KILL while an EVAL runs"
    );
    // MULTI changes the connection: it waits, with what follows it, for
    // the session the connection gets when the script ends.
    send(&mut client, &["multi"]);
    send(&mut client, &["set", "y", "2"]);
    send(&mut client, &["exec"]);
    let mut operator = fresh(&server);
    assert_eq!(reply_to(&mut operator, &["script", "kill"]), "+OK\r\n");
    let killed = reply(&mut looping);
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
        "{killed}"
    );
    assert_eq!(reply(&mut client), "+OK\r\n");
    assert_eq!(reply(&mut client), "+QUEUED\r\n");
    assert_eq!(reply(&mut client), "*1\r\n+OK\r\n");
    // Every connection is served whole again, the held ones included.
    assert_eq!(reply_to(&mut client, &["get", "y"]), "$1\r\n2\r\n");
    assert_eq!(
        reply_to(&mut operator, &["script", "kill"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    assert_eq!(reply_to(&mut looping, &["ping"]), "+PONG\r\n");
}

#[test]
fn function_kill_reaches_a_function_on_the_only_thread() {
    let server = one_thread(&[]);
    let library = "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}";
    let mut setup = fresh(&server);
    assert_eq!(
        reply_to(&mut setup, &["function", "load", library]),
        "$4\r\nspin\r\n"
    );
    let mut looping = start_looping(&server, &["fcall", "spin", "0"]);
    let mut operator = fresh(&server);
    assert_eq!(reply_to(&mut operator, &["ping"]), BUSY_FUNCTION);
    let stats = reply_to(&mut operator, &["function", "stats"]);
    assert!(
        stats.contains("running_script") && stats.contains("spin"),
        "{stats}"
    );
    assert_eq!(reply_to(&mut operator, &["script", "kill"]), BUSY_FUNCTION);
    assert_eq!(reply_to(&mut operator, &["function", "kill"]), "+OK\r\n");
    let killed = reply(&mut looping);
    assert!(killed.starts_with("-ERR Script killed by user"), "{killed}");
    assert_eq!(reply_to(&mut operator, &["ping"]), "+PONG\r\n");
}

#[test]
fn shutdown_nosave_stops_a_script_on_the_only_thread() {
    let mut server = one_thread(&[]);
    let mut looping = start_looping(&server, &["eval", "while true do end", "0"]);
    let mut operator = fresh(&server);
    send(&mut operator, &["shutdown", "nosave"]);
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let stopped = reply(&mut looping);
    assert!(
        stopped.starts_with("-ERR Script interrupted: the server is shutting down"),
        "{stopped}"
    );
}

/// With a password set, a connection that has not authenticated gets
/// NOAUTH; AUTH and HELLO are answered during the script, as Redis
/// answers them, so an operator can authenticate and kill it
/// (`redis-cli -a PASS SCRIPT KILL`); what they set is the connection's
/// once its session takes over.
#[test]
fn a_server_with_a_password_lets_an_operator_authenticate() {
    let server = one_thread(&["--requirepass", "sesame"]);
    let mut setup = fresh(&server);
    assert_eq!(reply_to(&mut setup, &["auth", "sesame"]), "+OK\r\n");
    send(&mut setup, &["eval", "while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(300));

    let mut operator = fresh(&server);
    assert_eq!(
        reply_to(&mut operator, &["script", "kill"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        reply_to(&mut operator, &["hello", "3"]),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
         HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
         select the RESP protocol version at the same time\r\n"
    );
    assert_eq!(
        reply_to(&mut operator, &["auth", "open"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(reply_to(&mut operator, &["auth", "sesame"]), "+OK\r\n");
    assert_eq!(reply_to(&mut operator, &["get", "x"]), BUSY_EVAL);

    // HELLO with credentials, a name and RESP3 in one, then a command in
    // the same write: answered in RESP3 as the user it authenticated.
    let mut greeted = fresh(&server);
    send(
        &mut greeted,
        &[
            "hello", "3", "auth", "default", "sesame", "setname", "early",
        ],
    );
    send(&mut greeted, &["get", "x"]);
    let hello = reply(&mut greeted);
    assert!(hello.starts_with("%7\r\n"), "a RESP3 map: {hello}");
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
    assert_eq!(reply(&mut greeted), BUSY_EVAL);
    let mut stranger = fresh(&server);
    assert_eq!(
        reply_to(&mut stranger, &["auth", "guess"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );

    // What an operator types: redis-cli authenticates, then kills.
    let cli = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &server.port.to_string(),
            "-a",
            "sesame",
            "--no-auth-warning",
        ])
        .args(["script", "kill"])
        .output()
        .expect("redis-cli is missing: run tests/run.sh, which installs it");
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "OK");
    let killed = reply(&mut setup);
    assert!(killed.starts_with("-ERR Script killed by user"), "{killed}");
    // The session each connection gets starts where its greeting left it.
    let info = reply_to(&mut greeted, &["client", "info"]);
    assert!(info.starts_with('='), "a RESP3 verbatim string: {info}");
    for field in [" name=early ", " resp=3 ", " user=default "] {
        assert!(info.contains(field), "{field} in {info}");
    }
    let id = hello
        .split("$2\r\nid\r\n:")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .expect("HELLO names the connection's id");
    assert!(
        info.contains(&format!("id={id} ")),
        "HELLO's id {id}: {info}"
    );
    assert_eq!(reply_to(&mut operator, &["ping"]), "+PONG\r\n");
    assert_eq!(
        reply_to(&mut stranger, &["ping"]),
        "-NOAUTH Authentication required.\r\n"
    );
    // The two failed AUTHs are in the ACL LOG (one entry, as Redis groups
    // them).
    send(&mut operator, &["acl", "log"]);
    let log = reply(&mut operator);
    assert!(log.starts_with("*1\r\n"), "{log}");
    assert!(log.contains("$5\r\ncount\r\n:2\r\n"), "{log}");
    assert!(log.contains("$6\r\nreason\r\n$4\r\nauth\r\n"), "{log}");
}

/// SCRIPT KILL from `operator` stops the script `looping` runs.
fn kill_script(operator: &mut RespReader, looping: &mut RespReader) {
    assert_eq!(reply_to(operator, &["script", "kill"]), "+OK\r\n");
    let killed = reply(looping);
    assert!(killed.starts_with("-ERR Script killed by user"), "{killed}");
}

/// A client connected before the script started: `ping` answered, so
/// nothing of it is pending.
fn connected(server: &Server) -> RespReader {
    let mut r = fresh(server);
    assert_eq!(reply_to(&mut r, &["ping"]), "+PONG\r\n");
    r
}

#[test]
fn connections_already_on_the_thread_are_answered() {
    let server = one_thread(&[]);
    let mut client = connected(&server);
    let mut operator = connected(&server);
    let mut looping = start_looping(&server, &["eval", "while true do end", "0"]);
    assert_eq!(reply_to(&mut client, &["get", "x"]), BUSY_EVAL);
    // A pipeline: every reply, in order.
    send(&mut client, &["set", "x", "1"]);
    send(&mut client, &["nosuch"]);
    send(&mut client, &["ping"]);
    assert_eq!(reply(&mut client), BUSY_EVAL);
    assert_eq!(
        reply(&mut client),
        "-ERR unknown command 'nosuch', with args beginning with: \r\n"
    );
    assert_eq!(reply(&mut client), BUSY_EVAL);
    // Half a command waits for the rest.
    client.send(b"*2\r\n$3\r\nget\r\n$1");
    std::thread::sleep(Duration::from_millis(100));
    client.send(b"\r\nx\r\n");
    assert_eq!(reply(&mut client), BUSY_EVAL);
    kill_script(&mut operator, &mut looping);
    assert_eq!(reply_to(&mut client, &["get", "x"]), "$-1\r\n");
    assert_eq!(reply_to(&mut looping, &["ping"]), "+PONG\r\n");
}

/// As in Redis: MULTI during a busy script begins a transaction whose
/// refused commands make EXEC abort; EXEC during one is refused and
/// discards its transaction.
#[test]
fn transactions_across_a_busy_script_end_as_in_redis() {
    let server = one_thread(&[]);
    let mut operator = connected(&server);
    let mut begun_during = connected(&server);
    let mut begun_before = connected(&server);
    assert_eq!(reply_to(&mut operator, &["set", "xx", "1"]), "+OK\r\n");
    assert_eq!(reply_to(&mut begun_before, &["multi"]), "+OK\r\n");
    assert_eq!(reply_to(&mut begun_before, &["incr", "xx"]), "+QUEUED\r\n");
    let mut looping = start_looping(&server, &["eval", "while true do end", "0"]);
    assert_eq!(reply_to(&mut begun_during, &["multi"]), "+OK\r\n");
    assert_eq!(reply_to(&mut begun_during, &["incr", "xx"]), BUSY_EVAL);
    assert_eq!(
        reply_to(&mut begun_before, &["exec"]),
        "-EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. \
         You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    kill_script(&mut operator, &mut looping);
    // CLIENT LIST shows the transaction the hook began, and not the one
    // it discarded.
    let list = reply_to(&mut operator, &["client", "list"]);
    assert_eq!(list.matches("flags=x").count(), 1, "{list}");
    assert_eq!(reply_to(&mut begun_during, &["incr", "xx"]), "+QUEUED\r\n");
    assert_eq!(
        reply_to(&mut begun_during, &["exec"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    for client in [&mut begun_during, &mut begun_before] {
        assert_eq!(reply_to(client, &["ping", "out"]), "$3\r\nout\r\n");
    }
    assert_eq!(reply_to(&mut operator, &["get", "xx"]), "$1\r\n1\r\n");
}

/// A RESP2 subscriber gets Redis's subscribe-mode refusal before `-BUSY`.
#[test]
fn a_subscriber_is_answered_as_in_redis() {
    let server = one_thread(&[]);
    let mut operator = connected(&server);
    let mut subscriber = fresh(&server);
    send(&mut subscriber, &["subscribe", "news"]);
    reply(&mut subscriber);
    let mut looping = start_looping(&server, &["eval", "while true do end", "0"]);
    assert_eq!(reply_to(&mut subscriber, &["ping"]), BUSY_EVAL);
    assert_eq!(
        reply_to(&mut subscriber, &["get", "x"]),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
         are allowed in this context\r\n"
    );
    kill_script(&mut operator, &mut looping);
    assert_eq!(
        reply_to(&mut subscriber, &["ping"]),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
}

/// A connection whose answers depend on its session (replies off) waits
/// for the script, as before.
#[test]
fn a_client_with_replies_off_waits_for_the_script() {
    let server = one_thread(&[]);
    let mut operator = connected(&server);
    let mut silent = connected(&server);
    send(&mut silent, &["client", "reply", "off"]);
    assert_eq!(reply_to(&mut operator, &["ping"]), "+PONG\r\n");
    let mut looping = start_looping(&server, &["eval", "while true do end", "0"]);
    send(&mut silent, &["client", "reply", "on"]);
    silent.set_read_timeout(Some(Duration::from_millis(300)));
    assert!(silent.raw_reply().is_none(), "answered during the script");
    silent.set_read_timeout(Some(Duration::from_secs(20)));
    kill_script(&mut operator, &mut looping);
    assert_eq!(reply(&mut silent), "+OK\r\n");
}

/// With two threads, a connection on the script's thread is answered from
/// the hook (one on the other thread is served whole, as it was).
#[test]
fn a_connection_on_the_scripts_thread_of_two_is_answered() {
    let server = Server::start(&["--threads", "2", "--busy-script-time", "100"]);
    let thread_of = |r: &mut RespReader| {
        let id = reply_to(r, &["client", "id"]);
        id.trim_start_matches(':').trim().parse::<u64>().unwrap() >> 48
    };
    let mut looping = fresh(&server);
    let script_thread = thread_of(&mut looping);
    let mut neighbour = None;
    for _ in 0..64 {
        let mut r = fresh(&server);
        if thread_of(&mut r) == script_thread {
            neighbour = Some(r);
            break;
        }
    }
    let mut neighbour = neighbour.expect("a connection on the script's thread");
    send(&mut looping, &["eval", "while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(reply_to(&mut neighbour, &["get", "x"]), BUSY_EVAL);
    kill_script(&mut neighbour, &mut looping);
    assert_eq!(reply_to(&mut neighbour, &["ping"]), "+PONG\r\n");
}
