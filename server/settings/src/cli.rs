//! The command line, derived from the server table: one `--<name>` flag
//! per setting (a switch for yes/no settings), plus `--config FILE` and
//! `--print-config`. Flags win over the file, which wins over defaults.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::SettingsError;
use crate::file;
use crate::setting::Table;
use crate::store::Store;

/// Everything the server was configured with.
pub struct Loaded {
    /// Top-level settings.
    pub server: Store,
    /// One store per `[[plugin]]` table, in file order.
    pub plugins: Vec<Store>,
    /// One store per `[[keyspace]]` table, in file order.
    pub keyspaces: Vec<Store>,
    /// `[[pipeline]]` tables.
    pub pipelines: Vec<Store>,
    pub config_file: Option<PathBuf>,
}

/// What the command line asks for.
pub enum Invocation {
    Run(Loaded),
    /// `--print-config`: print the documented reference file and exit.
    PrintConfig,
}

/// `citadel`'s command line, built from the server table.
pub fn command() -> Command {
    let mut cmd = Command::new("citadel")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Citadel: a Redis-compatible cache server on io_uring")
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML config file with the same keys as these flags (flags win)"),
        )
        .arg(
            Arg::new("print-config")
                .long("print-config")
                .action(ArgAction::SetTrue)
                .help("Print a config file documenting every key and its default, then exit"),
        );
    for s in crate::server::TABLE.settings {
        let mut help = s.help().to_string();
        if !s.default_text().is_empty() && !s.is_switch() {
            help.push_str(&format!(" [default: {}]", s.default_text()));
        }
        let arg = Arg::new(s.name()).long(s.name()).help(help);
        cmd = cmd.arg(if s.is_switch() {
            arg.action(ArgAction::SetTrue)
        } else {
            arg.value_name(s.value_name())
        });
    }
    cmd
}

/// Parses `args` (the program name first). `--help`, `--version` and
/// malformed flags are clap's errors (print them with `Error::exit`).
pub fn parse<I, T>(args: I) -> Result<Result<Invocation, SettingsError>, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let m = command().try_get_matches_from(args)?;
    Ok(resolve(&m))
}

fn resolve(m: &ArgMatches) -> Result<Invocation, SettingsError> {
    if m.get_flag("print-config") {
        return Ok(Invocation::PrintConfig);
    }
    let config_file = m.get_one::<PathBuf>("config").cloned();
    let toml = match &config_file {
        Some(path) => file::read(path)?,
        None => toml::Table::new(),
    };
    let sections = [
        &crate::plugin::TABLE,
        &crate::keyspace::TABLE,
        &crate::pipeline::TABLE,
    ];
    let mut server = file::load(&crate::server::TABLE, &toml, &sections, "config file")?;
    apply_flags(&mut server, &crate::server::TABLE, m)?;
    Ok(Invocation::Run(Loaded {
        server,
        plugins: file::sections(&crate::plugin::TABLE, &toml)?,
        keyspaces: file::sections(&crate::keyspace::TABLE, &toml)?,
        pipelines: file::sections(&crate::pipeline::TABLE, &toml)?,
        config_file,
    }))
}

fn apply_flags(store: &mut Store, table: &Table, m: &ArgMatches) -> Result<(), SettingsError> {
    for s in table.settings {
        let text = if s.is_switch() {
            if !m.get_flag(s.name()) {
                continue;
            }
            "yes".to_string()
        } else {
            match m.get_one::<String>(s.name()) {
                Some(t) => t.clone(),
                None => continue,
            }
        };
        let v = s
            .parse_any(&text)
            .map_err(|reason| SettingsError::Invalid {
                key: s.name().to_string(),
                value: text,
                reason,
            })?;
        store.put(*s, v);
        store.mark_given(*s);
    }
    Ok(())
}
