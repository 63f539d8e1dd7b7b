//! `run.json`: what a run did, task by task and attempt by attempt. Written when the run starts,
//! as tasks end (at most a few times a second), and when it ends; always atomically, so it can
//! be read after a crash at any moment.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Reused from the task cache without calling the model.
    Cached,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cached => "cached",
        }
    }

    /// Whether the task has an output others can build on.
    pub fn has_output(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Cached)
    }
}

/// One LLM call of an attempt (an attempt makes several for tool loops and repairs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub response_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    /// The call asked the model to fix a reply that did not match the task's schema.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub repair: bool,
    /// What the provider changed about the request, when it had to (a refused `json_schema`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub number: u32,
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    /// Time spent waiting on the provider (the call itself).
    pub provider_ms: u64,
    /// Time spent waiting for the shared rate limit before the call.
    pub rate_wait_ms: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Why the attempt failed, as a code: `invalid_output`, `timeout`, `http_status`, ...
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_in_ms: Option<u64>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Every LLM call of the attempt, in order.
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    /// Every tool the model called in the attempt, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRecord>,
}

/// One tool call of an attempt.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCallRecord {
    pub name: String,
    /// The arguments as the model sent them (compact JSON, cut at 1 KiB).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arguments: Option<String>,
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    /// The result came from the recording (`--replay`); the tool did not run.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub replayed: bool,
    /// The error text the model got back, when the tool failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskRecord {
    pub name: String,
    pub agent: String,
    pub status: TaskStatus,
    pub provider: String,
    pub model: String,
    pub attempts: Vec<AttemptRecord>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_unix_ms: Option<u64>,
    pub duration_ms: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cache_key: Option<String>,
    /// Why the task failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

impl TaskRecord {
    /// Tokens and cost: the sums over its attempts' calls.
    pub fn recompute_usage(&mut self) {
        self.tokens_in = self.attempts.iter().map(|a| a.tokens_in).sum();
        self.tokens_out = self.attempts.iter().map(|a| a.tokens_out).sum();
        self.cost_usd = self
            .attempts
            .iter()
            .flat_map(|a| &a.calls)
            .map(|c| c.cost_usd)
            .sum();
    }

    /// How many LLM calls its attempts made.
    pub fn calls(&self) -> u64 {
        self.attempts.iter().map(|a| a.calls.len() as u64).sum()
    }
}

/// `tasks/<task>.json`: the record of a task that ran on its own (`super orchestra run-task`,
/// one pod per task), with the run it belongs to and the run's goal. Its `cache_key` is the key
/// of the task's inputs (model, whole request, upstream outputs): a run with the same id and
/// key that finished need not run again. `super orchestra finish` builds `run.json` from them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskFile {
    pub run_id: String,
    pub goal: String,
    /// The run's inputs (`--var`, `--vars`, defaults), for `finish` to put in `run.json`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, String>,
    #[serde(flatten)]
    pub record: TaskRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrchestraRef {
    pub id: String,
    pub name: String,
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub llm_calls: u64,
    pub cost_usd: f64,
    pub succeeded: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The version of `run.json`'s layout; bumped when a field changes meaning.
pub const MANIFEST_SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    #[serde(default)]
    pub schema_version: u32,
    pub run_id: String,
    pub goal: String,
    /// The value of each input (`--var`, `--vars`, or its declared default), by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, String>,
    pub orchestra: OrchestraRef,
    pub workspace: String,
    pub strategy: String,
    pub started_at: String,
    pub started_unix_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ended_at: Option<String>,
    pub duration_ms: u64,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_reason: Option<String>,
    pub tasks: Vec<TaskRecord>,
    /// The hierarchical strategy's manager: its plan as executed, reviews, fallbacks, calls.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub manager: Option<ManagerRecord>,
    pub totals: Totals,
}

/// What the manager of a hierarchical run decided and spent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ManagerRecord {
    /// The manager agent, or `built-in`.
    pub agent: String,
    pub provider: String,
    pub model: String,
    /// The plan as executed: each assignment's task, agent and instructions, in order.
    #[serde(default)]
    pub plan: Vec<AssignmentRecord>,
    /// Declared tasks the plan left out, with the manager's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<AssignmentRecord>,
    /// Each review, in the order they came.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<ReviewRecord>,
    /// What went wrong with the manager and what the run did instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// Each manager call (`plan`, `review <task> <round>`, `synthesis`) as a record.
    #[serde(default)]
    pub calls: Vec<TaskRecord>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AssignmentRecord {
    pub task: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent: String,
    /// The manager's instructions (for a dropped task: its reason).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instructions: String,
    /// A sub-task the manager added.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub added: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReviewRecord {
    pub task: String,
    pub round: u32,
    /// `accept` or `revise`.
    pub verdict: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub feedback: String,
    /// A `revise` the run did not follow, and why (the review or delegation limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_obeyed: Option<String>,
}

impl TaskRecord {
    /// A record before the work starts.
    pub fn pending(name: &str, agent: &str, provider: &str, model: &str) -> TaskRecord {
        TaskRecord {
            name: name.to_string(),
            agent: agent.to_string(),
            status: TaskStatus::Pending,
            provider: provider.to_string(),
            model: model.to_string(),
            attempts: Vec::new(),
            started_unix_ms: None,
            duration_ms: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            output_file: None,
            cache_key: None,
            reason: None,
        }
    }
}

impl Manifest {
    pub fn recompute_totals(&mut self) {
        let mut totals = Totals::default();
        for task in &self.tasks {
            totals.tokens_in += task.tokens_in;
            totals.tokens_out += task.tokens_out;
            totals.llm_calls += task.calls();
            totals.cost_usd += task.cost_usd;
            match task.status {
                TaskStatus::Succeeded => totals.succeeded += 1,
                TaskStatus::Cached => totals.cached += 1,
                TaskStatus::Failed => totals.failed += 1,
                TaskStatus::Skipped => totals.skipped += 1,
                TaskStatus::Pending | TaskStatus::Running => {}
            }
        }
        // The manager's calls count in the totals (and are also shown on their own).
        if let Some(manager) = &mut self.manager {
            manager.tokens_in = manager.calls.iter().map(|c| c.tokens_in).sum();
            manager.tokens_out = manager.calls.iter().map(|c| c.tokens_out).sum();
            manager.cost_usd = manager.calls.iter().map(|c| c.cost_usd).sum();
            totals.tokens_in += manager.tokens_in;
            totals.tokens_out += manager.tokens_out;
            totals.cost_usd += manager.cost_usd;
            totals.llm_calls += manager
                .calls
                .iter()
                .flat_map(|c| &c.attempts)
                .map(|a| a.calls.len() as u64)
                .sum::<u64>();
        }
        self.totals = totals;
    }
}
