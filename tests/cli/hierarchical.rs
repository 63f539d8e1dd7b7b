//! The hierarchical strategy end to end against the loopback stub, each reply chosen by what the
//! request contains: the manager's plan (reordered, reassigned, a sub-task added), reviews that
//! ask for a revision, an unusable plan falling back to the declared tasks, the limits, and a
//! kill during the reviews followed by `--resume`.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{RecordedRequest, Step, StubConfig, StubServer};
use serde_json::{json, Value};
use std::time::Duration;

/// What a request is, from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Plan,
    Review(String),
    Synthesis,
    /// A worker, by the `TASK-<name>` marker of its description.
    Worker(String),
}

fn text_of(request: &RecordedRequest) -> String {
    request.body["messages"].to_string()
}

fn kind(request: &RecordedRequest) -> Kind {
    // The first user message says what was asked; a repair request keeps it.
    let user = request.body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let all = text_of(request);
    if all.contains("You are the manager of a team") {
        if user.contains("## The declared tasks") {
            return Kind::Plan;
        }
        if user.contains("## Its output") {
            let task = user
                .split("Task `")
                .nth(1)
                .and_then(|rest| rest.split('`').next())
                .unwrap_or_default()
                .to_string();
            return Kind::Review(task);
        }
        return Kind::Synthesis;
    }
    let marker = all
        .split("TASK-")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .unwrap_or_default();
    Kind::Worker(marker)
}

fn project(server: &StubServer, execution: &str, tasks: &str) -> Project {
    let project = Project::empty();
    for agent in ["researcher", "writer", "editor"] {
        project.simple_agent(
            agent,
            &format!("{agent}_task"),
            "openai",
            &server.openai_base_url(),
        );
    }
    project.orchestra(
        "team",
        &format!("metadata:\n  id: team\norchestra:\n  execution:\n    strategy: hierarchical\n{execution}agents: [researcher, writer, editor]\ntasks:\n{tasks}"),
    );
    project
}

const THREE: &str = "  - name: outline
    agent: writer
    description: TASK-outline Outline the article on {goal}.
  - name: facts
    agent: researcher
    description: TASK-facts Gather facts on {goal}.
  - name: draft
    agent: writer
    description: TASK-draft Write the draft.
    context: [outline, facts]
";

fn run(project: &Project, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["orchestra", "run", "team", "--goal", "tide pools"];
    args.extend_from_slice(extra);
    project.run(&args)
}

fn worker_order(server: &StubServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter_map(|r| match kind(r) {
            Kind::Worker(task) => Some(task),
            _ => None,
        })
        .collect()
}

#[test]
fn the_manager_plan_reorders_reassigns_and_adds_a_task() {
    let plan = json!({"assignments": [
        {"task": "facts", "agent": "researcher", "instructions": "Only verified facts."},
        {"task": "outline", "agent": "editor", "instructions": "Five headings at most."},
        {"task": "draft", "agent": "writer", "instructions": "Use every fact."},
        {"task": "check", "agent": "editor", "instructions": "Be strict.", "description": "TASK-check Check the draft for errors.", "context": ["draft"]}
    ]});
    let server = StubServer::start_background(StubConfig::default().reply_fn(move |request| {
        match kind(request) {
            Kind::Plan => plan.to_string(),
            Kind::Review(_) => r#"{"verdict": "accept", "feedback": ""}"#.into(),
            Kind::Synthesis => "FINAL ANSWER from the manager".into(),
            Kind::Worker(task) => format!("OUT-{task}"),
        }
    }))
    .expect("stub");
    let project = project(&server, "    allow_new_tasks: true\n", THREE);
    let output = run(&project, &["--verbose"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    assert_eq!(
        worker_order(&server),
        ["facts", "outline", "draft", "check"]
    );
    let requests = server.requests();
    let outline = requests
        .iter()
        .find(|r| kind(r) == Kind::Worker("outline".into()))
        .expect("outline ran");
    let outline_text = text_of(outline);
    assert!(
        outline_text.contains("editor_bot"),
        "reassigned to the editor: {outline_text}"
    );
    assert!(outline_text.contains("Instructions from your manager: Five headings at most."));
    let check = requests
        .iter()
        .find(|r| kind(r) == Kind::Worker("check".into()))
        .expect("check ran");
    assert!(
        text_of(check).contains("OUT-draft"),
        "the sub-task gets its context"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| matches!(kind(r), Kind::Review(_)))
            .count(),
        4,
        "one review per output"
    );
    let ws = project.workspace("team");
    let final_text =
        std::fs::read_to_string(ws.join("final_results/orchestra_output.txt")).expect("final");
    assert_eq!(final_text, "FINAL ANSWER from the manager");
    let plan_file: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("task_outputs/_manager/plan.json")).expect("plan.json"),
    )
    .expect("json");
    assert_eq!(plan_file["assignments"].as_array().map(Vec::len), Some(4));
    assert!(ws.join("task_outputs/check_output.txt").is_file());
    assert!(ws
        .join("task_outputs/_manager/synthesis_prompt.md")
        .is_file());
    let manifest = project.manifest("team");
    let manager = &manifest["manager"];
    assert_eq!(manager["agent"], "built-in");
    let planned: Vec<&str> = manager["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .map(|a| a["task"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(planned, ["facts", "outline", "draft", "check"]);
    assert_eq!(manager["plan"][1]["agent"], "editor");
    assert_eq!(manager["plan"][3]["added"], true);
    assert_eq!(
        manager["calls"].as_array().map(Vec::len),
        Some(6),
        "plan, 4 reviews, synthesis"
    );
    assert_eq!(
        manifest["totals"]["llm_calls"], 10,
        "workers and manager together"
    );
    let names: Vec<&str> = manifest["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["facts", "outline", "draft", "check"]);
    assert!(
        stdout(&output).contains("planned 4 assignment(s)"),
        "{}",
        stdout(&output)
    );
    let trace = std::fs::read_to_string(ws.join("trace.jsonl")).expect("trace");
    let spans: Vec<Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).expect("a span a line"))
        .collect();
    let plan_span = spans
        .iter()
        .find(|s| s["name"] == "manager manager.plan")
        .unwrap_or_else(|| panic!("a plan span: {trace}"));
    let facts_span = spans
        .iter()
        .find(|s| s["name"] == "task facts")
        .expect("a task span");
    assert_eq!(
        facts_span["parent_span_id"], plan_span["span_id"],
        "the plan caused the work"
    );
}

