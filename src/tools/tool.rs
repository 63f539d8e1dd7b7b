//! The one interface every tool has, built-in or MCP: a definition the model is offered
//! (`{name, description, parameters}`), an async call on JSON arguments, and the limits applied
//! around every call (a per-tool timeout and an output cap). It owns no tool and no protocol:
//! the executor decides when to call, this module only runs one call safely.

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default time one tool call may take.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most characters of a tool result handed back to the model.
pub const DEFAULT_OUTPUT_CAP: usize = 16 * 1024;

/// What the model is offered: a name, what the tool does, and its arguments as JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A failed call. It goes back to the model as the tool's result (it may recover); it never
/// fails the task by itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments for `{tool}`: {reason}")]
    InvalidArguments { tool: String, reason: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
    #[error("`{tool}` timed out after {seconds:.1} s")]
    TimedOut { tool: String, seconds: f64 },
}

impl ToolError {
    pub fn invalid(tool: &str, reason: impl Into<String>) -> ToolError {
        ToolError::InvalidArguments {
            tool: tool.to_string(),
            reason: reason.into(),
        }
    }
}

/// What a call may touch: the workspace folder (file tools are confined to it) and the
/// permissions the orchestra granted.
#[derive(Debug, Clone, Default)]
pub struct ToolContext {
    pub workspace: PathBuf,
}

/// One tool. Object-safe: the executor holds `Arc<dyn Tool>`.
pub trait Tool: Send + Sync {
    fn definition(&self) -> &ToolDefinition;

    /// Runs one call. Limits are applied by [`run_tool`], not here.
    fn call<'a>(
        &'a self,
        arguments: Value,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>>;

    /// This tool's own time limit, when it differs from the run's default.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Whether calls are answered from a recording (`--replay`) instead of running.
    fn replayed(&self) -> bool {
        false
    }
}

/// The limits around one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallLimits {
    pub timeout: Duration,
    pub output_cap: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            timeout: DEFAULT_TOOL_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
        }
    }
}

/// The result of one call, ready for the conversation and the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutcome {
    /// The text the model gets back: the result, or `error: ...`.
    pub text: String,
    pub is_error: bool,
    pub truncated: bool,
    pub duration: Duration,
}

/// Runs one call with its timeout (the tool's own, capped by `limits.timeout`) and caps its
/// output. Errors become text for the model.
pub async fn run_tool(
    tool: &dyn Tool,
    arguments: Value,
    context: &ToolContext,
    limits: CallLimits,
) -> ToolOutcome {
    let started = Instant::now();
    let timeout = tool
        .timeout()
        .map_or(limits.timeout, |own| own.min(limits.timeout));
    let result = match tokio::time::timeout(timeout, tool.call(arguments, context)).await {
        Ok(result) => result,
        Err(_) => Err(ToolError::TimedOut {
            tool: tool.definition().name.clone(),
            seconds: timeout.as_secs_f64(),
        }),
    };
    let (text, is_error) = match result {
        Ok(text) => (text, false),
        Err(error) => (format!("error: {error}"), true),
    };
    let (text, truncated) = cap_text(text, limits.output_cap);
    ToolOutcome {
        text,
        is_error,
        truncated,
        duration: started.elapsed(),
    }
}

/// Cuts `text` to at most `cap` bytes on a character boundary, saying so at the end.
pub fn cap_text(mut text: String, cap: usize) -> (String, bool) {
    if text.len() <= cap {
        return (text, false);
    }
    let mut cut = cap;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("\n[output truncated: {dropped} more bytes]"));
    (text, true)
}

/// Reads a required string argument.
pub(crate) fn str_arg<'v>(
    tool: &str,
    arguments: &'v Value,
    key: &str,
) -> Result<&'v str, ToolError> {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::invalid(tool, format!("`{key}` (a string) is required")))
}

/// Reads an optional string argument.
pub(crate) fn opt_str<'v>(arguments: &'v Value, key: &str) -> Option<&'v str> {
    arguments.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleepy(ToolDefinition);
    impl Tool for Sleepy {
        fn definition(&self) -> &ToolDefinition {
            &self.0
        }
        fn call<'a>(
            &'a self,
            _: Value,
            _: &'a ToolContext,
        ) -> BoxFuture<'a, Result<String, ToolError>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok("late".into())
            })
        }
        fn timeout(&self) -> Option<Duration> {
            Some(Duration::from_millis(20))
        }
    }

    #[tokio::test]
    async fn a_slow_tool_times_out_with_its_own_limit() {
        let tool = Sleepy(ToolDefinition {
            name: "sleepy".into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
        });
        let outcome = run_tool(
            &tool,
            Value::Null,
            &ToolContext::default(),
            CallLimits::default(),
        )
        .await;
        assert!(outcome.is_error);
        assert!(outcome.text.contains("timed out"), "{}", outcome.text);
        assert!(outcome.duration < Duration::from_secs(5));
    }

    #[test]
    fn output_is_capped_on_a_char_boundary() {
        let (text, truncated) = cap_text("ééééé".into(), 3);
        assert!(truncated);
        assert!(text.starts_with('é'));
        assert!(text.contains("[output truncated: 8 more bytes]"), "{text}");
        assert_eq!(cap_text("short".into(), 10), ("short".to_string(), false));
    }
}
