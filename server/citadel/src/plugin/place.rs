//! Writing one request into a plugin's lanes: the first lane, preferred
//! ones first, whose instance takes calls (`InstanceStatus::try_enter`)
//! and whose ring has room. Shared by a new call (`client.rs`) and a call
//! taken back from a detached instance and sent again (`stranded.rs`).

use citadel_proto::{Envelope, HostPair, ReserveError};
use citadel_supervisor::PluginShared;

use super::outcome::CallError;

/// Writes the request (`fill` writes at most `max_len` payload bytes in
/// ring memory and returns the length) into the first of `preferred`
/// that takes it; only if none of them takes calls at all, into any lane.
/// Returns the lane and the record's ring position; the lane's instance
/// counts the call in flight. A full ring is tried next; all full (or none
/// taking calls) is `CallError::Full`.
pub(super) fn place(
    shared: &PluginShared,
    lanes: &mut [HostPair],
    preferred: impl ExactSizeIterator<Item = usize>,
    env: &Envelope,
    max_len: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> Result<(usize, u64), CallError> {
    let mut fill = Some(fill);
    let n = preferred.len();
    let mut any_active = false;
    // The preferred lanes; then, only if none of them takes calls (a
    // version being drained that was chosen by a weight read just before
    // it went to 0), every lane.
    for (k, lane) in preferred.chain(0..lanes.len()).enumerate() {
        if k == n && any_active {
            break;
        }
        // An instance that takes no calls (spare, warming up, draining,
        // detached) is passed over; see `InstanceStatus::try_enter`.
        let instance = &shared.instances[lane];
        if !instance.try_enter() {
            continue;
        }
        any_active = true;
        match lanes[lane].requests.reserve(max_len) {
            Ok(mut grant) => {
                let fill = fill.take().expect("filled once");
                let len = fill(grant.payload_mut());
                grant.truncate(len);
                let at = grant.position();
                return match grant.commit(env) {
                    Ok(()) => Ok((lane, at)),
                    Err(e) => {
                        instance.leave();
                        Err(CallError::Notify(e.to_string()))
                    }
                };
            }
            Err(ReserveError::Full { .. }) => instance.leave(),
            Err(ReserveError::TooLarge { len, max }) => {
                instance.leave();
                return Err(CallError::TooLarge { len, max });
            }
        }
    }
    Err(CallError::Full)
}
