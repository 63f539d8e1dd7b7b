//! What a newcomer touches around a run: completion that knows the project, suggestions for
//! mistyped subcommands, a failed task's log where the seed's guide looks for it, colour
//! (and NO_COLOR), tables that fit the terminal, and the previous run's result after a failure.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{Step, StubConfig, StubServer};

/// Asks the binary for completions as fish does at a TAB: `COMPLETE=fish super -- super ...`.
fn complete(project: &Project, words: &[&str]) -> Vec<String> {
    let output = project
        .command()
        .env("COMPLETE", "fish")
        .arg("--")
        .arg("super")
        .args(words)
        .output()
        .expect("run super");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    // Values only: an empty word also gets the command's flags.
    stdout(&output)
        .lines()
        .map(|line| line.split('\t').next().unwrap_or_default().to_string())
        .filter(|value| !value.starts_with('-'))
        .collect()
}

#[test]
fn completion_offers_the_projects_orchestras_tasks_agents_and_providers() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    project.orchestra(
        "review",
        "orchestra:\n  id: code_review\ntasks:\n  - name: read\n    agent: developer\n",
    );
    // `super orchestra run <TAB>`: every orchestra id of the project.
    assert_eq!(
        complete(&project, &["orchestra", "run", ""]),
        ["code_review", "sdlc"]
    );
    assert_eq!(complete(&project, &["orch", "validate", "sd"]), ["sdlc"]);
    // `--from <TAB>`: the task names of the orchestra on the line.
    assert_eq!(
        complete(
            &project,
            &["orchestra", "run", "sdlc", "--goal", "G", "--from", ""]
        ),
        [
            "configure_ci_pipeline",
            "create_test_plan",
            "implement_feature"
        ]
    );
    assert_eq!(
        complete(
            &project,
            &["orchestra", "run-task", "code_review", "--task", ""]
        ),
        ["read"]
    );
    // Agents: the library's for `pull`, the project's and the library's for `show`.
    let pull = complete(&project, &["agent", "pull", "devel"]);
    assert!(pull.contains(&"developer".to_string()), "{pull:?}");
    let show = complete(&project, &["agent", "show", "qa"]);
    assert!(show.contains(&"qa_engineer".to_string()), "{show:?}");
    // Providers and enum values.
    assert_eq!(
        complete(&project, &["orchestra", "run", "sdlc", "--provider", "oll"]),
        ["ollama"]
    );
    let strategies = complete(&project, &["orchestra", "run", "sdlc", "--strategy", ""]);
    assert!(
        strategies.contains(&"parallel".to_string())
            && strategies.contains(&"sequential".to_string()),
        "{strategies:?}"
    );
    // Outside a project: nothing, and no error.
    let empty = tempfile::tempdir().expect("tempdir");
    let output = project
        .command()
        .current_dir(empty.path())
        .env("COMPLETE", "fish")
        .args(["--", "super", "orchestra", "run", ""])
        .output()
        .expect("run super");
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    let values: Vec<&str> = text.lines().filter(|l| !l.starts_with('-')).collect();
    assert!(values.is_empty(), "only flags outside a project: {text}");
}

#[test]
fn the_completion_script_registers_the_dynamic_completer() {
    let project = Project::empty();
    for shell in ["bash", "zsh", "fish"] {
        let output = project.run(&["completions", shell]);
        assert_eq!(code(&output), 0, "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(
            script.contains("COMPLETE") && script.contains(env!("CARGO_BIN_EXE_super")),
            "{shell}: {script}"
        );
    }
}

