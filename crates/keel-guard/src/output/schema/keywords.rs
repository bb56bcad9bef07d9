//! The keyword checks of the validator, by instance type, and the combinators.

use serde_json::{Map, Value};

use super::{Validator, json_eq, push_key, short};

fn num(map: &Map<String, Value>, key: &str) -> Option<f64> {
    map.get(key).and_then(Value::as_f64)
}

fn count(map: &Map<String, Value>, key: &str) -> Option<usize> {
    map.get(key).and_then(Value::as_u64).map(|n| n as usize)
}

impl<'a> Validator<'a> {
    pub(super) fn check_combinators(
        &mut self,
        map: &'a Map<String, Value>,
        instance: &Value,
        path: &mut String,
        depth: usize,
    ) {
        if let Some(Value::Array(all)) = map.get("allOf") {
            for s in all {
                self.check(s, instance, path, depth + 1);
            }
        }
        if let Some(Value::Array(any)) = map.get("anyOf") {
            let mut closest: Option<Vec<String>> = None;
            let mut ok = false;
            for s in any {
                let errs = self.passes(s, instance, path, depth + 1);
                if errs.is_empty() {
                    ok = true;
                    break;
                }
                if closest.as_ref().is_none_or(|c| errs.len() < c.len()) {
                    closest = Some(errs);
                }
            }
            if !ok {
                let hint = closest
                    .and_then(|c| c.into_iter().next())
                    .map(|e| format!(" (closest: {e})"))
                    .unwrap_or_default();
                self.fail(
                    path,
                    format!("matches none of the anyOf alternatives{hint}"),
                );
            }
        }
        if let Some(Value::Array(one)) = map.get("oneOf") {
            let mut matched = 0;
            let mut closest: Option<Vec<String>> = None;
            for s in one {
                let errs = self.passes(s, instance, path, depth + 1);
                if errs.is_empty() {
                    matched += 1;
                } else if closest.as_ref().is_none_or(|c| errs.len() < c.len()) {
                    closest = Some(errs);
                }
            }
            if matched == 0 {
                let hint = closest
                    .and_then(|c| c.into_iter().next())
                    .map(|e| format!(" (closest: {e})"))
                    .unwrap_or_default();
                self.fail(
                    path,
                    format!("matches none of the oneOf alternatives{hint}"),
                );
            } else if matched > 1 {
                self.fail(
                    path,
                    format!("matches {matched} of the oneOf alternatives, expected exactly one"),
                );
            }
        }
        if let Some(not) = map.get("not")
            && self.passes(not, instance, path, depth + 1).is_empty()
        {
            self.fail(path, "matches a schema it must not match (not)");
        }
        if let Some(cond) = map.get("if") {
            let branch = if self.passes(cond, instance, path, depth + 1).is_empty() {
                map.get("then")
            } else {
                map.get("else")
            };
            if let Some(b) = branch {
                self.check(b, instance, path, depth + 1);
            }
        }
    }

