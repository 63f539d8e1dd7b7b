//! The runner against a loopback server speaking each provider's real protocol: prompts carry
//! context, failures retry or fail as they should, timeouts cancel, parallelism is bounded,
//! Ctrl-C saves, and no key ever lands in a file.

use crate::support::{code, files_under, stderr, stdout, user_messages, Project, API_KEY};
use llm_stub::{Step, StubConfig, StubServer};
use std::time::{Duration, Instant};

const GOAL: &str = "Build a simple login feature for a web application";

fn assert_workspace_complete(project: &Project) {
    let ws = project.workspace("sdlc");
    for file in [
        "task_outputs/implement_feature_output.txt",
        "task_outputs/configure_ci_pipeline_output.txt",
        "task_outputs/create_test_plan_output.txt",
        "task_outputs/implement_feature_prompt.md",
        "intermediate/shared_data.json",
        "final_results/orchestra_output.txt",
        "run.json",
        "metrics.json",
        "trace.jsonl",
    ] {
        assert!(ws.join(file).is_file(), "{file} is missing");
    }
    assert!(ws.join("intermediate/artifacts").is_dir());
    let shared: serde_json::Value = serde_json::from_str(
        &project.read("orchestra_workspaces/sdlc/intermediate/shared_data.json"),
    )
    .expect("json");
    assert_eq!(shared["tasks"].as_object().map(|o| o.len()), Some(3));
    let manifest = project.manifest("sdlc");
    assert_eq!(manifest["status"], "succeeded");
    assert_eq!(manifest["goal"], GOAL);
    assert_eq!(
        manifest["orchestra"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    for task in manifest["tasks"].as_array().expect("tasks") {
        assert_eq!(task["status"], "succeeded");
        assert_eq!(task["attempts"].as_array().map(Vec::len), Some(1));
        assert!(task["tokens_in"].as_u64().unwrap_or(0) > 0);
        assert!(task["tokens_out"].as_u64().unwrap_or(0) > 0);
    }
    let last = project.read("orchestra_workspaces/sdlc/task_outputs/create_test_plan_output.txt");
    assert_eq!(
        project.read("orchestra_workspaces/sdlc/final_results/orchestra_output.txt"),
        last
    );
    let metrics: serde_json::Value =
        serde_json::from_str(&project.read("orchestra_workspaces/sdlc/metrics.json"))
            .expect("json");
    assert_eq!(metrics["total"]["attempts"], 3);
    let trace = project.read("orchestra_workspaces/sdlc/trace.jsonl");
    let spans: Vec<serde_json::Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).expect("span"))
        .collect();
    // One run, three tasks, three attempts, three calls.
    assert_eq!(spans.len(), 10, "{trace}");
    assert!(spans
        .iter()
        .all(|s| s["trace_id"] == spans[0]["trace_id"] && s["span_id"].is_string()));
    assert!(
        trace.contains("\"gen_ai.request.model\":\"test-model\"")
            && trace.contains("gen_ai.usage.input_tokens")
    );
}

