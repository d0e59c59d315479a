//! What can go wrong reading settings.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown {where_} key {key:?}")]
    UnknownKey { where_: String, key: String },
    #[error("invalid {key} {value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{where_}: {key} is required")]
    Missing { where_: String, key: String },
    #[error("{0} is not settable at run time; change the configuration and restart")]
    NotLive(String),
}
