//! Citadel server library: the per-core io_uring loop (`net`), the Redis
//! protocol (`resp`), command execution (`command`) and shared server state.

pub mod command;
pub mod config;
pub mod net;
pub mod plugin;
pub mod readthrough;
pub mod resp;
pub mod state;
pub mod supervisor;
