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
        let copy = std::env::temp_dir().join(format!(
            "citadel-inline-{}-{}.so",
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
    fn a_missing_file_is_refused() {
        let err = Module::load(Path::new("/nonexistent/libplugin.so")).unwrap_err();
        assert!(matches!(err, ModuleError::Copy { .. }), "{err}");
    }
}
