//! What a run reports as it goes. The executor emits these and never prints; reporters turn
//! them into progress bars, plain lines or JSON.

use crate::workspace::{Manifest, TaskRecord};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedTask {
    pub name: String,
    pub agent: String,
    pub model: String,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run_id: String,
        orchestra: String,
        goal: String,
        /// The value of each input (`--var`, `--vars`, defaults), by name.
        inputs: std::collections::BTreeMap<String, String>,
        workspace: PathBuf,
        strategy: String,
        /// Tasks in plan order.
        tasks: Vec<PlannedTask>,
        /// The folder the previous run was moved to, if any.
        archived_previous: Option<String>,
    },
    TaskStarted {
        name: String,
        agent: String,
        model: String,
        number: usize,
        total: usize,
        /// What tools the task may use and which it asked for but lacks, when it has any.
        #[serde(skip_serializing_if = "Option::is_none")]
        tools: Option<String>,
    },
    TaskReused {
        name: String,
        agent: String,
        number: usize,
        total: usize,
    },
    Token {
        name: String,
        text: String,
    },
    AttemptFailed {
        name: String,
        attempt: u32,
        attempts: u32,
        error: String,
        #[serde(with = "optional_millis")]
        retry_in: Option<Duration>,
        /// Whether the error was worth another try at all.
        retryable: bool,
    },
    /// The model called a tool (during `name`'s task).
    ToolCalled {
        name: String,
        tool: String,
        duration_ms: u64,
        ok: bool,
    },
    /// Flat in JSON, as its siblings: the task's record's fields beside `event`.
    TaskFinished {
        #[serde(flatten)]
        record: TaskRecord,
    },
    TaskSkipped {
        name: String,
        reason: String,
    },
    Stopping {
        reason: String,
    },
    /// The manager's plan, as the workers will run it (and any fallback).
    Planned {
        manager: crate::workspace::ManagerRecord,
    },
    /// The manager's verdict on a task's output.
    Reviewed {
        name: String,
        round: u32,
        verdict: String,
    },
    RunFinished {
        manifest: Box<Manifest>,
    },
}

mod optional_millis {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_u64(d.as_millis() as u64),
            None => serializer.serialize_none(),
        }
    }
}
