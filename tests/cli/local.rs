//! The embedded model end to end: the sdlc example runs offline on `local` and writes every
//! workspace file. Skipped (with a note) when the model has not been fetched or the binary was
//! built without the `local` feature.

use crate::support::{code, stderr, stdout, Project};
use std::path::{Path, PathBuf};

/// The model cache a user's run would read (the tests' own SUPER_HOME is empty on purpose).
fn real_super_home() -> Option<PathBuf> {
    if !cfg!(feature = "local") {
        return None;
    }
    let home = std::env::var_os("SUPER_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("super"))
        })?;
    home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        .is_file()
        .then_some(home)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() != "orchestra_workspaces" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// An example project copied into a temp folder, its agents' playbooks set to the embedded
/// model with a short `max_tokens` so the test stays quick.
fn example_on_local(example: &str, package: &str, agents: &[&str], max_tokens: u32) -> Project {
    let project = Project::empty();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example),
        project.root(),
    );
    for agent in agents {
        let path = project.path(&format!(
            "{package}/agents/{agent}/playbook/{agent}_playbook.yaml"
        ));
        let text = std::fs::read_to_string(&path).expect("playbook");
        let patched = text.replacen(
            "spec:\n",
            &format!(
                "spec:\n  language_model:\n    provider: local\n    max_tokens: {max_tokens}\n"
            ),
            1,
        );
        std::fs::write(&path, patched).expect("write");
    }
    project
}

/// `super` in `project` with the real model cache and no API key.
fn run_local(project: &Project, home: &Path, args: &[&str]) -> std::process::Output {
    project
        .command()
        .env("SUPER_HOME", home)
        .env_remove("OPENAI_API_KEY")
        .args(args)
        .output()
        .expect("run")
}

#[test]
fn the_sdlc_example_runs_offline_on_the_embedded_model() {
    let Some(home) = real_super_home() else {
        crate::support::skip_or_fail("the embedded model is not fetched (scripts/fetch-model.sh) or the `local` feature is off");
        return;
    };
    // Short generations keep the test quick; the provider is still the embedded default.
    let project = example_on_local(
        "sdlc",
        "sdlc",
        &["developer", "devops_engineer", "qa_engineer"],
        40,
    );
    let output = run_local(
        &project,
        &home,
        &[
            "orchestra",
            "run",
            "sdlc",
            "--goal",
            "Build a simple login feature for a web application",
        ],
    );
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let ws = project.workspace("sdlc");
    for task in [
        "implement_feature",
        "configure_ci_pipeline",
        "create_test_plan",
    ] {
        let text = std::fs::read_to_string(ws.join(format!("task_outputs/{task}_output.txt")))
            .expect("output");
        assert!(!text.trim().is_empty(), "{task} produced text");
    }
    for file in [
        "intermediate/shared_data.json",
        "final_results/orchestra_output.txt",
        "run.json",
        "metrics.json",
        "trace.jsonl",
    ] {
        assert!(ws.join(file).is_file(), "{file}");
    }
    let manifest = project.manifest("sdlc");
    for task in manifest["tasks"].as_array().expect("tasks") {
        assert_eq!(task["provider"], "local");
        assert!(
            task["tokens_out"].as_u64().unwrap_or(0) > 0
                && task["tokens_out"].as_u64().unwrap_or(0) <= 40
        );
        assert!(task["tokens_in"].as_u64().unwrap_or(0) > 50);
    }
}

