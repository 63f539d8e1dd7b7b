//! Chat messages and the chat template: the GGUF's `tokenizer.chat_template` (Jinja, rendered
//! with minijinja the way Hugging Face's `apply_chat_template` does, `add_generation_prompt =
//! true`), with a plain ChatML fallback when the template is absent or fails.

use minijinja::{context, Environment, Error, ErrorKind, Value};

use crate::LocalError;

/// One chat message. `role` is `system`, `user` or `assistant`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A chat template: the model's own Jinja template when it has a working one, else ChatML.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: Option<String>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// A template from Jinja source (`None` means ChatML). A template that does not compile is
    /// kept out: [`ChatTemplate::is_fallback`] then reports true.
    pub fn new(source: Option<String>, bos_token: &str, eos_token: &str) -> Self {
        let source = source.filter(|s| {
            let env = environment();
            !s.trim().is_empty() && env.template_from_str(s).is_ok()
        });
        Self {
            source,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        }
    }

    /// Plain ChatML (what SmolLM2's template produces when a system message is given).
    pub fn chatml() -> Self {
        Self::new(None, "<|im_start|>", "<|im_end|>")
    }

    /// True when renders use the ChatML fallback rather than the model's template.
    pub fn is_fallback(&self) -> bool {
        self.source.is_none()
    }

    /// The Jinja source in use, if any.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Render messages followed by the assistant generation prompt. Falls back to ChatML if
    /// the model's template fails on these messages.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, LocalError> {
        if let Some(source) = &self.source {
            if let Ok(text) = self.render_jinja(source, messages) {
                return Ok(text);
            }
        }
        Ok(render_chatml(messages))
    }

    /// Render with the model's template only, reporting its error (for diagnostics).
    pub fn render_strict(&self, messages: &[ChatMessage]) -> Result<String, LocalError> {
        match &self.source {
            Some(source) => self
                .render_jinja(source, messages)
                .map_err(|e| LocalError::Template(format!("{e:#}"))),
            None => Ok(render_chatml(messages)),
        }
    }

    fn render_jinja(&self, source: &str, messages: &[ChatMessage]) -> Result<String, Error> {
        let env = environment();
        let template = env.template_from_str(source)?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        template.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })
    }
}

/// The Jinja environment Hugging Face uses for chat templates: `trim_blocks`,
/// `lstrip_blocks`, and a `raise_exception` function.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env
}

/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then `<|im_start|>assistant\n`.
pub fn render_chatml(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(&m.role);
        out.push('\n');
        out.push_str(&m.content);
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

impl ChatTemplate {
    /// The template a GGUF file carries (`tokenizer.chat_template`), with its tokenizer's BOS
    /// and EOS texts; the ChatML fallback when it has none.
    pub fn from_gguf(
        content: &candle_core::quantized::gguf_file::Content,
        tokenizer: &crate::Tokenizer,
    ) -> ChatTemplate {
        let source = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let text = |id: Option<u32>| {
            id.and_then(|i| tokenizer.id_to_token(i))
                .unwrap_or_default()
                .to_owned()
        };
        ChatTemplate::new(source, &text(tokenizer.bos_id()), &text(tokenizer.eos_id()))
    }
}

/// Counts the tokens a conversation's prompt takes, from the GGUF's metadata alone (tokenizer
/// and chat template, no weights): what a dry run needs, in milliseconds.
pub struct PromptCounter {
    tokenizer: crate::Tokenizer,
    template: ChatTemplate,
}

impl PromptCounter {
    pub fn from_gguf_file(path: &std::path::Path) -> Result<PromptCounter, LocalError> {
        if !path.exists() {
            return Err(LocalError::ModelNotFound { path: path.into() });
        }
        let file = std::fs::File::open(path).map_err(|e| LocalError::io("open", path, e))?;
        let mut reader = std::io::BufReader::new(file);
        let content =
            candle_core::quantized::gguf_file::Content::read(&mut reader).map_err(|e| {
                LocalError::Gguf {
                    path: path.into(),
                    message: e.to_string(),
                }
            })?;
        let tokenizer = crate::Tokenizer::from_gguf(&content)?;
        let template = ChatTemplate::from_gguf(&content, &tokenizer);
        Ok(PromptCounter {
            tokenizer,
            template,
        })
    }

    /// The prompt's tokens. A prompt longer than [`EXACT_COUNT_BYTES`] (far beyond the
    /// model's context) is counted exactly over its first `EXACT_COUNT_BYTES` and extrapolated
    /// by length, so a dry run stays fast and linear on a huge description (a 100 MB one took
    /// minutes and gigabytes when every byte went through the tokenizer).
    pub fn count(&self, messages: &[ChatMessage]) -> Result<usize, LocalError> {
        let prompt = self.template.render(messages)?;
        if prompt.len() <= EXACT_COUNT_BYTES {
            return Ok(self.tokenizer.token_count(&prompt));
        }
        let mut cut = EXACT_COUNT_BYTES;
        while !prompt.is_char_boundary(cut) {
            cut -= 1;
        }
        let counted = self.tokenizer.token_count(&prompt[..cut]);
        Ok((counted as u128 * prompt.len() as u128 / cut.max(1) as u128) as usize)
    }
}

/// Prompts up to this size are counted token by token; longer ones are extrapolated.
pub const EXACT_COUNT_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_matches_chatml_with_a_system_message() {
        let t = ChatTemplate::new(Some(SMOLLM2.into()), "<|im_start|>", "<|im_end|>");
        assert!(!t.is_fallback());
        let msgs = [ChatMessage::system("Be brief."), ChatMessage::user("hi")];
        let out = t.render_strict(&msgs).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(out, render_chatml(&msgs));
    }

    #[test]
    fn smollm2_template_injects_its_default_system_message() {
        let t = ChatTemplate::new(Some(SMOLLM2.into()), "<|im_start|>", "<|im_end|>");
        let out = t.render(&[ChatMessage::user("hi")]).unwrap();
        assert!(out.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
        assert!(out.ends_with("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"));
    }

    #[test]
    fn broken_or_missing_templates_fall_back_to_chatml() {
        let msgs = [ChatMessage::user("hi")];
        let broken = ChatTemplate::new(Some("{% for %}".into()), "", "");
        assert!(broken.is_fallback());
        assert_eq!(broken.render(&msgs).unwrap(), render_chatml(&msgs));
        let raising = ChatTemplate::new(
            Some("{{ raise_exception('no') }}".into()),
            "<|im_start|>",
            "<|im_end|>",
        );
        assert!(!raising.is_fallback());
        assert_eq!(raising.render(&msgs).unwrap(), render_chatml(&msgs));
        assert!(raising.render_strict(&msgs).is_err());
        assert_eq!(
            ChatTemplate::chatml().render(&[]).unwrap(),
            "<|im_start|>assistant\n"
        );
    }
}
