//! Settings resolved once. A run's limits come from the command line, the environment, the
//! orchestra file and the playbooks; this module applies the one precedence (flag, then its
//! `SUPER_*` variable, then the task, then the file's `execution`, then the playbook, then the
//! default) and hands the rest of the code plain values: no raw arguments, no `Option` that
//! "cannot be None". The dry run and the run read the same `RunSettings`.

use crate::exec::budget::PriceTable;
use crate::load::Loaded;
use crate::provider::ModelChoice;
use crate::spec::{BudgetSpec, RetryStrategy};
use std::time::Duration;

/// The timeout when nothing sets one.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(300);
/// How often `run.json` may be rewritten while tasks finish.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Where a setting's value came from, for the dry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Task,
    File,
    Flag,
    /// A config file (`super.toml`, the user's config); `super config show` says which.
    Config,
    Default,
}

impl Source {
    /// `task`, `file`, `flag` or `default`, for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Task => "task",
            Source::File => "file",
            Source::Flag => "flag",
            Source::Config => "config",
            Source::Default => "default",
        }
    }

    pub fn describe(self, task_key: &str, file_key: &str, flag: &str) -> String {
        match self {
            Source::Task => format!("the task's `{task_key}`"),
            Source::File => format!("the file's `{file_key}`"),
            Source::Flag => format!("`{flag}`"),
            Source::Config => format!(
                "the config's `{}` (`super config show`)",
                flag.trim_start_matches('-').replace('-', "_")
            ),
            Source::Default => "the default".to_string(),
        }
    }
}

/// Which finished outputs a run may reuse instead of calling the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// A plain run: call every task, store outputs for later reuse.
    Fresh,
    /// `--resume`: reuse every task whose key matches a stored output.
    Resume,
    /// `--from TASK`: rerun this task and everything downstream, reuse the rest.
    From(usize),
    /// `--no-cache`: neither reuse nor store.
    Off,
}

/// One task's resolved limits and model.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// Per attempt; the in-flight call is cancelled when it runs out.
    pub timeout: Duration,
    pub timeout_source: Source,
    pub attempts: u32,
    pub attempts_source: Source,
    pub retry: RetryStrategy,
    pub model: ModelChoice,
    /// The JSON Schema the answer must follow (`output_schema`, `output_schema_file`, or the
    /// playbook's `outputs` under `output_format: json`), checked at load time.
    pub output_schema: Option<std::sync::Arc<crate::structured::OutputSchema>>,
    /// Whether an `invalid_output` failure starts another attempt (a manager's decision does
    /// not: it falls back instead).
    pub retry_invalid_output: bool,
}

/// Limits of the conversation with a server, the same for every task.
#[derive(Debug, Clone)]
pub struct CallLimits {
    /// The first retry waits about this long (`SUPER_RETRY_BASE_MS`, for tests).
    pub retry_base: Duration,
    /// The longest `Retry-After` obeyed; a server asking for more fails the attempt.
    pub max_server_wait: Duration,
    /// The largest reply body accepted (`SUPER_MAX_REPLY_BYTES`).
    pub max_reply_bytes: usize,
}

impl CallLimits {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> CallLimits {
        CallLimits {
            retry_base: env("SUPER_RETRY_BASE_MS")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_secs(1)),
            max_server_wait: crate::provider::headers::MAX_SERVER_WAIT,
            max_reply_bytes: env("SUPER_MAX_REPLY_BYTES")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(crate::provider::http::DEFAULT_MAX_REPLY_BYTES),
        }
    }
}

/// Budget flags given on the command line.
#[derive(Debug, Clone, Default)]
pub struct BudgetFlags {
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_llm_calls: Option<u64>,
    pub max_wall_seconds: Option<f64>,
    pub max_tool_calls: Option<u64>,
}

/// Everything a run needs beside the loaded orchestra.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub goal: String,
    pub reuse: Reuse,
    pub keep_going: bool,
    /// Flags over the file's `execution.budget`.
    pub budget: BudgetSpec,
    pub pricing: PriceTable,
    pub limits: CallLimits,
    pub checkpoint_interval: Duration,
    /// Where a task's files are written: the workspace writer's own threads (a run), or the
    /// runtime's blocking pool where the clock is virtual (tests: tokio's paused clock waits
    /// for blocking-pool work, never for other threads, so it would leap while a file is
    /// written).
    pub writer: crate::workspace::WriterKind,
    /// By task index.
    pub tasks: Vec<TaskSettings>,
    /// The config files' values (`key`, value as TOML, `file:line:col`), for the dry run.
    pub config: Vec<(&'static str, String, String)>,
}

