//! Differential testing against a real redis-server: the same commands go
//! to both servers over as many connections as a test needs, and every
//! reply must be the same bytes. Plus a seeded generator, so a failure
//! replays exactly.

use crate::reference::{encode_command, RedisServer};
use crate::{RespReader, Server};

/// Redis and Citadel with a `redis` crate connection to each, for tests
/// that read both sides with typed commands.
pub struct Clients {
    /// Keeps both servers running.
    pub servers: Pair,
    pub redis: redis::Connection,
    pub citadel: redis::Connection,
}

impl Clients {
    pub fn start() -> Clients {
        let servers = Pair::start();
        let url = format!("redis://127.0.0.1:{}/", servers.redis.port);
        let redis = redis::Client::open(url).unwrap().get_connection().unwrap();
        let citadel = servers.citadel.client();
        Clients {
            servers,
            redis,
            citadel,
        }
    }
}

/// A connection to each server, used in lockstep.
pub struct Conn {
    redis: RespReader,
    citadel: RespReader,
}

/// Redis and Citadel, with one connection pair to start.
pub struct Pair {
    conns: Vec<Conn>,
    pub redis: RedisServer,
    pub citadel: Server,
}

impl Pair {
    pub fn start() -> Pair {
        Pair::start_with(&[])
    }

    /// Citadel with extra command-line arguments.
    pub fn start_with(citadel_args: &[&str]) -> Pair {
        let (redis, citadel) = (RedisServer::start(), Server::start(citadel_args));
        let mut pair = Pair {
            conns: Vec::new(),
            redis,
            citadel,
        };
        pair.connect();
        pair
    }

    /// Opens one more connection pair; returns its index for `same_on`.
    pub fn connect(&mut self) -> usize {
        self.conns.push(Conn {
            redis: RespReader::new(self.redis.raw()),
            citadel: RespReader::new(self.citadel.raw()),
        });
        self.conns.len() - 1
    }

