//! Generated code (do not edit by hand; each file names its generator).
//!
//! * `docs_args.rs`: the `arguments` of COMMAND DOCS, from a real
//!   redis-server by `server/citadel/tools/gen_docs_args.py`.
//! * `cmd_info.rs`: COMMAND INFO's acl_categories, tips and key specs,
//!   from a real redis-server by `server/citadel/tools/gen_cmd_info.py`.

#[rustfmt::skip]
pub mod cmd_info;
#[rustfmt::skip]
pub mod docs_args;
