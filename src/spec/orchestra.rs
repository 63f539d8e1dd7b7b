//! The orchestra file: every key of the seed's format, read with exact locations. It checks
//! what one file can check on its own (types, names, enumerations, groups); references between
//! tasks and cycles are the planner's job.

use super::decode::Decoder;
use super::tools::{decode_orchestra_tools, decode_task_tools, OrchestraToolsSpec, TaskToolsSpec};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::names::{AgentName, OrchestraId, TaskName};
use crate::source::{Loc, SourceFile};
use crate::yaml::Node;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub const DEFAULT_TASK_TIMEOUT_SECONDS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub const NAMES: [&'static str; 4] = ["low", "medium", "high", "critical"];

    pub fn parse(text: &str) -> Option<Priority> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Some(Priority::Low),
            "medium" => Some(Priority::Medium),
            "high" => Some(Priority::High),
            "critical" => Some(Priority::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Priority::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Sequential,
    Parallel,
    Mixed,
    Hierarchical,
}

impl Strategy {
    pub const NAMES: [&'static str; 4] = ["sequential", "parallel", "mixed", "hierarchical"];

    pub fn parse(text: &str) -> Option<Strategy> {
        match text.to_ascii_lowercase().as_str() {
            "sequential" => Some(Strategy::Sequential),
            "parallel" => Some(Strategy::Parallel),
            "mixed" => Some(Strategy::Mixed),
            "hierarchical" => Some(Strategy::Hierarchical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Strategy::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryStrategy {
    ExponentialBackoff,
    LinearBackoff,
    FixedDelay,
    None,
}

impl RetryStrategy {
    pub const NAMES: [&'static str; 4] = [
        "exponential_backoff",
        "linear_backoff",
        "fixed_delay",
        "none",
    ];

    pub fn parse(text: &str) -> Option<RetryStrategy> {
        match text.to_ascii_lowercase().as_str() {
            "exponential_backoff" | "exponential" => Some(RetryStrategy::ExponentialBackoff),
            "linear_backoff" | "linear" => Some(RetryStrategy::LinearBackoff),
            "fixed_delay" | "fixed" => Some(RetryStrategy::FixedDelay),
            "none" | "no_retry" => Some(RetryStrategy::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        RetryStrategy::NAMES[self as usize]
    }

    /// Retries a task gets when it sets no `retry_count`.
    pub fn default_retries(self) -> u32 {
        match self {
            RetryStrategy::None => 0,
            _ => 2,
        }
    }
}

/// A task name as written in `context`, `dependencies` or `task_groups`, with its place.
#[derive(Debug, Clone)]
pub struct TaskRef {
    pub name: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct DependencySpec {
    pub task: TaskRef,
    /// `completion` (wait for it) or `requires_output` (wait, and pass its output like `context`).
    pub dependency_type: String,
    /// How long the task may wait for this dependency, as written; the dependency's own timeout
    /// bounds the wait today.
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub timeout_seconds: Option<u64>,
}

impl DependencySpec {
    /// Whether the dependency's output reaches the prompt, as `context` does.
    pub fn passes_output(&self) -> bool {
        matches!(
            self.dependency_type
                .trim()
                .to_ascii_lowercase()
                .replace('-', "_")
                .as_str(),
            "requires_output" | "output" | "data"
        )
    }
}

#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: TaskName,
    pub name_loc: Loc,
    pub agent: AgentName,
    pub agent_loc: Loc,
    pub description: String,
    pub description_loc: Loc,
    pub context: Vec<TaskRef>,
    pub dependencies: Vec<DependencySpec>,
    pub priority: Priority,
    pub timeout_seconds: Option<u64>,
    pub retry_count: Option<u32>,
    pub expected_output: Option<String>,
    /// Where `expected_output` is written, for diagnostics about its placeholders.
    pub expected_output_loc: Option<Loc>,
    /// The task's `tools:`, narrowing or widening its agent's.
    pub tools: Option<TaskToolsSpec>,
    /// This task's pod resources (an export to Kubernetes), overriding the file's `resources`.
    pub resources: Option<ResourcesSpec>,
    /// `output_format`, `output_schema`, `output_schema_file`: the shape of the answer.
    pub output: OutputSpec,
}

/// How a task's answer must look, as written; the schema itself is checked at load time.
#[derive(Debug, Clone, Default)]
pub struct OutputSpec {
    pub format: Option<(OutputFormat, Loc)>,
    /// `output_schema:`, a JSON Schema written in YAML.
    pub schema: Option<crate::yaml::Node>,
    /// `output_schema_file:`, relative to the project root (JSON or YAML).
    pub schema_file: Option<(String, Loc)>,
}

/// `output_format`: `text` (the default) or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// `resources: {cpu, memory}` (the file's, or a task's override): Kubernetes quantities,
/// checked at load time; used as both requests and limits of an exported pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcesSpec {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

impl ResourcesSpec {
    /// `self`'s values where given, else `fallback`'s.
    pub fn or(&self, fallback: Option<&ResourcesSpec>) -> ResourcesSpec {
        ResourcesSpec {
            cpu: self
                .cpu
                .clone()
                .or_else(|| fallback.and_then(|f| f.cpu.clone())),
            memory: self
                .memory
                .clone()
                .or_else(|| fallback.and_then(|f| f.memory.clone())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TaskGroupSpec {
    pub name: String,
    pub loc: Loc,
    pub tasks: Vec<TaskRef>,
    pub execution_strategy: Strategy,
    pub max_concurrency: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetSpec {
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_llm_calls: Option<u64>,
    pub max_wall_seconds: Option<f64>,
    /// Tool calls across the whole run (`--max-tool-calls`).
    pub max_tool_calls: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitSpec {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ExecutionSpec {
    pub strategy: Strategy,
    pub max_parallel_tasks: usize,
    /// Where `max_parallel_tasks` was written, for the planner's warnings.
    pub max_parallel_loc: Option<Loc>,
    pub task_timeout_seconds: Option<u64>,
    pub retry_strategy: RetryStrategy,
    pub enable_metrics: bool,
    pub enable_trace: bool,
    pub task_groups: Vec<TaskGroupSpec>,
    pub budget: BudgetSpec,
    pub rate_limits: RateLimitSpec,
    /// `execution.tools`: names allowed or denied for every task, and permissions.
    pub tools: OrchestraToolsSpec,
    /// The hierarchical strategy's manager and its limits.
    pub manager: ManagerSpec,
}

/// `execution.manager`, `max_delegations`, `max_review_rounds`, `allow_new_tasks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerSpec {
    /// An agent of the project; `None`: the built-in manager persona.
    pub agent: Option<(AgentName, Loc)>,
    /// Worker runs the manager may cause (assignments and revisions); default 2 × tasks.
    pub max_delegations: Option<u64>,
    pub max_review_rounds: u32,
    pub allow_new_tasks: bool,
    /// Where any of these keys is written (a warning when the strategy is not hierarchical).
    pub loc: Option<Loc>,
}

impl Default for ManagerSpec {
    fn default() -> Self {
        ManagerSpec {
            agent: None,
            max_delegations: None,
            max_review_rounds: 1,
            allow_new_tasks: false,
            loc: None,
        }
    }
}

impl Default for ExecutionSpec {
    fn default() -> Self {
        ExecutionSpec {
            strategy: Strategy::Sequential,
            max_parallel_tasks: 1,
            max_parallel_loc: None,
            task_timeout_seconds: None,
            retry_strategy: RetryStrategy::ExponentialBackoff,
            enable_metrics: true,
            enable_trace: true,
            task_groups: Vec::new(),
            budget: BudgetSpec::default(),
            rate_limits: RateLimitSpec::default(),
            tools: OrchestraToolsSpec::default(),
            manager: ManagerSpec::default(),
        }
    }
}

/// USD per million tokens, from the file's `pricing:` block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

#[derive(Debug, Clone)]
pub struct OrchestraSpec {
    pub file: Arc<SourceFile>,
    pub id: OrchestraId,
    pub name: String,
    pub description: String,
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub version: Option<String>,
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub workspace_kind: String,
    /// As written, relative to the project root.
    pub workspace_path: String,
    /// Where `workspace.path` is written, when it is.
    pub workspace_path_loc: Option<Loc>,
    pub execution: ExecutionSpec,
    #[allow(
        dead_code,
        reason = "read from the file for completeness; nothing acts on it yet"
    )]
    pub agents: Vec<(AgentName, Loc)>,
    pub tasks: Vec<TaskSpec>,
    /// Names of tasks rejected for an unsafe name; references to them are not reported twice.
    pub rejected_task_names: Vec<String>,
    pub orchestration_type: Option<String>,
    pub replicas: Option<u64>,
    pub resources: Option<ResourcesSpec>,
    pub pricing: HashMap<String, Price>,
    /// `inputs:`, the values `{name}` placeholders take (`--var`, `--vars`, a default); at
    /// load time also the inputs given on the command line that the file does not declare.
    pub inputs: Vec<InputSpec>,
}

/// One input: declared under `inputs:` (with its description and default), or only given
/// (`--var`, `--vars`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    /// Where it is declared; `None` for an input only given on the command line.
    pub loc: Option<Loc>,
    pub description: Option<String>,
    pub default: Option<String>,
}

impl OrchestraSpec {
    /// Whether `name` is an input (declared or given), not a task.
    pub fn is_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i.name == name)
    }

    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.name.as_str() == name)
    }
}

/// The bounds of every number a file may set: beyond them a value is a typo or an attack, never
/// a plan (a retry count of 4294967295 would retry for ever).
pub mod limits {
    pub const MAX_PARALLEL: u64 = 4096;
    /// One day.
    pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
    pub const MAX_RETRY_COUNT: u64 = 20;
    pub const MAX_TOKENS: u64 = 1_000_000_000_000;
    pub const MAX_CALLS: u64 = 10_000_000;
    pub const MAX_USD: f64 = 1_000_000_000.0;
    /// Thirty days.
    pub const MAX_WALL_SECONDS: f64 = 2_592_000.0;
    pub const MAX_RPM: u64 = 10_000_000;
    pub const MAX_TPM: u64 = 10_000_000_000;
    pub const MAX_REPLICAS: u64 = 10_000;
    /// USD per million tokens.
    pub const MAX_PRICE: f64 = 1_000_000.0;
    /// Output tokens a playbook may ask for in one reply.
    pub const MAX_REPLY_TOKENS: u64 = 10_000_000;
}

const TOP_KEYS: &[&str] = &[
    "metadata",
    "orchestra",
    "agents",
    "tasks",
    "orchestration_type",
    "replicas",
    "resources",
    "pricing",
    "inputs",
];
const INPUT_KEYS: &[&str] = &["description", "default"];
const METADATA_KEYS: &[&str] = &[
    "name",
    "id",
    "version",
    "kind",
    "description",
    "created_at",
    "author",
    "tags",
];
const ORCHESTRA_KEYS: &[&str] = &["id", "name", "description", "workspace", "execution"];
const WORKSPACE_KEYS: &[&str] = &["type", "path"];
const EXECUTION_KEYS: &[&str] = &[
    "strategy",
    "max_parallel_tasks",
    "task_timeout_seconds",
    "retry_strategy",
    "enable_metrics",
    "enable_trace",
    "task_groups",
    "budget",
    "rate_limits",
    "tools",
    "manager",
    "max_delegations",
    "max_review_rounds",
    "allow_new_tasks",
];
const GROUP_KEYS: &[&str] = &["name", "tasks", "execution_strategy", "max_concurrency"];
const BUDGET_KEYS: &[&str] = &[
    "max_tokens",
    "max_cost_usd",
    "max_llm_calls",
    "max_wall_seconds",
    "max_tool_calls",
];
const RATE_KEYS: &[&str] = &["rpm", "tpm"];
const TASK_KEYS: &[&str] = &[
    "name",
    "agent",
    "description",
    "context",
    "dependencies",
    "priority",
    "timeout_seconds",
    "retry_count",
    "expected_output",
    "tools",
    "resources",
    "output_format",
    "output_schema",
    "output_schema_file",
];
const RESOURCE_KEYS: &[&str] = &["cpu", "memory"];
const DEPENDENCY_KEYS: &[&str] = &["task_name", "dependency_type", "timeout_seconds"];
const PRICE_KEYS: &[&str] = &["input_per_million", "output_per_million"];

/// Reads an orchestra from its parsed YAML. Returns the spec whenever the document has the
/// right overall shape, even with errors in it, so later checks can add theirs.
pub fn decode_orchestra(
    file: &Arc<SourceFile>,
    root: &Node,
    diags: &mut Diagnostics,
) -> Option<OrchestraSpec> {
    let mut d = Decoder::new(file, diags);
    let entries = match &root.value {
        crate::yaml::Value::Map(entries) => entries,
        _ => {
            d.error(
                root,
                format!("an orchestra file must be a mapping, found {}", root.kind()),
                "expected `metadata:`, `orchestra:`, `agents:` and `tasks:` here",
            );
            return None;
        }
    };
    let top = d.fields(entries, TOP_KEYS, "the orchestra file", true);

    let mut meta_id = None;
    let mut meta_name = None;
    let mut meta_description = None;
    let mut version = None;
    if let Some(node) = top.get("metadata") {
        if let Some(entries) = d.map(node, "metadata") {
            let f = d.fields(entries, METADATA_KEYS, "metadata", true);
            meta_id = f
                .get("id")
                .and_then(|n| d.string(n, "metadata.id").map(|s| (s, n.loc)));
            meta_name = f.get("name").and_then(|n| d.string(n, "metadata.name"));
            meta_description = f
                .get("description")
                .and_then(|n| d.string(n, "metadata.description"));
            version = f
                .get("version")
                .and_then(|n| d.string(n, "metadata.version"));
            if let Some(n) = f.get("kind") {
                d.string(n, "metadata.kind");
            }
        }
    }

    let mut id = None;
    let mut name = None;
    let mut description = None;
    let mut workspace_kind = "local_fs".to_string();
    let mut workspace_path = None;
    let mut workspace_path_loc = None;
    let mut execution = ExecutionSpec::default();
    if let Some(node) = top.get("orchestra") {
        if let Some(entries) = d.map(node, "orchestra") {
            let f = d.fields(entries, ORCHESTRA_KEYS, "orchestra", true);
            id = f
                .get("id")
                .and_then(|n| d.string(n, "orchestra.id").map(|s| (s, n.loc)));
            name = f.get("name").and_then(|n| d.string(n, "orchestra.name"));
            description = f
                .get("description")
                .and_then(|n| d.string(n, "orchestra.description"));
            if let Some(node) = f.get("workspace") {
                if let Some(entries) = d.map(node, "orchestra.workspace") {
                    let w = d.fields(entries, WORKSPACE_KEYS, "orchestra.workspace", true);
                    if let Some(n) = w.get("type") {
                        if let Some(kind) = d.string(n, "workspace.type") {
                            if kind != "local_fs" {
                                d.diags.push(
                                    Diagnostic::warning(format!("workspace type `{kind}` is not supported; a local folder is used"))
                                        .at(file, n.loc, "only `local_fs` is supported")
                                        .hint("write `type: local_fs`"),
                                );
                            }
                            workspace_kind = kind;
                        }
                    }
                    if let Some(n) = w.get("path") {
                        if let Some(path) = d.string(n, "workspace.path") {
                            if path.trim().is_empty() {
                                d.error(n, "`workspace.path` is empty", "an empty path")
                                    .hint = Some(
                                    "write a folder such as `./orchestra_workspaces/<id>`".into(),
                                );
                            } else if let Some(reason) =
                                crate::workspace::root::path_text_problem(&path)
                            {
                                d.error(
                                    n,
                                    format!("`workspace.path` `{path}` is refused: {reason}"),
                                    "outside the project",
                                )
                                .hint = Some(
                                    "use a folder of its own inside the project, such as `./orchestra_workspaces/<id>`, or pass `--workspace DIR`".into(),
                                );
                            } else {
                                workspace_path = Some(path);
                                workspace_path_loc = Some(n.loc);
                            }
                        }
                    }
                }
            }
            if let Some(node) = f.get("execution") {
                decode_execution(&mut d, node, &mut execution);
            }
        }
    }

    // The id: orchestra.id, else metadata.id, else the file name less `_orchestra`.
    let (raw_id, id_loc) = match id.or(meta_id) {
        Some((raw, loc)) => (raw, Some(loc)),
        None => (file_stem_id(&file.path), None),
    };
    let id = match OrchestraId::parse(&raw_id) {
        Ok(id) => Some(id),
        Err(reason) => {
            let diagnostic = Diagnostic::error(format!(
                "orchestra id `{}` cannot be used as a file name: {reason}",
                raw_id.escape_debug()
            ))
            .hint("use letters, digits and underscores, for example `sdlc`");
            d.diags.push(match id_loc {
                Some(loc) => diagnostic.at(file, loc, "unsafe orchestra id"),
                None => diagnostic,
            });
            None
        }
    };

    let mut agents = Vec::new();
    if let Some(node) = top.get("agents") {
        if let Some(items) = d.seq(node, "agents") {
            for item in items {
                if let Some(raw) = d.string(item, "agents[]") {
                    match AgentName::parse(&raw) {
                        Ok(agent) => agents.push((agent, item.loc)),
                        Err(reason) => {
                            d.error(
                                item,
                                format!(
                                    "agent name `{}` cannot be used: {reason}",
                                    raw.escape_debug()
                                ),
                                "unsafe agent name",
                            );
                        }
                    }
                }
            }
        }
    }

    let mut tasks: Vec<TaskSpec> = Vec::new();
    let mut rejected_task_names = Vec::new();
    // Name -> line of its first use, for duplicate checks without a quadratic scan.
    let mut seen: HashMap<TaskName, usize> = HashMap::new();
    match top.get("tasks") {
        Some(node) => {
            if let Some(items) = d.seq(node, "tasks") {
                if items.is_empty() {
                    d.error(node, "the orchestra has no tasks; nothing would run", "an empty list")
                        .hint = Some("add at least one `- name: ...` entry with an `agent:` and a `description:`, or pull agents with `super agent pull NAME` and run `super orchestra create`".into());
                }
                for item in items {
                    decode_task(
                        &mut d,
                        item,
                        &mut tasks,
                        &mut seen,
                        &mut rejected_task_names,
                    );
                }
            }
        }
        None => {
            d.diags.push(
                Diagnostic::error("the orchestra has no `tasks:` list")
                    .at(file, Loc { line: 1, col: 0, len: 1 }, "this file")
                    .hint("add `tasks:` with at least one `- name: ...` entry, or run `super orchestra create`"),
            );
        }
    }

    let listed: Vec<&str> = agents.iter().map(|(a, _)| a.as_str()).collect();
    if !agents.is_empty() {
        for task in &tasks {
            if !listed.contains(&task.agent.as_str()) {
                d.diags.push(
                    Diagnostic::warning(format!(
                        "task `{}` uses agent `{}`, which is not in the `agents:` list",
                        task.name, task.agent
                    ))
                    .at(file, task.agent_loc, "not listed under `agents:`")
                    .hint(format!("add `- {}` to `agents:`", task.agent)),
                );
            }
        }
    }

    let mut orchestration_type = None;
    if let Some(n) = top.get("orchestration_type") {
        orchestration_type = d.string(n, "orchestration_type");
    }
    let replicas = top
        .get("replicas")
        .and_then(|n| d.u64_in(n, "replicas", 0, limits::MAX_REPLICAS));
    let resources = top
        .get("resources")
        .and_then(|n| decode_resources(&mut d, n, "resources"));
    let mut pricing = HashMap::new();
    if let Some(node) = top.get("pricing") {
        decode_pricing(&mut d, node, &mut pricing);
    }
    let inputs = top
        .get("inputs")
        .map(|node| decode_inputs(&mut d, node, &tasks))
        .unwrap_or_default();

    let id = id?;
    let name = name
        .or(meta_name)
        .unwrap_or_else(|| title_case(id.as_str()));
    let description = description.or(meta_description).unwrap_or_default();
    let workspace_path = workspace_path.unwrap_or_else(|| format!("./orchestra_workspaces/{id}"));
    Some(OrchestraSpec {
        file: Arc::clone(file),
        id,
        name: name.trim().to_string(),
        description: description.trim().to_string(),
        version,
        workspace_kind,
        workspace_path,
        workspace_path_loc,
        execution,
        agents,
        tasks,
        rejected_task_names,
        orchestration_type,
        replicas,
        resources,
        pricing,
        inputs,
    })
}

/// `inputs:`: a mapping from each input's name to its `description` and `default` (or to
/// nothing). A name must be placeholder-shaped and name no task; `goal` is the goal's.
fn decode_inputs(d: &mut Decoder<'_>, node: &Node, tasks: &[TaskSpec]) -> Vec<InputSpec> {
    let mut inputs: Vec<InputSpec> = Vec::new();
    let Some(entries) = d.map(node, "inputs") else {
        return inputs;
    };
    for (key, value) in entries {
        let Some(name) = key.scalar().map(str::trim) else {
            d.error(key, "an input's name is not a string", "expected a name");
            continue;
        };
        if !crate::template::is_input_name(name) {
            d.error(
                key,
                format!(
                    "input name `{}` cannot be a placeholder",
                    name.escape_debug()
                ),
                "not a name",
            )
            .hint = Some("use letters, digits, `_` and `-`, starting with a letter or `_`".into());
            continue;
        }
        if name == "goal" {
            d.error(key, "`goal` cannot be an input", "the goal's own name")
                .hint =
                Some("`{goal}` is always the goal (`--goal`); give the input another name".into());
            continue;
        }
        if tasks.iter().any(|t| t.name.as_str() == name) {
            d.error(
                key,
                format!("input `{name}` has the name of a task"),
                "also a task's name",
            )
            .hint = Some(format!("`{{{name}}}` would be ambiguous; rename the input"));
            continue;
        }
        if inputs.iter().any(|i| i.name == name) {
            d.error(
                key,
                format!("input `{name}` is declared twice"),
                "declared again",
            );
            continue;
        }
        let mut input = InputSpec {
            name: name.to_string(),
            loc: Some(key.loc),
            description: None,
            default: None,
        };
        if let Some(entries) = d.map(value, "inputs.<name>") {
            let f = d.fields(entries, INPUT_KEYS, "inputs.<name>", true);
            input.description = f
                .get("description")
                .and_then(|n| d.string(n, "inputs.<name>.description"));
            if let Some(n) = f.get("default") {
                if matches!(n.value, crate::yaml::Value::Scalar { .. }) {
                    input.default = d.string(n, "inputs.<name>.default");
                } else {
                    d.error(
                        n,
                        format!("the default of input `{name}` must be text, a number or a boolean, found {}", n.kind()),
                        "expected a scalar",
                    );
                }
            }
        }
        inputs.push(input);
    }
    inputs
}

/// `sdlc_orchestra.yaml` -> `sdlc`.
pub fn file_stem_id(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    stem.strip_suffix("_orchestra").unwrap_or(stem).to_string()
}

pub fn title_case(id: &str) -> String {
    id.split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode_strategy(
    d: &mut Decoder<'_>,
    node: &Node,
    what: &str,
    allowed: &[&'static str],
) -> Option<Strategy> {
    let text = d.string(node, what)?;
    match Strategy::parse(&text).filter(|s| allowed.contains(&s.as_str())) {
        Some(strategy) => Some(strategy),
        None => {
            let hint = match did_you_mean(&text.to_ascii_lowercase(), allowed.iter().copied()) {
                Some(close) => format!(
                    "did you mean `{close}`? Strategies are {}",
                    allowed.join(", ")
                ),
                None => format!("strategies are {}", allowed.join(", ")),
            };
            d.error(node, format!("unknown {what} `{text}`"), "not a strategy")
                .hint = Some(hint);
            None
        }
    }
}

fn decode_execution(d: &mut Decoder<'_>, node: &Node, execution: &mut ExecutionSpec) {
    let Some(entries) = d.map(node, "orchestra.execution") else {
        return;
    };
    let f = d.fields(entries, EXECUTION_KEYS, "orchestra.execution", true);
    if let Some(n) = f.get("strategy") {
        if let Some(strategy) = decode_strategy(d, n, "strategy", &Strategy::NAMES) {
            execution.strategy = strategy;
        }
    }
    if let Some(n) = f.get("max_parallel_tasks") {
        let before = d.diags.items.len();
        match d.u64_in(n, "max_parallel_tasks", 1, limits::MAX_PARALLEL) {
            Some(value) => {
                execution.max_parallel_tasks = value as usize;
                execution.max_parallel_loc = Some(n.loc);
            }
            None => {
                let below_one = n.scalar().is_some_and(|t| t.trim() == "0");
                if let Some(last) = d
                    .diags
                    .items
                    .get_mut(before..)
                    .and_then(|new| new.last_mut())
                {
                    if below_one {
                        last.hint = Some("use 1 to run one task at a time".into());
                    }
                }
            }
        }
    }
    if let Some(n) = f.get("task_timeout_seconds") {
        if let Some(value) = d.u64_in(n, "task_timeout_seconds", 1, limits::MAX_TIMEOUT_SECONDS) {
            execution.task_timeout_seconds = Some(value);
        }
    }
    if let Some(n) = f.get("retry_strategy") {
        if let Some(text) = d.string(n, "retry_strategy") {
            match RetryStrategy::parse(&text) {
                Some(strategy) => execution.retry_strategy = strategy,
                None => {
                    d.error(
                        n,
                        format!("unknown retry_strategy `{text}`"),
                        "not a retry strategy",
                    )
                    .hint = Some(format!(
                        "retry strategies are {}",
                        RetryStrategy::NAMES.join(", ")
                    ));
                }
            }
        }
    }
    if let Some(n) = f.get("manager") {
        execution.manager.loc.get_or_insert(n.loc);
        if let Some(raw) = d.string(n, "manager") {
            match AgentName::parse(raw.trim()) {
                Ok(agent) => execution.manager.agent = Some((agent, n.loc)),
                Err(reason) => {
                    d.error(
                        n,
                        format!("manager `{}` cannot be used: {reason}", raw.escape_debug()),
                        "not an agent name",
                    );
                }
            }
        }
    }
    if let Some(n) = f.get("max_delegations") {
        execution.manager.loc.get_or_insert(n.loc);
        execution.manager.max_delegations = d.u64_in(n, "max_delegations", 1, limits::MAX_CALLS);
    }
    if let Some(n) = f.get("max_review_rounds") {
        execution.manager.loc.get_or_insert(n.loc);
        if let Some(value) = d.u64_in(n, "max_review_rounds", 0, 10) {
            execution.manager.max_review_rounds = value as u32;
        }
    }
    if let Some(n) = f.get("allow_new_tasks") {
        execution.manager.loc.get_or_insert(n.loc);
        if let Some(value) = d.bool(n, "allow_new_tasks") {
            execution.manager.allow_new_tasks = value;
        }
    }
    if let Some(n) = f.get("enable_metrics") {
        if let Some(value) = d.bool(n, "enable_metrics") {
            execution.enable_metrics = value;
        }
    }
    if let Some(n) = f.get("enable_trace") {
        if let Some(value) = d.bool(n, "enable_trace") {
            execution.enable_trace = value;
        }
    }
    if let Some(n) = f.get("task_groups") {
        if let Some(items) = d.seq(n, "task_groups") {
            for item in items {
                if let Some(group) = decode_group(d, item, execution.task_groups.len()) {
                    execution.task_groups.push(group);
                }
            }
        }
    }
    if let Some(n) = f.get("budget") {
        if let Some(entries) = d.map(n, "execution.budget") {
            let b = d.fields(entries, BUDGET_KEYS, "execution.budget", true);
            execution.budget.max_tokens = b
                .get("max_tokens")
                .and_then(|n| d.u64_in(n, "budget.max_tokens", 0, limits::MAX_TOKENS));
            execution.budget.max_cost_usd = b
                .get("max_cost_usd")
                .and_then(|n| d.f64_in(n, "budget.max_cost_usd", 0.0, limits::MAX_USD));
            execution.budget.max_llm_calls = b
                .get("max_llm_calls")
                .and_then(|n| d.u64_in(n, "budget.max_llm_calls", 0, limits::MAX_CALLS));
            execution.budget.max_tool_calls = b
                .get("max_tool_calls")
                .and_then(|n| d.u64_in(n, "budget.max_tool_calls", 0, limits::MAX_CALLS));
            execution.budget.max_wall_seconds = b.get("max_wall_seconds").and_then(|n| {
                d.f64_in(n, "budget.max_wall_seconds", 0.0, limits::MAX_WALL_SECONDS)
            });
        }
    }
    if let Some(n) = f.get("tools") {
        execution.tools = decode_orchestra_tools(d, n);
    }
    if let Some(n) = f.get("rate_limits") {
        if let Some(entries) = d.map(n, "execution.rate_limits") {
            let r = d.fields(entries, RATE_KEYS, "execution.rate_limits", true);
            execution.rate_limits.rpm = r
                .get("rpm")
                .and_then(|n| d.u64_in(n, "rate_limits.rpm", 0, limits::MAX_RPM))
                .filter(|v| *v > 0);
            execution.rate_limits.tpm = r
                .get("tpm")
                .and_then(|n| d.u64_in(n, "rate_limits.tpm", 0, limits::MAX_TPM))
                .filter(|v| *v > 0);
        }
    }
}

fn decode_group(d: &mut Decoder<'_>, node: &Node, index: usize) -> Option<TaskGroupSpec> {
    let entries = d.map(node, "task_groups[]")?;
    let f = d.fields(entries, GROUP_KEYS, "task_groups[]", true);
    let name = f
        .get("name")
        .and_then(|n| d.string(n, "task_groups[].name"))
        .unwrap_or_else(|| format!("group_{}", index + 1));
    let mut tasks = Vec::new();
    match f.get("tasks") {
        Some(n) => {
            if let Some(items) = d.seq(n, "task_groups[].tasks") {
                for item in items {
                    if let Some(task) = d.string(item, "task_groups[].tasks[]") {
                        tasks.push(TaskRef {
                            name: task,
                            loc: item.loc,
                        });
                    }
                }
            }
        }
        None => {
            d.error(
                node,
                format!("task group `{name}` has no `tasks:` list"),
                "this group",
            )
            .hint = Some("list the group's task names: `tasks: [a, b]`".into());
        }
    }
    let execution_strategy = f
        .get("execution_strategy")
        .and_then(|n| decode_strategy(d, n, "execution_strategy", &["sequential", "parallel"]))
        .unwrap_or(Strategy::Sequential);
    let mut max_concurrency = None;
    if let Some(n) = f.get("max_concurrency") {
        if let Some(value) = d.u64_in(n, "max_concurrency", 1, limits::MAX_PARALLEL) {
            max_concurrency = Some(value as usize);
        }
    }
    Some(TaskGroupSpec {
        name,
        loc: node.loc,
        tasks,
        execution_strategy,
        max_concurrency,
    })
}

fn decode_refs(d: &mut Decoder<'_>, node: &Node, what: &str) -> Vec<TaskRef> {
    // `context: implement_feature` (a single name) is taken as a one-item list.
    if let Some(text) = node.scalar().filter(|_| !node.is_null()) {
        return vec![TaskRef {
            name: text.trim().to_string(),
            loc: node.loc,
        }];
    }
    let mut refs = Vec::new();
    if let Some(items) = d.seq(node, what) {
        for item in items {
            if let Some(name) = d.string(item, what) {
                refs.push(TaskRef {
                    name: name.trim().to_string(),
                    loc: item.loc,
                });
            }
        }
    }
    refs
}

fn decode_task(
    d: &mut Decoder<'_>,
    node: &Node,
    tasks: &mut Vec<TaskSpec>,
    seen: &mut HashMap<TaskName, usize>,
    rejected: &mut Vec<String>,
) {
    let Some(entries) = d.map(node, "tasks[]") else {
        return;
    };
    let f = d.fields(entries, TASK_KEYS, "tasks[]", true);
    let Some(name_node) = f.get("name") else {
        d.error(node, "a task has no `name`", "this task").hint =
            Some("add `name: my_task`".into());
        return;
    };
    let Some(raw_name) = d.string(name_node, "tasks[].name") else {
        if name_node.is_null() {
            d.error(name_node, "a task's `name` is empty", "empty name");
        }
        return;
    };
    let name = match TaskName::parse(&raw_name) {
        Ok(name) => name,
        Err(reason) => {
            d.error(name_node, format!("task name `{}` cannot be used as a file name: {reason}", raw_name.escape_debug()), "unsafe task name").hint =
                Some("task names become file names in the workspace; use letters, digits and underscores".into());
            rejected.push(raw_name);
            return;
        }
    };
    if let Some(first_line) = seen.get(&name) {
        d.error(
            name_node,
            format!("duplicate task name `{name}`"),
            "this name is already taken",
        )
        .hint = Some(format!(
            "the first `{name}` is on line {first_line}; task names must be unique"
        ));
        return;
    }
    seen.insert(name.clone(), name_node.loc.line);
    let (agent, agent_loc) = match f.get("agent") {
        Some(n) => match d.string(n, "tasks[].agent") {
            Some(raw) => match AgentName::parse(&raw) {
                Ok(agent) => (agent, n.loc),
                Err(reason) => {
                    d.error(
                        n,
                        format!(
                            "agent name `{}` cannot be used: {reason}",
                            raw.escape_debug()
                        ),
                        "unsafe agent name",
                    );
                    return;
                }
            },
            None => {
                d.error(
                    n,
                    format!("task `{name}` has an empty `agent`"),
                    "empty agent",
                );
                return;
            }
        },
        None => {
            d.error(
                name_node,
                format!("task `{name}` has no `agent`"),
                "this task",
            )
            .hint = Some("add `agent: <name>`, naming an agent of the project".into());
            return;
        }
    };
    let (description, description_loc) = match f.get("description") {
        Some(n) => (
            d.string(n, "tasks[].description").unwrap_or_default(),
            n.loc,
        ),
        None => (String::new(), name_node.loc),
    };
    let context = f
        .get("context")
        .map(|n| decode_refs(d, n, "context"))
        .unwrap_or_default();
    let mut dependencies = Vec::new();
    if let Some(n) = f.get("dependencies") {
        if let Some(items) = d.seq(n, "dependencies") {
            for item in items {
                // Both `- task_name: x` and the short `- x` are read.
                if let Some(text) = item.scalar().filter(|_| !item.is_null()) {
                    dependencies.push(DependencySpec {
                        task: TaskRef {
                            name: text.trim().to_string(),
                            loc: item.loc,
                        },
                        dependency_type: "completion".into(),
                        timeout_seconds: None,
                    });
                    continue;
                }
                let Some(entries) = d.map(item, "dependencies[]") else {
                    continue;
                };
                let g = d.fields(entries, DEPENDENCY_KEYS, "dependencies[]", true);
                let dependency_type = g
                    .get("dependency_type")
                    .and_then(|n| d.string(n, "dependency_type"))
                    .unwrap_or_else(|| "completion".into());
                let timeout_seconds = g
                    .get("timeout_seconds")
                    .and_then(|n| d.u64(n, "dependencies[].timeout_seconds"));
                match g.get("task_name") {
                    Some(t) => {
                        if let Some(task) = d.string(t, "dependencies[].task_name") {
                            dependencies.push(DependencySpec {
                                task: TaskRef {
                                    name: task.trim().to_string(),
                                    loc: t.loc,
                                },
                                dependency_type,
                                timeout_seconds,
                            });
                        }
                    }
                    None => {
                        d.error(item, "a dependency has no `task_name`", "this dependency");
                    }
                }
            }
        }
    }
    let mut priority = Priority::Medium;
    if let Some(n) = f.get("priority") {
        if let Some(text) = d.string(n, "priority") {
            match Priority::parse(&text) {
                Some(p) => priority = p,
                None => {
                    let hint = match did_you_mean(&text.to_ascii_lowercase(), Priority::NAMES) {
                        Some(close) => format!(
                            "did you mean `{close}`? Priorities are low, medium, high, critical"
                        ),
                        None => "priorities are low, medium, high, critical".into(),
                    };
                    d.error(n, format!("unknown priority `{text}`"), "not a priority")
                        .hint = Some(hint);
                }
            }
        }
    }
    let timeout_seconds = f
        .get("timeout_seconds")
        .and_then(|n| d.u64_in(n, "timeout_seconds", 1, limits::MAX_TIMEOUT_SECONDS));
    let retry_count = f
        .get("retry_count")
        .and_then(|n| d.u64_in(n, "retry_count", 0, limits::MAX_RETRY_COUNT))
        .map(|v| v as u32);
    let expected_output_loc = f.get("expected_output").map(|n| n.loc);
    let expected_output = f
        .get("expected_output")
        .and_then(|n| d.string(n, "expected_output"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let tools = f.get("tools").map(|n| decode_task_tools(d, n));
    let resources = f
        .get("resources")
        .and_then(|n| decode_resources(d, n, "tasks[].resources"));
    let output = decode_output(d, &f);
    tasks.push(TaskSpec {
        name,
        name_loc: name_node.loc,
        agent,
        agent_loc,
        description: description.trim().to_string(),
        description_loc,
        context,
        dependencies,
        priority,
        timeout_seconds,
        retry_count,
        expected_output,
        expected_output_loc,
        tools,
        resources,
        output,
    });
}

/// `output_format`, `output_schema` and `output_schema_file` of a task.
fn decode_output(d: &mut Decoder<'_>, f: &super::decode::Fields<'_>) -> OutputSpec {
    let mut output = OutputSpec::default();
    if let Some(n) = f.get("output_format") {
        if let Some(text) = d.string(n, "output_format") {
            match text.trim().to_ascii_lowercase().as_str() {
                "text" => output.format = Some((OutputFormat::Text, n.loc)),
                "json" => output.format = Some((OutputFormat::Json, n.loc)),
                _ => {
                    d.error(
                        n,
                        format!("unknown output_format `{text}`"),
                        "not an output format",
                    )
                    .hint = Some("output formats are `text` (the default) and `json`".into());
                }
            }
        }
    }
    if let Some(n) = f.get("output_schema") {
        if d.map(n, "output_schema").is_some() {
            output.schema = Some(n.clone());
        }
    }
    if let Some(n) = f.get("output_schema_file") {
        if let Some(path) = d.string(n, "output_schema_file") {
            output.schema_file = Some((path.trim().to_string(), n.loc));
        }
    }
    if let (Some(schema), Some((_, file_loc))) = (&output.schema, &output.schema_file) {
        let file_loc = *file_loc;
        d.error(
            schema,
            "a task has both `output_schema` and `output_schema_file`",
            "the schema is written here",
        )
        .hint = Some(format!(
            "keep one: the inline schema, or the file named on line {}",
            file_loc.line
        ));
    }
    if let (Some((OutputFormat::Text, _)), Some(n), true) = (
        &output.format,
        f.get("output_format"),
        output.schema.is_some() || output.schema_file.is_some(),
    ) {
        d.error(
            n,
            "`output_format: text` with an output schema",
            "text here",
        )
        .hint = Some(
            "a task with a schema answers in JSON: write `output_format: json` or leave it out"
                .into(),
        );
    }
    output
}

/// `resources: {cpu: 1000m, memory: 2Gi}`: each value must be a Kubernetes quantity.
fn decode_resources(d: &mut Decoder<'_>, node: &Node, what: &str) -> Option<ResourcesSpec> {
    let entries = d.map(node, what)?;
    let f = d.fields(entries, RESOURCE_KEYS, what, true);
    let mut quantity = |key: &str| -> Option<String> {
        let n = f.get(key)?;
        let text = d.string(n, &format!("{what}.{key}"))?;
        match super::quantity::check_quantity(&text) {
            Ok(()) => Some(text),
            Err(problem) => {
                d.error(
                    n,
                    format!("{what}.{key}: {}", problem.message),
                    "not a Kubernetes quantity",
                )
                .hint = Some(problem.hint);
                None
            }
        }
    };
    let cpu = quantity("cpu");
    let memory = quantity("memory");
    Some(ResourcesSpec { cpu, memory })
}

fn decode_pricing(d: &mut Decoder<'_>, node: &Node, pricing: &mut HashMap<String, Price>) {
    let Some(entries) = d.map(node, "pricing") else {
        return;
    };
    for (key, value) in entries {
        let Some(model) = key.scalar() else { continue };
        let Some(inner) = d.map(value, "pricing.<model>") else {
            continue;
        };
        let f = d.fields(inner, PRICE_KEYS, "pricing.<model>", true);
        let input = f
            .get("input_per_million")
            .and_then(|n| d.f64_in(n, "input_per_million", 0.0, limits::MAX_PRICE));
        let output = f
            .get("output_per_million")
            .and_then(|n| d.f64_in(n, "output_per_million", 0.0, limits::MAX_PRICE));
        match (input, output) {
            (Some(i), Some(o)) => {
                pricing.insert(
                    model.to_string(),
                    Price {
                        input_per_million: i,
                        output_per_million: o,
                    },
                );
            }
            _ => {
                d.error(
                    value,
                    format!(
                        "price for `{model}` needs `input_per_million` and `output_per_million`"
                    ),
                    "incomplete price",
                );
            }
        }
    }
}
