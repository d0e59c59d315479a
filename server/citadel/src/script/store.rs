//! Process-wide script state: the script cache (SHA1 → source: SCRIPT LOAD
//! or EVAL on any core makes EVALSHA work on every core) and the functions
//! registry (libraries, their functions and flags), persisted in a side
//! file next to the cache file (`<cache file>.functions`, written through a
//! temporary file and a rename on every change, read at start-up).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::busy::Busy;

/// A function's metadata (its code lives in its library).
#[derive(Debug, Clone)]
pub struct FunctionMeta {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<&'static str>,
}

impl FunctionMeta {
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.contains(&f)
    }
}

/// A loaded library; `generation` changes whenever a library of this name
/// is (re)loaded, so each thread knows when to recompile it.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    pub code: String,
    pub functions: Vec<FunctionMeta>,
    pub generation: u64,
}

#[derive(Default)]
pub struct Functions {
    pub libraries: BTreeMap<String, Arc<Library>>,
    /// Function name, lowercased → library name: as in Redis, FCALL finds
    /// a function whatever the case of its name, and two libraries may not
    /// register names that differ only by case.
    by_function: HashMap<String, String>,
}

impl Functions {
    /// The function FCALL `name` runs (any case); its meta has the name
    /// it was registered under.
    pub fn function(&self, name: &str) -> Option<(Arc<Library>, FunctionMeta)> {
        let lib = self
            .libraries
            .get(self.by_function.get(&name.to_ascii_lowercase())?)?;
        let meta = lib
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?
            .clone();
        Some((lib.clone(), meta))
    }

    pub fn function_count(&self) -> usize {
        self.by_function.len()
    }

    /// The registry's bytes: each library's code and names (INFO's
    /// used_memory_functions).
    pub fn bytes(&self) -> usize {
        let libs: usize = self
            .libraries
            .values()
            .map(|l| l.name.len() + l.code.len())
            .sum();
        let names: usize = self
            .by_function
            .iter()
            .map(|(f, l)| f.len() + l.len())
            .sum();
        libs + names
    }

