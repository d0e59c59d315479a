//! The RPC `call`: a plugin (its reply is the answer) or a pipeline (its
//! JSON result, from the result cache or when the call settles). Both
//! wait like RESP's PLUGIN CALL and PIPELINE CALL, on the same wait keys,
//! but without holding up the connection.

use citadel_proto::pipeline::{CallOptions, SourceKind};
use citadel_proto::rpc::{Body, ReplyWriter};
use citadel_proto::Format;

use super::ops::Scratch;
use super::RpcError;
use crate::command::{start_pipeline, PipelineRequest, PipelineStarted};
use crate::plugin::{CallError, Outcome};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::{Caller, Completion, WaitKey};

/// How a call went on.
pub enum Started {
    /// Answered at once (a cached pipeline result).
    Now(Body),
    /// Running: its completion arrives for this key.
    Waiting(WaitKey),
}

/// Starts `call name payload options`.
pub fn start(
    state: &std::sync::Arc<ServerState>,
    thread: &mut ThreadCtx,
    writer: &mut ReplyWriter,
    scratch: &mut Scratch,
    (name, payload, options): (&str, &[u8], &str),
) -> Result<Started, RpcError> {
    let is_pipeline = state
        .plugins
        .hub()
        .is_some_and(|h| h.find_pipeline(name.as_bytes()).is_some());
    if is_pipeline {
        let req = pipeline_request(payload, options)?;
        let bytes = &mut scratch.bytes;
        let started = start_pipeline(state, thread, name.as_bytes(), req, |item| {
            bytes.clear();
            item.write_value_to(bytes);
        })?;
        return Ok(match started {
            PipelineStarted::Cached => Started::Now(writer.call_reply(&scratch.bytes)),
            PipelineStarted::Waiting(wait) => Started::Waiting(WaitKey::Pipeline(wait)),
        });
    }
    let plugin = thread
        .plugins
        .find(name.as_bytes())
        .ok_or_else(|| RpcError::NoSuchCall(name.to_string()))?;
    let fill = |buf: &mut [u8]| {
        buf[..payload.len()].copy_from_slice(payload);
        payload.len()
    };
    match thread.plugins.call_with(
        Caller::Client,
        plugin,
        Format::Raw,
        call_key(options),
        payload.len(),
        fill,
    ) {
        Ok(request) => Ok(Started::Waiting(WaitKey::Plugin(request))),
        Err(error) => {
            if let Some(reason) = error.shed_reason() {
                thread.count_downstream(reason, crate::overload::ClientPriority::Normal);
            }
            Err(RpcError::Call {
                name: name.to_string(),
                error,
            })
        }
    }
}

/// A plugin call's key from the RPC options text (`key=K`, among
/// `;`-separated options): its version is then chosen by the key, as
/// `PLUGIN CALL ... KEY k` chooses it, so one key's calls stay on one
/// version (a key holding `;` cannot be given this way).
fn call_key(options: &str) -> Option<&[u8]> {
    options
        .split(';')
        .find_map(|part| part.trim_start().strip_prefix("key="))
        .map(str::as_bytes)
}

/// A pipeline call's input and options from the RPC options text:
/// `;`-separated `key=value` as `CallOptions`'s canonical text (every key
/// optional), plus `input=data|key|file` (what the payload is; default
/// data) and the bare word `nocache`.
fn pipeline_request<'a>(payload: &'a [u8], text: &str) -> Result<PipelineRequest<'a>, RpcError> {
    let mut source = SourceKind::Data;
    let mut nocache = false;
    let mut rest = String::with_capacity(text.len());
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            None if part.eq_ignore_ascii_case("nocache") => nocache = true,
            Some(("input", v)) => {
                source = match v {
                    "data" => SourceKind::Data,
                    "key" => SourceKind::Key,
                    "file" => SourceKind::Path,
                    _ => return Err(invalid(format!("input={v} (data, key or file)"))),
                }
            }
            _ => {
                rest.push_str(part);
                rest.push(';');
            }
        }
    }
    let options = CallOptions::parse(&rest).map_err(|e| invalid(e.to_string()))?;
    Ok(PipelineRequest {
        source,
        input: payload,
        options,
        nocache,
    })
}

fn invalid(message: String) -> RpcError {
    RpcError::Command(crate::command::CmdError::Text(format!("ERR {message}")))
}

/// The answer of a call that waited.
pub fn finished(
    thread: &ThreadCtx,
    writer: &mut ReplyWriter,
    done: Completion,
) -> Result<Body, RpcError> {
    match done {
        Completion::Plugin {
            plugin, outcome, ..
        } => match outcome {
            Outcome::Reply { payload, .. } => Ok(writer.call_reply(&payload)),
            Outcome::Failed(error) => Err(RpcError::Call {
                name: thread.plugins.name(plugin).to_string(),
                error,
            }),
            Outcome::Pipeline(_) => Err(internal()),
        },
        Completion::Pipeline { result, .. } => match result.as_ref() {
            Ok(json) => Ok(writer.call_reply(json)),
            Err(text) => Err(RpcError::Pipeline(
                text.strip_prefix("ERR ").unwrap_or(text).to_string(),
            )),
        },
        Completion::Loads { .. }
        | Completion::PipelinePartial { .. }
        | Completion::Message { .. }
        | Completion::Unpaused { .. }
        | Completion::Invalidate { .. }
        | Completion::Monitor { .. }
        | Completion::Forward { .. }
        | Completion::Unblocked { .. }
        | Completion::Migrate { .. } => Err(internal()),
    }
}

fn internal() -> RpcError {
    RpcError::Call {
        name: String::new(),
        error: CallError::Plugin("internal error: a completion of another kind".into()),
    }
}
