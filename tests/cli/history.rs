//! Looking back at runs: `orchestra runs | show | logs | diff | clean`, `graph --run`, and
//! `-o json` on the listings, against workspaces made by running real orchestras against the
//! stub.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{Step, StubConfig, StubServer};
use std::io::Read as _;
use std::time::{Duration, Instant};

/// a -> b -> c, and d on its own.
const HIST: &str = "metadata:\n  id: hist\norchestra:\n  execution:\n    strategy: sequential\ntasks:\n  - name: a\n    agent: worker\n    description: TASK-A for '{goal}'\n  - name: b\n    agent: worker\n    description: TASK-B for '{goal}'\n    context: [a]\n  - name: c\n    agent: worker\n    description: TASK-C for '{goal}'\n    context: [b]\n  - name: d\n    agent: worker\n    description: TASK-D for '{goal}'\n";

/// A reply that depends on the request alone (its first line), so equal requests give equal
/// outputs across runs; a goal with BREAK gets HTTP 400.
fn server() -> StubServer {
    StubServer::start_background(
        StubConfig::default()
            .fail_when_contains(
                "BREAK",
                Step::Status {
                    code: 400,
                    retry_after: None,
                    message: "the stub refuses BREAK".into(),
                },
            )
            .reply_fn(|request| {
                let first = request
                    .last_user_message()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                format!("ANSWER to {first}\nsecond line\n")
            }),
    )
    .expect("stub")
}