#[test]
fn model_path_and_list_read_the_cache() {
    let project = Project::empty();
    let path = project.run(&["model", "path"]);
    if !cfg!(feature = "local") {
        assert_eq!(code(&path), 2);
        return;
    }
    assert_eq!(code(&path), 1, "the test's empty cache has no model");
    assert!(stdout(&path)
        .trim()
        .ends_with("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(stderr(&path).contains("super model pull"));
    let models = project.path(".super-home/models");
    std::fs::create_dir_all(&models).expect("mkdir");
    std::fs::write(
        models.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        b"not a model",
    )
    .expect("write");
    let list = project.run(&["model", "list"]);
    assert_eq!(code(&list), 0);
    assert!(
        stdout(&list).contains("CHECKSUM MISMATCH"),
        "{}",
        stdout(&list)
    );
}

#[test]
fn a_timeout_stops_the_embedded_model_promptly() {
    let Some(home) = real_super_home() else {
        crate::support::skip_or_fail(
            "the embedded model is not fetched or the `local` feature is off",
        );
        return;
    };
    let project = Project::empty();
    project.agent(
        "writer",
        &crate::support::playbook(
            "writer",
            "Writer",
            "write",
            "  language_model:\n    provider: local\n    max_tokens: 4000\n",
        ),
    );
    project.orchestra(
        "long",
        "metadata:\n  id: long\ntasks:\n  - name: write\n    agent: writer\n    description: Write a very long story about '{goal}', at least five thousand words.\n    timeout_seconds: 2\n    retry_count: 0\n",
    );
    let started = std::time::Instant::now();
    let output = project
        .command()
        .env("SUPER_HOME", &home)
        // The model may end a story early; this makes it generate all 4000 tokens unless stopped.
        .env("SUPER_LOCAL_IGNORE_EOS", "1")
        .args(["orchestra", "run", "long", "--goal", "a lighthouse"])
        .output()
        .expect("run");
    let took = started.elapsed();
    assert_eq!(code(&output), 1, "{}{}", stdout(&output), stderr(&output));
    assert!(
        took < std::time::Duration::from_secs(15),
        "generation stopped at the deadline, not after 4000 tokens ({took:?})"
    );
    let manifest = project.manifest("long");
    let attempt = &manifest["tasks"][0]["attempts"][0];
    assert!(
        attempt["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{attempt}"
    );
    assert!(
        attempt["duration_ms"].as_u64().unwrap_or(0) < 4000,
        "{attempt}"
    );
}

/// The structured example on the embedded model: constrained decoding makes every answer a
/// JSON document valid for its schema, so no repair call is needed, and field references carry
/// the design's values into the later prompts.
#[test]
fn the_structured_example_answers_valid_json_on_the_embedded_model() {
    let Some(home) = real_super_home() else {
        crate::support::skip_or_fail("the embedded model is not fetched (scripts/fetch-model.sh) or the `local` feature is off");
        return;
    };
    let project = example_on_local("structured", "structured", &["architect", "developer"], 120);
    let output = run_local(
        &project,
        &home,
        &[
            "orchestra",
            "run",
            "api_pipeline",
            "--goal",
            "a todo list service",
        ],
    );
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let ws = project.workspace("api_pipeline");
    let read = |task: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(ws.join(format!("task_outputs/{task}_output.json")))
            .unwrap_or_else(|e| panic!("{task}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{task}: {e}: {text}"))
    };
    let design = read("design_api");
    assert!(design["service"].is_string(), "{design}");
    assert!(!design["endpoints"]
        .as_array()
        .expect("endpoints")
        .is_empty());
    let review = read("review_design");
    assert!(review["approved"].is_boolean(), "{review}");
    assert!(review["concerns"].is_array(), "{review}");
    assert!(read("implement")["files"].is_array());
    let manifest = project.manifest("api_pipeline");
    for task in manifest["tasks"].as_array().expect("tasks") {
        let calls = task["attempts"][0]["calls"].as_array().expect("calls");
        assert_eq!(calls.len(), 1, "no repair was needed: {task}");
    }
    let service = design["service"].as_str().unwrap_or_default();
    let prompt =
        std::fs::read_to_string(ws.join("task_outputs/implement_prompt.md")).expect("prompt");
    assert!(
        prompt.contains(&format!("for the service {service}")),
        "{prompt}"
    );
}

/// The embedded model calls tools through constrained decoding: each turn is decoded under a
/// schema admitting only a call of an offered tool (with its argument schema) or the answer,
/// so every call it makes parses, whatever the 135M model's judgement.
#[test]
fn the_embedded_model_makes_tool_calls_that_always_parse() {
    let Some(home) = real_super_home() else {
        crate::support::skip_or_fail("the embedded model is not fetched (scripts/fetch-model.sh) or the `local` feature is off");
        return;
    };
    let project = Project::empty();
    project.agent(
        "mathy",
        "apiVersion: agent/v1\nkind: AgentSpec\nmetadata:\n  name: Mathy\n  id: mathy\nspec:\n  language_model:\n    provider: local\n    max_tokens: 60\n  persona:\n    role: Calculator operator\n  tasks:\n  - name: compute\n    instruction: Use the calculator tool to compute, then answer with the number.\n  tools:\n    enabled: true\n    specific_tools: [calculator]\n    max_iterations: 1\n",
    );
    project.orchestra(
        "calc",
        "metadata:\n  id: calc\ntasks:\n  - name: compute\n    agent: mathy\n    description: \"Compute {goal} with the calculator tool.\"\n",
    );
    let output = project
        .command()
        .env("SUPER_HOME", &home)
        .env_remove("OPENAI_API_KEY")
        .args(["orchestra", "run", "calc", "--goal", "17*23"])
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let manifest = project.manifest("calc");
    let attempt = &manifest["tasks"][0]["attempts"][0];
    let calls = attempt["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Whether the 135M model calls the tool depends on its judgement (and on the CPU's kernel
    // numerics); that every call it makes parses and runs does not. The forced call is tested
    // in the crate (`provider::local::tests`).
    for call in &calls {
        assert_eq!(call["name"], "calculator", "{call}");
        let arguments: serde_json::Value =
            serde_json::from_str(call["arguments"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}: {call}"));
        assert!(arguments["expression"].is_string(), "{call}");
        assert!(call.get("error").is_none(), "the call ran: {call}");
    }
    let answer = std::fs::read_to_string(
        project
            .workspace("calc")
            .join("task_outputs/compute_output.txt"),
    )
    .expect("output");
    assert!(!answer.trim().is_empty());
    assert!(
        !answer.contains("\"tool\""),
        "the final answer is not a tool call: {answer}"
    );
}

/// The hierarchical example on the embedded model: the manager's plan and verdicts are decoded
/// under their schemas, so they always parse (whether the 135M model's plan is usable or the
/// run falls back to the declared tasks, it says so in run.json), and the run finishes.
#[test]
fn a_hierarchical_run_finishes_on_the_embedded_model_with_parsed_decisions() {
    let Some(home) = real_super_home() else {
        crate::support::skip_or_fail("the embedded model is not fetched (scripts/fetch-model.sh) or the `local` feature is off");
        return;
    };
    let project = example_on_local("hierarchical", "newsroom", &["researcher", "writer"], 80);
    let output = run_local(
        &project,
        &home,
        &["orchestra", "run", "newsroom", "--goal", "tide pools"],
    );
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let manager = project.workspace("newsroom").join("task_outputs/_manager");
    let plan = ["plan.json", "plan_rejected.json"]
        .iter()
        .find_map(|f| std::fs::read_to_string(manager.join(f)).ok())
        .expect("the plan parsed (accepted or rejected)");
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("plan JSON");
    assert!(plan["assignments"].is_array(), "{plan}");
    // A review for each task that ran (the plan may have left one out, with a reason).
    let manifest = project.manifest("newsroom");
    for task in manifest["tasks"].as_array().expect("tasks") {
        if task["status"] != "succeeded" {
            continue;
        }
        let name = task["name"].as_str().unwrap_or_default();
        let verdict = std::fs::read_to_string(manager.join(format!("review_{name}_1.json")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let verdict: serde_json::Value = serde_json::from_str(&verdict).expect("verdict JSON");
        assert!(
            matches!(verdict["verdict"].as_str(), Some("accept" | "revise")),
            "{verdict}"
        );
    }
    assert_eq!(manifest["manager"]["agent"], "built-in");
    assert!(!manifest["manager"]["calls"]
        .as_array()
        .expect("calls")
        .is_empty());
    let final_text = std::fs::read_to_string(
        project
            .workspace("newsroom")
            .join("final_results/orchestra_output.txt"),
    )
    .expect("final");
    assert!(!final_text.trim().is_empty());
}
