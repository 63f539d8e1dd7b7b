//! The smaller commands: list, graph, completions, help, and the shipped examples.

use crate::support::{code, stderr, stdout, Project};
use std::path::Path;

#[test]
fn list_shows_every_orchestra_and_broken_ones_with_their_error() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    project.orchestra("broken", "metadata:\n  id: broken\ntasks:\n  - name: a\n    agent: developer\n    context: [ghost]\n");
    let output = project.run(&["orch", "ls"]);
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.contains("sdlc")
            && text.contains("Sdlc Orchestra")
            && text.contains("developer, devops_engineer, qa_engineer"),
        "{text}"
    );
    assert!(
        text.contains("(invalid)") && text.contains("broken_orchestra.yaml:6:15"),
        "{text}"
    );
    assert!(stderr(&output).contains("1 invalid"));
}

#[test]
fn graph_draws_mermaid_and_dot() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let mermaid = stdout(&project.run(&["orchestra", "graph", "sdlc"]));
    assert!(mermaid.starts_with("graph TD\n"), "{mermaid}");
    assert!(
        mermaid.contains("t0 --> t1") && mermaid.contains("t1 --> t2"),
        "{mermaid}"
    );
    let dot = stdout(&project.run(&["orchestra", "graph", "sdlc", "--format", "dot"]));
    assert!(
        dot.starts_with("digraph \"sdlc\"")
            && dot.contains("\"implement_feature\" -> \"configure_ci_pipeline\";"),
        "{dot}"
    );
}

#[test]
fn completions_and_help_work_everywhere() {
    let project = Project::empty();
    for shell in ["bash", "zsh", "fish"] {
        let output = project.run(&["completions", shell]);
        assert_eq!(code(&output), 0);
        assert!(stdout(&output).contains("COMPLETE"), "{shell}");
    }
    for command in [
        vec!["--help"],
        vec!["orchestra", "--help"],
        vec!["orchestra", "run", "--help"],
        vec!["orchestra", "validate", "--help"],
        vec!["orchestra", "create", "--help"],
        vec!["orchestra", "list", "--help"],
        vec!["orchestra", "graph", "--help"],
        vec!["agent", "pull", "--help"],
        vec!["agent", "show", "--help"],
        vec!["agent", "list", "--help"],
        vec!["model", "list", "--help"],
        vec!["init", "--help"],
        vec!["orch", "ru", "--help"],
        vec!["orch", "cr", "--help"],
    ] {
        let output = project.run(&command);
        assert_eq!(code(&output), 0, "{command:?}");
        assert!(stdout(&output).contains("Usage"), "{command:?}");
    }
    let bad = project.run(&["orchestra", "run", "sdlc"]);
    assert_eq!(code(&bad), 2, "a missing --goal is a usage error");
}

#[test]
fn a_file_without_ids_takes_them_from_its_name() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let path = project.path("elsewhere/quick_review_orchestra.yaml");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(&path, "tasks:\n  - name: a\n    agent: Developer\n").expect("write");
    let output = project.run(&["orchestra", "validate", path.to_str().expect("utf-8")]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("orchestra `quick_review`"),
        "{}",
        stdout(&output)
    );
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_examples_validate() {
    let example = repository().join("examples/sdlc");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_super"))
            .current_dir(&example)
            .env("SUPER_PROVIDER", "ollama")
            .env("SUPER_MODEL", "llama3.2")
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .expect("run")
    };
    for id in ["sdlc", "content_creation", "data_analysis"] {
        let output = run(&["orchestra", "validate", id, "--strict"]);
        assert_eq!(code(&output), 0, "{id}: {}", stderr(&output));
    }
    for file in [
        "parallel_review_orchestra.yaml",
        "mixed_release_orchestra.yaml",
    ] {
        let path = repository().join("orchestras").join(file);
        let output = run(&[
            "orchestra",
            "validate",
            path.to_str().expect("utf-8"),
            "--strict",
        ]);
        assert_eq!(
            code(&output),
            0,
            "{file}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        let dry = run(&[
            "orchestra",
            "run",
            path.to_str().expect("utf-8"),
            "--goal",
            "Ship it",
            "--dry-run",
        ]);
        assert_eq!(code(&dry), 0, "{file}: {}", stderr(&dry));
        assert!(stdout(&dry).contains("wave 2"), "{file}: {}", stdout(&dry));
    }
}

