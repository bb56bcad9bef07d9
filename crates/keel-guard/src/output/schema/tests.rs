use serde_json::json;

use super::*;
use crate::scan::GuardStage;

fn order_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "customer": {"type": "string", "minLength": 1},
            "status": {"enum": ["open", "paid", "void"]},
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/item"}
            },
            "note": {"type": ["string", "null"], "maxLength": 20},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
        },
        "required": ["customer", "status", "items"],
        "additionalProperties": false,
        "$defs": {
            "item": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                    "price": {"type": "number", "exclusiveMinimum": 0}
                },
                "required": ["sku", "qty", "price"],
                "additionalProperties": false
            }
        }
    })
}

#[test]
fn a_valid_document_passes() {
    let text = r#"{"customer": "Ada", "status": "paid", "items": [
        {"sku": "ABC-1234", "qty": 2, "price": 9.5},
        {"sku": "XYZ-0001", "qty": 1.0, "price": 120}
    ], "note": null, "tags": ["a", "b"]}"#;
    assert_eq!(JsonSchemaScanner::validate(&order_schema(), text), Ok(()));
}

#[test]
fn violations_name_the_json_path() {
    let text = r#"{"customer": "", "status": "shipped", "items": [
        {"sku": "ABC-1234", "qty": 2, "price": 9.5},
        {"sku": "abc-12", "qty": 0, "price": "12.00"},
        {"sku": "DEF-5678", "qty": 101, "price": 0, "colour": "red"}
    ], "note": "this note is far too long to fit", "tags": ["a", "a"], "extra": 1}"#;
    let errors = JsonSchemaScanner::validate(&order_schema(), text).unwrap_err();
    let expected = [
        "$.customer: string of 0 characters is shorter than 1",
        "$.status: \"shipped\" is not one of \"open\", \"paid\", \"void\"",
        "$.items[1].sku: \"abc-12\" does not match the pattern \"^[A-Z]{3}-[0-9]{4}$\"",
        "$.items[1].qty: 0 is less than the minimum 1",
        "$.items[1].price: expected number, got string",
        "$.items[2].qty: 101 is greater than the maximum 100",
        "$.items[2].price: 0 is not greater than 0",
        "$.items[2].colour: property is not allowed (additionalProperties: false)",
        "$.note: string of 32 characters is longer than 20",
        "$.tags: items 0 and 1 are equal, expected unique items",
        "$.extra: property is not allowed (additionalProperties: false)",
    ];
    for e in expected {
        assert!(
            errors.iter().any(|x| x == e),
            "missing {e:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn missing_required_and_wrong_root_type() {
    let errors = JsonSchemaScanner::validate(&order_schema(), r#"{"status": "open"}"#).unwrap_err();
    assert_eq!(
        errors,
        vec![
            "$.customer: required property is missing".to_string(),
            "$.items: required property is missing".to_string(),
        ]
    );
    let errors = JsonSchemaScanner::validate(&order_schema(), "[1, 2]").unwrap_err();
    assert_eq!(errors, vec!["$: expected object, got array".to_string()]);
}

#[test]
fn not_json_is_one_violation() {
    let errors =
        JsonSchemaScanner::validate(&order_schema(), "Sure! Here is the order.").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("$: the answer is not valid JSON"),
        "{errors:?}"
    );
}

#[test]
fn fenced_json_is_unwrapped() {
    let text = "```json\n{\"customer\": \"Ada\", \"status\": \"open\", \"items\": [{\"sku\": \"ABC-1234\", \"qty\": 1, \"price\": 1}]}\n```\n";
    assert!(strip_fence(text).1);
    assert_eq!(JsonSchemaScanner::validate(&order_schema(), text), Ok(()));
    // A fence of another language is not unwrapped.
    assert!(!strip_fence("```python\n{}\n```").1);
    assert!(!strip_fence("{\"a\": \"```\"}").1);
}

#[test]
fn combinators_and_conditionals() {
    let schema = json!({
        "type": "object",
        "properties": {
            "contact": {
                "oneOf": [
                    {"type": "object", "properties": {"email": {"type": "string", "pattern": "@"}}, "required": ["email"]},
                    {"type": "object", "properties": {"phone": {"type": "string"}}, "required": ["phone"]}
                ]
            },
            "amount": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]},
            "kind": {"not": {"const": "internal"}},
            "country": {"type": "string"}
        },
        "if": {"properties": {"country": {"const": "US"}}, "required": ["country"]},
        "then": {"required": ["zip"]},
        "else": {"required": ["postcode"]}
    });
    let ok = r#"{"contact": {"email": "a@b.c"}, "amount": "12", "kind": "public", "country": "US", "zip": "10001"}"#;
    assert_eq!(JsonSchemaScanner::validate(&schema, ok), Ok(()));
    let bad = r#"{"contact": {"email": "a@b.c", "phone": "1"}, "amount": 1.5, "kind": "internal", "country": "FR"}"#;
    let errors = JsonSchemaScanner::validate(&schema, bad).unwrap_err();
    assert!(
        errors.contains(
            &"$.contact: matches 2 of the oneOf alternatives, expected exactly one".to_string()
        ),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("$.amount: matches none of the anyOf alternatives (closest: ")),
        "{errors:#?}"
    );
    assert!(
        errors.contains(&"$.kind: matches a schema it must not match (not)".to_string()),
        "{errors:#?}"
    );
    assert!(
        errors.contains(&"$.postcode: required property is missing".to_string()),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn recursive_refs_and_odd_keys() {
    let schema = json!({
        "$ref": "#/definitions/node",
        "definitions": {
            "node": {
                "type": "object",
                "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
                "required": ["value"]
            }
        }
    });
    let ok = r#"{"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}"#;
    assert_eq!(JsonSchemaScanner::validate(&schema, ok), Ok(()));
    let bad = r#"{"value": 1, "children": [{"value": 2, "children": [{"value": "3"}]}]}"#;
    assert_eq!(
        JsonSchemaScanner::validate(&schema, bad),
        Err(vec![
            "$.children[0].children[0].value: expected integer, got string".to_string()
        ])
    );
    let schema = json!({"properties": {"unit price": {"type": "number"}}});
    assert_eq!(
        JsonSchemaScanner::validate(&schema, r#"{"unit price": "1"}"#),
        Err(vec![
            "$[\"unit price\"]: expected number, got string".to_string()
        ])
    );
}

#[test]
fn bad_schemas_are_rejected_at_construction() {
    for schema in [
        json!({"type": "string", "pattern": "(unclosed"}),
        json!({"$ref": "#/$defs/missing"}),
        json!("not a schema"),
    ] {
        let config = JsonSchemaConfig {
            schema: Some(schema.clone()),
            ..JsonSchemaConfig::default()
        };
        assert!(JsonSchemaScanner::new(&config).is_err(), "{schema}");
    }
}

#[test]
fn scanner_reports_fence_and_violations() {
    let scanner = JsonSchemaScanner::new(&JsonSchemaConfig {
        schema: Some(order_schema()),
        ..JsonSchemaConfig::default()
    })
    .unwrap();
    let fenced_ok = "```json\n{\"customer\": \"Ada\", \"status\": \"open\", \"items\": [{\"sku\": \"ABC-1234\", \"qty\": 1, \"price\": 1}]}\n```";
    let scan = scanner
        .scan(&ScanInput::text(fenced_ok, GuardStage::Output))
        .unwrap();
    assert_eq!(scan.findings.len(), 1);
    assert_eq!(scan.findings[0].kind, "json_schema.fenced");
    assert!(scan.score < 0.5);

    let bad = r#"{"customer": "Ada", "status": "lost", "items": []}"#;
    let scan = scanner
        .scan(&ScanInput::text(bad, GuardStage::Output))
        .unwrap();
    let kinds: Vec<&str> = scan.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["json_schema.violation", "json_schema.violation"]
    );
    assert_eq!(scan.score, 1.0);

    let scan = scanner
        .scan(&ScanInput::text("no JSON here", GuardStage::Output))
        .unwrap();
    assert_eq!(scan.findings[0].kind, "json_schema.not_json");

    // Without a configured schema the scanner passes everything.
    let open = JsonSchemaScanner::new(&JsonSchemaConfig::default()).unwrap();
    assert!(
        open.scan(&ScanInput::text("no JSON here", GuardStage::Output))
            .unwrap()
            .findings
            .is_empty()
    );
}

#[test]
fn response_format_yields_the_schema_to_validate() {
    let rf = json!({"type": "json_schema", "json_schema": {"name": "order", "strict": true, "schema": order_schema()}});
    assert_eq!(response_format_schema(&rf), Some(order_schema()));
    let object = response_format_schema(&json!({"type": "json_object"})).unwrap();
    assert_eq!(JsonSchemaScanner::validate(&object, "{}"), Ok(()));
    assert!(JsonSchemaScanner::validate(&object, "[]").is_err());
    assert_eq!(response_format_schema(&json!({"type": "text"})), None);
}

#[test]
fn config_parses_with_defaults() {
    let c: JsonSchemaConfig = serde_json::from_str(r#"{"schema": {"type": "object"}}"#).unwrap();
    assert!(c.allow_fenced);
    assert_eq!(c.schema, Some(json!({"type": "object"})));
    assert!(serde_json::from_str::<JsonSchemaConfig>(r#"{"schemas": {}}"#).is_err());
    // With fences disallowed, a fenced answer is a violation even when its JSON is valid.
    let strict = JsonSchemaScanner::new(&JsonSchemaConfig {
        schema: Some(json!({"type": "object"})),
        allow_fenced: false,
    })
    .unwrap();
    let scan = strict
        .scan(&ScanInput::text("```json\n{}\n```", GuardStage::Output))
        .unwrap();
    assert_eq!(scan.score, 1.0);
}