    /// Adds `lib`, replacing one of its name when `replace`.
    pub fn add(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        if self.libraries.contains_key(&lib.name) && !replace {
            return Err(format!("ERR Library '{}' already exists", lib.name));
        }
        for f in &lib.functions {
            if let Some(owner) = self.by_function.get(&f.name.to_ascii_lowercase()) {
                if *owner != lib.name {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        self.remove(&lib.name);
        for f in &lib.functions {
            (self.by_function).insert(f.name.to_ascii_lowercase(), lib.name.clone());
        }
        self.libraries.insert(lib.name.clone(), Arc::new(lib));
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.remove(name) else {
            return false;
        };
        for f in &lib.functions {
            self.by_function.remove(&f.name.to_ascii_lowercase());
        }
        true
    }

    pub fn clear(&mut self) {
        self.libraries.clear();
        self.by_function.clear();
    }

    /// A copy to change and swap in (the libraries are shared).
    pub fn clone_registry(&self) -> Functions {
        Functions {
            libraries: self.libraries.clone(),
            by_function: self.by_function.clone(),
        }
    }
}

pub struct Store {
    scripts: RwLock<HashMap<String, Arc<[u8]>>>,
    /// Bumped by SCRIPT FLUSH: threads drop their compiled scripts.
    script_epoch: AtomicU64,
    functions: RwLock<Functions>,
    generations: AtomicU64,
    /// Where the functions persist (None: nowhere, e.g. in tests).
    path: Option<PathBuf>,
    /// The side file was read back (once, before the first function command).
    saved_claimed: std::sync::atomic::AtomicBool,
    pub busy: Busy,
}

/// Library and function names: letters, digits, underscores.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The `#!lua name=<lib>` line of a library: its name. As Redis 7.0's
/// functionExtractLibMetaData: the whole line is split with sdssplitargs'
/// quoting, the engine is the first part less its `#!`, `name=` comes in
/// any case, and the errors come in its order (metadata, then the name,
/// then the engine).
pub fn library_name(code: &str) -> Result<String, String> {
    const INVALID: &str = "ERR Invalid library metadata";
    if !code.starts_with("#!") {
        return Err("ERR Missing library metadata".into());
    }
    // Redis looks for the line's end with strchr: a NUL ends the search.
    let bytes = code.as_bytes();
    let end = bytes.iter().position(|&c| c == b'\n' || c == 0);
    let Some(end) = end.filter(|&i| bytes[i] == b'\n') else {
        return Err(INVALID.into());
    };
    let (mut buf, mut spans) = (Vec::new(), Vec::new());
    if citadel_resp::inline::split(&bytes[..end], &mut buf, &mut spans).is_err() {
        return Err(INVALID.into());
    }
    let parts: Vec<&[u8]> = spans.iter().map(|r| &buf[r.clone()]).collect();
    let Some((first, rest)) = parts.split_first() else {
        return Err(INVALID.into());
    };
    let engine = String::from_utf8_lossy(first.get(2..).unwrap_or_default());
    let mut name = None;
    for p in rest {
        let Some(value) = p.get(..5).filter(|k| k.eq_ignore_ascii_case(b"name=")) else {
            let p = String::from_utf8_lossy(p);
            return Err(format!("ERR Invalid metadata value given: {p}"));
        };
        if name.is_some() {
            return Err(
                "ERR Invalid metadata value, name argument was given multiple times".into(),
            );
        }
        name = Some(String::from_utf8_lossy(&p[value.len()..]).into_owned());
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_string())?;
    if !valid_name(&name) {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    Ok(name)
}

impl Store {
    /// The store for a server whose cache file is `cache_file`: functions
    /// are read back from its side file by `load` (which needs an engine).
    pub fn new(cache_file: Option<&Path>, threads: usize) -> Store {
        Store {
            scripts: RwLock::default(),
            script_epoch: AtomicU64::new(0),
            functions: RwLock::default(),
            generations: AtomicU64::new(1),
            path: cache_file.map(|p| {
                let mut s = p.as_os_str().to_owned();
                s.push(".functions");
                PathBuf::from(s)
            }),
            saved_claimed: Default::default(),
            busy: Busy::new(threads),
        }
    }

    /// Whether the side file was read back into the registry.
    pub fn saved_restored(&self) -> bool {
        self.saved_claimed.load(Ordering::Acquire)
    }

    /// Marks it read back; call while holding `functions_mut()`, after
    /// checking `saved_restored()` again under that lock.
    pub fn mark_saved_restored(&self) {
        self.saved_claimed.store(true, Ordering::Release);
    }

    pub fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }

    // --- scripts ---

    pub fn add_script(&self, sha: &str, body: &[u8]) {
        let mut s = self.scripts.write().unwrap_or_else(|e| e.into_inner());
        if !s.contains_key(sha) {
            s.insert(sha.to_string(), Arc::from(body));
        }
    }

    pub fn script(&self, sha: &str) -> Option<Arc<[u8]>> {
        let s = self.scripts.read().unwrap_or_else(|e| e.into_inner());
        s.get(sha).cloned()
    }

    pub fn flush_scripts(&self) {
        self.scripts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.script_epoch.fetch_add(1, Ordering::Release);
    }

    pub fn script_epoch(&self) -> u64 {
        self.script_epoch.load(Ordering::Acquire)
    }

    pub fn script_count(&self) -> usize {
        self.scripts.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The script cache's bytes: each SHA and body (INFO's
    /// used_memory_scripts_eval).
    pub fn script_bytes(&self) -> usize {
        let s = self.scripts.read().unwrap_or_else(|e| e.into_inner());
        s.iter().map(|(sha, body)| sha.len() + body.len()).sum()
    }

    // --- functions ---

    pub fn functions(&self) -> RwLockReadGuard<'_, Functions> {
        self.functions.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn functions_mut(&self) -> RwLockWriteGuard<'_, Functions> {
        self.functions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// FUNCTION DUMP's payload (also the side file's content).
    pub fn dump(&self) -> Vec<u8> {
        encode(self.functions().libraries.values().map(|l| l.code.as_str()))
    }

    /// Writes the functions to the side file (temp file + rename).
    pub fn persist(&self) {
        let Some(path) = &self.path else { return };
        let payload = self.dump();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let res = std::fs::write(&tmp, &payload).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            tracing::error!(path = %path.display(), error = %e, "could not save the functions");
        }
    }

    /// SAVE: makes the side file (and its rename into place) durable.
    pub fn sync_saved(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        match std::fs::File::open(path) {
            Ok(file) => file.sync_all()?,
            // No functions were ever saved: nothing to make durable.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => std::fs::File::open(dir)?.sync_all(),
            None => std::fs::File::open(".")?.sync_all(),
        }
    }

    /// Forgets the saved functions (a `--fresh` start).
    pub fn discard_saved(&self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The side file's libraries (their codes), if any.
    pub fn saved(&self) -> Vec<String> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        match std::fs::read(path) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                tracing::error!(path = %path.display(), "the functions file is damaged; ignored");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        }
    }
}

const MAGIC: &[u8] = b"CITADEL-FUNCTIONS-1\n";

/// Library codes → payload: magic, (u32 LE length, code)*, xxh3 of it all.
pub fn encode<'a>(codes: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for code in codes {
        out.extend_from_slice(&(code.len() as u32).to_le_bytes());
        out.extend_from_slice(code.as_bytes());
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Payload → library codes; None when it is not one of ours or damaged.
pub fn decode(payload: &[u8]) -> Option<Vec<String>> {
    let body_len = payload.len().checked_sub(8)?;
    let (body, sum) = payload.split_at(body_len);
    if !body.starts_with(MAGIC) || xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
        return None;
    }
    let mut rest = &body[MAGIC.len()..];
    let mut codes = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let code = rest.get(4..4 + len)?;
        codes.push(String::from_utf8(code.to_vec()).ok()?);
        rest = &rest[4 + len..];
    }
    Some(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let p = encode(["#!lua name=a\n", "#!lua name=b\nx"].into_iter());
        assert_eq!(
            decode(&p).unwrap(),
            vec!["#!lua name=a\n", "#!lua name=b\nx"]
        );
        let mut bad = p.clone();
        bad[25] ^= 1;
        assert!(decode(&bad).is_none());
        assert!(decode(b"garbage").is_none());
    }