/// A task's settings: its `timeout_seconds`, else the file's `task_timeout_seconds`, else
/// `--timeout` (or the config's `timeout`, whose source says so), else 300 s; its `retry_count`, else the retry strategy's default.
pub fn task_settings(
    loaded: &Loaded,
    index: usize,
    timeout_flag: Option<(u64, Source)>,
) -> TaskSettings {
    let task = &loaded.spec.tasks[index];
    let execution = &loaded.spec.execution;
    let (timeout, timeout_source) = match (
        task.timeout_seconds,
        execution.task_timeout_seconds,
        timeout_flag,
    ) {
        (Some(s), _, _) => (Duration::from_secs(s), Source::Task),
        (None, Some(s), _) => (Duration::from_secs(s), Source::File),
        (None, None, Some((s, source))) => (Duration::from_secs(s), source),
        (None, None, None) => (DEFAULT_TASK_TIMEOUT, Source::Default),
    };
    let (retries, attempts_source) = match task.retry_count {
        Some(n) => (n, Source::Task),
        None => (execution.retry_strategy.default_retries(), Source::Default),
    };
    TaskSettings {
        timeout,
        timeout_source,
        attempts: 1u32.saturating_add(retries),
        attempts_source,
        retry: execution.retry_strategy,
        model: loaded.models[index].clone(),
        output_schema: loaded.schemas.get(index).cloned().flatten(),
        retry_invalid_output: true,
    }
}

/// Each budget: its flag, else the file's `execution.budget`, else the config's `[budget]`
/// (`defaults`).
pub fn budget(file: &BudgetSpec, flags: &BudgetFlags, defaults: &BudgetFlags) -> BudgetSpec {
    BudgetSpec {
        max_tokens: flags.max_tokens.or(file.max_tokens).or(defaults.max_tokens),
        max_cost_usd: flags
            .max_cost_usd
            .or(file.max_cost_usd)
            .or(defaults.max_cost_usd),
        max_llm_calls: flags
            .max_llm_calls
            .or(file.max_llm_calls)
            .or(defaults.max_llm_calls),
        max_wall_seconds: flags
            .max_wall_seconds
            .or(file.max_wall_seconds)
            .or(defaults.max_wall_seconds),
        max_tool_calls: flags
            .max_tool_calls
            .or(file.max_tool_calls)
            .or(defaults.max_tool_calls),
    }
}

/// The budget in words: "at most 100 LLM calls, 20000 tokens, $1.50, 60 s of wall time".
pub fn describe_budget(budget: &BudgetSpec) -> String {
    let mut parts = Vec::new();
    if let Some(n) = budget.max_llm_calls {
        parts.push(format!("{n} LLM calls"));
    }
    if let Some(n) = budget.max_tokens {
        parts.push(format!("{n} tokens"));
    }
    if let Some(usd) = budget.max_cost_usd {
        parts.push(format!("${usd:.2}"));
    }
    if let Some(s) = budget.max_wall_seconds {
        parts.push(format!("{s} s of wall time"));
    }
    if let Some(n) = budget.max_tool_calls {
        parts.push(format!("{n} tool calls"));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        format!("at most {}", parts.join(", "))
    }
}

impl RunSettings {
    /// The settings of every task of `loaded`.
    pub fn tasks_of(loaded: &Loaded, timeout_flag: Option<(u64, Source)>) -> Vec<TaskSettings> {
        (0..loaded.spec.tasks.len())
            .map(|i| task_settings(loaded, i, timeout_flag))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_budgets_in_words() {
        assert_eq!(describe_budget(&BudgetSpec::default()), "none");
        let budget = budget(
            &BudgetSpec {
                max_tokens: Some(100),
                max_llm_calls: Some(9),
                ..BudgetSpec::default()
            },
            &BudgetFlags {
                max_llm_calls: Some(2),
                max_wall_seconds: Some(1.5),
                ..BudgetFlags::default()
            },
            &BudgetFlags {
                max_tokens: Some(5),
                max_cost_usd: Some(0.5),
                ..BudgetFlags::default()
            },
        );
        assert_eq!(
            describe_budget(&budget),
            "at most 2 LLM calls, 100 tokens, $0.50, 1.5 s of wall time"
        );
    }
}