#[test]
fn a_revise_verdict_reruns_the_task_with_the_feedback_up_to_the_limit() {
    let server = StubServer::start_background(StubConfig::default().reply_fn(|request| {
        match kind(request) {
            Kind::Plan => json!({"assignments": [{"task": "draft", "agent": "writer", "instructions": "Go."}]}).to_string(),
            Kind::Review(_) => r#"{"verdict": "revise", "feedback": "Add a title."}"#.into(),
            Kind::Synthesis => "FINAL".into(),
            Kind::Worker(_) => {
                if text_of(request).contains("Add a title.") {
                    "v2 with a title".into()
                } else {
                    "v1".into()
                }
            }
        }
    }))
    .expect("stub");
    let project = project(
        &server,
        "    max_review_rounds: 1\n",
        "  - name: draft\n    agent: writer\n    description: TASK-draft Write it.\n",
    );
    let output = run(&project, &[]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    assert_eq!(
        worker_order(&server),
        ["draft", "draft"],
        "one revision only"
    );
    let requests = server.requests();
    let second = requests
        .iter()
        .filter(|r| kind(r) == Kind::Worker("draft".into()))
        .nth(1)
        .expect("the revision");
    let messages = second.body["messages"].as_array().expect("messages");
    assert_eq!(
        messages[messages.len() - 2]["content"],
        "v1",
        "the earlier answer is shown"
    );
    assert!(messages[messages.len() - 1]["content"]
        .as_str()
        .unwrap_or_default()
        .contains("Add a title."));
    let ws = project.workspace("team");
    assert_eq!(
        std::fs::read_to_string(ws.join("task_outputs/draft_output.1.txt")).expect("kept"),
        "v1"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("task_outputs/draft_output.txt")).expect("out"),
        "v2 with a title"
    );
    let manifest = project.manifest("team");
    let reviews = manifest["manager"]["reviews"].as_array().expect("reviews");
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["verdict"], "revise");
    assert!(reviews[0].get("not_obeyed").is_none());
    assert_eq!(reviews[1]["verdict"], "revise");
    assert!(
        reviews[1]["not_obeyed"]
            .as_str()
            .unwrap_or_default()
            .contains("max_review_rounds 1"),
        "{reviews:?}"
    );
    assert!(ws
        .join("task_outputs/_manager/review_draft_1.json")
        .is_file());
}

