//! Long-running scripts: which script each server thread runs right now
//! (process-wide, so SCRIPT KILL / FUNCTION KILL from a connection on any
//! core reaches it), and the instruction-count hook that stops a script
//! that was killed or interrupted by shutdown.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{HookTriggers, Lua, VmState};

use super::CallArgs;

/// What a script's caller gets when its script was killed (Redis's text,
/// for FUNCTION KILL too).
pub const KILLED: &str = "Script killed by user with SCRIPT KILL...";
/// A library's code ran past `LOAD_TIMEOUT_MS` (Redis's text).
pub const LOAD_TIMEOUT: &str = "FUNCTION LOAD timeout";
/// How long a library's top-level code may run (Redis's LOAD_TIMEOUT_MS).
pub const LOAD_TIMEOUT_MS: u64 = 500;
/// What it gets when the server shuts down under it.
pub const SHUTDOWN: &str = "Script interrupted: the server is shutting down";

const IDLE: u8 = 0;
const EVAL: u8 = 1;
const FUNCTION: u8 = 2;

/// An EVAL script's command line while it runs on this thread: its KEYS
/// are copied to the slot only if the hook finds it still running
/// (`Slot::count_running`), so a short script copies nothing and takes no
/// lock. Only a script the hook counts can hold other clients off
/// (`Busy::holds_any`).
struct EvalLine<'a> {
    command: CallArgs<'a>,
    keys: usize,
}

thread_local! {
    /// This thread's running EVAL (`Busy::run` sets it to its own local
    /// and clears it before returning, unwinding included).
    static EVAL_LINE: Cell<*const EvalLine<'static>> = const { Cell::new(std::ptr::null()) };
}

/// Clears `EVAL_LINE` when dropped.
struct ClearLine;

impl Drop for ClearLine {
    fn drop(&mut self) {
        EVAL_LINE.set(std::ptr::null());
    }
}

/// One thread's running script, if any.
#[derive(Default)]
pub struct Slot {
    kind: AtomicU8,
    /// When the script started (`command_clock::coarse_monotonic_ms`).
    started_ms: AtomicU64,
    wrote: AtomicBool,
    kill: AtomicBool,
    /// (script name: sha or function name, the command line) for FUNCTION STATS.
    about: Mutex<(String, Vec<Vec<u8>>)>,
    /// How many of the command's arguments after numkeys are its KEYS.
    keys: AtomicU64,
    /// This run is counted in `running` (by the hook, once it ran a while).
    counted: AtomicBool,
    /// `Busy::running`, shared by every slot.
    running: Arc<AtomicU64>,
    /// The thread's Lua state's memory after its last run (INFO memory).
    vm_bytes: AtomicU64,
    /// While a library's code loads: when it times out
    /// (`coarse_monotonic_ms`); 0 otherwise.
    load_deadline_ms: AtomicU64,
}

/// Every thread's slot.
pub struct Busy {
    slots: Vec<Arc<Slot>>,
    /// Scripts running now for more than one hook period (every command
    /// of other clients checks this). A short script never touches it, so
    /// scripts on different cores share no written cache line.
    running: Arc<AtomicU64>,
}

/// Why SCRIPT KILL / FUNCTION KILL did not kill.
#[derive(Debug, PartialEq, Eq)]
pub enum KillError {
    NotBusy,
    Unkillable,
    /// SCRIPT KILL while a function runs.
    IsFunction,
    /// FUNCTION KILL while an EVAL script runs.
    IsEval,
}

impl KillError {
    pub fn text(&self) -> &'static str {
        match self {
            KillError::NotBusy => "NOTBUSY No scripts in execution right now.",
            KillError::Unkillable => "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            KillError::IsFunction => "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
            KillError::IsEval => "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        }
    }
}

/// A running script as FUNCTION STATS reports it.
pub struct RunningInfo {
    pub name: String,
    pub command: Vec<Vec<u8>>,
    pub duration_ms: u64,
}