fn run_sdlc_on(provider: &str, base_url: impl Fn(&StubServer) -> String) {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc(provider, &base_url(&server));
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(
        code(&output),
        0,
        "{provider}: {}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(
        text.contains("🔄 Task 2/3: configure_ci_pipeline"),
        "{text}"
    );
    assert!(
        text.contains("✅ Task create_test_plan completed in"),
        "{text}"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{provider}");
    let first_output =
        project.read("orchestra_workspaces/sdlc/task_outputs/implement_feature_output.txt");
    assert!(first_output.starts_with("STUB-REPLY-1"), "{first_output}");
    let messages = user_messages(&server);
    let second = match provider {
        // Anthropic keeps the system prompt out of `messages`.
        "anthropic" => requests[1].body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        _ => messages[1].clone(),
    };
    assert!(
        second.contains(&first_output),
        "{provider}: the second request carries the first output:\n{second}"
    );
    assert!(second.contains(GOAL), "{provider}: the goal is stated");
    assert!(second.contains("## Output of `implement_feature` (developer)"));
    match provider {
        "anthropic" => {
            assert_eq!(requests[0].path, "/v1/messages");
            assert!(requests[0].body["system"]
                .as_str()
                .unwrap_or_default()
                .contains("Software Developer"));
            assert_eq!(requests[0].header("anthropic-version"), Some("2023-06-01"));
        }
        "ollama" => assert_eq!(requests[0].path, "/api/chat"),
        _ => {
            assert_eq!(requests[0].path, "/v1/chat/completions");
            assert_eq!(
                requests[0].header("authorization"),
                Some(format!("Bearer {API_KEY}").as_str())
            );
        }
    }
    assert_eq!(requests[0].body["stream"], true, "{provider} streams");
    assert_workspace_complete(&project);
}

#[test]
fn sdlc_on_the_openai_protocol() {
    run_sdlc_on("openai", StubServer::openai_base_url);
}

#[test]
fn sdlc_on_the_ollama_protocol() {
    run_sdlc_on("ollama", StubServer::base_url);
}

#[test]
fn sdlc_on_the_anthropic_protocol() {
    run_sdlc_on("anthropic", StubServer::base_url);
}

#[test]
fn anthropic_sends_its_key_as_x_api_key() {
    let server_key = "sk-ant-test";
    let server = StubServer::start_background(StubConfig::default().require_api_key(server_key))
        .expect("stub");
    let project = Project::sdlc("anthropic", &server.base_url());
    let output = project
        .command()
        .env("ANTHROPIC_API_KEY", server_key)
        .args(["orchestra", "run", "sdlc", "--goal", GOAL])
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}\n{}", stdout(&output), stderr(&output));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_429_with_retry_after_is_honoured() {
    let server =
        StubServer::start_background(StubConfig::default().fail_first(1, 429).retry_after("1"))
            .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let gap = requests[1].since_start - requests[0].since_start;
    assert!(
        gap >= Duration::from_millis(990),
        "waited {gap:?}, the header said 1 s"
    );
    assert!(gap < Duration::from_secs(3), "waited {gap:?}");
    let manifest = project.manifest("sdlc");
    let attempts = manifest["tasks"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["http_status"], 429);
    assert_eq!(attempts[0]["ok"], false);
    assert_eq!(attempts[1]["ok"], true);
    assert!(stdout(&output).contains("attempt 1/3 failed: HTTP 429"));
}

#[test]
fn a_500_until_retries_run_out_fails_the_task_and_skips_its_dependents() {
    let server = StubServer::start_background(StubConfig::default().fail_when_contains(
        "Configure a CI pipeline",
        Step::Status {
            code: 500,
            retry_after: None,
            message: "upstream exploded".into(),
        },
    ))
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    // One call for the first task, three attempts for the second, none for the third.
    assert_eq!(server.requests().len(), 4);
    let manifest = project.manifest("sdlc");
    assert_eq!(manifest["status"], "failed");
    assert_eq!(manifest["tasks"][0]["status"], "succeeded");
    assert_eq!(manifest["tasks"][1]["status"], "failed");
    assert_eq!(
        manifest["tasks"][1]["attempts"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(manifest["tasks"][2]["status"], "skipped");
    assert!(manifest["tasks"][1]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("upstream exploded"));
    let kept = project.read("orchestra_workspaces/sdlc/task_outputs/implement_feature_output.txt");
    assert!(kept.starts_with("STUB-REPLY-1"));
    assert!(!project
        .workspace("sdlc")
        .join("task_outputs/create_test_plan_output.txt")
        .exists());
    assert!(project
        .read("orchestra_workspaces/sdlc/task_outputs/configure_ci_pipeline_error.txt")
        .contains("HTTP 500"));
    let text = stdout(&output);
    assert!(
        text.contains("❌ Task configure_ci_pipeline failed: HTTP 500: upstream exploded"),
        "{text}"
    );
    assert!(text.contains("⏭️  Task create_test_plan skipped"), "{text}");
}

#[test]
fn a_401_fails_at_once_with_the_providers_message() {
    let server = StubServer::start_background(StubConfig::default().require_bearer("another-key"))
        .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 1);
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
    assert!(stdout(&output).contains("HTTP 401"));
}

#[test]
fn a_reply_slower_than_the_timeout_is_cut_at_the_deadline() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_secs(20))]),
    )
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let yaml = crate::support::SDLC.replacen(
        "timeout_seconds: 600",
        "timeout_seconds: 1\n    retry_count: 0",
        1,
    );
    project.orchestra("sdlc", &yaml);
    let started = Instant::now();
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    let took = started.elapsed();
    assert_eq!(code(&output), 1);
    assert!(
        took < Duration::from_secs(8),
        "the attempt ended at the deadline, not when the reply landed ({took:?})"
    );
    let manifest = project.manifest("sdlc");
    let attempt = &manifest["tasks"][0]["attempts"][0];
    let duration = attempt["duration_ms"].as_u64().unwrap_or(0);
    assert!(
        (900..3000).contains(&duration),
        "attempt lasted {duration} ms"
    );
    assert!(attempt["error"]
        .as_str()
        .unwrap_or_default()
        .contains("timed out"));
}

