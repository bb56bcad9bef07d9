//! JSON Schema validation of structured output: the common subset of drafts 7 and 2020-12
//! that structured-output schemas use — `type`, `enum`, `const`, numeric bounds and
//! `multipleOf`, string lengths and `pattern`, `items`/`prefixItems`, item counts,
//! `uniqueItems`, `contains`, `properties`, `required`, `additionalProperties`,
//! `patternProperties`, property counts, `allOf`/`anyOf`/`oneOf`/`not`, `if`/`then`/`else`
//! and `$ref` to pointers inside the same schema (`#`, `#/$defs/..`, `#/definitions/..`).
//! Nothing is fetched. `format` is an annotation, as in 2020-12. Own code instead of the
//! `jsonschema` crate, which pulls ~75 crates (ICU, bignums, fancy-regex) even without its
//! default features.
//!
//! An answer wrapped in a ```json fence is accepted: the inside is validated and the scan
//! reports the fence (`json_schema.fenced`).

use std::collections::HashMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};

#[cfg(test)]
mod tests;

/// The JSON-schema check, as written in a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaConfig {
    /// A fixed schema. When absent the scan passes: the pipeline validates against the
    /// request's `response_format` schema with [`JsonSchemaScanner::validate`].
    #[serde(default)]
    pub schema: Option<Value>,
    /// Accept an answer wrapped in a ```json fence (default true); when false a fence is a
    /// violation.
    #[serde(default = "default_true")]
    pub allow_fenced: bool,
}

fn default_true() -> bool {
    true
}

impl Default for JsonSchemaConfig {
    fn default() -> Self {
        Self {
            schema: None,
            allow_fenced: true,
        }
    }
}

/// The JSON-schema scanner (kind `json_schema`).
#[derive(Debug)]
pub struct JsonSchemaScanner {
    schema: Option<Value>,
    allow_fenced: bool,
}

/// How many violations are reported at most.
const MAX_ERRORS: usize = 32;
/// How deep schemas may nest (through `$ref` included) before validation gives up.
const MAX_DEPTH: usize = 64;

impl JsonSchemaScanner {
    pub fn new(c: &JsonSchemaConfig) -> Result<Self, String> {
        if let Some(schema) = &c.schema {
            check_schema(schema)?;
        }
        Ok(Self {
            schema: c.schema.clone(),
            allow_fenced: c.allow_fenced,
        })
    }

    /// Validates `text` as JSON against `schema`; Ok(()) or the list of violations as
    /// human-readable strings naming the JSON path (`$.items[2].price: expected number, got
    /// string`). Text wrapped in a ```json fence is unwrapped first.
    pub fn validate(schema: &Value, text: &str) -> Result<(), Vec<String>> {
        let (json, _) = strip_fence(text);
        let instance: Value = serde_json::from_str(json)
            .map_err(|e| vec![format!("$: the answer is not valid JSON: {e}")])?;
        let mut v = Validator {
            root: schema,
            errors: Vec::new(),
            regexes: HashMap::new(),
        };
        let mut path = String::from("$");
        v.check(schema, &instance, &mut path, 0);
        if v.errors.is_empty() {
            Ok(())
        } else {
            Err(v.errors)
        }
    }
}

/// The schema an OpenAI-shaped `response_format` asks for: the inner `schema` of
/// `{"type": "json_schema", "json_schema": {"name": .., "schema": {..}}}`, an object for
/// `{"type": "json_object"}`, nothing for `{"type": "text"}` or anything else.
pub fn response_format_schema(response_format: &Value) -> Option<Value> {
    match response_format.get("type").and_then(Value::as_str)? {
        "json_schema" => response_format
            .get("json_schema")
            .and_then(|j| j.get("schema"))
            .cloned(),
        "json_object" => Some(serde_json::json!({"type": "object"})),
        _ => None,
    }
}

/// The JSON inside `text`: the text itself, or the inside of a ```json (or bare ```) fence
/// wrapping all of it; and whether there was a fence.
pub fn strip_fence(text: &str) -> (&str, bool) {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return (text, false);
    };
    let Some(body) = rest.strip_suffix("```") else {
        return (text, false);
    };
    let Some(newline) = body.find('\n') else {
        return (text, false);
    };
    let lang = body[..newline].trim();
    if !(lang.is_empty() || lang.eq_ignore_ascii_case("json")) {
        return (text, false);
    }
    (body[newline + 1..].trim(), true)
}

