//! Reading a config file: TOML → typed structs, errors naming the failing path, then the pure
//! cross-reference checks of [`crate::validate`].

use crate::model::KeelConfig;
use std::fmt;
use std::path::Path;

/// A config problem, naming where it is (`routes.support.models[1]`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parse and validate a config from TOML text. All validation errors are returned, not only
/// the first.
pub fn load_str(text: &str) -> Result<KeelConfig, Vec<ConfigError>> {
    let de = toml::Deserializer::parse(text).map_err(|e| vec![toml_error(&e, text)])?;
    let config: KeelConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        vec![ConfigError {
            path: if path == "." { String::new() } else { path },
            message: inner.message().to_string(),
        }]
    })?;
    crate::validate::validate(&config)?;
    Ok(config)
}

/// Read, parse and validate a config file.
pub fn load_file(path: &Path) -> Result<KeelConfig, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    load_str(&text)
}

fn toml_error(e: &toml::de::Error, text: &str) -> ConfigError {
    let message = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_string(),
    };
    ConfigError {
        path: String::new(),
        message,
    }
}

/// Every error `text` gets, as text (no errors: an empty list); for the config tests.
#[cfg(test)]
pub(crate) fn error_texts(text: &str) -> Vec<String> {
    match load_str(text) {
        Ok(_) => Vec::new(),
        Err(es) => es.iter().map(ToString::to_string).collect(),
    }
}
