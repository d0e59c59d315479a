//! Steady state allocates nothing per request: a run with 5x the requests makes (almost)
//! the same number of heap allocations.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use citadel_loadgen::cli::Cli;
use citadel_loadgen::driver::{self, LoadConfig};
use clap::Parser;
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

fn allocations_for(addr: &str, requests: u64) -> u64 {
    let n = requests.to_string();
    let cli = Cli::try_parse_from([
        "citadel-loadgen",
        "-s",
        addr,
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
    ])
    .unwrap();
    let cfg = LoadConfig {
        servers: driver::resolve(&cli.run.servers).unwrap(),
        protocol: cli.run.protocol,
        workload: cli.run.workload.clone(),
        progress: false,
    };
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let result = driver::run(&cfg).unwrap();
    let used = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(result.stats.requests(), requests);
    assert_eq!(result.stats.total_errors(), 0);
    used
}

#[test]
fn no_allocation_per_request() {
    let redis = Server::redis();
    let addr = redis.addr();
    allocations_for(&addr, 1_000); // warm lazily initialised statics
    let small = allocations_for(&addr, 20_000);
    let large = allocations_for(&addr, 100_000);
    eprintln!("allocations: {small} for 20k requests, {large} for 100k");
    // 80,000 more requests; allow a few per-second progress snapshots, nothing per request.
    assert!(
        large.saturating_sub(small) < 200,
        "allocations grew with requests: {small} for 20k, {large} for 100k"
    );
}
