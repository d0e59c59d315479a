//! A target's worker: its cached connection and Redis 7.0's exchange on
//! it. Per job: [AUTH] [SELECT db, unless the connection's last database
//! is it] and the RESTOREs are written at once (pipelined), then the
//! replies are read in order. A failure of the connection itself (not a
//! timeout) before any RESTORE was answered closes it and runs the whole
//! job once more on a fresh one (the cached one may have been closed by
//! the target meanwhile).

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, RecvTimeoutError};

use super::{Job, MigrateError, MigrateOutcome, Shared};
use crate::forward::{encode_command, ForwardError, PeerConn};

/// The cached connection and the database its last MIGRATE selected
/// (None: SELECT on the next one, as for a fresh connection).
struct Cached {
    conn: PeerConn,
    db: Option<i64>,
}

/// An exchange that failed before its outcome was known.
struct Failure {
    error: MigrateError,
    /// Worth one more try on a fresh connection (not a timeout).
    retry: bool,
}

/// Runs the jobs of target `name` until its queue is closed, or it sat
/// idle for `shared.idle` (then it leaves the worker map and ends).
pub(super) fn run(name: &str, jobs: &Receiver<Job>, shared: &Arc<Shared>) {
    let mut cached = None;
    loop {
        let job = match jobs.recv_timeout(shared.idle) {
            Ok(job) => job,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                // The map's entry for `name` is this worker's: it is only
                // replaced once its worker ended (one that keeps nothing
                // is not in the map, and ends when its queue closes).
                shared.lock_workers().remove(name);
                // Sent before the removal: still ours to run.
                while let Ok(job) = jobs.try_recv() {
                    let outcome = answer(&mut cached, &job);
                    (shared.deliver)(job.done(outcome));
                }
                return;
            }
        };
        let outcome = answer(&mut cached, &job);
        (shared.deliver)(job.done(outcome));
    }
}

/// `migrate`, answered even if it panics (a bug): its client must not
/// wait forever.
fn answer(cached: &mut Option<Cached>, job: &Job) -> MigrateOutcome {
    let run = std::panic::AssertUnwindSafe(|| migrate(cached, job));
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        *cached = None;
        MigrateOutcome::failed(job.keys, MigrateError::Internal)
    })
}

/// One job, tried again once on a fresh connection if its connection
/// failed before anything of it was answered (not on a timeout).
fn migrate(cached: &mut Option<Cached>, job: &Job) -> MigrateOutcome {
    let mut may_retry = true;
    loop {
        match exchange(cached, job) {
            Ok(outcome) => return outcome,
            Err(failure) => {
                // Closed: the next attempt (or MIGRATE) connects afresh.
                *cached = None;
                if failure.retry && may_retry {
                    may_retry = false;
                    continue;
                }
                return MigrateOutcome::failed(job.keys, failure.error);
            }
        }
    }
}

/// Connects unless a connection is cached, writes the job and reads its
/// replies.
fn exchange(cached: &mut Option<Cached>, job: &Job) -> Result<MigrateOutcome, Failure> {
    let c = match cached {
        Some(c) => c,
        None => cached.insert(Cached {
            conn: connect(job)?,
            db: None,
        }),
    };
    let select = c.db != Some(job.db);
    let mut request = Vec::with_capacity(job.restores.len() + 64);
    if let Some(auth) = &job.auth {
        let mut words = vec![&b"AUTH"[..]];
        words.extend(auth.user.as_deref());
        words.push(&auth.password);
        encode_command(&mut request, words.len(), words);
    }
    if select {
        let db = job.db.to_string();
        encode_command(&mut request, 2, [&b"SELECT"[..], db.as_bytes()]);
    }
    request.extend_from_slice(&job.restores);
    let wrote = c
        .conn
        .set_write_timeout(Some(job.timeout))
        .map_err(ForwardError::Io)
        .and_then(|()| c.conn.send(&request));
    wrote.map_err(|e| failure(MigrateError::Write, &e))?;
    let read = |c: &mut Cached| c.conn.read_reply(Instant::now() + job.timeout);
    let read_failed = |e: ForwardError| failure(MigrateError::Read, &e);
    let auth_error = match job.auth {
        Some(_) => error_text(&read(c).map_err(read_failed)?),
        None => None,
    };
    let select_error = match select {
        true => error_text(&read(c).map_err(read_failed)?),
        false => None,
    };
    // AUTH's error, else SELECT's, reported once a RESTORE is answered
    // (every RESTORE failed then); else the first RESTORE's.
    let refused = auth_error.or(select_error);
    let mut error = None;
    let mut restored = vec![false; job.keys];
    for (j, ok) in restored.iter_mut().enumerate() {
        let reply = match read(c) {
            Ok(reply) => reply,
            Err(e) => {
                // The connection is gone: closed now, whatever the reply.
                *cached = None;
                return match error {
                    Some(text) => Ok(MigrateOutcome {
                        restored,
                        result: Err(MigrateError::Target(text)),
                    }),
                    // Nothing answered yet: the whole job may run again.
                    None if j == 0 => Err(read_failed(e)),
                    None => Ok(MigrateOutcome {
                        restored,
                        result: Err(MigrateError::Read),
                    }),
                };
            }
        };
        match (&refused, error_text(&reply)) {
            (Some(text), _) => {
                error.get_or_insert_with(|| text.clone());
            }
            (None, Some(text)) => {
                error.get_or_insert(text);
            }
            (None, None) => *ok = true,
        }
    }
    c.db = match error {
        // On an error the target's database is no longer known.
        Some(_) => None,
        None => Some(job.db),
    };
    Ok(MigrateOutcome {
        restored,
        result: error.map_or(Ok(()), |text| Err(MigrateError::Target(text))),
    })
}

/// A fresh connection to the job's target. A refused connection fails
/// as a write would, and is retried (Redis connects without blocking and
/// finds the refusal when it writes); an unresolvable address or a
/// connect that times out fails at once.
fn connect(job: &Job) -> Result<PeerConn, Failure> {
    let at_once = Failure {
        error: MigrateError::Connect,
        retry: false,
    };
    let Ok(port) = job.port.parse::<u16>() else {
        return Err(at_once);
    };
    let resolved = (job.host.as_str(), port).to_socket_addrs();
    let Some(addr) = resolved.ok().and_then(|mut a| a.next()) else {
        return Err(at_once);
    };
    let stream = TcpStream::connect_timeout(&addr, job.timeout).map_err(|e| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => at_once,
        _ => failure(MigrateError::Write, &ForwardError::Io(e)),
    })?;
    PeerConn::over(stream).map_err(|e| failure(MigrateError::Write, &ForwardError::Io(e)))
}

/// `error` after `cause`: retried unless it was a timeout.
fn failure(error: MigrateError, cause: &ForwardError) -> Failure {
    let timed_out = match cause {
        ForwardError::Timeout => true,
        ForwardError::Io(e) => matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock),
        _ => false,
    };
    Failure {
        error,
        retry: !timed_out,
    }
}

/// An error reply's text without the '-' and the line end; None for any
/// other reply.
fn error_text(reply: &[u8]) -> Option<String> {
    let line = reply.strip_prefix(b"-")?;
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    Some(String::from_utf8_lossy(line).into_owned())
}
