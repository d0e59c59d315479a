//! Whether the caller of a running C function discards its results:
//! `redis.call("SET", k, v)` as a statement. Its reply (`{ok="OK"}`, a
//! table and its node: two allocations, later two frees in the GC's sweep)
//! is then never made: ~1.2k of an EVALSHA's ~18k instructions.
//!
//! Lua 5.1 keeps the count a call's caller expects (`CallInfo::nresults`,
//! 0 for a statement) where no API function reads it, so it is read from
//! the vendored Lua 5.1.5's `lua_State` and `CallInfo` through the
//! `#[repr(C)]` mirrors below. The mirrors are trusted only after a probe,
//! once per state, finds them consistent with what the API says (the
//! stack's top and base against `lua_gettop`, the current call inside the
//! call array) and reading 0, 1 and 2 for a statement, a one-value and a
//! two-value assignment; otherwise every reply is pushed as before.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};

use mlua::{ffi, Lua};

/// The head of Lua 5.1.5's `struct lua_State` (lstate.h), up to `base_ci`.
#[repr(C)]
struct StateHead {
    next: *mut c_void,
    tt: u8,
    marked: u8,
    status: u8,
    top: *const TValue,
    base: *const TValue,
    l_g: *mut c_void,
    ci: *const CallInfo,
    savedpc: *const u32,
    stack_last: *const TValue,
    stack: *const TValue,
    end_ci: *const CallInfo,
    base_ci: *const CallInfo,
}

/// Lua 5.1.5's `TValue` (lobject.h): a value and its type tag.
#[repr(C)]
struct TValue {
    value: u64,
    tt: c_int,
}

/// Lua 5.1.5's `CallInfo` (lstate.h).
#[repr(C)]
struct CallInfo {
    base: *const TValue,
    func: *const TValue,
    top: *const TValue,
    savedpc: *const u32,
    nresults: c_int,
    tailcalls: c_int,
}

/// Whether the C function running on `l` returns into a call that keeps
/// none of its results.
///
/// # Safety
/// `l` is the state of a running C function, and [`probe`] returned true
/// for this state's layout (the vendored Lua: one build for the process).
pub unsafe fn discarded(l: *mut ffi::lua_State) -> bool {
    // SAFETY: per the contract, `l` points to a live `lua_State` whose head
    // `StateHead` mirrors, and its `ci` to the running call's `CallInfo`.
    unsafe { (*(*(l as *const StateHead)).ci).nresults == 0 }
}

thread_local! {
    /// What the probe function read, call by call.
    static SEEN: RefCell<Vec<Option<c_int>>> = const { RefCell::new(Vec::new()) };
}

/// Checks the mirrors against `lua`'s own view (see the module comment):
/// true when [`discarded`] may be used on this state.
pub fn probe(lua: &Lua) -> bool {
    SEEN.with(|s| s.borrow_mut().clear());
    // SAFETY: `probe_fn` is a C function that reads the state only after
    // checking that the mirror's pointers agree with the API (see there).
    let Ok(f) = (unsafe { lua.create_c_function(probe_fn) }) else {
        return false;
    };
    let ran = lua
        .load("local p = ... p(1, 2) local a = p(1, 2) local b, c = p(1, 2)")
        .set_name("=probe")
        .call::<()>(f);
    let seen = SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
    ran.is_ok() && seen == [Some(0), Some(1), Some(2)]
}

/// Notes the running call's `nresults` when the mirrored head agrees with
/// the API: `top - base` is `lua_gettop`'s count of values, and `ci` lies
/// inside the call array `base_ci .. end_ci`, on a `CallInfo` boundary,
/// with the same `base`. None otherwise.
unsafe extern "C-unwind" fn probe_fn(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `l` is a live state; only fields inside its head (the struct
    // is larger than `StateHead` in every Lua 5.1 build) are read before
    // the checks, and `ci` is read through only once it is shown to point
    // into the state's own call array.
    let seen = unsafe {
        let head = &*(l as *const StateHead);
        let values = (head.top as usize).wrapping_sub(head.base as usize);
        let args = usize::try_from(ffi::lua_gettop(l)).unwrap_or(usize::MAX);
        let calls = (head.base_ci as usize)..(head.end_ci as usize);
        let at = (head.ci as usize).wrapping_sub(head.base_ci as usize);
        let consistent = values == args * std::mem::size_of::<TValue>()
            && args == 2
            && calls.contains(&(head.ci as usize))
            && at.is_multiple_of(std::mem::size_of::<CallInfo>());
        (consistent && (*head.ci).base == head.base).then(|| (*head.ci).nresults)
    };
    SEEN.with(|s| s.borrow_mut().push(seen));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirrors_match_the_vendored_lua() {
        let lua = Lua::new();
        assert!(probe(&lua));
    }
}
