//! The execution core end to end: hostile or malformed server replies never crash `super`
//! (never exit 101), waits a server asks for are bounded, replies are size-capped, and a failed
//! attempt says what actually arrived.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{Step, StubConfig, StubServer};

const ONE_TASK: &str = "metadata:\n  id: one\ntasks:\n  - name: work\n    agent: worker\n    description: Do the work for '{goal}'.\n    timeout_seconds: 5\n    retry_count: 2\n";

fn project_with(server: &StubServer) -> Project {
    let project = Project::empty();
    project.simple_agent("worker", "work", "openai", &server.openai_base_url());
    project.orchestra("one", ONE_TASK);
    project
}

fn reason(project: &Project) -> String {
    let manifest = project.manifest("one");
    let task = &manifest["tasks"][0];
    let attempts: Vec<String> = task["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["error"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} | {}",
        task["reason"].as_str().unwrap_or_default(),
        attempts.join(" | ")
    )
}

/// `Retry-After: NaN` (and other hostile values) panicked in `Duration::from_secs_f64`.
#[test]
fn hostile_retry_after_values_never_crash_the_run() {
    // Unreadable, negative or infinite: ignored, the normal backoff applies.
    for value in ["NaN", "inf", "-1", "1e400", "garbage"] {
        let server = StubServer::start_background(
            StubConfig::default().script(vec![Step::rate_limited(value)]),
        )
        .expect("stub");
        let project = project_with(&server);
        let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
        assert_ne!(code(&output), 101, "{value}: {}", stderr(&output));
        assert_eq!(
            code(&output),
            0,
            "{value}: the 429 is retried with the normal backoff: {}{}",
            stdout(&output),
            stderr(&output)
        );
        assert_eq!(server.request_count(), 2, "{value}");
    }
    // Enormous but finite: a wait longer than allowed fails the attempt, saying so.
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::rate_limited("99999999999999999999")]),
    )
    .expect("stub");
    let project = project_with(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        reason(&project).contains("asked to wait"),
        "{}",
        reason(&project)
    );
}

/// Hostile rate-limit headers on a successful reply (read on every response).
#[test]
fn hostile_rate_limit_headers_on_a_200_never_crash_the_run() {
    let body = "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"fine\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}";
    let raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-ratelimit-remaining-requests: 0\r\nx-ratelimit-reset-requests: 1e308m\r\nretry-after-ms: inf\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let server = StubServer::start_background(StubConfig::default().script(vec![Step::raw(raw)]))
        .expect("stub");
    let project = project_with(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
}

/// A server asking to wait an hour is not obeyed past the task's timeout: the attempt fails at
/// once, saying so (it used to wait up to an hour).
#[test]
fn a_retry_after_longer_than_the_timeout_fails_at_once() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::rate_limited("3600")]),
    )
    .expect("stub");
    let project = project_with(&server);
    let started = std::time::Instant::now();
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(server.request_count(), 1);
    let why = reason(&project);
    assert!(why.contains("asked to wait 3600s"), "{why}");
}

/// Replies are capped (`SUPER_MAX_REPLY_BYTES`); past it the attempt fails, not retried.
#[test]
fn an_oversized_reply_fails_the_attempt() {
    let server = StubServer::start_background(StubConfig::default().reply("x".repeat(20_000)))
        .expect("stub");
    let project = project_with(&server);
    let output = project
        .command()
        .env("SUPER_MAX_REPLY_BYTES", "4096")
        .args(["orchestra", "run", "one", "--goal", "G"])
        .output()
        .expect("run");
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    assert_eq!(
        server.request_count(),
        1,
        "an oversized reply is not retried"
    );
    let why = reason(&project);
    assert!(why.contains("exceeded 4096 bytes"), "{why}");
}

/// An HTML page or garbage with status 200 is reported as what it is, not as an empty body.
#[test]
fn a_garbage_200_says_what_arrived() {
    let html = "<html><body>Bad gateway</body></html>";
    let raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
        html.len()
    );
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::raw(raw.clone()),
        Step::raw(raw.clone()),
        Step::raw(raw),
    ]))
    .expect("stub");
    let project = project_with(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 1);
    let why = reason(&project);
    assert!(
        why.contains("text/html") && why.contains("<html><body>Bad gateway"),
        "{why}"
    );
    assert!(!why.contains("empty body"), "{why}");
}

/// A 200 carrying `{"error": ...}` is reported with the server's message, not as HTTP 503.
#[test]
fn an_error_inside_a_200_is_reported_as_such() {
    let body = "{\"error\":{\"message\":\"the model is overloaded\",\"type\":\"server_error\"}}";
    let raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let server = StubServer::start_background(StubConfig::default().script(vec![Step::raw(raw)]))
        .expect("stub");
    let project = project_with(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 0, "retried, then fine: {}", stdout(&output));
    let manifest = project.manifest("one");
    let first = manifest["tasks"][0]["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("error in the body: the model is overloaded") && !first.contains("HTTP 503"),
        "{first}"
    );
}

