//! PIPELINE CALL | LIST | INFO | HELP, and the INFO `pipelines` section.
//!
//! `PIPELINE CALL <name> KEY <key> | DATA <bytes> | FILE <path>
//!  [EVERY <n> | FPS <f> | KEYFRAMES] [WIDTH <w>] [HEIGHT <h>]
//!  [FORMAT rgb24|bgr24|gray] [MAX-FRAMES <n>] [NOCACHE]`
//! (options may also precede the input: `redis-cli -x` appends stdin).
//!
//! The reply is the pipeline's JSON document (see `crate::pipeline`). A
//! cached result is answered at once; otherwise the connection is parked
//! (its core keeps serving) until the call, or the identical call it
//! joined, finishes.

use citadel_proto::pipeline::{Call, CallOptions, PixelFormat, Selection, SourceKind};
use xxhash_rust::xxh3::xxh3_64;

use super::args::Args;
use super::context::{Ctx, Pending};
use super::error::{CmdError, CmdResult};
use super::pipeline_info;
use super::table::{keyless, CommandDef};
use super::value::reply_value;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use citadel_cache::ItemRef;

use crate::pipeline::{result_key, PipelineResult, PipelineWaitId, ResultKey};
use crate::plugin::{CallError, Outcome};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::Caller;

const READ: &[&str] = &["noscript", "loading", "stale"];

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("pipeline|call", -5, &["noscript", "no_multi"], "server", "0.1.0", "Runs a pipeline on a key's value, on bytes or on a file; returns its JSON result (cached).", call).finding_keys(call_key),
    keyless("pipeline|list", 2, READ, "server", "0.1.0", "Lists the configured pipelines with their statistics.", pipeline_info::list),
    keyless("pipeline|info", 3, READ, "server", "0.1.0", "Returns a pipeline's statistics per stage and a suggested core split.", pipeline_info::info),
    keyless("pipeline|help", 2, READ, "server", "0.1.0", "Returns helpful text about the different subcommands.", pipeline_info::help),
];

/// PIPELINE CALL's key: the `KEY k` source, if it names one (so cluster
/// mode routes the call to the node caching the video).
fn call_key<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if let Ok(Request {
        source: SourceKind::Key,
        input,
        ..
    }) = parse(&args)
    {
        f(input);
    }
}

/// A pipeline call's input and options.
pub struct Request<'a> {
    pub source: SourceKind,
    pub input: &'a [u8],
    pub options: CallOptions,
    /// Run it even if a result is cached (and replace that).
    pub nocache: bool,
}

