//! Zones compiled from the config (stub, being written).
use crate::config::{Config, ZoneConfig};
use crate::pops::PopState;
use crate::steer::Decision;

use super::{DnsError, SteeredAnswer};

pub struct Zones {}

impl Zones {
    pub fn compile(_cfg: &Config) -> Result<Zones, DnsError> {
        Ok(Zones {})
    }
    pub fn explain(&self, _d: &Decision, _pops: &PopState) -> Vec<SteeredAnswer> {
        Vec::new()
    }
}

/// Semantic checks of one zone for `config::validate`: `(key suffix, message)`.
pub fn check_zone(_z: &ZoneConfig, _cfg: &Config) -> Vec<(String, String)> {
    Vec::new()
}
