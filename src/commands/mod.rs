//! The commands. Each resolves its input once, calls the library, prints through a reporter and
//! returns an exit code: 0 success, 1 a task failed (or a refusal such as an existing file),
//! 2 bad usage or an invalid spec, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung
//! up (SIGHUP).

/// `println!` for text that may hold user- or file-controlled parts (names, personas,
/// descriptions): control characters are escaped, so no escape sequence reaches the terminal.
macro_rules! shown {
    ($($arg:tt)*) => {
        println!("{}", crate::sanitize::terminal(&format!($($arg)*)))
    };
}

pub(crate) mod agent;
pub(crate) mod config;
pub(crate) mod create;
pub(crate) mod doctor;
pub(crate) mod dry_run;
pub(crate) mod evaluate;
pub(crate) mod export;
pub(crate) mod given;
pub(crate) mod graph_ascii;
pub(crate) mod history;
pub(crate) mod init;
pub(crate) mod model;
pub(crate) mod orchestra;
pub(crate) mod run;
pub(crate) mod run_task;
pub(crate) mod version;

use crate::cli::{Cli, Command, OrchestraCommand};
use crate::diag::Diagnostics;
use crate::project::{looks_like_path, Project, ProjectError};
use std::io::IsTerminal;
use std::path::PathBuf;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15), after saving like a first Ctrl-C.
pub const EXIT_TERMINATED: u8 = 143;
/// Stopped by SIGHUP (128 + 1), after saving like a first Ctrl-C.
pub const EXIT_HANGUP: u8 = 129;
/// `run-task`: the task failed on an error worth another try; the engine may run it again
/// (EX_TEMPFAIL). The exported Workflow retries this code only.
pub const EXIT_RETRYABLE: u8 = crate::export::RETRYABLE_EXIT_CODE;

/// A command that could not do its work: printed as `error: ...` with an optional hint.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
            hint: None,
        }
    }

    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_FAILED,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl From<ProjectError> for Failure {
    fn from(error: ProjectError) -> Failure {
        let hint = match &error {
            ProjectError::NotFound(_) => Some(
                "run inside a project, pass `--project DIR`, or create one with `super init NAME`"
                    .to_string(),
            ),
            ProjectError::OrchestraNotFound { name, known, .. } => Some(
                match crate::diag::did_you_mean(name, known.iter().map(String::as_str)) {
                    Some(close) => format!(
                        "did you mean `{close}`? `super orchestra list` shows the project's orchestras"
                    ),
                    None => "`super orchestra list` shows the project's orchestras".to_string(),
                },
            ),
            ProjectError::AmbiguousOrchestra { .. } => Some(
                "give one of them another `orchestra.id`, or pass the file's path instead of the id"
                    .to_string(),
            ),
            _ => None,
        };
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Failure {
            code: EXIT_USAGE,
            message,
            hint,
        }
    }
}

pub type Outcome = Result<u8, Failure>;

/// Commands that only read and print: `super orchestra runs | head -3` ends them quietly, as
/// `ls | head` ends `ls`. The others (a run, run-task, pull, clean, ...) keep ignoring SIGPIPE:
/// their printing already ignores a closed stdout, and a signal must not cut their writes short.
fn only_prints(command: &Command) -> bool {
    match command {
        Command::Orchestra(command) => matches!(
            command,
            OrchestraCommand::List(_)
                | OrchestraCommand::Validate(_)
                | OrchestraCommand::Graph(_)
                | OrchestraCommand::Runs(_)
                | OrchestraCommand::Show(_)
                | OrchestraCommand::Logs(_)
                | OrchestraCommand::Diff(_)
        ),
        Command::Agent(command) => matches!(
            command,
            crate::cli::AgentCommand::List { .. } | crate::cli::AgentCommand::Show { .. }
        ),
        Command::Model(command) => matches!(
            command,
            crate::cli::ModelCommand::List(_) | crate::cli::ModelCommand::Path
        ),
        Command::Config(_)
        | Command::Doctor
        | Command::Version(_)
        | Command::Completions { .. } => true,
        Command::Init(_) => false,
    }
}

/// Restores the default action of SIGPIPE (Rust's runtime ignores it, so `println!` to a
/// closed pipe panics instead).
#[cfg(unix)]
fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

