//! Request and response ids: time-ordered (UUIDv7) so logs sort by creation.

use uuid::Uuid;

/// A new request id, `req_` followed by a UUIDv7 in simple form.
pub fn request_id() -> String {
    prefixed("req_", Uuid::now_v7())
}

/// A new chat completion id in OpenAI's `chatcmpl-` form.
pub fn completion_id() -> String {
    prefixed("chatcmpl-", Uuid::now_v7())
}

/// A new Anthropic message id in its `msg_` form.
pub fn message_id() -> String {
    prefixed("msg_", Uuid::now_v7())
}

/// A new tool call id in OpenAI's `call_` form.
pub fn tool_call_id() -> String {
    format!("call_{}", &Uuid::new_v4().simple().to_string()[..24])
}

/// `prefix` and `id` in simple form, written straight into one string (no `format!`
/// machinery: a request id is made on every request).
fn prefixed(prefix: &str, id: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    let hex = id.simple().encode_lower(&mut buf);
    let mut s = String::with_capacity(prefix.len() + hex.len());
    s.push_str(prefix);
    s.push_str(hex);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_prefix_and_32_hex_digits_and_sort_by_time() {
        for (id, prefix) in [
            (request_id(), "req_"),
            (completion_id(), "chatcmpl-"),
            (message_id(), "msg_"),
        ] {
            let hex = id.strip_prefix(prefix).unwrap();
            assert_eq!(hex.len(), 32, "{id}");
            assert!(
                hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
            assert_eq!(Uuid::parse_str(hex).unwrap().get_version_num(), 7);
        }
        let (a, b) = (request_id(), request_id());
        assert!(a < b, "{a} then {b}");
    }
}
