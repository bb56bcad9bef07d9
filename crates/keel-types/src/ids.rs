//! Request and response ids: time-ordered (UUIDv7) so logs sort by creation.

use uuid::Uuid;

/// A new request id, `req_` followed by a UUIDv7 in simple form.
pub fn request_id() -> String {
    format!("req_{}", Uuid::now_v7().simple())
}

/// A new chat completion id in OpenAI's `chatcmpl-` form.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", Uuid::now_v7().simple())
}

/// A new Anthropic message id in its `msg_` form.
pub fn message_id() -> String {
    format!("msg_{}", Uuid::now_v7().simple())
}

/// A new tool call id in OpenAI's `call_` form.
pub fn tool_call_id() -> String {
    format!("call_{}", &Uuid::new_v4().simple().to_string()[..24])
}