/// Servers that omit the blank line between SSE events, or split one event's JSON over two
/// `data:` lines: every piece of text arrives once, in order.
#[test]
fn sse_without_blank_lines_and_with_multi_line_data_loses_nothing() {
    let chunk = |text: &str| {
        format!("{{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}")
    };
    let body = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
         data: {}\ndata: {}\ndata: {{\"choices\":[{{\"index\":0,\n\
         data: \"delta\":{{\"content\":\" three\"}}}}]}}\n\n\
         data: {}\ndata: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\ndata: [DONE]\n",
        chunk("one"),
        chunk(" two"),
        chunk(" four")
    );
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::raw(body.into_bytes())]),
    )
    .expect("stub");
    let project = project_with(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let result = std::fs::read_to_string(
        project
            .workspace("one")
            .join("final_results/orchestra_output.txt"),
    )
    .expect("result");
    assert_eq!(result.trim(), "one two three four");
}

/// Malformed bodies of every protocol: never a crash.
#[test]
fn malformed_bodies_never_crash_any_protocol() {
    let bodies: [&[u8]; 6] = [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {\"choices\":5}\n\ndata: [1,2\n\n",
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {\"type\":\"content_block_delta\",\"index\":99999999999999999999}\n\n",
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n\r\n{\"message\":{\"tool_calls\":[{\"function\":{}}]},\"done\":true}\n",
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\nnull",
        b"HTTP/1.1 429 Too Many\r\nretry-after: Fri, 31 Dec 9999 23:59:59 GMT\r\ncontent-length: 0\r\n\r\n",
        b"\x00\xff\xfe garbage that is not HTTP at all\r\n\r\n",
    ];
    for provider in ["openai", "ollama", "anthropic"] {
        for body in bodies {
            let server = StubServer::start_background(
                StubConfig::default().script(vec![Step::raw(body.to_vec())]),
            )
            .expect("stub");
            let project = Project::empty();
            let base = match provider {
                "openai" => server.openai_base_url(),
                _ => server.base_url(),
            };
            project.simple_agent("worker", "work", provider, &base);
            project.orchestra("one", ONE_TASK);
            let output = project
                .command()
                .env("ANTHROPIC_API_KEY", "k")
                .args(["orchestra", "run", "one", "--goal", "G"])
                .output()
                .expect("run");
            assert!(
                matches!(code(&output), 0 | 1),
                "{provider} {:?}: exit {}: {}",
                String::from_utf8_lossy(body),
                code(&output),
                stderr(&output)
            );
        }
    }
}

const CALCULATOR_AGENT: &str = "apiVersion: agent/v1
kind: AgentSpec
metadata:
  name: Math Fixture
  id: mathy
spec:
  language_model:
    provider: openai
    model: test-model
    api_base: BASE
  persona:
    role: Mathematician
  tasks:
  - name: compute
    instruction: Compute with the calculator.
  tools:
    enabled: true
    specific_tools: [calculator]
    max_iterations: 2
";

fn tool_call_sse(id: &str, expression: &str) -> Vec<u8> {
    let arguments = serde_json::json!({ "expression": expression }).to_string();
    let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": "calculator", "arguments": arguments}}]}}]});
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {chunk}\n\ndata: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"tool_calls\"}}]}}\n\ndata: [DONE]\n\n"
    )
    .into_bytes()
}

/// The model calls `calculator`; its result goes back in the protocol's own shape (a `tool`
/// message answering the call's id), and the next reply is the task's output.
#[test]
fn a_task_calls_a_tool_then_answers() {
    let server = StubServer::start_background(
        StubConfig::default().script(vec![Step::raw(tool_call_sse("call_7", "6*7"))]),
    )
    .expect("stub");
    let project = Project::empty();
    project.agent(
        "mathy",
        &CALCULATOR_AGENT.replace("BASE", &server.openai_base_url()),
    );
    project.orchestra(
        "calc",
        "metadata:\n  id: calc\ntasks:\n  - name: compute\n    agent: mathy\n    description: What is six times seven?\n",
    );
    let output = project.run(&["orchestra", "run", "calc", "--goal", "G", "--verbose"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body["tools"][0]["function"]["name"],
        "calculator"
    );
    let messages = requests[1].body["messages"].as_array().expect("messages");
    let assistant = &messages[messages.len() - 2];
    assert_eq!(assistant["tool_calls"][0]["id"], "call_7");
    let result = &messages[messages.len() - 1];
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_call_id"], "call_7");
    assert!(
        result["content"]
            .as_str()
            .unwrap_or_default()
            .contains("42"),
        "{result}"
    );
    let manifest = project.manifest("calc");
    let attempt = &manifest["tasks"][0]["attempts"][0];
    assert_eq!(attempt["tool_calls"][0]["name"], "calculator");
    assert_eq!(attempt["calls"].as_array().map(Vec::len), Some(2));
    assert_eq!(manifest["totals"]["llm_calls"], 2);
    assert!(
        stdout(&output).contains("called `calculator`"),
        "{}",
        stdout(&output)
    );
    let output_file = project.read("orchestra_workspaces/calc/task_outputs/compute_output.txt");
    assert!(output_file.starts_with("STUB-REPLY"), "{output_file}");
}

/// A model that keeps calling tools is stopped at `max_iterations` and asked once more for its
/// final answer, without tools.
#[test]
fn the_tool_loop_stops_at_its_limit() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::raw(tool_call_sse("c1", "1+1")),
        Step::raw(tool_call_sse("c2", "2+2")),
        Step::raw(tool_call_sse("c3", "3+3")),
    ]))
    .expect("stub");
    let project = Project::empty();
    project.agent(
        "mathy",
        &CALCULATOR_AGENT.replace("BASE", &server.openai_base_url()),
    );
    project.orchestra(
        "calc",
        "metadata:\n  id: calc\ntasks:\n  - name: compute\n    agent: mathy\n    description: Keep adding.\n",
    );
    let output = project.run(&["orchestra", "run", "calc", "--goal", "G"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        4,
        "two tool turns, the refused third, then the final answer"
    );
    let last = &requests[3].body;
    assert_eq!(last["tool_choice"], "none");
    let manifest = project.manifest("calc");
    assert_eq!(
        manifest["tasks"][0]["attempts"][0]["tool_calls"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

/// A failed run names each failed task's error log and says how to go on with `--resume`.
#[test]
fn a_failed_run_points_at_the_error_log_and_resume() {
    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::status(401)]))
            .expect("stub");
    let project = project_with(&server);
    let output = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(
        text.contains("🔎 `work` failed:") && text.contains("work_error.txt"),
        "{text}"
    );
    assert!(
        text.contains("super orchestra run one --goal \"...\" --resume"),
        "{text}"
    );
    assert!(
        !text.contains("attempt 1/3"),
        "a 401 is not retried, so no attempt line: {text}"
    );
}

