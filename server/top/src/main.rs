//! `citadel-top`: a live terminal view of a Citadel server — ops/s per
//! core, hit rate, latency, shed by layer, hot keys, plugin queues — read
//! from the server's stats region file (reopened each refresh, so a server
//! restart is followed), never from the server itself.

mod model;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use citadel_telemetry::{Reader, Snapshot};
use clap::Parser;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};

#[derive(Parser)]
#[command(
    name = "citadel-top",
    about = "Live view of a Citadel server from its stats region"
)]
struct Args {
    /// The stats region file [default: /dev/shm/citadel-<port>.cache.stats]
    #[arg(long, value_name = "PATH")]
    stats_file: Option<PathBuf>,
    /// The server's port, to find the default stats file
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Refresh period in milliseconds (at least 100)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..))]
    interval_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = args
        .stats_file
        .unwrap_or_else(|| PathBuf::from(format!("/dev/shm/citadel-{}.cache.stats", args.port)));
    // A wrong path is said at once, before the screen is taken.
    if let Err(e) = Reader::open(&path) {
        eprintln!("citadel-top: {e}");
        return ExitCode::FAILURE;
    }
    let mut terminal = ratatui::init();
    let result = run(
        &mut terminal,
        &path,
        Duration::from_millis(args.interval_ms),
    );
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citadel-top: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    path: &std::path::Path,
    period: Duration,
) -> std::io::Result<()> {
    let mut before: Option<(Snapshot, Instant)> = None;
    loop {
        let (frame, status) = match Reader::open(path) {
            Ok(reader) => {
                let (now, at) = (reader.snapshot(), Instant::now());
                let secs = before
                    .as_ref()
                    .map_or(0.0, |(_, t)| at.duration_since(*t).as_secs_f64());
                let frame = model::frame(before.as_ref().map(|(s, _)| s), &now, secs, now_ms());
                before = Some((now, at));
                (frame, path.display().to_string())
            }
            Err(e) => (model::Frame::default(), e.to_string()),
        };
        terminal.draw(|f| ui::draw(f, &frame, &status))?;
        let deadline = Instant::now() + period;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if !event::poll(left)? {
                break;
            }
            if let Event::Key(key) = event::read()? {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                    return Ok(());
                }
            }
        }
    }
}
