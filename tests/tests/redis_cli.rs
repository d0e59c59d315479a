//! The real `redis-cli` against citadel: argument mode, inline commands
//! over stdin, and `--pipe` mass insertion. Skipped when redis-cli is absent
//! (tests/run.sh installs it).

use std::io::Write;
use std::process::{Command, Stdio};

use citadel_tests::redis::Commands;
use citadel_tests::Server;

fn redis_cli(port: u16, args: &[&str], stdin: &[u8]) -> String {
    let mut child = match Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("redis-cli is missing ({e}): run tests/run.sh, which installs it"),
    };
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_commands_inline_and_pipe() {
    let server = Server::start(&[]);
    let port = server.port;
    let out = redis_cli(port, &["SET", "cli", "hello world"], b"");
    assert_eq!(out.trim(), "OK");
    assert_eq!(redis_cli(port, &["GET", "cli"], b"").trim(), "hello world");
    let out = redis_cli(
        port,
        &[],
        b"PING\nSET inline \"quoted value\"\nGET inline\n",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["PONG", "OK", "quoted value"]
    );

    let mut proto = Vec::new();
    for i in 0..5000 {
        let (k, v) = (format!("pipe:{i}"), format!("{i}"));
        write!(
            proto,
            "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
            k.len(),
            v.len()
        )
        .unwrap();
    }
    let out = redis_cli(port, &["--pipe"], &proto);
    assert!(out.contains("errors: 0, replies: 5000"), "{out}");
    let mut c = server.client();
    assert_eq!(c.get::<_, String>("pipe:4999").unwrap(), "4999");
}