fn parse<'a>(args: &Args<'a>) -> Result<Request<'a>, CmdError> {
    let mut source = None;
    let mut r = Request {
        source: SourceKind::Data,
        input: &[],
        options: CallOptions::default(),
        nocache: false,
    };
    let count = |i: usize| -> Result<u32, CmdError> {
        let n = args.int(i)?;
        u32::try_from(n).map_err(|_| CmdError::NotInteger)
    };
    // Options may come before the input too (`redis-cli -x` appends it).
    let mut i = 3;
    while i < args.len() {
        let word = args.get(i).to_ascii_uppercase();
        let has_value = i + 1 < args.len();
        match word.as_slice() {
            b"KEY" | b"DATA" | b"FILE" if has_value && source.is_none() => {
                i += 1;
                source = Some(match word.as_slice() {
                    b"KEY" => SourceKind::Key,
                    b"FILE" => SourceKind::Path,
                    _ => SourceKind::Data,
                });
                r.input = args.get(i);
            }
            b"KEYFRAMES" => r.options.selection = Selection::Keyframes,
            b"NOCACHE" => r.nocache = true,
            b"EVERY" if has_value => {
                i += 1;
                r.options.selection = Selection::EveryNth(count(i)?);
            }
            b"FPS" if has_value => {
                i += 1;
                r.options.selection = Selection::PerSecond(args.float(i)?);
            }
            b"WIDTH" if has_value => {
                i += 1;
                r.options.width = count(i)?;
            }
            b"HEIGHT" if has_value => {
                i += 1;
                r.options.height = count(i)?;
            }
            b"MAX-FRAMES" if has_value => {
                i += 1;
                r.options.max_frames = count(i)?;
            }
            b"FORMAT" if has_value => {
                i += 1;
                let f = String::from_utf8_lossy(args.get(i));
                r.options.format = f
                    .parse::<PixelFormat>()
                    .map_err(|e| CmdError::Text(format!("ERR {e}")))?;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    r.source = source.ok_or(CmdError::Static(
        "ERR PIPELINE CALL needs KEY <key>, DATA <bytes> or FILE <path>",
    ))?;
    r.options
        .validate()
        .map_err(|e| CmdError::Text(format!("ERR {e}")))?;
    Ok(r)
}

fn call(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(2);
    let req = parse(&args)?;
    let out = &mut ctx.out;
    let mark = out.buf.len();
    let started = start(ctx.state, ctx.thread, name, req, |item| {
        // A retried read starts over.
        out.buf.truncate(mark);
        reply_value(out, item);
    })?;
    if let Started::Waiting(wait) = started {
        ctx.conn.pending = Some(Pending::Pipeline { wait });
    }
    Ok(())
}

/// How a pipeline call went on.
pub enum Started {
    /// Answered from the result cache (the reply is written).
    Cached,
    /// Running (led here or joined): its result completes this wait.
    Waiting(PipelineWaitId),
}

/// Starts pipeline `name` on `req` (PIPELINE CALL, and the RPC front
/// door's `call` of a pipeline): a cached result is handed to `cached`
/// (inside the cache's read, which may retry it); otherwise the call is
/// joined or led and the caller waits for the returned id.
pub fn start(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    name: &[u8],
    req: Request<'_>,
    mut cached: impl FnMut(&ItemRef<'_>),
) -> Result<Started, CmdError> {
    let hub = state.plugins.hub().cloned();
    let (index, shared) = hub
        .as_ref()
        .and_then(|h| h.find_pipeline(name).map(|i| (i, h.pipelines[i].clone())))
        .ok_or_else(|| CmdError::quoting("ERR no such pipeline '", name, "'"))?;
    let options = req.options.to_string();
    // What identifies the input: its content (data, a key's value) or, for
    // a file, its path, size and modification time.
    let mut content = 0u64;
    let identity: Vec<u8> = match req.source {
        SourceKind::Data => xxh3_64(req.input).to_le_bytes().to_vec(),
        SourceKind::Key => {
            content = thread
                .cache
                .get(req.input, |item| item.content_hash())
                .ok_or_else(|| CmdError::quoting("ERR no such key '", req.input, "'"))?;
            content.to_le_bytes().to_vec()
        }
        SourceKind::Path => file_identity(req.input)?,
    };
    let cfg = &shared.config;
    let key = result_key(&cfg.name, &options, req.source as u8, &identity);
    let count_hit = || shared.cache_hits.fetch_add(1, Ordering::Relaxed);
    if !req.nocache && thread.cache.get(&key.cache_key, &mut cached).is_some() {
        count_hit();
        return Ok(Started::Cached);
    }
    let thread_index = thread.index;
    let wait = thread.pipelines.new_wait();
    let flights = thread.pipelines.flights.clone();
    let cache = &mut thread.cache;
    let is_cached = || !req.nocache && cache.get(&key.cache_key, |_| ()).is_some();
    match flights.join_or_lead(key.hash, thread_index, wait, is_cached) {
        None => {
            if thread.cache.get(&key.cache_key, &mut cached).is_some() {
                count_hit();
                return Ok(Started::Cached);
            }
            // Evicted in between: too rare to matter; the caller retries.
            return Err(CmdError::Static("ERR pipeline result evicted; retry"));
        }
        Some(false) => {
            shared.joined.fetch_add(1, Ordering::Relaxed);
        }
        Some(true) => lead(thread, index, &key, &options, &req, content),
    }
    Ok(Started::Waiting(wait))
}

/// Sends the Call of a call this thread leads into the first stage's
/// ring (errors settle the flight: every waiter gets them).
fn lead(
    thread: &mut ThreadCtx,
    index: usize,
    key: &ResultKey,
    options: &str,
    req: &Request<'_>,
    content: u64,
) {
    let (mut source, mut input) = (req.source, req.input);
    // DATA larger than the first stage's ring: written to a spool file
    // the stage reads as a FILE input (removed when settled).
    let spool_name;
    let max = thread.plugins.pipeline_max_payload(index);
    let spooled =
        req.source == SourceKind::Data && Call::encoded_len(options, req.input.len()) > max;
    if spooled {
        let path = thread.pipelines.spool_path(key.hash);
        if let Err(e) = std::fs::write(&path, req.input) {
            let why = CallError::Plugin(format!("cannot spool its input: {e}"));
            thread.settle_pipeline(index, key.hash, true, Outcome::Failed(why));
            return;
        }
        spool_name = path.into_os_string().into_encoded_bytes();
        source = SourceKind::Path;
        input = &spool_name;
    }
    // The Call carries the key's content hash in front of the key: the
    // stage checks it reads the value that was hashed.
    let prefix = if source == SourceKind::Key { 8 } else { 0 };
    let len = Call::encoded_len(options, prefix + input.len());
    let caller = Caller::Pipeline {
        pipeline: index,
        key: key.hash,
        spooled,
    };
    let sent = thread.plugins.call_pipeline(caller, index, len, |buf| {
        if prefix == 0 {
            return Call::encode(source, options, input, buf);
        }
        // The input is the rest of the record: the hash, then the key,
        // written straight into ring memory.
        let n = Call::encode(source, options, &content.to_le_bytes(), buf);
        buf[n..n + input.len()].copy_from_slice(input);
        n + input.len()
    });
    if let Err(e) = sent {
        // Everyone who joined meanwhile gets the error too (this
        // connection's completion arrives as soon as it parks).
        thread.settle_pipeline(index, key.hash, spooled, Outcome::Failed(e));
    }
}

fn file_identity(path: &[u8]) -> Result<Vec<u8>, CmdError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
    let meta = std::fs::metadata(p)
        .map_err(|e| CmdError::Text(format!("ERR pipeline input {}: {e}", p.display())))?;
    if !meta.is_file() {
        return Err(CmdError::Text(format!(
            "ERR pipeline input {} is not a file",
            p.display()
        )));
    }
    let mut id = path.to_vec();
    id.extend_from_slice(&meta.len().to_le_bytes());
    id.extend_from_slice(&meta.mtime().to_le_bytes());
    id.extend_from_slice(&meta.mtime_nsec().to_le_bytes());
    Ok(id)
}

/// PIPELINE CALL's reply once its call finished.
pub fn done(ctx: &mut Ctx<'_>, result: PipelineResult) -> CmdResult {
    match result.as_ref() {
        Ok(json) => {
            ctx.out.bulk(json);
            Ok(())
        }
        Err(e) => Err(CmdError::Text(e.clone())),
    }
}