/// Settings every command shares.
pub struct Context {
    pub project_flag: Option<PathBuf>,
    /// Colour on stderr (diagnostics).
    pub color: bool,
    /// Colour on stdout (tables, the run's summary).
    pub color_stdout: bool,
    /// Whether stderr is a terminal: progress bars (NO_COLOR keeps them; it is about colour).
    pub stderr_terminal: bool,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> Context {
        let stderr_terminal = std::io::stderr().is_terminal();
        Context {
            project_flag: cli.project.clone(),
            color: crate::report::terminal::colour(cli.no_color, stderr_terminal),
            color_stdout: crate::report::terminal::colour(
                cli.no_color,
                std::io::stdout().is_terminal(),
            ),
            stderr_terminal,
        }
    }

    /// The project: `--project`, else found by walking up from the current folder.
    pub fn project(&self) -> Result<Project, ProjectError> {
        match &self.project_flag {
            Some(dir) => Project::open(dir),
            None => Project::discover(&std::env::current_dir().unwrap_or_default()),
        }
    }

    /// An orchestra argument (id or path) to its file, and the project it belongs to.
    pub fn orchestra(&self, argument: &str) -> Result<(PathBuf, Option<Project>), Failure> {
        if looks_like_path(argument) {
            let path = crate::project::absolute(std::path::Path::new(argument));
            if !path.is_file() {
                return Err(Failure::usage(format!(
                    "orchestra file `{argument}` does not exist"
                )));
            }
            // The project: --project, else the one around the file, else the one around here.
            let project = match &self.project_flag {
                Some(dir) => Some(Project::open(dir)?),
                None => path
                    .parent()
                    .and_then(|dir| Project::discover(dir).ok())
                    .or_else(|| {
                        Project::discover(&std::env::current_dir().unwrap_or_default()).ok()
                    }),
            };
            return Ok((path, project));
        }
        let project = self.project()?;
        let path = project.find_orchestra(argument)?;
        Ok((path, Some(project)))
    }

    pub fn print_diagnostics(&self, diags: &Diagnostics) {
        if !diags.items.is_empty() {
            eprint!("{}", diags.render(self.color));
        }
    }
}

pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn dispatch(cli: Cli) -> u8 {
    let context = Context::from_cli(&cli);
    if only_prints(&cli.command) {
        default_sigpipe();
    }
    // Logs for every command; spans only for the commands that run tasks.
    let (verbosity, traced) = match &cli.command {
        Command::Orchestra(OrchestraCommand::Run(args)) => (args.verbose, !args.dry_run),
        Command::Orchestra(OrchestraCommand::RunTask(args)) => (args.verbose, true),
        _ => (0, false),
    };
    crate::telemetry::init(verbosity, context.color, traced);
    let outcome = match cli.command {
        Command::Orchestra(command) => match command {
            OrchestraCommand::Create(args) => create::create(&context, &args),
            OrchestraCommand::List(args) => orchestra::list(&context, &args),
            OrchestraCommand::Validate(args) => orchestra::validate(&context, &args),
            OrchestraCommand::Graph(args) => orchestra::graph(&context, &args),
            OrchestraCommand::Run(args) => run::run(&context, &args),
            OrchestraCommand::Export(args) => export::export(&context, &args),
            OrchestraCommand::RunTask(args) => run_task::run_task(&context, &args),
            OrchestraCommand::Finish(args) => run_task::finish(&context, &args),
            OrchestraCommand::Runs(args) => history::runs::runs(&context, &args),
            OrchestraCommand::Show(args) => history::show::show(&context, &args),
            OrchestraCommand::Logs(args) => history::logs::logs(&context, &args),
            OrchestraCommand::Diff(args) => history::diff::diff_runs(&context, &args),
            OrchestraCommand::Clean(args) => history::clean::clean(&context, &args),
        },
        Command::Agent(command) => agent::agent(&context, command),
        Command::Model(command) => model::model(command),
        Command::Init(args) => init::init(&args),
        Command::Config(command) => config::config(&context, &command),
        Command::Doctor => doctor::doctor(&context),
        Command::Version(_) => version::version(),
        Command::Completions { shell, .. } => crate::completion::registration(shell),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            let (red, bold, reset) = if context.color {
                ("\x1b[31m", "\x1b[1m", "\x1b[0m")
            } else {
                ("", "", "")
            };
            let clean = |text: &str| {
                crate::sanitize::terminal(&crate::redact::redact_urls(text)).into_owned()
            };
            eprintln!(
                "{bold}{red}error{reset}{bold}: {}{reset}",
                clean(&failure.message)
            );
            if let Some(hint) = failure.hint {
                eprintln!("  = hint: {}", clean(&hint));
            }
            failure.code
        }
    }
}