#[test]
fn a_mistyped_subcommand_gets_a_suggestion() {
    let project = Project::empty();
    let output = project.run(&["orchestra", "rnu", "sdlc"]);
    assert_eq!(code(&output), 2);
    insta::assert_snapshot!("subcommand_typo", stderr(&output));
    let output = project.run(&["agnet", "list"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("similar subcommand exists: 'agent'"),
        "{}",
        stderr(&output)
    );
}

const TWO_TASKS: &str = "metadata:\n  id: two\ntasks:\n  - name: plan\n    agent: worker\n    description: Plan '{goal}'.\n  - name: build\n    agent: worker\n    description: Build it.\n    context: [plan]\n    retry_count: 0\n";

fn two_task_project(server: &StubServer) -> Project {
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("two", TWO_TASKS);
    project
}

/// The seed's debugging guide: `cat .../task_outputs/<failed task>_output.txt` shows the error
/// log. It is there, headed as a failure, beside `_error.txt`; the summary names it and the
/// previous run's result, kept in history/.
#[test]
fn a_failed_tasks_output_file_holds_its_error_log_and_the_previous_result_is_named() {
    let server = StubServer::start_background(StubConfig::default().fail_when_contains(
        "Build it",
        Step::Status {
            code: 400,
            retry_after: None,
            message: "the model refuses".into(),
        },
    ))
    .expect("stub");
    let project = two_task_project(&server);
    // A first run against a server that answers everything, so there is a previous result.
    let good = StubServer::start_background(StubConfig::default()).expect("stub");
    project.simple_agent("worker", "work", "openai", &good.openai_base_url());
    let first = project.run(&["orchestra", "run", "two", "--goal", "G0"]);
    assert_eq!(code(&first), 0, "{}", stdout(&first));
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());

    let output = project.run(&["orchestra", "run", "two", "--goal", "G"]);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let ws = project.workspace("two");
    let log = std::fs::read_to_string(ws.join("task_outputs/build_output.txt")).expect("log");
    assert_eq!(
        log,
        std::fs::read_to_string(ws.join("task_outputs/build_error.txt")).expect("error file")
    );
    assert!(
        log.starts_with("# FAILED: task `build` produced no output; this is its error log\n"),
        "{log}"
    );
    assert!(log.contains("the model refuses"), "{log}");
    let manifest = project.manifest("two");
    assert_eq!(manifest["tasks"][1]["status"], "failed");
    assert!(manifest["tasks"][1]["output_file"].is_null(), "{manifest}");
    let text = project.redact(&stdout(&output));
    let previous = manifest_of(&ws.join("history"));
    assert!(
        text.contains(&format!(
            "🗄️  The previous run's result is kept: [PROJECT]/orchestra_workspaces/two/history/{previous}/final_results/orchestra_output.txt"
        )),
        "{text}"
    );

    // --resume goes by the task's status, not by the file: the failed task runs again (and
    // fails again here), the finished one is reused.
    let before = server.request_count();
    let resumed = project.run(&["orchestra", "run", "two", "--goal", "G", "--resume"]);
    assert_eq!(code(&resumed), 1, "{}", stdout(&resumed));
    assert_eq!(
        server.request_count(),
        before + 1,
        "only the failed task ran"
    );
    assert_eq!(project.statuses("two"), ["cached", "failed"]);
    // Back on a server that answers, the task's output replaces its error log.
    project.simple_agent("worker", "work", "openai", &good.openai_base_url());
    let before = good.request_count();
    let resumed = project.run(&["orchestra", "run", "two", "--goal", "G", "--resume"]);
    assert_eq!(code(&resumed), 0, "{}", stdout(&resumed));
    assert_eq!(good.request_count(), before + 1, "only the failed task ran");
    let output = std::fs::read_to_string(ws.join("task_outputs/build_output.txt")).expect("out");
    assert!(output.starts_with("STUB-REPLY"), "{output}");
}