    #[test]
    fn metadata() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("#!lua name=lib1\n", Ok("lib1")),
            ("x", Err("ERR Missing library metadata")),
            ("#!lua name=a", Err("ERR Invalid library metadata")),
            ("#!lua\n", Err("ERR Library name was not given")),
            ("#!foo name=a\n", Err("ERR Engine 'foo' not found")),
            ("#! name=a\n", Err("ERR Engine '' not found")),
            ("#!foo\n", Err("ERR Library name was not given")),
            (
                "#!lua name=a NAME=b\n",
                Err("ERR Invalid metadata value, name argument was given multiple times"),
            ),
            ("#!LUA Name=\"foo\"\n", Ok("foo")),
            (
                "#!lua name=ab foo=bar\n",
                Err("ERR Invalid metadata value given: foo=bar"),
            ),
            // Quotes open anywhere in a part; an unbalanced one is invalid.
            ("#!l\"ua\" na\"me=x\"\n", Ok("x")),
            ("#!lua name=\"x\n", Err("ERR Invalid library metadata")),
            // A NUL before the newline: no line end found.
            ("#!lua name=x\0\n", Err("ERR Invalid library metadata")),
            // Only space, tab, CR and LF end a part: this is all the engine.
            ("#!\x0bname=a\n", Err("ERR Library name was not given")),
        ];
        for (code, want) in cases {
            let got = library_name(code);
            assert_eq!(got.as_deref().map_err(String::as_str), *want, "{code:?}");
        }
    }

    #[test]
    fn registry_conflicts() {
        let lib = |name: &str, f: &str| Library {
            name: name.into(),
            code: String::new(),
            functions: vec![FunctionMeta {
                name: f.into(),
                description: None,
                flags: vec![],
            }],
            generation: 0,
        };
        let mut r = Functions::default();
        r.add(lib("a", "f"), false).unwrap();
        assert_eq!(
            r.add(lib("a", "g"), false).unwrap_err(),
            "ERR Library 'a' already exists"
        );
        assert_eq!(
            r.add(lib("b", "f"), false).unwrap_err(),
            "ERR Function f already exists"
        );
        assert_eq!(
            r.add(lib("b", "F"), false).unwrap_err(),
            "ERR Function F already exists",
            "names differing by case only collide, as in Redis"
        );
        let (_, meta) = r.function("F").unwrap();
        assert_eq!(meta.name, "f", "FCALL finds a function in any case");
        r.add(lib("a", "g"), true).unwrap();
        assert!(r.function("f").is_none());
        assert!(r.function("g").is_some());
        assert!(r.remove("a"));
        assert_eq!(r.function_count(), 0);
    }
}
