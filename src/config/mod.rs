//! Configuration: one YAML file, parsed with unknown keys rejected, then
//! validated; every error names file, line and key.
//!
//! Owns the `Config` value handed (as `Arc<Config>`) to every task at start.
//! A leaf: imports only `crate::types` and `crate::wire::AS_TRANS`.
//!
//! [`parse`] runs in two phases:
//! 1. schema (`schema`, serde with `deny_unknown_fields`): unknown keys, wrong
//!    types, missing keys. serde stops at the first error, so `recover` drops
//!    the offending node from a YAML `Value` and deserializes again,
//!    collecting every error;
//! 2. semantics (`validate`): one `check_*` function per section (zones:
//!    [`zones::parse_zone`]), each error located in the text by the
//!    [`Locator`] from its key path. A [`RawConfig`] with no error becomes
//!    the validated [`Config`] (`validated`), which derives its lookup
//!    tables once.
//!
//! Adding a section (e.g. DNS zones): a field with `#[serde(default)]` on
//! [`RawConfig`] and [`Config`], a `check_*` function called from `validate`,
//! and a row in the README's configuration reference.

use std::path::Path;

mod announce_schema;
mod error;
mod health_schema;
mod locator;
mod recover;
mod schema;
mod validate;
mod validate_announce;
mod validate_health;
mod validated;
mod zonefile;
pub mod zones;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_health;

pub use error::{format_errors, ConfigError, ZoneError};
pub use locator::Locator;
pub use schema::*;
pub use validate::MAX_POPS;
pub use validated::Config;
pub use zones::{PopAnswers, RecordConfig, SoaConfig, SteeredConfig, ZoneConfig};

/// The embedded default config: no peers, admin socket `/tmp/sparrow.sock`
/// (not [`DEFAULT_ADMIN_SOCKET`], which needs root or systemd), works anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../default-config.yaml");

/// Parse and validate config text; `file` names it in errors. Returns every error
/// found: all schema (type / unknown key / missing key) errors if there are any,
/// else all semantic errors.
pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    match serde_yaml::from_str::<RawConfig>(text) {
        Ok(raw) => validate::validate(raw, text, file),
        Err(first) => Err(recover::schema_errors(text, file, first)),
    }
}

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: name.clone(),
            line: 0,
            key: String::new(),
            msg: e.to_string(),
        }]
    })?;
    parse(&text, &name)
}

/// Same as [`load`]; what `sparrowd --check-config FILE` runs.
pub fn check(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load(path)
}
