//! Observability (issue 16): an sdlc run exported over OTLP/HTTP to a loopback collector that
//! decodes the protobuf (one trace, run → task → attempt → LLM call, the GenAI attributes equal
//! to run.json, a failed attempt with an error status, no key anywhere), a dead collector (same
//! exit code, one warning, a bounded delay), `trace.jsonl` after kill -9, `run-task` processes
//! joining the run's trace, and debug logs on stderr while `--json` stdout stays JSON.

use crate::support::{code, stderr, stdout, Project, API_KEY};
use llm_stub::{Step, StubConfig, StubServer};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use prost::Message as _;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GOAL: &str = "Build a simple login feature for a web application";

/// Every request a collector received: its path and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A loopback OTLP/HTTP collector: keeps every request's path and body, answers 200.
struct Collector {
    url: String,
    received: Received,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received: Received = Arc::default();
        let store = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = Arc::clone(&store);
                std::thread::spawn(move || serve(stream, &store));
            }
        });
        Collector { url, received }
    }

    fn bodies(&self, path: &str) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn all_bytes(&self) -> Vec<u8> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect()
    }

    /// Every span received.
    fn spans(&self) -> Vec<Span> {
        self.bodies("/v1/traces")
            .iter()
            .flat_map(|body| {
                ExportTraceServiceRequest::decode(body.as_slice())
                    .expect("an OTLP trace request")
                    .resource_spans
            })
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    /// The service name of the first trace request.
    fn service_name(&self) -> Option<String> {
        let body = self.bodies("/v1/traces").into_iter().next()?;
        let request = ExportTraceServiceRequest::decode(body.as_slice()).ok()?;
        let resource = request.resource_spans.first()?.resource.clone()?;
        resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.clone())
            .and_then(|v| match v {
                Any::StringValue(s) => Some(s),
                _ => None,
            })
    }
}

/// One HTTP/1.1 connection: requests with a Content-Length body, each answered 200.
fn serve(stream: TcpStream, store: &Mutex<Vec<(String, Vec<u8>)>>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        store.lock().expect("lock").push((path, body));
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

fn string_attribute(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        Any::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        Any::IntValue(i) => Some(i),
        _ => None,
    }
}

