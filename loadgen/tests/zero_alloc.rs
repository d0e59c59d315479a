//! Steady state allocates nothing per request: a run with 5x the requests makes (almost)
//! the same number of heap allocations. RESP against redis-server; RPC (plain and batched,
//! TCP, Unix socket and shared memory) against the in-process RPC server, which itself
//! allocates only per connection, so its allocations cancel out between the runs.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use citadel_loadgen::cli::Cli;
use citadel_loadgen::driver::{self, LoadConfig};
use clap::Parser;
use common::rpc_server::RpcServer;
use common::Server;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocation counter is global: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn allocations_for(target: &[&str], requests: u64) -> u64 {
    let n = requests.to_string();
    let mut args = vec!["citadel-loadgen"];
    args.extend(target);
    args.extend([
        "-t",
        "2",
        "-c",
        "4",
        "-p",
        "8",
        "-n",
        &n,
        "--ratio",
        "1:4",
        "-d",
        "16-512",
        "--key-dist",
        "zipf:0.99",
    ]);
    let cli = Cli::try_parse_from(args).unwrap();
    let cfg = LoadConfig {
        servers: driver::endpoints(&cli.run).unwrap(),
        protocol: cli.run.protocol,
        workload: cli.run.workload.clone(),
        progress: false,
        cluster: None,
    };
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let result = driver::run(&cfg).unwrap();
    let used = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(result.stats.requests(), requests);
    assert_eq!(result.stats.total_errors(), 0);
    used
}

/// Asserts that 80,000 more requests cost (almost) no more allocations.
fn assert_flat(target: &[&str]) {
    allocations_for(target, 1_000); // warm lazily initialised statics
    let small = allocations_for(target, 20_000);
    let large = allocations_for(target, 100_000);
    eprintln!("{target:?}: {small} allocations for 20k requests, {large} for 100k");
    // Allow a few per-second progress snapshots, nothing per request.
    assert!(
        large.saturating_sub(small) < 200,
        "{target:?}: allocations grew with requests: {small} for 20k, {large} for 100k"
    );
}

#[test]
fn no_allocation_per_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let redis = Server::redis();
    assert_flat(&["-s", &redis.addr()]);
}

#[test]
fn no_allocation_per_rpc_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = RpcServer::start();
    assert_flat(&["-P", "rpc", "-s", &server.addr]);
    assert_flat(&["-P", "rpc", "--batch", "4", "--unix", server.unix_path()]);
}

#[test]
fn no_allocation_per_shm_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = RpcServer::start();
    assert_flat(&["-P", "rpc", "--shm", server.shm_path()]);
    assert_flat(&["-P", "rpc", "--batch", "4", "--shm", server.shm_path()]);
}
