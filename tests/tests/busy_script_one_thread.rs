//! A server of one thread whose loop is inside a script past
//! busy-script-time has no peer core to take its new connections: the
//! script's hook answers them as Redis answers clients during a busy
//! script (-BUSY, SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE), and the
//! loop serves them whole once the script ends. Before, a `redis-cli
//! SCRIPT KILL` to such a server waited for ever.

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
/// NOAUTH, and its AUTH waits for the session (a busy script does not
/// authenticate anyone).
#[test]
fn a_server_with_a_password_asks_for_it_first() {
    let server = one_thread(&["--requirepass", "sesame"]);
    let mut setup = fresh(&server);
    assert_eq!(reply_to(&mut setup, &["auth", "sesame"]), "+OK\r\n");
    send(
        &mut setup,
        &[
            "eval",
            "local t = os.clock() while os.clock() - t < 1 do end return 'done'",
            "0",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut client = fresh(&server);
    assert_eq!(
        reply_to(&mut client, &["script", "kill"]),
        "-NOAUTH Authentication required.\r\n"
    );
    send(&mut client, &["auth", "sesame"]);
    assert_eq!(reply(&mut setup), "$4\r\ndone\r\n");
    assert_eq!(reply(&mut client), "+OK\r\n");
    assert_eq!(reply_to(&mut client, &["ping"]), "+PONG\r\n");
}