    pub(super) fn check_number(&mut self, map: &Map<String, Value>, n: f64, path: &str) {
        let exclusive = |key: &str| map.get(key).and_then(Value::as_bool).unwrap_or(false);
        if let Some(min) = num(map, "minimum") {
            if exclusive("exclusiveMinimum") && n <= min {
                self.fail(path, format!("{n} is not greater than {min}"));
            } else if n < min {
                self.fail(path, format!("{n} is less than the minimum {min}"));
            }
        }
        if let Some(max) = num(map, "maximum") {
            if exclusive("exclusiveMaximum") && n >= max {
                self.fail(path, format!("{n} is not less than {max}"));
            } else if n > max {
                self.fail(path, format!("{n} is greater than the maximum {max}"));
            }
        }
        if let Some(min) = num(map, "exclusiveMinimum")
            && n <= min
        {
            self.fail(path, format!("{n} is not greater than {min}"));
        }
        if let Some(max) = num(map, "exclusiveMaximum")
            && n >= max
        {
            self.fail(path, format!("{n} is not less than {max}"));
        }
        if let Some(m) = num(map, "multipleOf")
            && m > 0.0
        {
            let q = n / m;
            if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                self.fail(path, format!("{n} is not a multiple of {m}"));
            }
        }
    }

    pub(super) fn check_string(&mut self, map: &'a Map<String, Value>, s: &str, path: &str) {
        let len = s.chars().count();
        if let Some(min) = count(map, "minLength")
            && len < min
        {
            self.fail(
                path,
                format!("string of {len} characters is shorter than {min}"),
            );
        }
        if let Some(max) = count(map, "maxLength")
            && len > max
        {
            self.fail(
                path,
                format!("string of {len} characters is longer than {max}"),
            );
        }
        if let Some(Value::String(p)) = map.get("pattern")
            && !self.matches(p, s)
        {
            self.fail(
                path,
                format!(
                    "{} does not match the pattern {p:?}",
                    short(&Value::String(s.to_string()))
                ),
            );
        }
    }

    pub(super) fn check_array(
        &mut self,
        map: &'a Map<String, Value>,
        items: &[Value],
        path: &mut String,
        depth: usize,
    ) {
        let n = items.len();
        if let Some(min) = count(map, "minItems")
            && n < min
        {
            self.fail(path, format!("{n} items, expected at least {min}"));
        }
        if let Some(max) = count(map, "maxItems")
            && n > max
        {
            self.fail(path, format!("{n} items, expected at most {max}"));
        }
        if map.get("uniqueItems") == Some(&Value::Bool(true)) {
            'outer: for i in 0..n {
                for j in i + 1..n {
                    if json_eq(&items[i], &items[j]) {
                        self.fail(
                            path,
                            format!("items {i} and {j} are equal, expected unique items"),
                        );
                        break 'outer;
                    }
                }
            }
        }
        // Tuple forms: 2020-12 `prefixItems` (then `items` for the rest) or draft-7 array `items`
        // (then `additionalItems`).
        let (prefix, rest): (&[Value], Option<&'a Value>) =
            match (map.get("prefixItems"), map.get("items")) {
                (Some(Value::Array(p)), rest) => (p.as_slice(), rest),
                (None, Some(Value::Array(p))) => (p.as_slice(), map.get("additionalItems")),
                (_, rest) => (&[], rest),
            };
        for (i, item) in items.iter().enumerate() {
            let schema = match prefix.get(i) {
                Some(s) => s,
                None => match rest {
                    Some(s) => s,
                    None => continue,
                },
            };
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            self.check(schema, item, path, depth + 1);
            path.truncate(len);
        }
        if let Some(contains) = map.get("contains") {
            let found = items
                .iter()
                .filter(|item| self.passes(contains, item, path, depth + 1).is_empty())
                .count();
            let min = count(map, "minContains").unwrap_or(1);
            if found < min {
                self.fail(
                    path,
                    format!("{found} items match `contains`, expected at least {min}"),
                );
            }
            if let Some(max) = count(map, "maxContains")
                && found > max
            {
                self.fail(
                    path,
                    format!("{found} items match `contains`, expected at most {max}"),
                );
            }
        }
    }

    pub(super) fn check_object(
        &mut self,
        map: &'a Map<String, Value>,
        obj: &Map<String, Value>,
        path: &mut String,
        depth: usize,
    ) {
        if let Some(Value::Array(required)) = map.get("required") {
            for key in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(key) {
                    let len = path.len();
                    push_key(path, key);
                    self.fail(path, "required property is missing");
                    path.truncate(len);
                }
            }
        }
        let n = obj.len();
        if let Some(min) = count(map, "minProperties")
            && n < min
        {
            self.fail(path, format!("{n} properties, expected at least {min}"));
        }
        if let Some(max) = count(map, "maxProperties")
            && n > max
        {
            self.fail(path, format!("{n} properties, expected at most {max}"));
        }
        let properties = map.get("properties").and_then(Value::as_object);
        let patterns = map.get("patternProperties").and_then(Value::as_object);
        let additional = map.get("additionalProperties");
        for (key, value) in obj {
            let len = path.len();
            push_key(path, key);
            let mut known = false;
            if let Some(schema) = properties.and_then(|p| p.get(key)) {
                known = true;
                self.check(schema, value, path, depth + 1);
            }
            if let Some(patterns) = patterns {
                for (pattern, schema) in patterns {
                    if self.matches(pattern, key) {
                        known = true;
                        self.check(schema, value, path, depth + 1);
                    }
                }
            }
            if !known {
                match additional {
                    Some(Value::Bool(false)) => self.fail(
                        path,
                        "property is not allowed (additionalProperties: false)",
                    ),
                    Some(schema) => self.check(schema, value, path, depth + 1),
                    None => {}
                }
            }
            path.truncate(len);
        }
    }
}
