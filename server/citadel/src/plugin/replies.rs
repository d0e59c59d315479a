//! Reading one reply ring: plugin replies complete their call; pipeline
//! records are gathered per call (one result per frame index: a stage that
//! restarted sends its frames again) until the `End` or an error.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use citadel_proto::envelope::STATUS_DEADLINE;
use citadel_proto::pipeline::{self as wire, MessageType};
use citadel_proto::{Format, HostPair, Kind};
use citadel_supervisor::PluginShared;

use super::calls::{Pending, PluginId, PluginReply, RequestId, ThreadPipeline, Waiting};
use super::outcome::{CallError, Outcome, PipelineOutput};

/// Where read records go.
pub struct Sinks<'a, C> {
    pub pending: &'a mut HashMap<u64, Pending<C>>,
    pub ready: &'a mut VecDeque<PluginReply<C>>,
    pub invalidations: &'a mut VecDeque<(PluginId, Vec<u8>)>,
}

/// Reads every record waiting in `lane`'s reply ring.
pub fn read_replies<C>(
    plugin: PluginId,
    lane: &mut HostPair,
    shared: &PluginShared,
    pipelines: &[ThreadPipeline],
    to: &mut Sinks<'_, C>,
    now: Instant,
) {
    let mut any = false;
    loop {
        let record = match lane.replies.read() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(plugin = %shared.config.name, "reply ring: {e}");
                break;
            }
        };
        any = true;
        let env = record.envelope();
        if env.kind == Kind::Invalidation {
            to.invalidations.push_back((plugin, record.copy_payload()));
            continue;
        }
        // One lookup: a pipeline's per-frame result stays pending, anything
        // else completes the call.
        let Entry::Occupied(mut entry) = to.pending.entry(env.id) else {
            // A duplicate (re-delivered after a crash) or a late reply.
            shared.stats.dropped.fetch_add(1, Relaxed);
            continue;
        };
        let waiting = entry.get_mut();
        // Which statistics the call counts in: its pipeline's or the plugin's.
        let (stats, timeout) = match &waiting.waiting {
            Waiting::Pipeline { pipeline, .. } => {
                let p = &pipelines[*pipeline].shared;
                (&p.stats, p.config.timeout)
            }
            Waiting::Plugin => (&shared.stats, shared.config.timeout),
        };
        let outcome = match (env.kind, &mut waiting.waiting) {
            (Kind::Reply, Waiting::Plugin) => Outcome::Reply {
                format: env.format,
                payload: record.copy_payload(),
            },
            (Kind::Reply, Waiting::Pipeline { results, pipeline }) => {
                match gather(record.payload(), results) {
                    Ok(None) => continue,
                    Ok(Some(end)) => {
                        let frames = results.len() as u64;
                        pipelines[*pipeline]
                            .shared
                            .frames
                            .fetch_add(frames, Relaxed);
                        Outcome::Pipeline(PipelineOutput {
                            frames: end.0,
                            summary: end.1,
                            results: std::mem::take(results),
                        })
                    }
                    Err(e) => {
                        stats.errors.fetch_add(1, Relaxed);
                        Outcome::Failed(CallError::Plugin(format!(
                            "stage {} sent a bad record: {e}",
                            shared.config.name
                        )))
                    }
                }
            }
            (Kind::Abandoned, _) => {
                stats.errors.fetch_add(1, Relaxed);
                stats.poisoned.fetch_add(1, Relaxed);
                Outcome::Failed(CallError::Poison(env.attempt.saturating_sub(1).max(1)))
            }
            _ if env.status == STATUS_DEADLINE => {
                stats.timeouts.fetch_add(1, Relaxed);
                Outcome::Failed(CallError::Timeout(timeout.as_millis() as u64))
            }
            _ => {
                stats.errors.fetch_add(1, Relaxed);
                Outcome::Failed(error_reply(env.format, &record.copy_payload()))
            }
        };
        let waiting = entry.remove();
        stats.in_flight.fetch_sub(1, Relaxed);
        stats.processed.fetch_add(1, Relaxed);
        stats
            .latency
            .record(now.saturating_duration_since(waiting.sent));
        to.ready.push_back(PluginReply {
            caller: waiting.caller,
            request: RequestId(env.id),
            plugin,
            outcome,
        });
    }
    if any {
        lane.replies.commit_read();
    }
}

/// Takes one pipeline record: a frame's result is kept (the first one per
/// index); an `End` returns `(frames, summary)`.
fn gather(
    payload: &[u8],
    results: &mut BTreeMap<u32, Vec<u8>>,
) -> Result<Option<(u32, Vec<u8>)>, wire::MessageError> {
    match wire::message_type(payload)? {
        MessageType::Result => {
            let r = wire::ResultMessage::decode(payload)?;
            results.entry(r.index).or_insert_with(|| r.json.to_vec());
            Ok(None)
        }
        MessageType::End => {
            let end = wire::End::decode(payload)?;
            Ok(Some((end.frames, end.json.to_vec())))
        }
        other => Err(wire::MessageError::BadFrame(format!(
            "a {other:?} message where results were expected"
        ))),
    }
}

/// An error reply: a FlatBuffers `ErrorReply` keeps its code, anything
/// else is shown as text.
fn error_reply(format: Format, payload: &[u8]) -> CallError {
    if format == Format::FlatBuffer {
        if let Ok(e) = citadel_proto::load::decode_error_reply(payload) {
            return CallError::Coded {
                code: e.code().0,
                message: e.to_string(),
            };
        }
    }
    CallError::Plugin(String::from_utf8_lossy(payload).into_owned())
}
