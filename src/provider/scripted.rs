//! A scripted fake provider for tests: each call takes the next step of a script (a reply, an
//! error, a delay then a reply) and every request is kept for assertions. Delays use tokio's
//! clock, so tests run in virtual time.

use super::chat::{CallContext, ChatProvider};
use super::types::{ChatRequest, ChatResponse, ProviderError, Usage};
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Step {
    Reply(String),
    Fail(ProviderError),
    /// Wait this long (virtual time), then take the next step.
    Delay(Duration, Box<Step>),
}

pub struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    /// The step when the script is used up.
    fallback: Step,
    pub requests: Mutex<Vec<(String, ChatRequest)>>,
}

impl Scripted {
    pub fn new(steps: Vec<Step>, fallback: Step) -> Scripted {
        Scripted {
            steps: Mutex::new(steps.into()),
            fallback,
            requests: Mutex::new(Vec::new()),
        }
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }
}

fn run(step: Step) -> BoxFuture<'static, Result<ChatResponse, ProviderError>> {
    Box::pin(async move {
        match step {
            Step::Reply(text) => Ok(ChatResponse::text(
                text,
                Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                },
            )),
            Step::Fail(error) => Err(error),
            Step::Delay(wait, next) => {
                tokio::time::sleep(wait).await;
                run(*next).await
            }
        }
    })
}

impl ChatProvider for Scripted {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        call: CallContext<'a>,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push((call.task.to_string(), request.clone()));
        }
        let step = self
            .steps
            .lock()
            .ok()
            .and_then(|mut s| s.pop_front())
            .unwrap_or_else(|| self.fallback.clone());
        run(step)
    }
}