fn is_error(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// A stub whose replies echo the request's Authorization header (the router must hide it).
fn echoing_stub(config: StubConfig) -> StubServer {
    StubServer::start_background(config.reply_fn(|request| {
        format!(
            "Done. (The server saw `{}`.)",
            request.header("authorization").unwrap_or_default()
        )
    }))
    .expect("stub")
}

#[test]
fn an_sdlc_run_exports_one_trace_with_genai_attributes_and_no_key() {
    let collector = Collector::start();
    // The first request fails (500): implement_feature's first attempt fails, the second works.
    let server = echoing_stub(StubConfig::default().fail_first(1, 500));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project.run(&[
        "orchestra",
        "run",
        "sdlc",
        "--goal",
        GOAL,
        "--otlp-endpoint",
        &collector.url,
        "--trace-content",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("warning: the run's telemetry"),
        "{}",
        stderr(&output)
    );
    let manifest = project.manifest("sdlc");
    let spans = collector.spans();
    assert!(!spans.is_empty(), "no span was exported");

    // One trace, its id derived from the run id.
    let run_id = manifest["run_id"].as_str().expect("run id");
    let derived = {
        use sha2::Digest as _;
        hex(&sha2::Sha256::digest(run_id.as_bytes())[..16])
    };
    assert!(spans.iter().all(|s| hex(&s.trace_id) == derived));

    // run → task → attempt → chat.
    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let parent_of = |span: &Span| by_id.get(&span.parent_span_id).copied();
    let runs: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "orchestra.run sdlc")
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].parent_span_id.is_empty());
    assert_eq!(
        string_attribute(runs[0], "super.run_id").as_deref(),
        Some(run_id)
    );
    for task in manifest["tasks"].as_array().expect("tasks") {
        let name = task["name"].as_str().expect("name");
        let task_span = spans
            .iter()
            .find(|s| s.name == format!("task {name}"))
            .unwrap_or_else(|| panic!("a span for task {name}"));
        assert_eq!(parent_of(task_span).map(|p| &p.name), Some(&runs[0].name));
        assert_eq!(
            string_attribute(task_span, "super.task").as_deref(),
            Some(name)
        );
        assert_eq!(
            string_attribute(task_span, "super.agent").as_deref(),
            task["agent"].as_str()
        );
        let attempts: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == task_span.span_id && s.name.starts_with("attempt "))
            .collect();
        assert_eq!(
            attempts.len(),
            task["attempts"].as_array().map(Vec::len).unwrap_or(0),
            "{name}"
        );
        let (mut tokens_in, mut tokens_out) = (0i64, 0i64);
        for attempt in &attempts {
            let number = int_attribute(attempt, "super.attempt")
                .unwrap_or_else(|| panic!("super.attempt in {:?}", attempt.attributes));
            let record = &task["attempts"][(number - 1) as usize];
            assert_eq!(
                is_error(attempt),
                record["error"].is_string(),
                "{name} {number}"
            );
            for call in spans.iter().filter(|s| s.parent_span_id == attempt.span_id) {
                assert_eq!(call.name, "chat test-model");
                assert_eq!(
                    string_attribute(call, "gen_ai.operation.name").as_deref(),
                    Some("chat")
                );
                assert_eq!(
                    string_attribute(call, "gen_ai.provider.name").as_deref(),
                    Some("openai")
                );
                assert_eq!(
                    string_attribute(call, "gen_ai.request.model").as_deref(),
                    Some("test-model")
                );
                tokens_in += int_attribute(call, "gen_ai.usage.input_tokens").unwrap_or(0);
                tokens_out += int_attribute(call, "gen_ai.usage.output_tokens").unwrap_or(0);
                if !is_error(call) {
                    assert!(attribute(call, "gen_ai.response.finish_reasons").is_some());
                    assert!(string_attribute(call, "gen_ai.output.messages").is_some());
                }
            }
        }
        assert_eq!(Some(tokens_in), task["tokens_in"].as_i64(), "{name}");
        assert_eq!(Some(tokens_out), task["tokens_out"].as_i64(), "{name}");
    }
    // The failed attempt: implement_feature's first, with an error status and its type.
    let failed: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("attempt ") && is_error(s))
        .collect();
    assert_eq!(failed.len(), 1, "one failed attempt");
    assert_eq!(
        parent_of(failed[0]).map(|p| p.name.as_str()),
        Some("task implement_feature")
    );
    let failed_call = spans
        .iter()
        .find(|s| s.parent_span_id == failed[0].span_id)
        .expect("the failed call");
    assert!(is_error(failed_call));
    assert_eq!(
        string_attribute(failed_call, "error.type").as_deref(),
        Some("500")
    );

    // The same spans, with the same ids, in trace.jsonl.
    let trace = project.read("orchestra_workspaces/sdlc/trace.jsonl");
    let file_ids: HashSet<String> = trace
        .lines()
        .map(|l| {
            let span: Value = serde_json::from_str(l).expect("a JSON line");
            span["span_id"].as_str().expect("span id").to_string()
        })
        .collect();
    let exported: HashSet<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    assert_eq!(file_ids, exported);

    // Metrics under the GenAI names.
    let metrics: Vec<String> = collector
        .bodies("/v1/metrics")
        .iter()
        .flat_map(|b| {
            ExportMetricsServiceRequest::decode(b.as_slice())
                .expect("an OTLP metrics request")
                .resource_metrics
        })
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .map(|m| m.name)
        .collect();
    for name in [
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "super.task.duration",
        "super.retries",
    ] {
        assert!(metrics.iter().any(|m| m == name), "{name} in {metrics:?}");
    }
    assert_eq!(collector.service_name().as_deref(), Some("super"));

    // The stub echoed the key into every reply; nothing exported holds it.
    let everything = String::from_utf8_lossy(&collector.all_bytes()).into_owned();
    assert!(everything.contains("***"), "the echoed key, masked");
    assert!(!everything.contains(API_KEY));
    assert!(!trace.contains(API_KEY));
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn a_dead_collector_costs_one_warning_and_never_the_exit_code() {
    let endpoint = format!("http://127.0.0.1:{}", dead_port());
    for (config, expected) in [
        (StubConfig::default(), 0),
        (StubConfig::default().fail_first(100, 400), 1),
    ] {
        let server = StubServer::start_background(config).expect("stub");
        let project = Project::sdlc("openai", &server.openai_base_url());
        let started = Instant::now();
        let output = project.run(&[
            "orchestra",
            "run",
            "sdlc",
            "--goal",
            GOAL,
            "--otlp-endpoint",
            &endpoint,
        ]);
        let took = started.elapsed();
        assert_eq!(code(&output), expected, "{}", stderr(&output));
        let warnings = stderr(&output)
            .lines()
            .filter(|l| l.contains("telemetry could not be exported"))
            .count();
        assert_eq!(warnings, 1, "{}", stderr(&output));
        // Loose: the documented bound is a few seconds; this only catches a hang.
        assert!(took < Duration::from_secs(15), "took {took:?}");
        // The run's own files are as usual.
        let trace = project.read("orchestra_workspaces/sdlc/trace.jsonl");
        assert!(trace.lines().count() >= 4);
    }
}