/// Common failures say what to do: Ollama not running, a refused key (and where it came from),
/// a model the server does not have (and the ones it has).
#[test]
fn common_failures_say_what_to_do() {
    let project = Project::empty();
    project.simple_agent("worker", "work", "ollama", "http://127.0.0.1:9");
    project.orchestra("one", ONE_TASK);
    let down = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&down), 1);
    assert!(
        reason(&project).contains("is `ollama serve` running at http://127.0.0.1:9"),
        "{}",
        reason(&project)
    );

    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::status(401)]))
            .expect("stub");
    let project = project_with(&server);
    let refused = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&refused), 1);
    assert!(
        reason(&project).contains("OPENAI_API_KEY"),
        "{}",
        reason(&project)
    );

    let server =
        StubServer::start_background(StubConfig::default().script(vec![Step::status(404)]))
            .expect("stub");
    let project = project_with(&server);
    let missing = project.run(&["orchestra", "run", "one", "--goal", "G"]);
    assert_eq!(code(&missing), 1);
    let why = reason(&project);
    assert!(
        why.contains("the server has no model `test-model`; it has:"),
        "{why}"
    );
}

/// `validate --check-providers` asks each endpoint for its models once: a server that has the
/// model passes, one that lacks it or does not answer fails with what to do.
#[test]
fn validate_check_providers_asks_each_endpoint() {
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::empty();
    project.agent(
        "worker",
        &crate::support::playbook(
            "worker",
            "Fixture Worker",
            "work",
            &crate::support::language_model("openai", &server.openai_base_url())
                .replace("test-model", "stub-model"),
        ),
    );
    project.orchestra("one", ONE_TASK);
    let ok = project.run(&["orchestra", "validate", "one", "--check-providers"]);
    assert_eq!(code(&ok), 0, "{}{}", stdout(&ok), stderr(&ok));
    assert!(
        stdout(&ok).contains("answers, and has `stub-model`"),
        "{}",
        stdout(&ok)
    );

    let lacking = project_with(&server);
    let output = lacking.run(&["orchestra", "validate", "one", "--check-providers"]);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    assert!(
        stdout(&output).contains("has no model `test-model`; it has: stub-model"),
        "{}",
        stdout(&output)
    );

    let down = Project::empty();
    down.simple_agent("worker", "work", "ollama", "http://127.0.0.1:9");
    down.orchestra("one", ONE_TASK);
    let output = down.run(&["orchestra", "validate", "one", "--check-providers"]);
    assert_eq!(code(&output), 1);
    assert!(
        stdout(&output).contains("ollama serve"),
        "{}",
        stdout(&output)
    );
}
