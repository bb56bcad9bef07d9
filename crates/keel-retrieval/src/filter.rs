//! Metadata filters: `{"lang": "en", "year": {"$gte": 2020}, "tag": {"$in": ["a", "b"]}}`.
//! Every condition must hold. A condition on a field is a value (equality; against an array
//! field: membership) or an object of operators: `$eq $ne $gt $gte $lt $lte $in $nin`.
//! Fields are document metadata keys, plus `document_id`. Filters are evaluated per chunk
//! inside both searches (BM25 collector, HNSW traversal), never after cutting to top-k.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    conditions: Vec<(String, Cond)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Value),
    Ne(Value),
    Range { op: RangeOp, value: Value },
    In(Vec<Value>),
    Nin(Vec<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Filter {
    /// Parses a filter object; errors name the offending path under `param` (`filters.year`).
    pub fn parse(value: &Value, param: &str) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!("{param} must be an object of field conditions"));
        };
        let mut conditions = Vec::new();
        for (field, cond) in map {
            let path = format!("{param}.{field}");
            if field.is_empty() || field.starts_with('$') {
                return Err(format!(
                    "{path}: a field name must not be empty or start with '$'"
                ));
            }
            match cond {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        return Err(format!("{path}: an operator object needs an operator"));
                    }
                    for (op, v) in ops {
                        conditions.push((field.clone(), parse_op(op, v, &path)?));
                    }
                }
                v => {
                    scalar(v, &path)?;
                    conditions.push((field.clone(), Cond::Eq(v.clone())));
                }
            }
        }
        Ok(Self { conditions })
    }

    /// An equality filter from `(field, value)` pairs (a route's filters taken from request
    /// metadata).
    pub fn equalities(pairs: impl IntoIterator<Item = (String, Value)>) -> Self {
        Self {
            conditions: pairs.into_iter().map(|(f, v)| (f, Cond::Eq(v))).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Both filters' conditions.
    pub fn and(mut self, other: Filter) -> Self {
        self.conditions.extend(other.conditions);
        self
    }

    /// Whether a chunk of the document `document_id` with `metadata` passes.
    pub fn matches(&self, document_id: &str, metadata: &Map<String, Value>) -> bool {
        self.conditions.iter().all(|(field, cond)| {
            if field == "document_id" {
                cond.holds(Some(&Value::String(document_id.to_owned())))
            } else {
                cond.holds(metadata.get(field))
            }
        })
    }
}

fn parse_op(op: &str, v: &Value, path: &str) -> Result<Cond, String> {
    let list = |v: &Value| -> Result<Vec<Value>, String> {
        match v {
            Value::Array(items) if !items.is_empty() => {
                for i in items {
                    scalar(i, &format!("{path}.{op}"))?;
                }
                Ok(items.clone())
            }
            _ => Err(format!("{path}.{op} must be a non-empty array")),
        }
    };
    let range = |op: RangeOp| -> Result<Cond, String> {
        match v {
            Value::Number(_) | Value::String(_) => Ok(Cond::Range {
                op,
                value: v.clone(),
            }),
            _ => Err(format!(
                "{path}.{}: must be a number or a string",
                op_name(op)
            )),
        }
    };
    match op {
        "$eq" => scalar(v, &format!("{path}.$eq")).map(|()| Cond::Eq(v.clone())),
        "$ne" => scalar(v, &format!("{path}.$ne")).map(|()| Cond::Ne(v.clone())),
        "$gt" => range(RangeOp::Gt),
        "$gte" => range(RangeOp::Gte),
        "$lt" => range(RangeOp::Lt),
        "$lte" => range(RangeOp::Lte),
        "$in" => list(v).map(Cond::In),
        "$nin" => list(v).map(Cond::Nin),
        other => Err(format!(
            "{path}: unknown operator \"{other}\" (one of $eq $ne $gt $gte $lt $lte $in $nin)"
        )),
    }
}

fn op_name(op: RangeOp) -> &'static str {
    match op {
        RangeOp::Gt => "$gt",
        RangeOp::Gte => "$gte",
        RangeOp::Lt => "$lt",
        RangeOp::Lte => "$lte",
    }
}

fn scalar(v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        _ => Err(format!("{path}: must be a string, number or boolean")),
    }
}