#[test]
fn malformed_and_truncated_bodies_are_retried() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Malformed, Step::CloseMidBody]),
    )
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    assert_eq!(server.requests().len(), 5);
    let manifest = project.manifest("sdlc");
    let attempts = manifest["tasks"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("malformed"),
        "{attempts:?}"
    );
    assert!(
        attempts[1]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("closed")
            || attempts[1]["error"]
                .as_str()
                .unwrap_or_default()
                .contains("ended"),
        "{attempts:?}"
    );
}

#[test]
fn an_empty_reply_is_a_failure() {
    let server = StubServer::start_background(StubConfig::default().script(vec![Step::Empty]))
        .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL]);
    assert_eq!(code(&output), 1);
    assert!(stdout(&output).contains("empty reply"));
}

fn fan_out(project: &Project, tasks: usize, max_parallel: usize) {
    let mut yaml = format!(
        "metadata:\n  id: fan\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: {max_parallel}\nagents: [worker, aggregator]\ntasks:\n"
    );
    for i in 0..tasks {
        yaml.push_str(&format!(
            "  - name: part_{i}\n    agent: worker\n    description: Part {i} of '{{goal}}'\n"
        ));
    }
    let all: Vec<String> = (0..tasks).map(|i| format!("part_{i}")).collect();
    yaml.push_str(&format!(
        "  - name: combine\n    agent: aggregator\n    description: Combine\n    context: [{}]\n",
        all.join(", ")
    ));
    project.orchestra("fan", &yaml);
}

#[test]
fn a_fan_out_keeps_at_most_max_parallel_requests_in_flight() {
    let server = StubServer::start_background(StubConfig::default().latency(300)).expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.simple_agent("aggregator", "combine", "openai", &server.openai_base_url());
    fan_out(&project, 10, 3);
    let output = project.run(&["orchestra", "run", "fan", "--goal", GOAL]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(server.requests().len(), 11);
    assert_eq!(
        server.max_in_flight(),
        3,
        "at most 3 in flight, and at some point exactly 3"
    );
    let combine = user_messages(&server).pop().unwrap_or_default();
    for i in 0..10 {
        assert!(
            combine.contains(&format!("## Output of `part_{i}` (worker)")),
            "context part_{i}"
        );
    }
}

#[test]
fn keep_going_runs_independent_tasks_after_a_failure() {
    let server = StubServer::start_background(
        StubConfig::default().fail_when_contains("Part 0 of", Step::status(400)),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.simple_agent("aggregator", "combine", "openai", &server.openai_base_url());
    fan_out(&project, 4, 1);
    let output = project.run(&["orchestra", "run", "fan", "--goal", GOAL]);
    assert_eq!(code(&output), 1);
    assert_eq!(
        server.requests().len(),
        1,
        "by default no new task starts after a failure"
    );

    let server2 = StubServer::start_background(
        StubConfig::default().fail_when_contains("Part 0 of", Step::status(400)),
    )
    .expect("stub");
    project.simple_agent("worker", "work", "openai", &server2.openai_base_url());
    project.simple_agent(
        "aggregator",
        "combine",
        "openai",
        &server2.openai_base_url(),
    );
    let output = project.run(&["orchestra", "run", "fan", "--goal", GOAL, "--keep-going"]);
    assert_eq!(code(&output), 1);
    assert_eq!(
        server2.requests().len(),
        4,
        "the three other parts ran; the aggregator was skipped"
    );
    let statuses = project.statuses("fan");
    assert_eq!(statuses.iter().filter(|s| **s == "succeeded").count(), 3);
    assert_eq!(statuses.last().map(String::as_str), Some("skipped"));
    assert!(
        project.workspace("fan").join("history").is_dir(),
        "the first run was filed under history/"
    );
}

#[test]
fn sigint_saves_an_interrupted_manifest() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Ok, Step::Delay(Duration::from_secs(30))]),
    )
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    // Two requests: the second task is in flight.
    let child = project.spawn_until(&["orchestra", "run", "sdlc", "--goal", GOAL], &server, 2);
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    std::thread::sleep(Duration::from_millis(300));
    // The second Ctrl-C aborts the call still in flight.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let output = child.wait_with_output().expect("wait");
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    let manifest = project.manifest("sdlc");
    assert_eq!(manifest["status"], "interrupted");
    assert_eq!(manifest["tasks"][0]["status"], "succeeded");
    let first = project.read("orchestra_workspaces/sdlc/task_outputs/implement_feature_output.txt");
    assert!(
        first.starts_with("STUB-REPLY-1") && first.len() > 20,
        "whole output: {first}"
    );
    assert_eq!(server.request_count(), 2, "no new task started");
}