/// Unknown names get a "did you mean": an orchestra id, a provider.
#[test]
fn unknown_orchestra_ids_and_providers_get_a_suggestion() {
    let project = Project::sdlc("ollama", "http://127.0.0.1:9");
    let run = project.run(&["orchestra", "run", "sdcl", "--goal", "G"]);
    assert_eq!(code(&run), 2, "{}", stderr(&run));
    assert!(
        stderr(&run).contains("did you mean `sdlc`?"),
        "{}",
        stderr(&run)
    );
    let provider = project.run(&[
        "orchestra",
        "run",
        "sdlc",
        "--goal",
        "G",
        "--dry-run",
        "--provider",
        "olama",
    ]);
    assert_ne!(code(&provider), 0);
    let text = format!("{}{}", stdout(&provider), stderr(&provider));
    assert!(text.contains("did you mean `ollama`?"), "{text}");
}

/// `--verbose` on a parallel run prints each streamed line whole, prefixed with its task, as
/// `docker compose` does; a sequential run keeps a heading per task.
#[test]
fn verbose_parallel_streams_prefix_each_line_with_its_task() {
    let server = llm_stub::StubServer::start_background(
        llm_stub::StubConfig::default()
            .chunk_delay(std::time::Duration::from_millis(2))
            .reply_fn(|request| {
                let user = llm_stub::last_user_message(&request.body).unwrap_or_default();
                let task = if user.contains("ALPHA") {
                    "alpha"
                } else {
                    "beta"
                };
                format!("first line of {task}\nsecond line of {task}")
            }),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra(
        "two",
        "metadata:\n  id: two\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 2\ntasks:\n  - name: a\n    agent: worker\n    description: ALPHA {goal}\n  - name: b\n    agent: worker\n    description: BETA {goal}\n",
    );
    let output = project.run(&["orchestra", "run", "two", "--goal", "G", "--verbose"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    for line in [
        "a | first line of alpha",
        "a | second line of alpha",
        "b | first line of beta",
        "b | second line of beta",
    ] {
        assert!(err.lines().any(|l| l == line), "`{line}` in:\n{err}");
    }
    assert!(!err.contains("── a ──"), "{err}");
}

/// A large run's closing table shows the failed and the slowest tasks, then counts the rest;
/// `--table full` lists every task; `--quiet` prints nothing for a run that succeeds.
#[test]
fn a_large_run_gets_a_short_table_and_quiet_prints_nothing() {
    let server =
        llm_stub::StubServer::start_background(llm_stub::StubConfig::default()).expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    let mut yaml = String::from("metadata:\n  id: many\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 8\ntasks:\n");
    for i in 0..40 {
        yaml.push_str(&format!(
            "  - name: t{i}\n    agent: worker\n    description: Part {i} of {{goal}}\n"
        ));
    }
    project.orchestra("many", &yaml);
    let short = project.run(&["orchestra", "run", "many", "--goal", "G"]);
    assert_eq!(code(&short), 0, "{}", stderr(&short));
    let text = stdout(&short);
    assert!(text.contains("… 30 more succeeded"), "{text}");
    let rows = text
        .lines()
        .filter(|l| l.starts_with('t') && l.contains("succeeded"))
        .count();
    assert_eq!(rows, 10, "{text}");

    let full = project.run(&[
        "orchestra",
        "run",
        "many",
        "--goal",
        "G",
        "--table",
        "full",
        "--no-cache",
    ]);
    let rows = stdout(&full)
        .lines()
        .filter(|l| l.starts_with('t') && l.contains("succeeded"))
        .count();
    assert_eq!(rows, 40, "{}", stdout(&full));

    let quiet = project.run(&[
        "orchestra",
        "run",
        "many",
        "--goal",
        "G",
        "--quiet",
        "--no-cache",
    ]);
    assert_eq!(code(&quiet), 0);
    assert_eq!(stdout(&quiet), "", "nothing but errors");
}

/// `--verbose` shows the seed's tier validation: each agent's tier, and which features of the
/// file SuperOptiX reserves for higher tiers (all of which run here).
#[test]
fn verbose_shows_tier_validation() {
    let project = Project::empty();
    project.agent(
        "worker",
        &crate::support::playbook(
            "worker",
            "Fixture Worker",
            "work",
            &crate::support::language_model("ollama", "http://127.0.0.1:9"),
        )
        .replace(
            "  namespace: testing\n",
            "  namespace: testing\n  level: genies\n",
        ),
    );
    project.orchestra(
        "two",
        "metadata:\n  id: two\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 2\ntasks:\n  - name: a\n    agent: worker\n    description: A.\n",
    );
    let output = project.run(&[
        "orchestra",
        "run",
        "two",
        "--goal",
        "G",
        "--dry-run",
        "--verbose",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Tier validation: agents worker (genies)"),
        "{text}"
    );
    assert!(text.contains("strategy `parallel`, max_parallel_tasks 2 (reserved for higher tiers in SuperOptiX; available here)"), "{text}");
}
