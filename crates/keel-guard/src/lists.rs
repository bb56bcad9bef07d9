//! Placeholder (being written on a branch): same API, no detection yet.
use crate::{Scan, ScanError, ScanInput, Scanner};
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig { #[serde(default)] pub deny: std::collections::BTreeMap<String, Vec<String>> }
pub struct TopicsScanner;
impl TopicsScanner { pub fn new(_c: &TopicsConfig) -> Result<Self, String> { Ok(Self) } }
impl Scanner for TopicsScanner {
    fn kind(&self) -> &'static str { "topics" }
    fn scan(&self, _i: &ScanInput<'_>) -> Result<Scan, ScanError> { Ok(Scan::clean()) }
}
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToxicityConfig {}
pub struct ToxicityScanner;
impl ToxicityScanner { pub fn new(_c: &ToxicityConfig) -> Result<Self, String> { Ok(Self) } }
impl Scanner for ToxicityScanner {
    fn kind(&self) -> &'static str { "toxicity" }
    fn scan(&self, _i: &ScanInput<'_>) -> Result<Scan, ScanError> { Ok(Scan::clean()) }
}
