//! Tools under `--replay`: the definitions the recorded run offered, and each call answered
//! with the result the recorded run handed back. Nothing runs, no server starts; a call the
//! recording does not hold comes back as an error, and the next model request then misses the
//! recording, so the replay fails closed.

use super::tool::{Tool, ToolContext, ToolDefinition, ToolError};
use crate::provider::record::Replayer;
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

pub(crate) struct ReplayedTool {
    definition: ToolDefinition,
    task: String,
    recording: Arc<Replayer>,
}

/// The tools `task` was offered in the recording, answering from it.
pub(crate) fn replayed_tools(recording: &Arc<Replayer>, task: &str) -> Vec<Arc<dyn Tool>> {
    recording
        .tool_definitions(task)
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            Arc::new(ReplayedTool {
                definition: ToolDefinition {
                    name: d.name,
                    description: d.description,
                    parameters: d.parameters,
                },
                task: task.to_string(),
                recording: Arc::clone(recording),
            }) as Arc<dyn Tool>
        })
        .collect()
}

impl Tool for ReplayedTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        arguments: Value,
        _context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        Box::pin(async move {
            self.recording
                .tool_result(&self.task, &self.definition.name, &arguments)
                .ok_or_else(|| {
                    ToolError::Failed(format!(
                        "the recording holds no result for `{}` called with {arguments} (replay runs no tool)",
                        self.definition.name
                    ))
                })
        })
    }

    fn replayed(&self) -> bool {
        true
    }
}
