//! Placeholder (being written on a branch): same API, no detection yet.
use crate::{Scan, ScanError, ScanInput, Scanner};

/// Placeholder until the MLP lands.
pub struct Mlp;
impl Mlp {
    pub fn load(_path: &std::path::Path) -> Result<Self, String> { Err("not built".into()) }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionConfig {  }
pub struct InjectionScanner;
impl InjectionScanner {
    pub fn new(_c: &InjectionConfig, _mlp: Option<std::sync::Arc<Mlp>>) -> Result<Self, String> { Ok(Self) }
}
impl Scanner for InjectionScanner {
    fn kind(&self) -> &'static str { "injection" }
    fn scan(&self, _i: &ScanInput<'_>) -> Result<Scan, ScanError> { Ok(Scan::clean()) }
}
