//! A loopback stub LLM server for tests and benchmarks. It speaks OpenAI chat
//! completions (`/v1/chat/completions`, `/chat/completions`, Azure's
//! `/openai/deployments/{name}/chat/completions`), Ollama (`/api/chat`) and
//! Anthropic Messages (`/v1/messages`), streaming and not, with deterministic replies,
//! scripted failures, latency, a request log and in-flight statistics.
//!
//! ```no_run
//! use llm_stub::{Step, StubConfig, StubServer};
//! let server = StubServer::start_background(
//!     StubConfig::default().fail_first(1, 429).retry_after("1").script(vec![Step::Ok]),
//! )
//! .unwrap();
//! println!("{}", server.openai_base_url());
//! ```
//!
//! This file owns only the crate layout and its public re-exports.

mod config;
mod http;
mod protocol;
mod record;
mod server;

pub use config::{AuthRule, IntoDelay, Reply, ReplyFn, Step, StubConfig};
pub use record::{
    content_text, count_input_tokens, count_words, default_reply, last_user_message, split_pieces,
    RecordedRequest,
};
pub use server::StubServer;
