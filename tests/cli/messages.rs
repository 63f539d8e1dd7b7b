//! Every message a newcomer meets first, as a snapshot with the exact command that makes it:
//! unknown names with "did you mean", conflicting flags, the missing model, an empty project,
//! and the failures that say what to do (Ollama down, a refused key, a missing model).

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{Step, StubConfig, StubServer};

const ONE_TASK: &str = "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Do the work for '{goal}'.\n    retry_count: 2\n";

/// `$ super ARGS`, the exit code, stdout and stderr, with the temp folder, ports, run ids and
/// durations replaced so the snapshot is stable.
fn transcript(project: &Project, args: &[&str]) -> String {
    let output = project.run(args);
    let text = format!(
        "$ super {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        code(&output),
        stdout(&output),
        stderr(&output)
    );
    project.redact(&text)
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({filters => vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"\d+\.\d+s\b", "[T]s"),
        (r"\d{8}T\d{6}(\.\d+)?Z?(-[0-9a-f]+)?", "[RUN-ID]"),
        (r"/tmp/[^/\s]+", "[TMP]"),
    ]}, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn unknown_names_get_did_you_mean() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    snapshot(
        "unknown_orchestra",
        &transcript(&project, &["orchestra", "run", "sdcl", "--goal", "G"]),
    );
    snapshot(
        "unknown_library_agent",
        &transcript(&project, &["agent", "pull", "develper"]),
    );
    snapshot(
        "unknown_provider",
        &transcript(
            &project,
            &[
                "orchestra",
                "run",
                "sdlc",
                "--goal",
                "G",
                "--provider",
                "olama",
                "--dry-run",
            ],
        ),
    );
    snapshot(
        "unknown_from_task",
        &transcript(
            &project,
            &[
                "orchestra",
                "run",
                "sdlc",
                "--goal",
                "G",
                "--from",
                "implement_featur",
            ],
        ),
    );
    snapshot(
        "unknown_subcommand",
        &transcript(&project, &["orchestra", "rnu", "sdlc"]),
    );
}

#[test]
fn verbose_and_quiet_together_are_refused() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    snapshot(
        "verbose_and_quiet",
        &transcript(
            &project,
            &["orchestra", "run", "sdlc", "--goal", "G", "-v", "-q"],
        ),
    );
}

#[test]
fn an_empty_project_says_how_to_add_agents() {
    let project = Project::empty();
    snapshot(
        "create_without_agents",
        &transcript(&project, &["orchestra", "create", "sdlc"]),
    );
}

#[test]
fn a_missing_model_names_the_command_that_fetches_it() {
    if !cfg!(feature = "local") {
        crate::support::skip_or_fail("built without the `local` feature");
        return;
    }
    let project = Project::empty();
    project.simple_agent("worker", "work", "local", "");
    project.orchestra("one", ONE_TASK);
    let text = transcript(&project, &["orchestra", "run", "one", "--goal", "G"]);
    assert!(text.contains("super model pull"), "{text}");
    snapshot("missing_model", &text);
}

#[test]
fn failures_say_what_to_do() {
    let project = Project::empty();
    project.simple_agent("worker", "work", "ollama", "http://127.0.0.1:9");
    project.orchestra("one", ONE_TASK);
    snapshot(
        "ollama_down",
        &transcript(&project, &["orchestra", "run", "one", "--goal", "G"]),
    );

    for (name, status) in [("key_refused", 401), ("model_missing", 404)] {
        let server =
            StubServer::start_background(StubConfig::default().script(vec![Step::status(status)]))
                .expect("stub");
        let project = Project::empty();
        project.simple_agent("worker", "work", "openai", &server.openai_base_url());
        project.orchestra("one", ONE_TASK);
        snapshot(
            name,
            &transcript(&project, &["orchestra", "run", "one", "--goal", "G"]),
        );
    }
}
