//! Placeholder (being written on a branch): same API, no detection yet.
use crate::{Scan, ScanError, ScanInput, Scanner};

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {  }
pub struct SecretsScanner;
impl SecretsScanner {
    pub fn new(_c: &SecretsConfig) -> Result<Self, String> { Ok(Self) }
}
impl Scanner for SecretsScanner {
    fn kind(&self) -> &'static str { "secrets" }
    fn scan(&self, _i: &ScanInput<'_>) -> Result<Scan, ScanError> { Ok(Scan::clean()) }
}