#[test]
fn an_unusable_plan_gets_one_repair_then_falls_back_to_the_declared_tasks() {
    let server = StubServer::start_background(StubConfig::default().reply_fn(|request| {
        match kind(request) {
            Kind::Plan => {
                if text_of(request).contains("cannot be used") || text_of(request).contains("is not valid JSON") {
                    json!({"assignments": [{"task": "outline", "agent": "nobody", "instructions": "x"}]}).to_string()
                } else {
                    "I think we should start with the facts.".into()
                }
            }
            Kind::Review(_) => r#"{"verdict": "accept", "feedback": ""}"#.into(),
            Kind::Synthesis => "FINAL".into(),
            Kind::Worker(task) => format!("OUT-{task}"),
        }
    }))
    .expect("stub");
    let project = project(&server, "", THREE);
    let output = run(&project, &[]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let plans = server
        .requests()
        .iter()
        .filter(|r| kind(r) == Kind::Plan)
        .count();
    assert_eq!(plans, 2, "one repair");
    assert_eq!(
        worker_order(&server),
        ["outline", "facts", "draft"],
        "the file's order"
    );
    let manifest = project.manifest("team");
    let fallbacks = manifest["manager"]["fallbacks"].to_string();
    assert!(fallbacks.contains("ran the declared tasks"), "{fallbacks}");
    assert!(
        stdout(&output).contains("ran the declared tasks"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_llm_call_budget_stops_a_manager_that_asks_for_too_much() {
    let server = StubServer::start_background(StubConfig::default().reply_fn(|request| {
        match kind(request) {
            Kind::Plan => json!({"assignments": [
                {"task": "outline", "agent": "writer", "instructions": "a"},
                {"task": "facts", "agent": "researcher", "instructions": "b"},
                {"task": "draft", "agent": "writer", "instructions": "c"}
            ]})
            .to_string(),
            Kind::Review(_) => r#"{"verdict": "revise", "feedback": "again"}"#.into(),
            Kind::Synthesis => "FINAL".into(),
            Kind::Worker(task) => format!("OUT-{task}"),
        }
    }))
    .expect("stub");
    let project = project(&server, "    max_review_rounds: 5\n", THREE);
    let output = run(&project, &["--max-llm-calls", "6"]);
    assert_eq!(code(&output), 1, "{}{}", stdout(&output), stderr(&output));
    assert!(server.request_count() <= 6);
    let manifest = project.manifest("team");
    assert!(
        manifest["stop_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("max_llm_calls 6"),
        "{}",
        manifest["stop_reason"]
    );

    // max_delegations: revisions beyond it are not obeyed.
    let project = project_for_delegations(&server);
    let before = server.request_count();
    let output = run(&project, &[]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let manifest = project.manifest("team");
    let reviews = manifest["manager"]["reviews"].as_array().expect("reviews");
    assert!(
        reviews.iter().any(|r| r["not_obeyed"]
            .as_str()
            .unwrap_or_default()
            .contains("max_delegations 4")),
        "{reviews:?}"
    );
    let workers = server.requests()[before..]
        .iter()
        .filter(|r| matches!(kind(r), Kind::Worker(_)))
        .count();
    assert_eq!(workers, 4, "three assignments and one revision");
}

fn project_for_delegations(server: &StubServer) -> Project {
    project(
        server,
        "    max_review_rounds: 5\n    max_delegations: 4\n",
        THREE,
    )
}

/// Killed while a review is in flight, then `--resume`: the plan and the finished worker are
/// reused, not asked again.
#[test]
fn a_killed_hierarchical_run_resumes_without_replanning() {
    let server = StubServer::start_background(
        StubConfig::default()
            .fail_when_contains("## Its output", Step::Delay(Duration::from_millis(1500)))
            .reply_fn(|request| match kind(request) {
                Kind::Plan => json!({"assignments": [
                    {"task": "facts", "agent": "researcher", "instructions": "a"},
                    {"task": "outline", "agent": "writer", "instructions": "b"},
                    {"task": "draft", "agent": "writer", "instructions": "c"}
                ]})
                .to_string(),
                Kind::Review(_) => r#"{"verdict": "accept", "feedback": ""}"#.into(),
                Kind::Synthesis => "FINAL".into(),
                Kind::Worker(task) => format!("OUT-{task}"),
            }),
    )
    .expect("stub");
    let project = project(&server, "", THREE);
    // Plan, facts, then the review of facts is in flight.
    let mut child = project.spawn_until(
        &["orchestra", "run", "team", "--goal", "tide pools"],
        &server,
        3,
    );
    std::thread::sleep(Duration::from_millis(200));
    child.kill().expect("kill -9");
    let _ = child.wait();
    let first = server.request_count();
    let output = run(&project, &["--resume"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let again: Vec<Kind> = server.requests()[first..].iter().map(kind).collect();
    assert!(!again.contains(&Kind::Plan), "no new plan: {again:?}");
    assert!(
        !again.contains(&Kind::Worker("facts".into())),
        "facts is reused: {again:?}"
    );
    assert!(again.contains(&Kind::Worker("draft".into())), "{again:?}");
    let final_text = std::fs::read_to_string(
        project
            .workspace("team")
            .join("final_results/orchestra_output.txt"),
    )
    .expect("final");
    assert_eq!(final_text, "FINAL");
}