#[test]
fn trace_jsonl_holds_the_finished_tasks_after_kill_9() {
    // The third call hangs; the run is killed while it waits.
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::Ok,
        Step::Ok,
        Step::Delay(Duration::from_secs(60)),
    ]))
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let mut child = project.spawn_until(&["orchestra", "run", "sdlc", "--goal", GOAL], &server, 3);
    child.kill().expect("kill -9");
    let _ = child.wait();
    let trace = project.read("orchestra_workspaces/sdlc/trace.jsonl");
    let spans: Vec<Value> = trace
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a whole line: {e}: {l}")))
        .collect();
    let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    for finished in ["task implement_feature", "task configure_ci_pipeline"] {
        assert!(names.contains(&finished), "{finished} in {names:?}");
    }
    assert_eq!(
        names.iter().filter(|n| n.starts_with("chat ")).count(),
        2,
        "{names:?}"
    );
    assert!(!names.contains(&"task create_test_plan"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("orchestra.run")));
    let trace_id = &spans[0]["trace_id"];
    assert!(spans.iter().all(|s| &s["trace_id"] == trace_id));
}

#[test]
fn run_task_processes_join_the_run_trace_and_traceparent_is_honoured() {
    let collector = Collector::start();
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    for task in ["implement_feature", "configure_ci_pipeline"] {
        let output = project.run(&[
            "orchestra",
            "run-task",
            "sdlc",
            "--task",
            task,
            "--goal",
            GOAL,
            "--run-id",
            "argo-run-7",
            "--otlp-endpoint",
            &collector.url,
        ]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
    }
    let derived = {
        use sha2::Digest as _;
        hex(&sha2::Sha256::digest(b"argo-run-7")[..16])
    };
    let spans = collector.spans();
    assert!(spans.iter().any(|s| s.name == "task implement_feature"));
    assert!(spans.iter().any(|s| s.name == "task configure_ci_pipeline"));
    assert!(spans.iter().all(|s| hex(&s.trace_id) == derived));

    // Under a caller's span: its trace, and the run span its child.
    let collector = Collector::start();
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let output = project
        .command()
        .args([
            "orchestra",
            "run-task",
            "sdlc",
            "--task",
            "create_test_plan",
            "--goal",
            GOAL,
            "--run-id",
            "argo-run-7",
            "--otlp-endpoint",
            &collector.url,
        ])
        .env("TRACEPARENT", format!("00-{parent_trace}-{parent_span}-01"))
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let spans = collector.spans();
    assert!(spans.iter().all(|s| hex(&s.trace_id) == parent_trace));
    let run = spans
        .iter()
        .find(|s| s.name == "orchestra.run sdlc")
        .expect("the run span");
    assert_eq!(hex(&run.parent_span_id), parent_span);
}

#[test]
fn debug_logs_show_the_retry_on_stderr_and_json_stdout_stays_json() {
    let server = StubServer::start_background(StubConfig::default().script(vec![
        Step::status(429),
        Step::Ok,
        Step::Ok,
        Step::Ok,
    ]))
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let output = project
        .command()
        .args(["orchestra", "run", "sdlc", "--goal", GOAL, "--json"])
        .env("RUST_LOG", "super=debug")
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    for line in stdout(&output).lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["event"].is_string(), "{line}");
    }
    let logs = stderr(&output);
    assert!(
        logs.lines()
            .any(|l| l.contains("DEBUG") && l.contains("rate limit: pausing")),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("retrying after a backoff wait") && l.contains("429")),
        "{logs}"
    );
    assert!(
        logs.lines().any(|l| l.contains("backoff: waiting")),
        "{logs}"
    );
    assert!(!logs.contains(API_KEY));

    // Without a filter, none of it.
    let quiet = StubServer::start_background(StubConfig::default().script(vec![
        Step::status(429),
        Step::Ok,
        Step::Ok,
        Step::Ok,
    ]))
    .expect("stub");
    let project = Project::sdlc("openai", &quiet.openai_base_url());
    let output = project.run(&["orchestra", "run", "sdlc", "--goal", GOAL, "--json"]);
    assert_eq!(code(&output), 0);
    assert!(
        !stderr(&output).contains("backoff: waiting"),
        "{}",
        stderr(&output)
    );
}
