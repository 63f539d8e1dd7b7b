//! Durable, repeatable, cost-aware runs: kill -9 and resume, edit and resume, record and
//! replay, budgets, shared rate limits and the workspace lock.

use crate::support::{code, stderr, stdout, user_messages, Project};
use llm_stub::{Step, StubConfig, StubServer};
use std::time::Duration;

/// A chain of `n` tasks, each building on the one before.
fn chain(project: &Project, id: &str, n: usize) {
    let mut yaml = format!(
        "metadata:\n  id: {id}\norchestra:\n  execution:\n    strategy: sequential\ntasks:\n"
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: step_{i}\n    agent: worker\n    description: Step {i} of '{{goal}}'\n"
        ));
        if i > 0 {
            yaml.push_str(&format!("    context: [step_{}]\n", i - 1));
        }
    }
    project.orchestra(id, &yaml);
}

fn steps_requested(server: &StubServer) -> Vec<String> {
    user_messages(server)
        .iter()
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn kill_9_then_resume_calls_no_finished_task_again() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::Ok,
        Step::Ok,
        Step::Ok,
        Step::Delay(Duration::from_secs(30)),
    ]))
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    chain(&project, "six", 6);
    // The fourth request arrives only after the third task's output was stored.
    let mut child = project.spawn_until(&["orchestra", "run", "six", "--goal", "G"], &server, 4);
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let ws = project.workspace("six");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("run.json")).expect("run.json survives"),
    )
    .expect("readable");
    assert_eq!(manifest["status"], "running");
    for entry in std::fs::read_dir(ws.join("task_outputs")).expect("outputs") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(!name.contains(".tmp"), "no partial file: {name}");
    }

    let resume = project.run(&["orchestra", "run", "six", "--goal", "G", "--resume"]);
    assert_eq!(code(&resume), 0, "{}{}", stdout(&resume), stderr(&resume));
    let asked = steps_requested(&server);
    assert_eq!(asked.len(), 4 + 3, "{asked:?}");
    assert_eq!(
        &asked[4..],
        ["Step 3 of 'G'", "Step 4 of 'G'", "Step 5 of 'G'"]
    );
    let statuses = project.statuses("six");
    assert_eq!(
        statuses,
        [
            "cached",
            "cached",
            "cached",
            "succeeded",
            "succeeded",
            "succeeded"
        ]
    );
    for i in 0..6 {
        let text = project.read(&format!(
            "orchestra_workspaces/six/task_outputs/step_{i}_output.txt"
        ));
        assert!(
            text.starts_with("STUB-REPLY-") && text.contains(&format!("Step {i} of")),
            "whole output {i}: {text}"
        );
    }
    assert!(stdout(&resume).contains("reused from cache"));
    assert!(ws.join("history").is_dir());
}

#[test]
fn editing_a_description_reruns_that_task_and_its_dependents_only() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    // a -> b -> c, and d on its own.
    let yaml = "metadata:\n  id: edit\ntasks:\n  - name: a\n    agent: worker\n    description: TASK-A\n  - name: b\n    agent: worker\n    description: TASK-B\n    context: [a]\n  - name: c\n    agent: worker\n    description: TASK-C\n    context: [b]\n  - name: d\n    agent: worker\n    description: TASK-D\n";
    project.orchestra("edit", yaml);
    assert_eq!(
        code(&project.run(&["orchestra", "run", "edit", "--goal", "G"])),
        0
    );
    assert_eq!(server.request_count(), 4);
    project.orchestra(
        "edit",
        &yaml.replace("TASK-B", "TASK-B, now with more detail"),
    );
    let resume = project.run(&["orchestra", "run", "edit", "--goal", "G", "--resume"]);
    assert_eq!(code(&resume), 0);
    let asked = steps_requested(&server);
    assert_eq!(&asked[4..], ["TASK-B, now with more detail", "TASK-C"]);

    // --from reruns a task and everything downstream of it.
    let from = project.run(&["orchestra", "run", "edit", "--goal", "G", "--from", "c"]);
    assert_eq!(code(&from), 0);
    assert_eq!(&steps_requested(&server)[6..], ["TASK-C"]);
    // --no-cache reuses nothing.
    assert_eq!(
        code(&project.run(&["orchestra", "run", "edit", "--goal", "G", "--no-cache"])),
        0
    );
    assert_eq!(server.request_count(), 11);
}

