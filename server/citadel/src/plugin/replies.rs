//! Reading one reply ring: plugin replies complete their call; pipeline
//! records are gathered per call (one result per frame index: a stage that
//! restarted sends its frames again) until the `End` or an error.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use citadel_proto::envelope::STATUS_DEADLINE;
use citadel_proto::pipeline::{self as wire, MessageType};
use citadel_proto::ring::producer::WITHDRAWN;
use citadel_proto::{Format, HostPair, Kind};
use citadel_supervisor::PluginShared;

use super::calls::{Pending, PluginId, PluginReply, RequestId, ThreadPipeline, Waiting};
use super::outcome::{CallError, Outcome, PipelineOutput};
use super::route::{self, Ending};

/// Where read records go.
pub struct Sinks<'a, C> {
    pub pending: &'a mut HashMap<u64, Pending<C>>,
    pub ready: &'a mut VecDeque<PluginReply<C>>,
    pub invalidations: &'a mut VecDeque<(PluginId, Vec<u8>)>,
    /// A pipeline call's per-frame results as they arrive (first per index).
    pub partials: &'a mut VecDeque<Partial<C>>,
}

/// One frame's result of a pipeline call still running.
pub struct Partial<C> {
    pub caller: C,
    pub index: u32,
    pub json: std::sync::Arc<[u8]>,
}

/// Reads every record waiting in `lane`'s reply ring; true if there was any.
pub fn read_replies<C: Copy>(
    plugin: PluginId,
    lane: &mut HostPair,
    shared: &PluginShared,
    pipelines: &[ThreadPipeline],
    to: &mut Sinks<'_, C>,
    now: Instant,
) -> bool {
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
        if env.kind == Kind::Abandoned && env.attempt >= WITHDRAWN {
            // A detached thread met a record taken back from it and sent
            // again (`stranded.rs`): the call's answer comes from there.
            shared.stats.dropped.fetch_add(1, Relaxed);
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
                    Ok(Gathered::Frame(index)) => {
                        if let Some(json) = results.get(&index) {
                            to.partials.push_back(Partial {
                                caller: waiting.caller,
                                index,
                                json: json.as_slice().into(),
                            });
                        }
                        continue;
                    }
                    Ok(Gathered::Again) => continue,
                    Ok(Gathered::End(end)) => {
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
        let elapsed = now.saturating_duration_since(waiting.sent);
        stats.in_flight.fetch_sub(1, Relaxed);
        stats.processed.fetch_add(1, Relaxed);
        stats.latency.record(elapsed);
        if let Some(instance) = waiting.instance {
            let how = match &outcome {
                Outcome::Failed(CallError::Timeout(_)) => Ending::Timeout,
                Outcome::Failed(_) => Ending::Error,
                _ => Ending::Ok,
            };
            route::finished(shared, instance, elapsed, how);
        }
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
    any
}

/// What one pipeline record added.
enum Gathered {
    /// The first result of this frame index.
    Frame(u32),
    /// A frame already gathered (re-sent after a stage restarted).
    Again,
    /// The `End`: (frames, summary).
    End((u32, Vec<u8>)),
}

/// Takes one pipeline record: a frame's result is kept (the first one per
/// index); an `End` ends the call.
fn gather(
    payload: &[u8],
    results: &mut BTreeMap<u32, Vec<u8>>,
) -> Result<Gathered, wire::MessageError> {
    match wire::message_type(payload)? {
        MessageType::Result => {
            let r = wire::ResultMessage::decode(payload)?;
            if results.contains_key(&r.index) {
                return Ok(Gathered::Again);
            }
            results.insert(r.index, r.json.to_vec());
            Ok(Gathered::Frame(r.index))
        }
        MessageType::End => {
            let end = wire::End::decode(payload)?;
            Ok(Gathered::End((end.frames, end.json.to_vec())))
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