/// Rejects a schema whose patterns do not compile or whose `$ref`s do not resolve.
fn check_schema(schema: &Value) -> Result<(), String> {
    fn walk(node: &Value, root: &Value) -> Result<(), String> {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("pattern", Value::String(p)) => {
                            Regex::new(p).map_err(|e| format!("schema pattern {p:?}: {e}"))?;
                        }
                        ("patternProperties", Value::Object(pats)) => {
                            for p in pats.keys() {
                                Regex::new(p).map_err(|e| format!("schema pattern {p:?}: {e}"))?;
                            }
                        }
                        ("$ref", Value::String(r)) => {
                            resolve(root, r)
                                .ok_or_else(|| format!("schema $ref {r:?} does not resolve"))?;
                        }
                        // Values of `enum`, `const` and `properties` names are data, not schemas.
                        ("enum" | "const" | "examples" | "default", _) => continue,
                        _ => {}
                    }
                    walk(value, root)?;
                }
                Ok(())
            }
            Value::Array(items) => items.iter().try_for_each(|i| walk(i, root)),
            _ => Ok(()),
        }
    }
    match schema {
        Value::Object(_) | Value::Bool(_) => walk(schema, schema),
        _ => Err("a schema is an object or a boolean".to_string()),
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        Some(root)
    } else {
        root.pointer(pointer)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(v: &Value, name: &str) -> bool {
    match (name, v) {
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        ("number", Value::Number(_)) => true,
        _ => type_name(v) == name || (name == "number" && type_name(v) == "integer"),
    }
}

/// Equality as JSON Schema defines it: numbers by value (1 == 1.0).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::to_string(key).unwrap_or_default());
        path.push(']');
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(37).collect();
        format!("{cut}...")
    } else {
        s
    }
}

struct Validator<'a> {
    root: &'a Value,
    errors: Vec<String>,
    regexes: HashMap<&'a str, Option<Regex>>,
}

impl<'a> Validator<'a> {
    fn fail(&mut self, path: &str, message: impl std::fmt::Display) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(format!("{path}: {message}"));
        }
    }

    fn matches(&mut self, pattern: &'a str, s: &str) -> bool {
        self.regexes
            .entry(pattern)
            .or_insert_with(|| Regex::new(pattern).ok())
            .as_ref()
            .is_none_or(|re| re.is_match(s))
    }

    /// Whether `instance` is valid against `schema`, without recording why not.
    fn passes(
        &mut self,
        schema: &'a Value,
        instance: &Value,
        path: &str,
        depth: usize,
    ) -> Vec<String> {
        let saved = std::mem::take(&mut self.errors);
        let mut p = path.to_string();
        self.check(schema, instance, &mut p, depth);
        std::mem::replace(&mut self.errors, saved)
    }

    fn check(&mut self, schema: &'a Value, instance: &Value, path: &mut String, depth: usize) {
        if depth > MAX_DEPTH {
            self.fail(path, "the schema nests too deeply (a recursive $ref?)");
            return;
        }
        let map = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.fail(path, "no value is allowed here"),
            Value::Object(map) => map,
            _ => return,
        };
        if let Some(Value::String(r)) = map.get("$ref") {
            match resolve(self.root, r) {
                Some(target) => self.check(target, instance, path, depth + 1),
                None => self.fail(path, format!("the schema's $ref {r:?} does not resolve")),
            }
        }
        if let Some(t) = map.get("type") {
            let names: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !names.is_empty() && !names.iter().any(|n| is_type(instance, n)) {
                self.fail(
                    path,
                    format!(
                        "expected {}, got {}",
                        names.join(" or "),
                        type_name(instance)
                    ),
                );
                return;
            }
        }
        if let Some(Value::Array(options)) = map.get("enum")
            && !options.iter().any(|o| json_eq(o, instance))
        {
            let list: Vec<String> = options.iter().map(short).collect();
            self.fail(
                path,
                format!("{} is not one of {}", short(instance), list.join(", ")),
            );
        }
        if let Some(c) = map.get("const")
            && !json_eq(c, instance)
        {
            self.fail(
                path,
                format!("expected {}, got {}", short(c), short(instance)),
            );
        }
        self.check_combinators(map, instance, path, depth);
        match instance {
            Value::Number(n) => self.check_number(map, n.as_f64().unwrap_or(f64::NAN), path),
            Value::String(s) => self.check_string(map, s, path),
            Value::Array(items) => self.check_array(map, items, path, depth),
            Value::Object(obj) => self.check_object(map, obj, path, depth),
            _ => {}
        }
    }
}

impl Scanner for JsonSchemaScanner {
    fn kind(&self) -> &'static str {
        "json_schema"
    }

    /// Findings: `json_schema.fenced` (score 0.1: accepted, but not bare JSON; 1.0 when fences
    /// are not allowed), `json_schema.not_json` or one `json_schema.violation` per violation
    /// (score 1), spanning the JSON text.
    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        let Some(schema) = &self.schema else {
            return Ok(Scan::clean());
        };
        let (json, fenced) = strip_fence(input.text);
        let start = json.as_ptr() as usize - input.text.as_ptr() as usize;
        let end = start + json.len();
        let mut findings = Vec::new();
        if fenced {
            let score = if self.allow_fenced { 0.1 } else { 1.0 };
            findings.push(Finding::new(
                "json_schema.fenced",
                0,
                input.text.len(),
                score,
            ));
        }
        if let Err(errors) = Self::validate(schema, input.text) {
            let not_json = serde_json::from_str::<Value>(json).is_err();
            let kind = if not_json {
                "json_schema.not_json"
            } else {
                "json_schema.violation"
            };
            findings.extend(errors.iter().map(|_| Finding::new(kind, start, end, 1.0)));
        }
        Ok(Scan::from_findings(findings))
    }
}

mod keywords;
