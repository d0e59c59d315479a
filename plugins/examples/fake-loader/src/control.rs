//! The control file: commands appended one a line, read as they come (the
//! file is polled; a line without its newline yet waits for the next poll).
//!
//! ```text
//! invalidate KEY   the key's generation goes up; an Invalidation of KEY is pushed
//! resync           every generation goes up; Invalidation { resync: true }
//! down             every load fails with OriginUnavailable
//! up               loads answer by the rules again
//! ```

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use citadel_plugin::Notifier;

use crate::rules::State;

/// One line of the control file.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Invalidate(Vec<u8>),
    Resync,
    Down,
    Up,
}

/// Why a line is not a command.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown control command {0:?} (want: invalidate KEY, resync, down, up)")]
pub struct BadCommand(String);

pub fn parse(line: &str) -> Result<Command, BadCommand> {
    match line.trim().split_once(' ') {
        Some(("invalidate", key)) if !key.trim().is_empty() => {
            Ok(Command::Invalidate(key.trim().as_bytes().to_vec()))
        }
        None if line.trim() == "resync" => Ok(Command::Resync),
        None if line.trim() == "down" => Ok(Command::Down),
        None if line.trim() == "up" => Ok(Command::Up),
        _ => Err(BadCommand(line.to_string())),
    }
}

/// Applies a command: state first, then the record, so a load the
/// invalidation triggers sees the new generation.
pub fn apply(command: Command, state: &State, notifier: &Notifier) {
    match command {
        Command::Invalidate(key) => {
            state.bump(&key);
            notifier.invalidate(key);
        }
        Command::Resync => {
            state.bump_all();
            notifier.resync();
        }
        Command::Down => state.set_down(true),
        Command::Up => state.set_down(false),
    }
}

/// Polls `path` every `every` on a thread of its own, forever.
pub fn watch(path: PathBuf, every: Duration, state: Arc<State>, notifier: Notifier) {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let mut offset = 0u64;
            let mut partial = String::new();
            loop {
                match read_from(&path, &mut offset) {
                    Ok(text) => {
                        partial.push_str(&text);
                        while let Some(end) = partial.find('\n') {
                            let line: String = partial.drain(..=end).collect();
                            if line.trim().is_empty() {
                                continue;
                            }
                            match parse(&line) {
                                Ok(cmd) => {
                                    tracing::info!("control: {}", line.trim());
                                    apply(cmd, &state, &notifier);
                                }
                                Err(e) => tracing::warn!("{e}"),
                            }
                        }
                    }
                    // Not created yet: nothing to do.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!("reading {}: {e}", path.display()),
                }
                std::thread::sleep(every);
            }
        })
        .expect("spawn the control thread");
}

/// What was appended to `path` since `offset` (which moves past it).
fn read_from(path: &PathBuf, offset: &mut u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(*offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    *offset += bytes.len() as u64;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse("invalidate user:7\n"),
            Ok(Command::Invalidate(b"user:7".to_vec()))
        );
        assert_eq!(parse("resync"), Ok(Command::Resync));
        assert_eq!(parse(" down \n"), Ok(Command::Down));
        assert_eq!(parse("up"), Ok(Command::Up));
        assert!(parse("invalidate").is_err());
        assert!(parse("explode now").is_err());
    }
}