/// The run id of the one run filed in `history/`.
fn manifest_of(history: &std::path::Path) -> String {
    let entries: Vec<String> = std::fs::read_dir(history)
        .expect("history")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// A failed row and the verdict are coloured when colour is on (CLICOLOR_FORCE stands in for
/// a terminal); NO_COLOR removes every colour.
#[test]
fn failed_rows_are_coloured_unless_no_color() {
    let server = StubServer::start_background(
        StubConfig::default().fail_when_contains("Build it", Step::status(400)),
    )
    .expect("stub");
    let project = two_task_project(&server);
    let coloured = project
        .command()
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .args(["orchestra", "run", "two", "--goal", "G"])
        .output()
        .expect("run");
    assert_eq!(code(&coloured), 1);
    let text = stdout(&coloured);
    let row = text
        .lines()
        .find(|l| l.contains("build  ") && l.contains("failed"))
        .expect("the failed row");
    assert!(
        row.starts_with("\x1b[31mbuild") && row.ends_with("\x1b[0m"),
        "{row:?}"
    );
    assert!(text.contains("\x1b[31m❌ Orchestra `two` failed"), "{text}");
    let plain_row = text
        .lines()
        .find(|l| l.starts_with("plan"))
        .expect("plan row");
    assert!(!plain_row.contains('\x1b'), "{plain_row:?}");

    let plain = project
        .command()
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .args(["orchestra", "run", "two", "--goal", "G"])
        .output()
        .expect("run");
    assert_eq!(code(&plain), 1);
    assert!(!stdout(&plain).contains('\x1b'), "{}", stdout(&plain));
    assert!(!stderr(&plain).contains('\x1b'), "{}", stderr(&plain));
}

/// NO_COLOR is about colour: on a terminal the progress bars still draw.
#[test]
fn no_color_keeps_the_progress_bars_on_a_terminal() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        crate::support::skip_or_fail("`script` (util-linux) is needed to give the run a terminal");
        return;
    }
    let server = StubServer::start_background(
        StubConfig::default().latency(std::time::Duration::from_millis(300)),
    )
    .expect("stub");
    let project = two_task_project(&server);
    let binary = env!("CARGO_BIN_EXE_super");
    let mut command = project.command_with("/usr/bin/script");
    command.env("NO_COLOR", "1").env("TERM", "xterm").args([
        "-qefc",
        &format!("{binary} orchestra run two --goal G"),
        "/dev/null",
    ]);
    let output = command.output().expect("script");
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    let text = stdout(&output);
    assert!(
        text.contains("/2 tasks"),
        "no progress bar on a terminal: {text:?}"
    );
    assert!(
        !text.contains("\x1b[3"),
        "a colour under NO_COLOR: {text:?}"
    );
}

/// `orchestra list` fits the terminal: the description and agents give way.
#[test]
fn orchestra_list_fits_the_terminal_width() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    project.orchestra(
        "long",
        "orchestra:\n  id: long\n  name: Long\n  description: A very long description that goes on and on about everything this orchestra does and more\ntasks:\n  - name: read\n    agent: developer\n",
    );
    let output = project
        .command()
        .env("COLUMNS", "70")
        .args(["orchestra", "list"])
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 70,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    insta::assert_snapshot!("list_70_columns", text);
    // A pipe with no COLUMNS: whole lines, for scripts.
    let whole = stdout(&project.run(&["orchestra", "list"]));
    assert!(whole.contains("goes on and on about"), "{whole}");
}

/// A listing piped into `head` ends quietly (SIGPIPE, as `ls | head`), never with a panic.
#[test]
fn a_listing_piped_into_head_ends_without_a_panic() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let binary = env!("CARGO_BIN_EXE_super");
    let output = project
        .command_with("bash")
        .args([
            "-c",
            &format!(
                "'{binary}' agent list --library | head -1; echo \"status=${{PIPESTATUS[0]}}\""
            ),
        ])
        .output()
        .expect("bash");
    let err = stderr(&output);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
    let text = stdout(&output);
    assert!(text.starts_with("Built-in library"), "{text}");
    // 141: ended by SIGPIPE (or 0 when all of it fit the pipe before head closed it).
    assert!(
        text.ends_with("status=141\n") || text.ends_with("status=0\n"),
        "{text}"
    );
}
