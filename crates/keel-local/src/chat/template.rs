//! Renders OpenAI chat messages into the model's prompt with the GGUF's own Jinja chat
//! template (`tokenizer.chat_template`), falling back to plain ChatML when there is none.
//!
//! Environment settings follow Hugging Face's renderer (`trim_blocks`, `lstrip_blocks`,
//! `raise_exception`), so templates written for transformers render the same here.
//! Roles the small chat models were not trained on are mapped to ones they know:
//! `developer` → `system`; a `tool` result becomes a `user` turn whose text says it is a
//! tool result; an assistant's `tool_calls` are appended to its content as text.

use crate::error::LocalError;
use keel_types::openai::{ChatMessage, Role};
use minijinja::{Environment, ErrorKind};
use serde::Serialize;

const TEMPLATE_NAME: &str = "chat";

/// ChatML, used when the GGUF carries no template of its own.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template.
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

#[derive(Serialize)]
struct TemplateMessage {
    role: &'static str,
    content: String,
}

impl ChatTemplate {
    /// Compiles `source` (or ChatML if `None`). `bos_token`/`eos_token` are exposed to the
    /// template as variables, as transformers does.
    pub(crate) fn new(
        source: Option<String>,
        bos_token: String,
        eos_token: String,
    ) -> Result<Self, LocalError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        let source = source.unwrap_or_else(|| CHATML.to_owned());
        env.add_template_owned(TEMPLATE_NAME, source)
            .map_err(|e| LocalError::Load(format!("chat template does not compile: {e}")))?;
        Ok(Self {
            env,
            bos_token,
            eos_token,
        })
    }

    /// Renders the conversation with `add_generation_prompt = true`.
    pub(crate) fn render(&self, messages: &[ChatMessage]) -> Result<String, LocalError> {
        if messages.is_empty() {
            return Err(LocalError::InvalidRequest(
                "messages must not be empty".into(),
            ));
        }
        let messages: Vec<TemplateMessage> = messages.iter().map(to_template_message).collect();
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| LocalError::Inference(format!("chat template missing: {e}")))?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| {
                LocalError::InvalidRequest(format!("chat template rejected the messages: {e}"))
            })
    }
}

fn to_template_message(m: &ChatMessage) -> TemplateMessage {
    let text = m.text_content();
    match m.role {
        Role::System | Role::Developer => TemplateMessage {
            role: "system",
            content: text,
        },
        Role::User => TemplateMessage {
            role: "user",
            content: text,
        },
        Role::Assistant => {
            let mut content = text;
            for call in m.tool_calls.iter().flatten() {
                if !content.is_empty() {
                    content.push('\n');
                }
                content.push_str(&format!(
                    "[tool call {}] {}({})",
                    call.id, call.function.name, call.function.arguments
                ));
            }
            TemplateMessage {
                role: "assistant",
                content,
            }
        }
        Role::Tool => {
            let id = m.tool_call_id.as_deref().unwrap_or("unknown");
            TemplateMessage {
                role: "user",
                content: format!("[tool result {id}]\n{text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chatml_fallback_renders_generation_prompt() {
        let t = ChatTemplate::new(None, String::new(), String::new()).unwrap();
        let out = t
            .render(&[
                ChatMessage::text(Role::Developer, "Be brief."),
                ChatMessage::text(Role::User, "Hi"),
            ])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn tool_messages_become_text() {
        let t = ChatTemplate::new(None, String::new(), String::new()).unwrap();
        let mut tool = ChatMessage::text(Role::Tool, "42");
        tool.tool_call_id = Some("call_1".into());
        let out = t
            .render(&[ChatMessage::text(Role::User, "q"), tool])
            .unwrap();
        assert!(
            out.contains("<|im_start|>user\n[tool result call_1]\n42<|im_end|>"),
            "{out}"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let src = "{{ raise_exception('no system role') }}".to_owned();
        let t = ChatTemplate::new(Some(src), String::new(), String::new()).unwrap();
        let err = t.render(&[ChatMessage::text(Role::User, "q")]).unwrap_err();
        assert!(err.to_string().contains("no system role"), "{err}");
    }

    #[test]
    fn empty_conversation_is_rejected() {
        let t = ChatTemplate::new(None, String::new(), String::new()).unwrap();
        assert!(matches!(t.render(&[]), Err(LocalError::InvalidRequest(_))));
    }
}
