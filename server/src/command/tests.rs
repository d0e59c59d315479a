//! Command tests through `Session::process` (need the cache engine).
