//! Placeholder (being written on a branch): same API, no detection yet.
use crate::{Scan, ScanError, ScanInput, Scanner};
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaConfig { #[serde(default)] pub schema: Option<serde_json::Value> }
pub struct JsonSchemaScanner;
impl JsonSchemaScanner {
    pub fn new(_c: &JsonSchemaConfig) -> Result<Self, String> { Ok(Self) }
    pub fn validate(_schema: &serde_json::Value, _text: &str) -> Result<(), Vec<String>> { Ok(()) }
}
impl Scanner for JsonSchemaScanner {
    fn kind(&self) -> &'static str { "json_schema" }
    fn scan(&self, _i: &ScanInput<'_>) -> Result<Scan, ScanError> { Ok(Scan::clean()) }
}
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExfiltrationConfig {}
pub struct ExfiltrationScanner;
impl ExfiltrationScanner { pub fn new(_c: &ExfiltrationConfig) -> Result<Self, String> { Ok(Self) } }
impl Scanner for ExfiltrationScanner {
    fn kind(&self) -> &'static str { "exfiltration" }
    fn scan(&self, _i: &ScanInput<'_>) -> Result<Scan, ScanError> { Ok(Scan::clean()) }
}