/// Equality across JSON number representations (1 == 1.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `field` equals `v`, or, for an array field, contains it.
fn has(field: &Value, v: &Value) -> bool {
    match field {
        Value::Array(items) => items.iter().any(|i| same(i, v)),
        f => same(f, v),
    }
}

impl Cond {
    fn holds(&self, field: Option<&Value>) -> bool {
        match (self, field) {
            (Self::Ne(_) | Self::Nin(_), None) => true,
            (_, None) => false,
            (Self::Eq(v), Some(f)) => has(f, v),
            (Self::Ne(v), Some(f)) => !has(f, v),
            (Self::In(vs), Some(f)) => vs.iter().any(|v| has(f, v)),
            (Self::Nin(vs), Some(f)) => !vs.iter().any(|v| has(f, v)),
            (Self::Range { op, value }, Some(f)) => compare(f, value).is_some_and(|o| {
                use std::cmp::Ordering::*;
                match op {
                    RangeOp::Gt => o == Greater,
                    RangeOp::Gte => o != Less,
                    RangeOp::Lt => o == Less,
                    RangeOp::Lte => o != Greater,
                }
            }),
        }
    }
}

/// Numbers compare as numbers, strings as strings (ISO dates order correctly); mixed: none.
fn compare(field: &Value, bound: &Value) -> Option<std::cmp::Ordering> {
    match (field, bound) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_range_and_sets() {
        let f = Filter::parse(
            &json!({"lang": "en", "year": {"$gte": 2020, "$lt": 2024}, "tag": {"$in": ["a", "b"]}}),
            "filters",
        )
        .unwrap();
        assert!(f.matches(
            "d",
            &meta(json!({"lang": "en", "year": 2021, "tag": ["x", "b"]}))
        ));
        assert!(!f.matches("d", &meta(json!({"lang": "de", "year": 2021, "tag": "a"}))));
        assert!(!f.matches("d", &meta(json!({"lang": "en", "year": 2024, "tag": "a"}))));
        assert!(!f.matches(
            "d",
            &meta(json!({"lang": "en", "year": 2020.0, "tag": "c"}))
        ));
        assert!(f.matches(
            "d",
            &meta(json!({"lang": "en", "year": 2020.0, "tag": "a"}))
        ));
        // A missing field fails a positive condition.
        assert!(!f.matches("d", &meta(json!({"lang": "en", "tag": "a"}))));
    }

    #[test]
    fn negations_pass_a_missing_field() {
        let f = Filter::parse(&json!({"lang": {"$ne": "de"}, "t": {"$nin": [1, 2]}}), "f").unwrap();
        assert!(f.matches("d", &meta(json!({}))));
        assert!(!f.matches("d", &meta(json!({"lang": "de"}))));
        assert!(!f.matches("d", &meta(json!({"t": 2}))));
    }

    #[test]
    fn document_id_is_a_field_and_strings_compare_in_order() {
        let f = Filter::parse(
            &json!({"document_id": {"$in": ["a", "b"]}, "date": {"$gte": "2024-01-01"}}),
            "filters",
        )
        .unwrap();
        assert!(f.matches("a", &meta(json!({"date": "2024-06-30"}))));
        assert!(!f.matches("c", &meta(json!({"date": "2024-06-30"}))));
        assert!(!f.matches("a", &meta(json!({"date": "2023-12-31"}))));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Filter::parse(&json!({"year": {"$around": 3}}), "filters").unwrap_err();
        assert!(
            e.starts_with("filters.year: unknown operator \"$around\""),
            "{e}"
        );
        let e = Filter::parse(&json!({"tag": {"$in": []}}), "filters").unwrap_err();
        assert!(e.starts_with("filters.tag.$in"), "{e}");
        let e = Filter::parse(&json!({"x": [1]}), "filters").unwrap_err();
        assert!(e.starts_with("filters.x:"), "{e}");
        let e = Filter::parse(&json!([1]), "filters").unwrap_err();
        assert!(e.starts_with("filters must be"), "{e}");
        let e = Filter::parse(&json!({"y": {"$gt": true}}), "filters").unwrap_err();
        assert!(e.starts_with("filters.y.$gt"), "{e}");
    }
}
