//! Reading request bodies: bounded by `server.max_body_bytes` (413 past it, never buffered
//! beyond it) and parsed with errors that name the line/column (bad JSON) or the field
//! (wrong type, missing field).

use axum::body::Body;
use keel_types::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;

/// Reads at most `limit` bytes; a larger body is a 413 naming the limit.
pub async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body is larger than the limit of {limit} bytes"),
            )
        } else {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("could not read the request body: {e}"),
            )
        }
    })
}

/// Parses JSON into `T`. Syntax errors name line and column; type errors name the field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the request body is empty; expected a JSON object",
        ));
    }
    // The common case, a valid body, without tracking field paths; only a failed parse is
    // parsed again with them, to name the field (deserializing is deterministic: it fails
    // the same way).
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                syntax_error(&inner)
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                let param = if path == "." {
                    None
                } else {
                    Some(path.clone())
                };
                let message = match &param {
                    Some(p) => format!(
                        "invalid value for '{p}': {}",
                        strip_position(&inner.to_string())
                    ),
                    None => format!("invalid request: {}", strip_position(&inner.to_string())),
                };
                ApiError {
                    code: ErrorCode::InvalidRequest,
                    message,
                    param,
                    retry_after: None,
                }
            }
        }
    })?;
    // Anything but whitespace after the value (`{...} {...}`) is not one JSON document.
    de.end().map_err(|e| syntax_error(&e))?;
    Ok(value)
}

fn syntax_error(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidJson,
        format!(
            "the request body is not valid JSON: {} at line {} column {}",
            strip_position(&e.to_string()),
            e.line(),
            e.column()
        ),
    )
}

/// serde_json appends " at line L column C"; we say it our way.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_types::openai::ChatCompletionRequest;

    #[test]
    fn syntax_error_names_line_and_column() {
        let e =
            parse_json::<ChatCompletionRequest>(b"{\n  \"model\": \"m\",\n  \"messages\": [}\n")
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert!(e.message.contains("line 3 column"), "{}", e.message);
    }

    #[test]
    fn trailing_data_is_a_syntax_error_and_trailing_whitespace_is_not() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
        let ok = parse_json::<ChatCompletionRequest>(&[&body[..], b" \n\t"].concat()).unwrap();
        assert_eq!(ok.model, "m");
        let e = parse_json::<ChatCompletionRequest>(&[&body[..], b" {}"].concat()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert!(e.message.contains("trailing characters"), "{}", e.message);
        assert!(e.message.contains("line 1 column"), "{}", e.message);
    }

    #[test]
    fn type_error_names_the_field() {
        let e = parse_json::<ChatCompletionRequest>(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        let e = parse_json::<ChatCompletionRequest>(
            br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    }

    proptest::proptest! {
        /// No byte string makes parsing panic; every failure is a 400 with a message.
        #[test]
        fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Err(e) = parse_json::<ChatCompletionRequest>(&bytes) {
                proptest::prop_assert_eq!(e.code.http_status(), 400);
                proptest::prop_assert!(!e.message.is_empty());
            }
        }

        /// JSON-shaped noise around the real field names still yields a named, 400 error.
        #[test]
        fn json_with_wrong_shapes_is_a_400(temp in proptest::prelude::any::<String>(), n in proptest::prelude::any::<i64>()) {
            let body = serde_json::json!({"model": temp, "messages": n, "temperature": temp});
            let e = parse_json::<ChatCompletionRequest>(body.to_string().as_bytes()).unwrap_err();
            proptest::prop_assert_eq!(e.code.http_status(), 400);
            proptest::prop_assert!(e.param.is_some());
        }
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse_json::<ChatCompletionRequest>(br#"{"model":"m"}"#).unwrap_err();
        assert!(
            e.message.contains("missing field `messages`"),
            "{}",
            e.message
        );
    }
}