#[test]
fn the_api_key_never_reaches_a_file_or_a_log() {
    let server =
        StubServer::start_background(StubConfig::default().fail_first(1, 500)).expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--verbose"]);
    assert_eq!(code(&output), 0);
    let json = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--json"]);
    assert_eq!(code(&json), 0);
    let mut haystack = vec![
        stdout(&output),
        stderr(&output),
        stdout(&json),
        stderr(&json),
    ];
    for file in files_under(&project.workspace("sdlc")) {
        haystack.push(String::from_utf8_lossy(&std::fs::read(&file).expect("read")).into_owned());
    }
    assert!(haystack.len() > 10);
    for text in haystack {
        assert!(!text.contains(API_KEY), "the key leaked");
    }
}

#[test]
fn json_mode_prints_only_json_events() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc("ollama", &server.base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--json"]);
    assert_eq!(code(&output), 0);
    let events: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(
        events.first().map(|e| e["event"].clone()),
        Some("run_started".into())
    );
    assert_eq!(
        events.last().map(|e| e["event"].clone()),
        Some("run_finished".into())
    );
    assert!(events.iter().any(|e| e["event"] == "token"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "task_finished")
            .count(),
        3
    );
}

#[test]
fn verbose_shows_order_workspace_and_streamed_tokens() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--verbose"]);
    assert_eq!(code(&output), 0);
    let out = stdout(&output);
    assert!(out.contains("📋 Execution order:") && out.contains("2. configure_ci_pipeline (devops_engineer, openai/test-model) after implement_feature"), "{out}");
    assert!(out.contains("📁 Workspace:"));
    assert!(
        stderr(&output).contains("STUB-REPLY-2"),
        "tokens are streamed"
    );
    assert!(
        out.contains("Task                   Agent"),
        "summary table: {out}"
    );
}

#[test]
fn dry_run_prints_the_plan_and_makes_no_call() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--dry-run"]);
    assert_eq!(code(&output), 0);
    assert_eq!(server.request_count(), 0);
    let text = stdout(&output);
    assert!(text.contains("1. implement_feature (developer, priority medium)"));
    assert!(text.contains("timeout 600s, 3 attempt(s), openai/test-model"));
    assert!(text.contains("depends on: implement_feature"));
    assert!(!project.workspace("sdlc").join("run.json").exists());
}

#[test]
fn priorities_order_ready_tasks() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra(
        "prio",
        "metadata:\n  id: prio\ntasks:\n  - name: low_one\n    agent: worker\n    description: LOW\n    priority: low\n  - name: critical_one\n    agent: worker\n    description: CRITICAL\n    priority: critical\n  - name: high_one\n    agent: worker\n    description: HIGH\n    priority: high\n",
    );
    let output = project.run(&["orchestra", "run", "prio", "--goal", "g"]);
    assert_eq!(code(&output), 0);
    let order: Vec<String> = user_messages(&server)
        .iter()
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(order, vec!["CRITICAL", "HIGH", "LOW"]);
}
