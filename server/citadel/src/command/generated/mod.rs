//! Generated code (do not edit by hand; each file names its generator).
//!
//! * `docs_args.rs`: the `arguments` of COMMAND DOCS, from a real
//!   redis-server by `server/citadel/tools/gen_docs_args.py`.

#[rustfmt::skip]
pub mod docs_args;