    /// Closes connection pair `conn` (its index stays taken).
    pub fn disconnect(&mut self, conn: usize) {
        let c = &self.conns[conn];
        for stream in [&c.redis.stream, &c.citadel.stream] {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Sends `args` to both on connection 0; returns Redis's reply after
    /// checking Citadel's is the same bytes.
    pub fn same(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.same_on(0, args)
    }

    pub fn same_on(&mut self, conn: usize, args: &[&[u8]]) -> Vec<u8> {
        let cmd = encode_command(args);
        if std::env::var_os("DIFF_TRACE").is_some() {
            eprintln!("[{conn}] {}", String::from_utf8_lossy(&args.join(&b' ')));
        }
        let c = &mut self.conns[conn];
        c.redis.send(&cmd);
        c.citadel.send(&cmd);
        let want = c.redis.raw_reply().expect("redis closed");
        let got = c.citadel.raw_reply().expect("citadel closed");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "reply to {:?} on connection {conn}",
            args.iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
        );
        want
    }

    /// Sends `args` to both on connection `conn` without comparing the
    /// replies (HELLO, INFO: server-specific answers).
    pub fn both(&mut self, conn: usize, args: &[&str]) {
        self.each_on(conn, args);
    }

    /// Sends `args` to both on `conn`; returns (Redis's, Citadel's) reply.
    pub fn each_on(&mut self, conn: usize, args: &[&str]) -> (String, String) {
        self.split_on(conn, args, args)
    }

    /// Sends `to_redis` to Redis and `to_citadel` to Citadel on `conn`
    /// (commands naming server-specific values, such as client ids);
    /// returns both replies.
    pub fn split_on(
        &mut self,
        conn: usize,
        to_redis: &[&str],
        to_citadel: &[&str],
    ) -> (String, String) {
        let encode = |args: &[&str]| {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            encode_command(&args)
        };
        let c = &mut self.conns[conn];
        c.redis.send(&encode(to_redis));
        c.citadel.send(&encode(to_citadel));
        let text =
            |r: Option<Vec<u8>>| String::from_utf8_lossy(&r.expect("server closed")).into_owned();
        (text(c.redis.raw_reply()), text(c.citadel.raw_reply()))
    }

    /// Sends `args` to both on `conn` without reading a reply (a command
    /// that blocks); `replies_on` reads them later.
    pub fn send_on(&mut self, conn: usize, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let cmd = encode_command(&args);
        let c = &mut self.conns[conn];
        c.redis.send(&cmd);
        c.citadel.send(&cmd);
    }

    /// The next reply on `conn` from each server: (Redis's, Citadel's).
    pub fn replies_on(&mut self, conn: usize) -> (String, String) {
        let c = &mut self.conns[conn];
        let text =
            |r: Option<Vec<u8>>| String::from_utf8_lossy(&r.expect("server closed")).into_owned();
        (text(c.redis.raw_reply()), text(c.citadel.raw_reply()))
    }

    /// Pushes (or messages) waiting on connection `conn`: every reply that
    /// arrives within `wait`, from each server, to compare.
    pub fn pending_on(
        &mut self,
        conn: usize,
        wait: std::time::Duration,
    ) -> (Vec<String>, Vec<String>) {
        let c = &mut self.conns[conn];
        (c.redis.pending(wait), c.citadel.pending(wait * 3))
    }

    /// Asserts both servers sent the same pushes on `conn` (see `pending_on`).
    pub fn same_pending(&mut self, conn: usize, context: &str) {
        let (want, got) = self.pending_on(conn, std::time::Duration::from_millis(50));
        assert_eq!(got, want, "pushes on connection {conn} after {context}");
    }

    /// Runs `steps` as (connection, command) on both, each reply the
    /// same; after each, the pushes (or messages) waiting on connection
    /// `watch` must be the same too.
    pub fn same_steps_watching(&mut self, watch: usize, steps: &[(usize, &[&str])]) {
        for (conn, cmd) in steps {
            self.same_str_on(*conn, cmd);
            self.same_pending(watch, &format!("{cmd:?}"));
        }
    }

    /// The client id of connection `conn` on each server (Redis's,
    /// Citadel's), as decimal text: ids differ between the servers.
    pub fn client_ids(&mut self, conn: usize) -> (String, String) {
        let (redis, citadel) = self.each_on(conn, &["CLIENT", "ID"]);
        let id = |reply: &str| reply.trim_start_matches(':').trim().to_string();
        (id(&redis), id(&citadel))
    }

    /// `same_str` of owned arguments (from a generator).
    pub fn same_strings(&mut self, args: &[String]) -> String {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.same_str(&args)
    }

    /// For each seed: `steps` commands made by `command` go to both
    /// servers, then `check` runs (final values) and FLUSHALL.
    pub fn random_streams(
        &mut self,
        seeds: &[u64],
        steps: usize,
        mut command: impl FnMut(&mut Rng) -> Vec<String>,
        mut check: impl FnMut(&mut Pair),
    ) {
        for seed in seeds {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
            for _ in 0..steps {
                self.same_strings(&command(&mut rng));
            }
            check(self);
            self.same_str(&["FLUSHALL"]);
        }
    }

    pub fn same_str(&mut self, args: &[&str]) -> String {
        self.same_str_on(0, args)
    }

    pub fn same_str_on(&mut self, conn: usize, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&self.same_on(conn, &args)).into_owned()
    }
}

/// Appends `words` to a generated command.
pub fn push_words(args: &mut Vec<String>, words: &[&str]) {
    args.extend(words.iter().map(|s| s.to_string()));
}

/// xorshift64*: a seeded stream, so a failure replays exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// Mostly small, sometimes negative or extreme.
    pub fn int(&mut self, small: i64) -> i64 {
        match self.below(10) {
            0 => -(self.below(small as u64 * 2) as i64),
            1 => [i64::MIN, i64::MAX, -1, 0, 255, 256, 127, -128][self.below(8) as usize],
            2 => self.next_u64() as i64,
            _ => self.below(small as u64) as i64,
        }
    }
}
