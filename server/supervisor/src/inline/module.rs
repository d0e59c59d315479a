//! Loading an inline plugin module: a private copy of the `.so` is opened
//! (so a module replaced on disk is really loaded anew on reload, and each
//! instance has its own statics), its ABI tag is checked, and its serve
//! function found. A module that is not one, or was built for another ABI
//! version, is refused before anything in it is called.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use citadel_proto::inline_abi::{
    AbiTag, ServeFn, ABI_MAGIC, ABI_SYMBOL, ABI_VERSION, SERVE_SYMBOL,
};

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("inline module {path}: cannot make a private copy to load: {source}")]
    Copy {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inline module {path}: cannot load it: {source}")]
    Load {
        path: PathBuf,
        source: libloading::Error,
    },
    #[error("inline module {path}: symbol {symbol} is missing; is it a Citadel inline plugin (built with citadel_plugin::export_inline!)?")]
    MissingSymbol { path: PathBuf, symbol: &'static str },
    #[error("inline module {path}: {symbol} has magic {found:#x}, not a Citadel inline plugin")]
    BadMagic {
        path: PathBuf,
        symbol: &'static str,
        found: u64,
    },
    #[error("inline module {path}: built for inline ABI version {found}, this server speaks version {ABI_VERSION}; rebuild it against this server's SDK")]
    AbiVersion { path: PathBuf, found: u32 },
}

/// A loaded, checked module; unloaded when dropped (after every thread
/// that serves through it has returned: `Module` is shared by `Arc`).
pub struct Module {
    pub path: PathBuf,
    serve: ServeFn,
    /// Kept last: dropped after nothing can call into it any more.
    _library: libloading::Library,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

static LOADS: AtomicU64 = AtomicU64::new(0);

impl Module {
    /// Loads a private copy of `path` and checks its ABI.
    pub fn load(path: &Path) -> Result<Module, ModuleError> {
        let dir = std::env::temp_dir();
        remove_stale_copies(&dir);
        let copy = dir.join(format!(
            "{COPY_PREFIX}{}-{}{COPY_SUFFIX}",
            std::process::id(),
            LOADS.fetch_add(1, Relaxed)
        ));
        std::fs::copy(path, &copy).map_err(|source| ModuleError::Copy {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: loading runs the module's initialisers. The file is what
        // the operator configured as an inline plugin; that it is trusted
        // code is the documented premise of placement = "inline".
        let opened = unsafe { libloading::Library::new(&copy) };
        // The mapping keeps the copy's contents; its name is not needed.
        let _ = std::fs::remove_file(&copy);
        let library = opened.map_err(|source| ModuleError::Load {
            path: path.to_path_buf(),
            source,
        })?;
        let missing = |symbol: &'static [u8]| ModuleError::MissingSymbol {
            path: path.to_path_buf(),
            symbol: symbol_name(symbol),
        };
        // SAFETY: the symbol is looked up as a pointer to data; it is only
        // read below after it is found.
        let tag =
            unsafe { library.get::<*const AbiTag>(ABI_SYMBOL) }.map_err(|_| missing(ABI_SYMBOL))?;
        // SAFETY: an exported static of the ABI: the magic (a u64) comes
        // first in every ABI version, so reading it is valid even for a
        // module built for another version; the version is read only once
        // the magic says this is an inline plugin tag.
        let magic = unsafe { std::ptr::addr_of!((**tag).magic).read_unaligned() };
        if magic != ABI_MAGIC {
            return Err(ModuleError::BadMagic {
                path: path.to_path_buf(),
                symbol: symbol_name(ABI_SYMBOL),
                found: magic,
            });
        }
        // SAFETY: as above; every ABI version's tag has the version next.
        let version = unsafe { std::ptr::addr_of!((**tag).version).read_unaligned() };
        if version != ABI_VERSION {
            return Err(ModuleError::AbiVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        // SAFETY: the tag says this module exports `SERVE_SYMBOL` with the
        // `ServeFn` signature of this ABI version.
        let serve = unsafe { library.get::<ServeFn>(SERVE_SYMBOL) }
            .map(|f| *f)
            .map_err(|_| missing(SERVE_SYMBOL))?;
        Ok(Module {
            path: path.to_path_buf(),
            serve,
            _library: library,
        })
    }

    /// The module's serve function.
    pub fn serve_fn(&self) -> ServeFn {
        self.serve
    }
}

const COPY_PREFIX: &str = "citadel-inline-";
const COPY_SUFFIX: &str = ".so";

/// Removes the private copies that processes which no longer run left in
/// `dir`: a copy is deleted right after it is opened, so one remains only
/// when its server was killed between the copy and the open (kill -9 during
/// a start or a reload). The owner's pid is in the name; a pid that runs
/// again as another process keeps its files until that one exits too.
fn remove_stale_copies(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(copy_owner) else {
            continue;
        };
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid in a private copy's name (`citadel-inline-PID-N.so`).
fn copy_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(COPY_PREFIX)?.strip_suffix(COPY_SUFFIX)?;
    let (pid, load) = rest.split_once('-')?;
    load.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn symbol_name(symbol: &'static [u8]) -> &'static str {
    std::str::from_utf8(symbol.strip_suffix(b"\0").unwrap_or(symbol)).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_without_the_tag_is_refused() {
        // Any shared object that is not a Citadel plugin: the C library.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("the C library at a usual path");
        let err = Module::load(libc).unwrap_err();
        assert!(
            matches!(
                err,
                ModuleError::MissingSymbol {
                    symbol: "CITADEL_INLINE_ABI",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn copies_left_by_a_dead_process_are_removed_and_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("citadel-inline-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let names = [
            format!("citadel-inline-{dead}-3.so"),
            format!("citadel-inline-{}-0.so", std::process::id()),
            "citadel-inline-notes.so".to_string(),
        ];
        for name in &names {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        remove_stale_copies(&dir);
        let left: Vec<bool> = names.iter().map(|n| dir.join(n).exists()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left, [false, true, true]);
    }

    #[test]
    fn a_missing_file_is_refused() {
        let err = Module::load(Path::new("/nonexistent/libplugin.so")).unwrap_err();
        assert!(matches!(err, ModuleError::Copy { .. }), "{err}");
    }
}