impl Busy {
    pub fn new(threads: usize) -> Busy {
        let running = Arc::new(AtomicU64::new(0));
        Busy {
            slots: (0..threads.max(1))
                .map(|_| {
                    Arc::new(Slot {
                        running: running.clone(),
                        ..Slot::default()
                    })
                })
                .collect(),
            running,
        }
    }

    fn now_ms(&self) -> u64 {
        crate::command_clock::coarse_monotonic_ms()
    }

    /// Every thread's Lua state's memory, as of each one's last run.
    pub fn vm_bytes(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.vm_bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Thread `index`'s slot (threads past the table share the last one's
    /// bookkeeping only in tests).
    pub fn slot(&self, index: usize) -> Arc<Slot> {
        self.slots[index.min(self.slots.len() - 1)].clone()
    }

    /// Runs `f` as `slot`'s script (between `begin` and `end`); returns
    /// its result and how long it ran (ms). An EVAL's line stays on this
    /// thread unless the hook finds it running (see `EvalLine`).
    #[inline]
    pub fn run<R>(
        &self,
        slot: &Slot,
        function: bool,
        name: &str,
        command: CallArgs<'_>,
        keys: usize,
        f: impl FnOnce() -> R,
    ) -> (R, u64) {
        if function {
            self.begin(slot, true, name, command, keys);
            let r = f();
            return (r, self.end(slot));
        }
        self.start(slot, EVAL);
        let line = EvalLine { command, keys };
        EVAL_LINE.set((&line as *const EvalLine<'_>).cast());
        let clear = ClearLine;
        let r = f();
        drop(clear);
        (r, self.end(slot))
    }

    /// A script starts: `command` is its EVAL/EVALSHA/FCALL line, `keys`
    /// how many KEYS it declared (arguments 3 .. 3 + keys).
    pub fn begin(
        &self,
        slot: &Slot,
        function: bool,
        name: &str,
        command: CallArgs<'_>,
        keys: usize,
    ) {
        slot.describe(function, name, command, keys);
        self.start(slot, if function { FUNCTION } else { EVAL });
    }

    fn start(&self, slot: &Slot, kind: u8) {
        slot.wrote.store(false, Ordering::Relaxed);
        slot.kill.store(false, Ordering::Relaxed);
        slot.started_ms.store(self.now_ms(), Ordering::Relaxed);
        // ORDERING: Release publishes the fields above to `kill`'s Acquire.
        slot.kind.store(kind, Ordering::Release);
    }

    /// The script ended; returns how long it ran (ms).
    pub fn end(&self, slot: &Slot) -> u64 {
        slot.kind.store(IDLE, Ordering::Release);
        slot.kill.store(false, Ordering::Relaxed);
        if slot.counted.swap(false, Ordering::Relaxed) {
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
        self.now_ms()
            .saturating_sub(slot.started_ms.load(Ordering::Relaxed))
    }

    /// Whether a script has run longer than one hook period (10,000 Lua
    /// instructions) and runs now: one load, the common answer is no.
    pub fn any_running(&self) -> bool {
        self.running.load(Ordering::Relaxed) > 0
    }

    /// Whether a script on another thread than `own` has run at least
    /// `threshold_ms` and declared one of `keys`: the command touching them
    /// gets -BUSY, as Redis answers while a script runs past its limit.
    pub fn holds_any(&self, own: usize, keys: &[&[u8]], threshold_ms: u64) -> bool {
        let now = self.now_ms();
        self.slots.iter().enumerate().any(|(i, slot)| {
            // ORDERING: Acquire, paired with `begin`'s Release.
            if i == own || slot.kind.load(Ordering::Acquire) == IDLE {
                return false;
            }
            // ORDERING: Acquire, paired with `count_running`'s Release: the
            // KEYS it copied are visible.
            if !slot.counted.load(Ordering::Acquire) {
                return false;
            }
            if now.saturating_sub(slot.started_ms.load(Ordering::Relaxed)) < threshold_ms {
                return false;
            }
            let n = slot.keys.load(Ordering::Relaxed) as usize;
            let about = slot.about.lock().unwrap_or_else(|e| e.into_inner());
            let declared = about.1.get(3..3 + n).unwrap_or(&[]);
            keys.iter()
                .any(|k| declared.iter().any(|d| d.as_slice() == *k))
        })
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL: stops every read-only script
    /// that has run at least `threshold_ms`.
    pub fn kill(&self, eval: bool, threshold_ms: u64) -> Result<(), KillError> {
        let now = self.now_ms();
        let mut first_err = None;
        let mut killed = false;
        for slot in &self.slots {
            // ORDERING: Acquire, paired with `begin`'s Release.
            let kind = slot.kind.load(Ordering::Acquire);
            if kind == IDLE {
                continue;
            }
            let started = slot.started_ms.load(Ordering::Relaxed);
            if now.saturating_sub(started) < threshold_ms {
                continue;
            }
            let err = if slot.wrote.load(Ordering::Relaxed) {
                Some(KillError::Unkillable)
            } else if eval && kind == FUNCTION {
                Some(KillError::IsFunction)
            } else if !eval && kind == EVAL {
                Some(KillError::IsEval)
            } else {
                None
            };
            match err {
                Some(e) => {
                    first_err.get_or_insert(e);
                }
                None => {
                    slot.kill.store(true, Ordering::Relaxed);
                    killed = true;
                }
            }
        }
        if killed {
            return Ok(());
        }
        Err(first_err.unwrap_or(KillError::NotBusy))
    }

    /// The functions running now (FUNCTION STATS).
    pub fn running_functions(&self) -> Vec<RunningInfo> {
        let now = self.now_ms();
        self.slots
            .iter()
            .filter(|s| s.kind.load(Ordering::Acquire) == FUNCTION)
            .map(|s| {
                let about = s.about.lock().unwrap_or_else(|e| e.into_inner());
                RunningInfo {
                    name: about.0.clone(),
                    command: about.1.clone(),
                    duration_ms: now.saturating_sub(s.started_ms.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }
}

impl Slot {
    /// What FUNCTION STATS and `holds_any` read of the script starting.
    fn describe(&self, function: bool, name: &str, command: CallArgs<'_>, keys: usize) {
        {
            // Refilled in place: the buffers of the last run are reused.
            // Only a function's name and line are ever shown (FUNCTION
            // STATS); of an EVAL's line only its KEYS are read (`holds_any`),
            // so nothing else of it is copied.
            let mut about = self.about.lock().unwrap_or_else(|e| e.into_inner());
            about.0.clear();
            let kept = if function {
                about.0.push_str(name);
                command.len()
            } else {
                command.len().min(3 + keys)
            };
            about.1.resize_with(kept, Vec::new);
            for (i, (kept, arg)) in about.1.iter_mut().zip(command.iter()).enumerate() {
                kept.clear();
                if function || i >= 3 {
                    kept.extend_from_slice(arg);
                }
            }
        }
        self.keys.store(keys as u64, Ordering::Relaxed);
    }

    /// The script running on this slot's thread: how long it has run at
    /// `now_ms` and whether it is a function (None: none runs).
    pub fn running(&self, now_ms: u64) -> Option<(u64, bool)> {
        let kind = self.kind.load(Ordering::Relaxed);
        let started = self.started_ms.load(Ordering::Relaxed);
        (kind != IDLE).then(|| (now_ms.saturating_sub(started), kind == FUNCTION))
    }

    /// A script runs on this slot's thread now.
    pub fn is_running(&self) -> bool {
        self.kind.load(Ordering::Relaxed) != IDLE
    }

    /// Bounds the library load starting now (`Some(ms)`), or ends it.
    pub fn set_load_timeout(&self, ms: Option<u64>) {
        let deadline = ms.map_or(0, |ms| crate::command_clock::coarse_monotonic_ms() + ms);
        self.load_deadline_ms.store(deadline, Ordering::Relaxed);
    }

    fn load_timed_out(&self) -> bool {
        let deadline = self.load_deadline_ms.load(Ordering::Relaxed);
        deadline != 0 && crate::command_clock::coarse_monotonic_ms() > deadline
    }

    /// Records the thread's Lua memory (after a run or a load).
    pub fn set_vm_bytes(&self, bytes: usize) {
        self.vm_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    /// The running script executed a write command (SCRIPT KILL refuses it).
    pub fn mark_written(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    pub fn has_written(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }

    /// The hook saw this run still going: other cores' commands start
    /// checking its keys (`Busy::holds_any`) until it ends.
    fn count_running(&self) {
        // ORDERING: only the running thread writes `counted` (hook,
        // `Busy::end`); its Release publishes the KEYS copied here to
        // `holds_any`. `running` is a hint. A library loading outside a
        // run (kind IDLE) is not counted.
        if self.kind.load(Ordering::Relaxed) == IDLE || self.counted.load(Ordering::Relaxed) {
            return;
        }
        let line = EVAL_LINE.get();
        if !line.is_null() {
            // SAFETY: a non-null `EVAL_LINE` points to `Busy::run`'s local
            // on this thread's stack, which is running the script (the
            // hook fires inside its `f`); it is cleared before that local
            // goes. Only read here, copied before returning.
            let line = unsafe { &*line };
            self.describe(false, "", line.command, line.keys);
        }
        self.counted.store(true, Ordering::Release);
        self.running.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often (in Lua VM instructions) the hook looks at the flags.
const CHECK_EVERY: u32 = 10_000;

/// The instruction-count hook of one thread's Lua state: it raises an
/// error in a killed script, when `interrupted()` says the server shuts
/// down, or when a library's code runs past its load timeout.
///
/// Once it raised, it fires at every instruction until the run or load
/// ends (`settle`), as Redis's hook turns to every line: a script that
/// catches the error with `pcall` meets it again at its first instruction
/// outside the protected call, so a loop around `pcall` stops too. (The
/// message handler of a run is a Rust function, which the hook does not
/// see, so the error's text survives.)
#[derive(Clone)]
pub struct Hook {
    slot: Arc<Slot>,
    interrupted: Arc<dyn Fn() -> bool + Send + Sync>,
    /// It raised in this run or load, and fires at every instruction.
    raised: Rc<Cell<bool>>,
}

impl Hook {
    pub fn install(
        lua: &Lua,
        slot: Arc<Slot>,
        interrupted: Arc<dyn Fn() -> bool + Send + Sync>,
    ) -> mlua::Result<Hook> {
        let hook = Hook {
            slot,
            interrupted,
            raised: Rc::default(),
        };
        hook.set(lua, CHECK_EVERY)?;
        Ok(hook)
    }

    /// A global hook: the coroutines a script creates inherit it, so a
    /// loop inside one is seen and stopped too (a thread hook is looked up
    /// per coroutine and dropped in those). It is set on the running
    /// thread, the one to stop; mlua keeps the running callback alive while
    /// it is replaced.
    fn set(&self, lua: &Lua, every: u32) -> mlua::Result<()> {
        let hook = self.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(every),
            move |lua, _| hook.check(lua),
        )
    }

    fn check(&self, lua: &Lua) -> mlua::Result<VmState> {
        self.slot.count_running();
        let stop = if self.slot.kill.load(Ordering::Relaxed) {
            KILLED
        } else if (self.interrupted)() {
            SHUTDOWN
        } else if self.slot.load_timed_out() {
            LOAD_TIMEOUT
        } else {
            return Ok(VmState::Continue);
        };
        // On every thread it raises in: a coroutine created before, or by
        // a loop around pcall, has its own count.
        self.raised.set(true);
        self.set(lua, 1)?;
        Err(mlua::Error::RuntimeError(stop.into()))
    }

    /// After a run or a library load: back to the periodic check if the
    /// hook raised in it.
    pub fn settle(&self, lua: &Lua) -> mlua::Result<()> {
        if self.raised.replace(false) {
            self.set(lua, CHECK_EVERY)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_rules() {
        let busy = Busy::new(2);
        assert_eq!(busy.kill(true, 0), Err(KillError::NotBusy));
        let s = busy.slot(0);
        let none = CallArgs {
            buf: &[],
            spans: &[],
        };
        busy.begin(&s, false, "sha", none, 0);
        assert_eq!(busy.kill(false, 0), Err(KillError::IsEval));
        assert_eq!(busy.kill(true, 60_000), Err(KillError::NotBusy));
        s.mark_written();
        assert_eq!(busy.kill(true, 0), Err(KillError::Unkillable));
        busy.begin(&s, true, "f", none, 0);
        assert_eq!(busy.kill(true, 0), Err(KillError::IsFunction));
        assert_eq!(busy.kill(false, 0), Ok(()));
        assert!(s.kill.load(Ordering::Relaxed));
        assert_eq!(busy.running_functions().len(), 1);
        busy.end(&s);
        let line: [&[u8]; 6] = [b"FCALL", b"f", b"2", b"k1", b"k2", b"arg"];
        let (buf, spans) = super::super::pack_line(&line);
        busy.begin(
            &s,
            true,
            "f",
            CallArgs {
                buf: &buf,
                spans: &spans,
            },
            2,
        );
        assert!(!busy.holds_any(1, &[b"k2"], 0), "not counted yet");
        s.count_running();
        let running = busy.running_functions();
        assert_eq!(running[0].name, "f");
        assert_eq!(running[0].command, line.map(|a| a.to_vec()).to_vec());
        assert!(busy.holds_any(1, &[b"k2"], 0));
        assert!(!busy.holds_any(1, &[b"arg"], 0), "only the declared keys");
        assert!(!busy.holds_any(0, &[b"k1"], 0), "not its own thread's");
        busy.end(&s);
        let line: [&[u8]; 5] = [b"EVALSHA", b"sha", b"1", b"k1", b"arg"];
        let (buf, spans) = super::super::pack_line(&line);
        busy.begin(
            &s,
            false,
            "sha",
            CallArgs {
                buf: &buf,
                spans: &spans,
            },
            1,
        );
        s.count_running();
        assert!(busy.holds_any(1, &[b"k1"], 0));
        assert!(!busy.holds_any(1, &[b"arg"], 0), "only the declared keys");
        assert!(busy.running_functions().is_empty());
        busy.end(&s);
        assert_eq!(busy.kill(false, 0), Err(KillError::NotBusy));
    }

    #[test]
    fn an_eval_line_is_copied_only_once_the_hook_counts_it() {
        let busy = Busy::new(2);
        let s = busy.slot(0);
        let line: [&[u8]; 5] = [b"EVALSHA", b"sha", b"1", b"k9", b"arg"];
        let (buf, spans) = super::super::pack_line(&line);
        let command = CallArgs {
            buf: &buf,
            spans: &spans,
        };
        let ((), _) = busy.run(&s, false, "sha", command, 1, || {
            assert!(!busy.any_running());
            assert!(!busy.holds_any(1, &[b"k9"], 0));
            assert!(s.about.lock().unwrap().1.is_empty(), "nothing copied");
            s.count_running();
            assert!(busy.any_running());
            assert!(busy.holds_any(1, &[b"k9"], 0));
            assert!(!busy.holds_any(1, &[b"arg"], 0));
        });
        assert!(!busy.any_running());
        assert!(EVAL_LINE.get().is_null());
        // A short run after it: nothing held.
        let ((), _) = busy.run(&s, false, "sha", command, 1, || {
            assert!(!busy.holds_any(1, &[b"k9"], 0));
        });
    }
}