#[test]
fn replay_reproduces_a_recorded_run_without_the_network() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let recording = project.path("calls.jsonl");
    let record = project.run(&[
        "orchestra",
        "run",
        "sdlc",
        "--goal",
        "G",
        "--record",
        recording.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&record), 0, "{}", stderr(&record));
    let read_all = |project: &Project| -> Vec<String> {
        [
            "implement_feature",
            "configure_ci_pipeline",
            "create_test_plan",
        ]
        .iter()
        .map(|t| {
            project.read(&format!(
                "orchestra_workspaces/sdlc/task_outputs/{t}_output.txt"
            ))
        })
        .chain([project.read("orchestra_workspaces/sdlc/final_results/orchestra_output.txt")])
        .collect()
    };
    let recorded = read_all(&project);
    assert_eq!(project.read("calls.jsonl").lines().count(), 3);
    drop(server);

    // No server and no key: every answer comes from the file.
    let replay = project
        .command()
        .env_remove("OPENAI_API_KEY")
        .args([
            "orchestra",
            "run",
            "sdlc",
            "--goal",
            "G",
            "--replay",
            recording.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run");
    assert_eq!(code(&replay), 0, "{}{}", stdout(&replay), stderr(&replay));
    assert_eq!(read_all(&project), recorded, "byte for byte");

    // A changed prompt fails closed, naming the task and showing the difference.
    let replay = project.run(&[
        "orchestra",
        "run",
        "sdlc",
        "--goal",
        "A different goal",
        "--replay",
        recording.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&replay), 1);
    let text = stdout(&replay);
    assert!(
        text.contains("task `implement_feature`: no recorded call matches"),
        "{text}"
    );
    let manifest = project.manifest("sdlc");
    let reason = manifest["tasks"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("- Goal: G") && reason.contains("+ Goal: A different goal"),
        "{reason}"
    );
}

#[test]
fn a_call_budget_stops_the_run_with_its_reason() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let yaml = crate::support::SDLC.replace(
        "    enable_trace: true\n",
        "    enable_trace: true\n    budget:\n      max_llm_calls: 2\n",
    );
    project.orchestra("sdlc", &yaml);
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", "G"]);
    assert_eq!(code(&output), 1);
    assert_eq!(server.request_count(), 2);
    let manifest = project.manifest("sdlc");
    assert_eq!(manifest["status"], "failed");
    assert!(
        manifest["stop_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("max_llm_calls 2"),
        "{manifest}"
    );
    assert_eq!(manifest["tasks"][2]["status"], "skipped");
    assert!(stdout(&output).contains("budget reached: max_llm_calls 2"));
    assert!(
        project
            .workspace("sdlc")
            .join("task_outputs/configure_ci_pipeline_output.txt")
            .is_file(),
        "finished outputs are kept"
    );

    // The same budget from the command line.
    let output = project.run(&[
        "orchestra",
        "run",
        "sdlc",
        "--goal",
        "G",
        "--max-llm-calls",
        "1",
    ]);
    assert_eq!(code(&output), 1);
    assert_eq!(server.request_count(), 3);
}

#[test]
fn dry_run_estimates_tokens_and_cost() {
    let project = Project::sdlc("openai", "https://api.openai.com/v1");
    let yaml = crate::support::SDLC.replace("metadata:", "pricing:\n  test-model:\n    input_per_million: 1000\n    output_per_million: 2000\nmetadata:");
    project.orchestra("sdlc", &yaml);
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", "G", "--dry-run"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("prompt tokens (estimated)") && text.contains("💰 Estimated total:"),
        "{text}"
    );
    let total: f64 = text
        .lines()
        .find(|l| l.starts_with("💰"))
        .and_then(|l| l.split('$').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a total cost");
    assert!(
        total > 1.0,
        "1000/2000 USD per million tokens over ~3000 tokens: {text}"
    );
}

#[test]
fn a_shared_rate_limit_spaces_parallel_requests() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::empty();
    project.agent("worker", &crate::support::playbook("worker", "Worker", "work", &format!("  language_model:\n    provider: openai\n    model: m\n    api_base: {}\n    rpm: 60\n", server.openai_base_url())));
    let mut yaml = "metadata:\n  id: limited\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 5\ntasks:\n".to_string();
    for i in 0..5 {
        yaml.push_str(&format!(
            "  - name: t{i}\n    agent: worker\n    description: T{i}\n"
        ));
    }
    project.orchestra("limited", &yaml);
    let output = project.run(&["orchestra", "run", "limited", "--goal", "G"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let times: Vec<Duration> = server.requests().iter().map(|r| r.since_start).collect();
    assert_eq!(times.len(), 5);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(900) && gap < Duration::from_millis(1600),
            "gap {gap:?} in {times:?}"
        );
    }
}

#[test]
fn a_429_slows_every_parallel_task() {
    // Two slots, 200 ms a reply. The first call is refused with Retry-After: 1; the second
    // succeeds at ~200 ms and frees a slot. The third task must then wait for the endpoint's
    // pause (until ~1.2 s), although it never saw a 429 itself.
    let server = StubServer::start_background(
        StubConfig::default()
            .latency(200)
            .fail_first(1, 429)
            .retry_after("1"),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    let mut yaml = "metadata:\n  id: burst\norchestra:\n  execution:\n    strategy: parallel\n    max_parallel_tasks: 2\ntasks:\n".to_string();
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - name: t{i}\n    agent: worker\n    description: T{i}\n"
        ));
    }
    project.orchestra("burst", &yaml);
    let output = project.run(&["orchestra", "run", "burst", "--goal", "G"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    let first = requests[0].since_start;
    assert!(
        requests[1].since_start - first < Duration::from_millis(100),
        "two calls start together"
    );
    let third = requests[2].since_start - first;
    assert!(
        third >= Duration::from_millis(1100),
        "the third call waited for the shared pause: {third:?}"
    );
}

#[test]
fn a_second_run_of_the_same_workspace_is_refused() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_secs(5))]),
    )
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let mut first = project.spawn_until(&["orchestra", "run", "sdlc", "--goal", "G"], &server, 1);
    let second = project.run(&["orchestra", "run", "sdlc", "--goal", "G"]);
    assert_eq!(code(&second), 1);
    let text = stderr(&second);
    assert!(
        text.contains("in use by another run") && text.contains(&format!("pid {}", first.id())),
        "{text}"
    );
    let status = first.wait().expect("first run");
    assert_eq!(status.code(), Some(0));

    // A lock left by a dead process is taken over with a warning.
    std::fs::write(project.workspace("sdlc").join(".lock"), "999999").expect("stale lock");
    let third = project.run(&["orchestra", "run", "sdlc", "--goal", "G"]);
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    assert!(stderr(&third).contains("took over the workspace lock left by process 999999"));
}