fn ok(project: &Project, args: &[&str]) -> String {
    let output = project.run(args);
    assert_eq!(
        code(&output),
        0,
        "{args:?}\nstdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Three runs of `hist`: one that succeeds, one that fails on task a, one resumed from the
/// first (every task reused). Returns their ids, oldest first.
fn three_runs() -> (StubServer, Project, Vec<String>) {
    let server = server();
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("hist", HIST);
    let mut ids = Vec::new();
    ok(&project, &["orchestra", "run", "hist", "--goal", "G"]);
    ids.push(
        project.manifest("hist")["run_id"]
            .as_str()
            .expect("id")
            .to_string(),
    );
    let failed = project.run(&["orchestra", "run", "hist", "--goal", "BREAK it"]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    ids.push(
        project.manifest("hist")["run_id"]
            .as_str()
            .expect("id")
            .to_string(),
    );
    ok(
        &project,
        &["orchestra", "run", "hist", "--goal", "G", "--resume"],
    );
    ids.push(
        project.manifest("hist")["run_id"]
            .as_str()
            .expect("id")
            .to_string(),
    );
    assert_eq!(project.statuses("hist"), ["cached"; 4]);
    (server, project, ids)
}

/// Filters run ids, dates and durations out of a rendering.
fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{8}T\d{6}Z-[0-9a-f]{4}", "[RUN]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[DATE]");
    settings.add_filter(r"\b\d+\.\ds\b", "[DUR]");
    settings.add_filter(r"\b\d+m\d{2}s\b", "[DUR]");
    // A duration's width moves the columns after it.
    settings.add_filter(r"\[DUR\] {2,}", "[DUR]  ");
    settings
}

#[test]
fn runs_lists_newest_first_with_the_right_counts() {
    let (_server, project, ids) = three_runs();
    let text = ok(&project, &["orchestra", "runs", "hist"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("RUN"), "{text}");
    for (line, id) in lines[1..4].iter().zip(ids.iter().rev()) {
        assert!(line.starts_with(id.as_str()), "{id} in order:\n{text}");
    }
    assert!(
        lines[1].contains(" * "),
        "the current run is marked:\n{text}"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("history_runs", text));

    let json: serde_json::Value =
        serde_json::from_str(&ok(&project, &["orchestra", "runs", "hist", "-o", "json"]))
            .expect("runs -o json is JSON");
    let runs = json.as_array().expect("an array");
    let got: Vec<(String, String, u64, u64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["run_id"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["succeeded"].as_u64().unwrap_or(99),
                r["failed"].as_u64().unwrap_or(99),
                r["cached"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (ids[2].clone(), "succeeded".into(), 0, 0, 4),
            (ids[1].clone(), "failed".into(), 0, 1, 0),
            (ids[0].clone(), "succeeded".into(), 4, 0, 0),
        ]
    );
    assert_eq!(runs[0]["current"], true);
    assert_eq!(runs[1]["goal"], "BREAK it");
    assert!(runs[2]["tokens_in"].as_u64().unwrap_or(0) > 0);

    // Without a name: every orchestra of the project, grouped.
    let all = ok(&project, &["orchestra", "runs"]);
    assert!(all.starts_with("hist ("), "{all}");
    assert_eq!(all.matches(&ids[0]).count(), 1, "{all}");
}

#[test]
fn the_goal_is_cut_to_the_terminal_width() {
    let server = server();
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("hist", HIST);
    let goal = "a long goal ".repeat(30);
    ok(&project, &["orchestra", "run", "hist", "--goal", &goal]);
    let output = project
        .command()
        .args(["orchestra", "runs", "hist"])
        .env("COLUMNS", "120")
        .output()
        .expect("run");
    let text = stdout(&output);
    assert!(text.contains("a long goal a long"), "{text}");
    assert!(text.contains('…'), "the goal is cut:\n{text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 120, "{line:?} is wider than 120");
    }
}

#[test]
fn show_of_the_failed_run_names_the_error() {
    let (_server, project, ids) = three_runs();
    let prefix = &ids[1][..ids[1].len() - 2];
    let text = ok(&project, &["orchestra", "show", "hist", prefix]);
    assert!(
        text.contains(&format!("Run {} of hist (history)", ids[1])),
        "{text}"
    );
    assert!(text.contains("status    failed"), "{text}");
    assert!(text.contains("✗ a  failed"), "{text}");
    assert!(text.contains("attempt 1: failed"), "{text}");
    assert!(text.contains("400"), "the error is named:\n{text}");
    assert!(text.contains("the stub refuses BREAK"), "{text}");
    assert!(
        text.contains("a_error.txt"),
        "where the errors are:\n{text}"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("history_show_failed", text));

    // The default is the latest run, with the first lines of its result.
    let latest = ok(&project, &["orchestra", "show", "hist"]);
    assert!(
        latest.contains(&format!("Run {} of hist (current)", ids[2])),
        "{latest}"
    );
    assert!(latest.contains("reused from the cache"), "{latest}");
    assert!(latest.contains("Final result"), "{latest}");
    assert!(latest.contains("ANSWER to TASK-C"), "{latest}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(&project, &["orchestra", "show", "hist", "-o", "json"]))
            .expect("show -o json is JSON");
    assert_eq!(json["run_id"], ids[2].as_str());
    assert_eq!(json["tasks"].as_array().map(Vec::len), Some(4));
}

#[test]
fn logs_print_the_prompt_attempts_and_output_in_order() {
    let (_server, project, ids) = three_runs();
    let text = ok(
        &project,
        &["orchestra", "logs", "hist", "b", "--run", &ids[0]],
    );
    let prompt = text.find("── prompt").expect("prompt");
    let attempts = text.find("attempt 1: succeeded").expect("attempt");
    let output = text.find("── output").expect("output");
    assert!(prompt < attempts && attempts < output, "{text}");
    assert!(text.contains("TASK-B for 'G'"), "the prompt:\n{text}");
    assert!(
        text.contains("ANSWER to TASK-B for 'G'"),
        "the output:\n{text}"
    );

    let failed = ok(
        &project,
        &["orchestra", "logs", "hist", "a", "--run", &ids[1]],
    );
    assert!(failed.contains("── errors"), "{failed}");
    assert!(failed.contains("the stub refuses BREAK"), "{failed}");
    snapshot_settings().bind(|| insta::assert_snapshot!("history_logs_failed", failed));
}

#[test]
fn unknown_runs_and_tasks_suggest_what_exists() {
    let (_server, project, ids) = three_runs();
    let mut typo = ids[0].clone();
    typo.pop();
    typo.push('z');
    let output = project.run(&["orchestra", "show", "hist", &typo]);
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(text.contains(&format!("has no run `{typo}`")), "{text}");
    assert!(
        text.contains(&format!("did you mean `{}`", ids[0])),
        "{text}"
    );
    for id in &ids {
        assert!(text.contains(id.as_str()), "lists {id}:\n{text}");
    }
    let output = project.run(&["orchestra", "logs", "hist", "bb"]);
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(text.contains("has no task `bb`"), "{text}");
    assert!(text.contains("did you mean `b`"), "{text}");
    // A prefix shared by several runs names them.
    let output = project.run(&["orchestra", "show", "hist", "20"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("is the start of 3 runs"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_corrupt_or_old_record_is_named_and_the_other_runs_still_list() {
    let (_server, project, ids) = three_runs();
    let history = project.workspace("hist").join("history");
    std::fs::write(history.join(&ids[0]).join("run.json"), "{ broken").expect("write");
    std::fs::write(
        history.join(&ids[1]).join("run.json"),
        r#"{"schema_version": 1, "run_id": "old"}"#,
    )
    .expect("write");
    let text = ok(&project, &["orchestra", "runs", "hist"]);
    assert!(text.contains(&ids[2]), "{text}");
    assert!(text.contains("unreadable"), "{text}");
    assert!(text.contains("is not a run record"), "{text}");
    assert!(text.contains("older super (schema version 1)"), "{text}");
    let output = project.run(&["orchestra", "show", "hist", &ids[0]]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains(&format!("{}/run.json", ids[0])),
        "names the file: {}",
        stderr(&output)
    );
}

#[test]
fn diff_after_editing_a_description_shows_that_task_and_its_dependents() {
    let (_server, project, ids) = three_runs();
    project.orchestra(
        "hist",
        &HIST.replace("TASK-B for", "TASK-B, in more detail, for"),
    );
    ok(
        &project,
        &["orchestra", "run", "hist", "--goal", "G", "--resume"],
    );
    let newest = project.manifest("hist")["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    let text = ok(&project, &["orchestra", "diff", "hist", &ids[2], "latest"]);
    assert!(text.contains("Changed (2 of 4 tasks)"), "{text}");
    assert!(text.contains("  b  prompt, output"), "{text}");
    assert!(text.contains("  c  prompt"), "{text}");
    assert!(text.contains("Unchanged: a, d"), "{text}");
    assert!(text.contains("-ANSWER to TASK-B for 'G'"), "{text}");
    assert!(
        text.contains("+ANSWER to TASK-B, in more detail, for 'G'"),
        "{text}"
    );
    assert!(text.contains("orchestra  the file changed"), "{text}");
    snapshot_settings().bind(|| insta::assert_snapshot!("history_diff", text));

    let json: serde_json::Value = serde_json::from_str(&ok(
        &project,
        &["orchestra", "diff", "hist", &ids[2], &newest, "-o", "json"],
    ))
    .expect("diff -o json is JSON");
    let changed: Vec<&str> = json["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["change"] != "same")
        .filter_map(|t| t["task"].as_str())
        .collect();
    assert_eq!(changed, ["b", "c"]);
}

#[test]
fn clean_lists_first_and_keep_1_leaves_the_newest() {
    let (_server, project, ids) = three_runs();
    let history = project.workspace("hist").join("history");
    // No terminal and no --yes: a listing, nothing deleted.
    let listed = ok(&project, &["orchestra", "clean", "hist", "--keep", "1"]);
    assert!(listed.contains("Would delete 2 runs"), "{listed}");
    assert!(
        listed.contains(&ids[0]) && listed.contains(&ids[1]),
        "{listed}"
    );
    assert!(listed.contains("pass --yes"), "{listed}");
    assert!(history.join(&ids[0]).is_dir() && history.join(&ids[1]).is_dir());
    let dry = ok(
        &project,
        &["orchestra", "clean", "hist", "--keep", "2", "--dry-run"],
    );
    assert!(dry.contains("Would delete 1 run"), "{dry}");
    assert!(dry.contains(&ids[0]) && !dry.contains(&ids[1]), "{dry}");

    let done = ok(
        &project,
        &["orchestra", "clean", "hist", "--keep", "1", "--yes"],
    );
    assert!(done.contains("Deleted 2 runs"), "{done}");
    assert!(!history.join(&ids[0]).exists() && !history.join(&ids[1]).exists());
    let left: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&project, &["orchestra", "runs", "hist", "-o", "json"]))
            .expect("json");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["run_id"], ids[2].as_str());
    assert!(
        project.workspace("hist").join("run.json").is_file(),
        "the current run stays"
    );
    let again = ok(&project, &["orchestra", "clean", "hist", "--yes"]);
    assert!(again.contains("Nothing to delete"), "{again}");
}

#[test]
fn clean_refuses_while_a_run_holds_the_workspace() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_secs(30))]),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("hist", HIST);
    let mut child = project.spawn_until(&["orchestra", "run", "hist", "--goal", "G"], &server, 1);
    let output = project.run(&["orchestra", "clean", "hist", "--yes"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("in use by another run"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn logs_follow_prints_the_output_as_a_slow_stub_streams_it() {
    let words: Vec<String> = (1..=40).map(|i| format!("word{i}")).collect();
    let reply = words.join(" ");
    let server = StubServer::start_background(
        StubConfig::default()
            .reply(reply.clone())
            .chunk_delay(Duration::from_millis(150)),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("hist", HIST);
    let mut run = project.spawn_until(&["orchestra", "run", "hist", "--goal", "G"], &server, 1);
    let mut follower = project
        .command()
        .args(["orchestra", "logs", "hist", "a", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs");
    let mut out = follower.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = out.read(&mut buffer) {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let output_file = project.workspace("hist").join("task_outputs/a_output.txt");
    // The first words arrive while the task is still streaming: its output is not written.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    let mut early = None;
    while Instant::now() < deadline {
        if let Ok(bytes) = receiver.recv_timeout(Duration::from_millis(50)) {
            seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        if early.is_none() && seen.contains("word2 ") {
            early = Some(!output_file.exists());
        }
        if seen.contains("the task finished") {
            break;
        }
    }
    let status = follower.wait().expect("logs ends");
    while let Ok(bytes) = receiver.recv_timeout(Duration::from_millis(200)) {
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    let _ = reader.join();
    let _ = run.kill();
    let _ = run.wait();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert_eq!(
        early,
        Some(true),
        "the first words were printed before the task's output was written:\n{seen}"
    );
    assert!(seen.contains("── prompt"), "{seen}");
    assert!(seen.contains(&reply), "the whole streamed reply:\n{seen}");
    assert!(seen.contains("the task finished"), "{seen}");
}

#[test]
fn graph_with_a_run_shows_each_task_s_status_and_duration() {
    let (_server, project, ids) = three_runs();
    let mermaid = ok(&project, &["orchestra", "graph", "hist", "--run", &ids[1]]);
    assert!(mermaid.contains("classDef failed"), "{mermaid}");
    assert!(mermaid.contains("class t0 failed"), "{mermaid}");
    assert!(mermaid.contains("skipped"), "{mermaid}");
    let dot = ok(
        &project,
        &[
            "orchestra",
            "graph",
            "hist",
            "--run",
            &ids[0],
            "--format",
            "dot",
        ],
    );
    assert!(dot.contains("fillcolor"), "{dot}");
    assert!(dot.contains("succeeded "), "a duration:\n{dot}");
    let ascii = ok(
        &project,
        &[
            "orchestra",
            "graph",
            "hist",
            "--run",
            &ids[1],
            "--format",
            "ascii",
        ],
    );
    assert!(ascii.contains("✗ failed"), "{ascii}");
    snapshot_settings().bind(|| insta::assert_snapshot!("history_graph_ascii", ascii));
    let plain = ok(
        &project,
        &["orchestra", "graph", "hist", "--format", "ascii"],
    );
    assert!(plain.contains("└─▶ b"), "{plain}");
}

#[test]
fn listings_speak_json() {
    let (_server, project, _ids) = three_runs();
    let orchestras: serde_json::Value =
        serde_json::from_str(&ok(&project, &["orchestra", "list", "-o", "json"]))
            .expect("orchestra list -o json");
    assert_eq!(orchestras[0]["id"], "hist");
    assert_eq!(orchestras[0]["valid"], true);
    assert_eq!(orchestras[0]["tasks"].as_array().map(Vec::len), Some(4));
    let agents: serde_json::Value =
        serde_json::from_str(&ok(&project, &["agent", "list", "-o", "json"]))
            .expect("agent list -o json");
    assert_eq!(agents["project"][0]["folder"], "worker");
    assert!(agents["library"].as_array().is_some_and(|l| !l.is_empty()));
    let models = project
        .command()
        .args(["model", "list", "-o", "json"])
        .output()
        .expect("model list");
    if code(&models) == 0 {
        let models: serde_json::Value =
            serde_json::from_str(&stdout(&models)).expect("model list -o json");
        assert!(models["models"].is_array(), "{models}");
    } else {
        assert!(
            stderr(&models).contains("no embedded model"),
            "only a build without the model fails: {}",
            stderr(&models)
        );
    }
}

#[test]
fn a_run_killed_mid_task_shows_as_stopped_and_follow_ends() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::Delay(Duration::from_secs(30))]),
    )
    .expect("stub");
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("hist", HIST);
    let mut child = project.spawn_until(&["orchestra", "run", "hist", "--goal", "G"], &server, 1);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let runs: serde_json::Value =
        serde_json::from_str(&ok(&project, &["orchestra", "runs", "hist", "-o", "json"]))
            .expect("json");
    assert_eq!(runs[0]["status"], "stopped", "{runs}");
    let output = project.run(&["orchestra", "logs", "hist", "a", "--follow"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not in progress"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("── prompt"), "{}", stdout(&output));
}
