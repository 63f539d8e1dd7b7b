//! Kubernetes without a cluster. `super orchestra run-task` and `finish` as the pods of an
//! exported Argo Workflow run them: idempotent re-runs, a missing upstream output, exit codes
//! that tell the engine what to retry, two processes on one task, kill -9 mid-task. Then "Argo
//! on a laptop": a harness that executes the exported Workflow the way the controller would
//! (the DAG in `depends` order, each task's container `command` and `args` as a process of the
//! built binary with the manifest's environment, the ConfigMap's files and the shared workspace
//! at their mount paths, `parallelism`, `retryStrategy`), compared with a plain local run.

use crate::support::{code, files_under, stderr, stdout, user_messages, Project, API_KEY};
use llm_stub::{RecordedRequest, Step, StubConfig, StubServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GOAL: &str = "Build a login page";
const SDLC_TASKS: [&str; 3] = [
    "implement_feature",
    "configure_ci_pipeline",
    "create_test_plan",
];

/// A reply that depends on the whole conversation, not on the order requests arrive in: equal
/// replies mean equal prompts, whichever process sent them.
fn by_prompt(request: &RecordedRequest) -> String {
    let messages = request
        .body
        .get("messages")
        .map(Value::to_string)
        .unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in messages.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let first_line: String = request
        .last_user_message()
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    format!("Answer {hash:016x} to: {first_line}")
}

fn stub(config: StubConfig) -> StubServer {
    StubServer::start_background(config.reply_fn(by_prompt)).expect("stub server")
}

/// `super orchestra run-task sdlc --task TASK --goal GOAL --run-id RUN_ID`.
fn run_task_args<'a>(task: &'a str, run_id: &'a str) -> Vec<&'a str> {
    vec![
        "orchestra",
        "run-task",
        "sdlc",
        "--task",
        task,
        "--goal",
        GOAL,
        "--run-id",
        run_id,
    ]
}

fn run_task(project: &Project, task: &str, run_id: &str, extra: &[&str]) -> Output {
    let mut args = run_task_args(task, run_id);
    args.extend(extra);
    project.run(&args)
}

fn json_file(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is JSON: {e}", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every file of `task_outputs/`, by name.
fn output_names(workspace: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace.join("task_outputs"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn both(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

#[test]
fn run_task_runs_one_task_and_a_rerun_with_the_same_inputs_is_a_no_op() {
    let server = stub(StubConfig::default());
    let project = Project::sdlc("openai", &server.openai_base_url());
    let ws = project.workspace("sdlc");

    let first = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&first), 0, "{}", both(&first));
    assert_eq!(server.request_count(), 1);
    assert!(stdout(&first).contains("✅ Task implement_feature completed"));
    let output = read(&ws.join("task_outputs/implement_feature_output.txt"));
    assert!(output.starts_with("Answer "), "{output}");
    assert!(ws
        .join("task_outputs/implement_feature_prompt.md")
        .is_file());
    let record_path = ws.join("tasks/implement_feature.json");
    let record = json_file(&record_path);
    assert_eq!(record["run_id"], "r1");
    assert_eq!(record["goal"], GOAL);
    assert_eq!(record["name"], "implement_feature");
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        record["output_file"],
        "task_outputs/implement_feature_output.txt"
    );
    assert!(record["cache_key"].as_str().is_some_and(|k| k.len() == 64));
    let record_text = read(&record_path);

    // The same run id and inputs: nothing is called, nothing rewritten.
    let again = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&again), 0, "{}", both(&again));
    assert!(
        stdout(&again).contains("already finished in run r1"),
        "{}",
        both(&again)
    );
    assert_eq!(server.request_count(), 1);
    assert_eq!(read(&record_path), record_text);

    // Its dependent reads the output from the workspace.
    let next = run_task(&project, "configure_ci_pipeline", "r1", &[]);
    assert_eq!(code(&next), 0, "{}", both(&next));
    assert_eq!(server.request_count(), 2);
    let asked = user_messages(&server);
    assert!(
        asked[1].contains(&output),
        "the context output: {}",
        asked[1]
    );

    // `--force`, another run id, another goal: each runs the task again.
    let forced = run_task(&project, "implement_feature", "r1", &["--force"]);
    assert_eq!(code(&forced), 0, "{}", both(&forced));
    assert_eq!(server.request_count(), 3);
    let other_run = run_task(&project, "implement_feature", "r2", &[]);
    assert_eq!(code(&other_run), 0, "{}", both(&other_run));
    assert_eq!(server.request_count(), 4);
    assert_eq!(json_file(&record_path)["run_id"], "r2");
    let mut args = run_task_args("implement_feature", "r2");
    args[6] = "Another goal";
    let other_goal = project.run(&args);
    assert_eq!(code(&other_goal), 0, "{}", both(&other_goal));
    assert_eq!(server.request_count(), 5);
}

#[test]
fn a_missing_upstream_output_exits_2_naming_the_task_and_the_path() {
    let server = stub(StubConfig::default());
    let project = Project::sdlc("openai", &server.openai_base_url());
    let out = run_task(&project, "create_test_plan", "r1", &[]);
    assert_eq!(code(&out), 2, "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("`configure_ci_pipeline`"), "{err}");
    assert!(
        err.contains("task_outputs/configure_ci_pipeline_output.txt"),
        "{err}"
    );
    assert_eq!(server.request_count(), 0);
    assert!(!project
        .workspace("sdlc")
        .join("tasks/create_test_plan.json")
        .exists());

    // An unknown task is a usage error with the closest name.
    let out = run_task(&project, "implement_featur", "r1", &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("did you mean `implement_feature`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn retryable_failures_exit_75_and_the_others_exit_1_after_one_attempt() {
    for (status, expected) in [(503, 75), (429, 75), (500, 75), (401, 1), (400, 1)] {
        let server = stub(StubConfig::default().fail_first(1, status));
        let project = Project::sdlc("openai", &server.openai_base_url());
        let out = run_task(&project, "implement_feature", "r1", &[]);
        assert_eq!(code(&out), expected, "HTTP {status}: {}", both(&out));
        assert_eq!(server.request_count(), 1, "HTTP {status}: one attempt");
        assert!(!both(&out).contains(API_KEY));
        let ws = project.workspace("sdlc");
        let record = json_file(&ws.join("tasks/implement_feature.json"));
        assert_eq!(record["status"], "failed", "HTTP {status}");
        assert_eq!(record["attempts"][0]["http_status"], status);
        // The seed's debugging guide reads a failed task's `_output.txt`: its error log,
        // headed as a failure, as in `_error.txt`.
        let log = std::fs::read_to_string(ws.join("task_outputs/implement_feature_output.txt"))
            .expect("the error log in _output.txt");
        assert!(
            log.starts_with("# FAILED: task `implement_feature` produced no output"),
            "{log}"
        );
        assert!(ws
            .join("task_outputs/implement_feature_error.txt")
            .is_file());
        if expected == 75 {
            // The engine's retry: a new process, its attempt numbered after the first.
            let retry = run_task(&project, "implement_feature", "r1", &[]);
            assert_eq!(code(&retry), 0, "{}", both(&retry));
            assert_eq!(server.request_count(), 2);
            let record = json_file(&ws.join("tasks/implement_feature.json"));
            assert_eq!(record["status"], "succeeded");
            let numbers: Vec<u64> = record["attempts"]
                .as_array()
                .expect("attempts")
                .iter()
                .filter_map(|a| a["number"].as_u64())
                .collect();
            assert_eq!(numbers, [1, 2]);
            assert_eq!(record["attempts"][0]["ok"], false);
            assert_eq!(record["attempts"][1]["ok"], true);
        }
    }

    // A budget reached: not worth retrying either.
    let server = stub(StubConfig::default());
    let project = Project::sdlc("openai", &server.openai_base_url());
    let limited = crate::support::SDLC.replace(
        "    enable_trace: true\n",
        "    enable_trace: true\n    budget:\n      max_llm_calls: 1\n",
    );
    project.orchestra("sdlc", &limited);
    let out = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let out = run_task(&project, "configure_ci_pipeline", "r1", &[]);
    assert_eq!(code(&out), 1, "{}", both(&out));
    assert!(both(&out).contains("max_llm_calls"), "{}", both(&out));
    assert_eq!(server.request_count(), 1, "the other task's call counts");
}

#[test]
fn an_invalid_structured_output_is_retryable_and_a_valid_one_feeds_field_references() {
    // Two replies that are not JSON (the answer and its repair), then valid ones.
    let replies = std::sync::atomic::AtomicUsize::new(0);
    let server = StubServer::start_background(StubConfig::default().reply_fn(move |_| {
        match replies.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 | 1 => "not JSON at all".to_string(),
            _ => r#"{"result": "LOGIN-DONE"}"#.to_string(),
        }
    }))
    .expect("stub");
    let project = Project::sdlc("openai", &server.openai_base_url());
    let structured = crate::support::SDLC
        .replacen(
            "    priority: \"medium\"\n",
            "    priority: \"medium\"\n    output_format: json\n",
            1,
        )
        .replace(
            "Configure a CI pipeline.",
            "Configure a CI pipeline for {implement_feature.result}.",
        );
    assert_ne!(structured, crate::support::SDLC);
    project.orchestra("sdlc", &structured);

    let out = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&out), 75, "{}", both(&out));
    assert_eq!(server.request_count(), 2, "the answer and one repair");
    let ws = project.workspace("sdlc");
    let record = json_file(&ws.join("tasks/implement_feature.json"));
    assert_eq!(record["attempts"][0]["reason"], "invalid_output");

    let out = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let object = json_file(&ws.join("task_outputs/implement_feature_output.json"));
    assert_eq!(object["result"], "LOGIN-DONE");
    let out = run_task(&project, "configure_ci_pipeline", "r1", &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let asked = user_messages(&server);
    assert!(
        asked[3].contains("Configure a CI pipeline for LOGIN-DONE."),
        "{}",
        asked[3]
    );
}

#[test]
fn two_processes_on_one_task_leave_one_output_and_one_record() {
    let server = stub(StubConfig::default().latency(Duration::from_millis(700)));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let spawn = || {
        project
            .command()
            .args(run_task_args("implement_feature", "r1"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn super")
    };
    let first = spawn();
    let second = spawn();
    let first = first.wait_with_output().expect("first");
    let second = second.wait_with_output().expect("second");
    assert_eq!(code(&first), 0, "{}", both(&first));
    assert_eq!(code(&second), 0, "{}", both(&second));
    assert_eq!(server.request_count(), 1, "the task ran once");
    let said_done = [&first, &second]
        .iter()
        .filter(|o| stdout(o).contains("already finished"))
        .count();
    assert_eq!(said_done, 1, "{}\n---\n{}", both(&first), both(&second));

    let ws = project.workspace("sdlc");
    assert_eq!(
        output_names(&ws),
        [
            "implement_feature_output.txt",
            "implement_feature_prompt.md"
        ]
    );
    let output = read(&ws.join("task_outputs/implement_feature_output.txt"));
    assert!(output.starts_with("Answer "), "{output}");
    let record = json_file(&ws.join("tasks/implement_feature.json"));
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["attempts"].as_array().map(Vec::len), Some(1));
    assert!(files_under(&ws.join(".tmp")).is_empty());
}

#[test]
fn kill_9_mid_task_leaves_nothing_half_written_and_a_rerun_finishes_it() {
    let server = stub(StubConfig::default().script(vec![Step::Delay(Duration::from_secs(30))]));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let mut child = project.spawn_until(&run_task_args("implement_feature", "r1"), &server, 1);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let ws = project.workspace("sdlc");
    // The prompt was written whole before the call; no output, no record.
    assert_eq!(output_names(&ws), ["implement_feature_prompt.md"]);
    assert!(read(&ws.join("task_outputs/implement_feature_prompt.md")).contains(GOAL));
    assert!(!ws.join("tasks/implement_feature.json").exists());

    let rerun = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&rerun), 0, "{}", both(&rerun));
    assert_eq!(server.request_count(), 2);
    let record = json_file(&ws.join("tasks/implement_feature.json"));
    assert_eq!(record["status"], "succeeded");
    assert!(read(&ws.join("task_outputs/implement_feature_output.txt")).starts_with("Answer "));
    assert!(files_under(&ws.join(".tmp")).is_empty());
}

#[test]
fn finish_assembles_the_run_and_names_the_tasks_that_did_not_finish() {
    let server = stub(StubConfig::default());
    let project = Project::sdlc("openai", &server.openai_base_url());
    for task in &SDLC_TASKS[..2] {
        let out = run_task(&project, task, "r1", &[]);
        assert_eq!(code(&out), 0, "{}", both(&out));
    }
    // The finish pod holds no key: none is needed.
    let finish = project
        .command()
        .env_remove("OPENAI_API_KEY")
        .args(["orchestra", "finish", "sdlc", "--run-id", "r1"])
        .output()
        .expect("finish");
    assert_eq!(code(&finish), 1, "{}", both(&finish));
    let ws = project.workspace("sdlc");
    let manifest = json_file(&ws.join("run.json"));
    assert_eq!(manifest["status"], "failed");
    assert_eq!(manifest["run_id"], "r1");
    assert_eq!(manifest["goal"], GOAL);
    let reason = manifest["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("create_test_plan"), "{reason}");
    assert_eq!(manifest["tasks"][2]["status"], "skipped");

    // Another run's records are not this run's.
    let out = run_task(&project, "create_test_plan", "r2", &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let finish = project.run(&["orchestra", "finish", "sdlc", "--run-id", "r1"]);
    assert_eq!(code(&finish), 1);
    let manifest = json_file(&ws.join("run.json"));
    let reason = manifest["tasks"][2]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("belongs to run `r2`"), "{reason}");

    let out = run_task(&project, "create_test_plan", "r1", &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let finish = project.run(&["orchestra", "finish", "sdlc", "--run-id", "r1"]);
    assert_eq!(code(&finish), 0, "{}", both(&finish));
    let manifest = json_file(&ws.join("run.json"));
    assert_eq!(manifest["status"], "succeeded");
    assert_eq!(manifest["totals"]["llm_calls"], 3);
    assert!(ws.join("metrics.json").is_file());
    assert!(ws.join("trace.jsonl").is_file());
    assert_eq!(
        read(&ws.join("final_results/orchestra_output.txt")),
        read(&ws.join("task_outputs/create_test_plan_output.txt"))
    );
}

// ---------------------------------------------------------------------------------------------
// Argo on a laptop.

/// How a pod ended, as Argo names it: `Failed` for a non-zero exit, `Error` for a pod the
/// cluster lost (here: killed by a signal, as a node going away kills it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Succeeded,
    Failed,
    Error,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
        }
    }
}

#[derive(Debug)]
struct Pod {
    task: String,
    attempt: u32,
    phase: Phase,
    exit_code: Option<i32>,
    log: String,
}

/// What the workflow did. Its folders live as long as the harness.
struct Ran {
    phase: Phase,
    pods: Vec<Pod>,
    max_running: usize,
    /// The run's workspace (the claim, or its sub-folder), on this machine.
    workspace: PathBuf,
}

impl Ran {
    /// Each attempt of a DAG task: its phase and exit code.
    fn attempts(&self, task: &str) -> Vec<(Phase, Option<i32>)> {
        self.pods
            .iter()
            .filter(|p| p.task == task)
            .map(|p| (p.phase, p.exit_code))
            .collect()
    }

    fn logs(&self) -> String {
        self.pods
            .iter()
            .map(|p| {
                format!(
                    "── {} attempt {} ({:?}, exit {:?})\n{}",
                    p.task, p.attempt, p.phase, p.exit_code, p.log
                )
            })
            .collect()
    }
}

/// Kills the pod of `task` at `attempt` once `when` holds: a node lost mid-task.
struct Kill<'a> {
    task: &'static str,
    attempt: u32,
    when: Box<dyn Fn() -> bool + 'a>,
}

/// Runs an exported Workflow the way the Argo controller would, every pod a process of the
/// built binary. Only what the exports use is understood; anything else fails the test.
struct Harness {
    dir: tempfile::TempDir,
    /// Each `secretKeyRef` value, by secret name and key.
    secrets: HashMap<(String, String), String>,
    goal: String,
    /// The workflow's name, as Argo makes it from `generateName`.
    suffix: &'static str,
}

/// Argo waits `backoff` between attempts; the harness waits a hundredth of it.
const BACKOFF_SCALE: u32 = 100;

impl Harness {
    fn new(secret_value: &str) -> Harness {
        let mut secrets = HashMap::new();
        secrets.insert(
            ("super-llm-keys".to_string(), "OPENAI_API_KEY".to_string()),
            secret_value.to_string(),
        );
        Harness {
            dir: tempfile::Builder::new()
                .prefix("super-argo-")
                .tempdir()
                .expect("temp dir"),
            secrets,
            goal: GOAL.to_string(),
            suffix: "x7k2p",
        }
    }

    fn run(&self, documents: &[Value], kill: Option<Kill<'_>>) -> Ran {
        let configmap = find(documents, "ConfigMap");
        let workflow = find(documents, "Workflow");
        assert_eq!(workflow["apiVersion"], "argoproj.io/v1alpha1");
        let spec = &workflow["spec"];
        let name = format!(
            "{}{}",
            workflow["metadata"]["generateName"]
                .as_str()
                .expect("generateName"),
            self.suffix
        );
        let mut parameters: HashMap<String, String> = HashMap::new();
        for parameter in spec["arguments"]["parameters"]
            .as_array()
            .expect("parameters")
        {
            let key = parameter["name"].as_str().expect("name").to_string();
            let value = match key.as_str() {
                // `argo submit -p goal=...`
                "goal" => self.goal.clone(),
                _ => parameter["value"]
                    .as_str()
                    .expect("a parameter's value")
                    .to_string(),
            };
            parameters.insert(key, value);
        }
        let substitute = |text: &str| -> String {
            let mut out = text.replace("{{workflow.name}}", &name);
            for (key, value) in &parameters {
                out = out.replace(&format!("{{{{workflow.parameters.{key}}}}}"), value);
            }
            assert!(
                !out.contains("{{"),
                "the harness knows no other variable: {text}"
            );
            out
        };

        // Volumes: the ConfigMap's files as Kubernetes lays them out, and one shared claim.
        let project = self.dir.path().join("project");
        let claim = self.dir.path().join("claim");
        std::fs::create_dir_all(&claim).expect("claim");
        for volume in spec["volumes"].as_array().expect("volumes") {
            match volume["name"].as_str() {
                Some("project") => lay_out_configmap(configmap, &volume["configMap"], &project),
                Some("workspace") => {
                    assert!(
                        volume.get("persistentVolumeClaim").is_some(),
                        "a shared claim: {volume}"
                    )
                }
                other => panic!("unknown volume {other:?}"),
            }
        }
        if spec.get("volumeClaimTemplates").is_some() {
            assert_eq!(
                spec["volumeClaimTemplates"][0]["spec"]["accessModes"],
                json!(["ReadWriteMany"])
            );
        }

        let templates: HashMap<&str, &Value> = spec["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .map(|t| (t["name"].as_str().expect("template name"), t))
            .collect();
        let entry = templates[spec["entrypoint"].as_str().expect("entrypoint")];
        let nodes: Vec<Node<'_>> = entry["dag"]["tasks"]
            .as_array()
            .expect("a DAG")
            .iter()
            .map(|task| Node {
                name: task["name"].as_str().expect("name").to_string(),
                template: templates[task["template"].as_str().expect("template")],
                depends: depends(task.get("depends")),
            })
            .collect();
        let parallelism = number(&spec["parallelism"]) as usize;
        assert!(parallelism >= 1);

        let pods_dir = self.dir.path().join("pods");
        std::fs::create_dir_all(&pods_dir).expect("pods dir");
        let mut state: Vec<NodeState> = nodes.iter().map(|_| NodeState::default()).collect();
        let mut running: Vec<Running> = Vec::new();
        let mut pods: Vec<Pod> = Vec::new();
        let mut max_running = 0;
        let mut failed = false;
        let mut workspace = claim.clone();
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the workflow hangs"
            );
            // Pods that ended: retried as `retryStrategy` says, or done.
            let mut still = Vec::new();
            for mut pod in running.drain(..) {
                let ended = pod.child.try_wait().expect("wait for a pod");
                let phase_code = match ended {
                    Some(status) => Some(match status.code() {
                        Some(0) => (Phase::Succeeded, Some(0)),
                        Some(code) => (Phase::Failed, Some(code)),
                        None => (Phase::Error, None),
                    }),
                    None if Instant::now() >= pod.deadline => {
                        let _ = pod.child.kill();
                        let _ = pod.child.wait();
                        Some((Phase::Failed, None))
                    }
                    None => None,
                };
                let Some((phase, exit_code)) = phase_code else {
                    still.push(pod);
                    continue;
                };
                let node = &nodes[pod.node];
                let log = std::fs::read_to_string(&pod.log).unwrap_or_default();
                pods.push(Pod {
                    task: node.name.clone(),
                    attempt: pod.attempt,
                    phase,
                    exit_code,
                    log,
                });
                let strategy = node.template.get("retryStrategy");
                let node_state = &mut state[pod.node];
                if phase != Phase::Succeeded
                    && retries(strategy, pod.attempt, phase, exit_code)
                    && within_max_duration(strategy, node_state.first_start, pod.attempt)
                {
                    node_state.retry_at = Some(Instant::now() + backoff(strategy, pod.attempt));
                } else {
                    node_state.done = Some(phase);
                    failed |= phase != Phase::Succeeded;
                }
            }
            running = still;

            if let Some(kill) = &kill {
                for pod in &mut running {
                    if nodes[pod.node].name == kill.task
                        && pod.attempt == kill.attempt
                        && (kill.when)()
                    {
                        pod.child.kill().expect("kill a pod");
                    }
                }
            }

            // Start what is ready, within `parallelism`; after a failure no new task starts
            // (Argo's failFast), but retries go on.
            for (i, node) in nodes.iter().enumerate() {
                if running.len() >= parallelism {
                    break;
                }
                let node_state = &state[i];
                if node_state.done.is_some() || running.iter().any(|p| p.node == i) {
                    continue;
                }
                let ready = match node_state.retry_at {
                    Some(at) => Instant::now() >= at,
                    None => {
                        node_state.attempts == 0
                            && !failed
                            && node.depends.iter().all(|d| {
                                let j = nodes.iter().position(|n| &n.name == d).expect("known");
                                state[j].done == Some(Phase::Succeeded)
                            })
                    }
                };
                if !ready {
                    continue;
                }
                let attempt = node_state.attempts + 1;
                let (pod, run_workspace) =
                    self.start_pod(node, attempt, &project, &claim, &pods_dir, &substitute);
                workspace = run_workspace;
                let node_state = &mut state[i];
                node_state.attempts = attempt;
                node_state.retry_at = None;
                node_state.first_start.get_or_insert_with(Instant::now);
                running.push(Running { node: i, ..pod });
            }
            max_running = max_running.max(running.len());

            let waiting = state.iter().any(|s| s.retry_at.is_some());
            let startable = !failed
                && nodes.iter().enumerate().any(|(i, node)| {
                    state[i].attempts == 0
                        && node.depends.iter().all(|d| {
                            let j = nodes.iter().position(|n| &n.name == d).expect("known");
                            state[j].done == Some(Phase::Succeeded)
                        })
                });
            if running.is_empty() && !waiting && !startable {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let phase = if state.iter().all(|s| s.done == Some(Phase::Succeeded)) {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        Ran {
            phase,
            pods,
            max_running,
            workspace,
        }
    }

    /// One pod: its container's command and args as a process, with the manifest's
    /// environment, the mounts rewritten to this machine's folders. Returns the pod and its
    /// workspace folder.
    fn start_pod(
        &self,
        node: &Node<'_>,
        attempt: u32,
        project: &Path,
        claim: &Path,
        pods_dir: &Path,
        substitute: &dyn Fn(&str) -> String,
    ) -> (Running, PathBuf) {
        let container = &node.template["container"];
        assert_eq!(container["command"], json!(["super"]));
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        let mut workspace = claim.to_path_buf();
        for mount in container["volumeMounts"].as_array().expect("volumeMounts") {
            let path = mount["mountPath"].as_str().expect("mountPath").to_string();
            let host = match mount["name"].as_str() {
                Some("project") => {
                    assert_eq!(mount["readOnly"], true, "the project is read-only");
                    project.to_path_buf()
                }
                Some("workspace") => {
                    let mut host = claim.to_path_buf();
                    if let Some(sub) = mount.get("subPath").and_then(Value::as_str) {
                        host = host.join(substitute(sub));
                    }
                    std::fs::create_dir_all(&host).expect("the claim's folder");
                    workspace = host.clone();
                    host
                }
                other => panic!("unknown mount {other:?}"),
            };
            mounts.push((path, host));
        }
        let rewrite = |text: String| -> String {
            for (path, host) in &mounts {
                if text == *path {
                    return host.display().to_string();
                }
                if let Some(rest) = text.strip_prefix(&format!("{path}/")) {
                    return host.join(rest).display().to_string();
                }
            }
            text
        };
        let args: Vec<String> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| rewrite(substitute(a.as_str().expect("an arg"))))
            .collect();
        let home = pods_dir.join(format!("{}-{attempt}-home", node.name));
        std::fs::create_dir_all(&home).expect("home");
        let mut command = Command::new(env!("CARGO_BIN_EXE_super"));
        // The image's environment (Dockerfile), then the container's.
        command
            .env_clear()
            .env("HOME", &home)
            .env("SUPER_HOME", &home)
            .current_dir(&workspace);
        for variable in container["env"].as_array().into_iter().flatten() {
            let key = variable["name"].as_str().expect("env name");
            if let Some(value) = variable.get("value").and_then(Value::as_str) {
                command.env(key, rewrite(substitute(value)));
                continue;
            }
            let reference = &variable["valueFrom"]["secretKeyRef"];
            let secret = (
                reference["name"].as_str().expect("secret name").to_string(),
                reference["key"].as_str().expect("secret key").to_string(),
            );
            match self.secrets.get(&secret) {
                Some(value) => {
                    command.env(key, value);
                }
                None if reference["optional"] == true => {}
                None => panic!("the pod needs secret {secret:?}, which the test did not supply"),
            }
        }
        let log = pods_dir.join(format!("{}-{attempt}.log", node.name));
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start a pod");
        let deadline = node
            .template
            .get("activeDeadlineSeconds")
            .map(number)
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(3600));
        (
            Running {
                node: 0,
                attempt,
                child,
                deadline: Instant::now() + deadline,
                log,
            },
            workspace,
        )
    }
}

struct Node<'a> {
    name: String,
    template: &'a Value,
    depends: Vec<String>,
}

#[derive(Default)]
struct NodeState {
    attempts: u32,
    done: Option<Phase>,
    retry_at: Option<Instant>,
    first_start: Option<Instant>,
}

struct Running {
    node: usize,
    attempt: u32,
    child: Child,
    deadline: Instant,
    log: PathBuf,
}

/// A task's name in the DAG (a Kubernetes name).
fn dag_name(task: &str) -> String {
    task.replace('_', "-")
}

fn find<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} among the documents"))
}

/// `a && b`: the exports only ever say "every one of these succeeded".
fn depends(value: Option<&Value>) -> Vec<String> {
    let Some(text) = value.and_then(Value::as_str) else {
        return Vec::new();
    };
    text.split("&&")
        .map(|name| {
            let name = name.trim();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "the harness understands only `a && b`: {text}"
            );
            name.to_string()
        })
        .collect()
}

/// Kubernetes IntOrString: `"600"` or `600`.
fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// `5s`, `1m`: Argo durations as the exports write them.
fn duration(value: &Value) -> Duration {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a duration: {value}"));
    if let Some(seconds) = text.strip_suffix('s') {
        return Duration::from_secs(seconds.parse().expect("seconds"));
    }
    if let Some(minutes) = text.strip_suffix('m') {
        return Duration::from_secs(60 * minutes.parse::<u64>().expect("minutes"));
    }
    panic!("the harness understands only `Ns` and `Nm` durations: {text}")
}

/// Whether a pod that ended so is tried again, as Argo decides it: attempts left under
/// `limit`, the `retryPolicy`, and the `expression`.
fn retries(strategy: Option<&Value>, attempt: u32, phase: Phase, exit_code: Option<i32>) -> bool {
    let Some(strategy) = strategy else {
        return false;
    };
    let limit = strategy.get("limit").map(number).unwrap_or(0);
    if u64::from(attempt) > limit {
        return false;
    }
    let policy = strategy
        .get("retryPolicy")
        .and_then(Value::as_str)
        .unwrap_or("OnFailure");
    let by_policy = match policy {
        "Always" => phase != Phase::Succeeded,
        "OnFailure" => phase == Phase::Failed,
        "OnError" => phase == Phase::Error,
        other => panic!("the harness does not know retryPolicy {other}"),
    };
    by_policy
        && strategy
            .get("expression")
            .and_then(Value::as_str)
            .is_none_or(|text| expression(text, phase, exit_code))
}

/// The expressions the exports write: `||` of `lastRetry.status == "X"` and
/// `asInt(lastRetry.exitCode) == N`, left to right, stopping at the first true one (as
/// expr-lang does). `asInt` of a pod with no exit code fails, as it does in Argo.
fn expression(text: &str, phase: Phase, exit_code: Option<i32>) -> bool {
    for clause in text.split("||").map(str::trim) {
        let holds = if let Some(value) = clause.strip_prefix("lastRetry.status ==") {
            phase.name() == value.trim().trim_matches('"')
        } else if let Some(value) = clause.strip_prefix("asInt(lastRetry.exitCode) ==") {
            let code = exit_code.unwrap_or_else(|| {
                panic!("`{clause}` of `{text}` reads the exit code of a pod that has none")
            });
            code == value.trim().parse::<i32>().expect("an exit code")
        } else {
            panic!("the harness cannot evaluate `{clause}` of `{text}`")
        };
        if holds {
            return true;
        }
    }
    false
}

/// The wait before attempt `attempt + 1`: `duration` times `factor` per earlier retry, scaled
/// down by `BACKOFF_SCALE`.
fn backoff(strategy: Option<&Value>, attempt: u32) -> Duration {
    let Some(backoff) = strategy.and_then(|s| s.get("backoff")) else {
        return Duration::ZERO;
    };
    let base = duration(&backoff["duration"]);
    let factor = backoff.get("factor").map(number).unwrap_or(1);
    let wait = base * u32::try_from(factor.pow(attempt - 1)).expect("a small factor");
    wait / BACKOFF_SCALE
}

/// Argo gives up retrying once `maxDuration` has passed since the first attempt (scaled like
/// the backoff, the pods' own time counted whole).
fn within_max_duration(strategy: Option<&Value>, first: Option<Instant>, attempt: u32) -> bool {
    let Some(max) = strategy
        .and_then(|s| s.get("backoff"))
        .and_then(|b| b.get("maxDuration"))
    else {
        return true;
    };
    let waited: Duration = (1..=attempt)
        .map(|a| backoff(strategy, a) * BACKOFF_SCALE)
        .sum();
    let elapsed = first.map(|f| f.elapsed()).unwrap_or_default();
    waited + elapsed <= duration(max)
}

/// A ConfigMap volume as the kubelet lays it out: the files in a timestamped folder, `..data`
/// linking to it, and each top-level entry a link through `..data`; files read-only.
fn lay_out_configmap(configmap: &Value, volume: &Value, dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(volume["name"], configmap["metadata"]["name"]);
    let data = configmap["data"].as_object().expect("data");
    let real_name = "..2026_01_01_00_00_00.000000001";
    let real = dir.join(real_name);
    for item in volume["items"].as_array().expect("items") {
        let key = item["key"].as_str().expect("key");
        let path = item["path"].as_str().expect("path");
        assert!(!path.starts_with('/') && !path.contains(".."), "{path}");
        let text = data[key].as_str().expect("the key is in the ConfigMap");
        let file = real.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("folders");
        std::fs::write(&file, text).expect("write a project file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("read-only");
    }
    std::os::unix::fs::symlink(real_name, dir.join("..data")).expect("..data");
    for entry in std::fs::read_dir(&real).expect("the files") {
        let name = entry.expect("entry").file_name();
        let target = Path::new("..data").join(&name);
        std::os::unix::fs::symlink(target, dir.join(&name)).expect("a top-level link");
    }
}

fn export(project: &Project, id: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["orchestra", "export", id, "--image", "example/super:1"];
    args.extend(extra);
    let out = project.run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_saphyr::from_multiple(&stdout(&out)).expect("the export reads back")
}

/// A plain local run of the same orchestra; its workspace. A file meant for Kubernetes still
/// runs here, and says once how to run it on the cluster.
fn local_run(project: &Project, id: &str) -> PathBuf {
    let out = project.run(&["orchestra", "run", id, "--goal", GOAL]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let on_kubernetes = read(&project.path(&format!("demo/orchestras/{id}_orchestra.yaml")))
        .contains("orchestration_type: kubernetes");
    let hint = format!("super orchestra export {id} --target argo");
    assert_eq!(
        stderr(&out).matches(&hint).count(),
        usize::from(on_kubernetes),
        "{}",
        stderr(&out)
    );
    project.workspace(id)
}

/// The same outputs, prompts, final results and shared data; the same tasks, statuses, calls
/// and tokens in run.json.
fn assert_same_results(argo: &Path, local: &Path, tasks: &[&str]) {
    assert_eq!(
        read(&argo.join("final_results/orchestra_output.txt")),
        read(&local.join("final_results/orchestra_output.txt"))
    );
    for task in tasks {
        for file in [
            format!("task_outputs/{task}_output.txt"),
            format!("task_outputs/{task}_prompt.md"),
        ] {
            assert_eq!(read(&argo.join(&file)), read(&local.join(&file)), "{file}");
        }
    }
    let shared = |ws: &Path| json_file(&ws.join("intermediate/shared_data.json"));
    let (a, l) = (shared(argo), shared(local));
    assert_eq!(a["goal"], l["goal"]);
    for task in tasks {
        assert_eq!(
            a["tasks"][task]["output"], l["tasks"][task]["output"],
            "{task}"
        );
        assert_eq!(
            a["tasks"][task]["status"], l["tasks"][task]["status"],
            "{task}"
        );
    }
    let manifest = |ws: &Path| json_file(&ws.join("run.json"));
    let (a, l) = (manifest(argo), manifest(local));
    assert_eq!(a["status"], "succeeded");
    assert_eq!(a["status"], l["status"]);
    assert_eq!(a["goal"], l["goal"]);
    assert_eq!(a["orchestra"]["sha256"], l["orchestra"]["sha256"]);
    let tasks_of = |m: &Value| -> Vec<(Value, Value)> {
        m["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| (t["name"].clone(), t["status"].clone()))
            .collect()
    };
    assert_eq!(tasks_of(&a), tasks_of(&l));
    for total in ["llm_calls", "tokens_in", "tokens_out", "succeeded"] {
        assert_eq!(a["totals"][total], l["totals"][total], "{total}");
    }
    for file in ["metrics.json", "trace.jsonl"] {
        assert!(argo.join(file).is_file(), "{file}");
    }
}

/// Every file under `dir`, as text (binary files skipped).
fn texts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    files_under(dir)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

#[test]
fn an_exported_workflow_runs_on_a_laptop_like_a_local_run() {
    let server = stub(StubConfig::default());
    let project = Project::sdlc("openai", &server.openai_base_url());
    let documents = export(&project, "sdlc", &[]);
    let harness = Harness::new(API_KEY);
    let ran = harness.run(&documents, None);
    assert_eq!(ran.phase, Phase::Succeeded, "{}", ran.logs());
    let argo_requests = server.request_count();
    assert_eq!(argo_requests, 3);
    for task in SDLC_TASKS.iter().chain(&["finish"]) {
        assert_eq!(
            ran.attempts(&dag_name(task)),
            [(Phase::Succeeded, Some(0))],
            "{task}: {}",
            ran.logs()
        );
    }
    assert_eq!(ran.max_running, 1, "a chain runs one pod at a time");
    let manifest = json_file(&ran.workspace.join("run.json"));
    assert_eq!(
        manifest["run_id"], "sdlc-x7k2p",
        "the run id is the workflow's name"
    );

    // No key in any file, log or project file.
    for (path, text) in texts_under(harness.dir.path()) {
        assert!(
            !text.contains(API_KEY),
            "the key leaked into {}",
            path.display()
        );
    }

    let local = local_run(&project, "sdlc");
    assert_eq!(server.request_count() - argo_requests, argo_requests);
    assert_same_results(&ran.workspace, &local, &SDLC_TASKS);
}

const REVIEW: &str = "metadata:
  name: Review
  id: review
orchestra:
  id: review
  execution:
    strategy: parallel
    max_parallel_tasks: 4
agents:
  - developer
  - devops_engineer
  - qa_engineer
tasks:
  - name: review_code
    agent: developer
    description: Review the code of '{goal}'.
  - name: review_pipeline
    agent: devops_engineer
    description: Review the pipeline of '{goal}'.
  - name: review_tests
    agent: qa_engineer
    description: Review the tests of '{goal}'.
  - name: review_security
    agent: developer
    description: Review the security of '{goal}'.
  - name: summary
    agent: qa_engineer
    description: Summarise the reviews of '{goal}'.
    context: [review_code, review_pipeline, review_tests, review_security]
orchestration_type: kubernetes
replicas: 2
resources:
  cpu: 500m
  memory: 1Gi
";

#[test]
fn the_harness_respects_parallelism_and_each_run_keeps_its_folder_of_a_shared_claim() {
    let server = stub(StubConfig::default().latency(Duration::from_millis(300)));
    let project = Project::sdlc("openai", &server.openai_base_url());
    project.orchestra("review", REVIEW);
    let documents = export(&project, "review", &["--workspace-claim", "team-claim"]);
    let workflow = find(&documents, "Workflow");
    assert_eq!(
        number(&workflow["spec"]["parallelism"]),
        2,
        "capped by replicas"
    );
    let harness = Harness::new(API_KEY);
    let ran = harness.run(&documents, None);
    assert_eq!(ran.phase, Phase::Succeeded, "{}", ran.logs());
    assert_eq!(ran.max_running, 2, "{}", ran.logs());
    assert!(server.max_in_flight() <= 2, "{}", server.max_in_flight());
    assert!(
        ran.workspace.ends_with("claim/review-x7k2p"),
        "{}",
        ran.workspace.display()
    );
    let argo_requests = server.request_count();
    assert_eq!(argo_requests, 5);

    let local = local_run(&project, "review");
    assert_eq!(server.request_count() - argo_requests, argo_requests);
    assert_same_results(
        &ran.workspace,
        &local,
        &[
            "review_code",
            "review_pipeline",
            "review_tests",
            "review_security",
            "summary",
        ],
    );
}

#[test]
fn the_harness_retries_a_503_as_the_manifest_says_and_not_a_401() {
    // The first two calls fail with 503: the first task's pod exits 75 twice, then succeeds.
    let server = stub(StubConfig::default().fail_first(2, 503));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let documents = export(&project, "sdlc", &[]);
    let harness = Harness::new(API_KEY);
    let ran = harness.run(&documents, None);
    assert_eq!(ran.phase, Phase::Succeeded, "{}", ran.logs());
    assert_eq!(
        ran.attempts("implement-feature"),
        [
            (Phase::Failed, Some(75)),
            (Phase::Failed, Some(75)),
            (Phase::Succeeded, Some(0))
        ],
        "{}",
        ran.logs()
    );
    assert_eq!(server.request_count(), 5, "one call per pod");
    let manifest = json_file(&ran.workspace.join("run.json"));
    let attempts = manifest["tasks"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 3, "every pod's attempt is in run.json");
    assert_eq!(attempts[0]["http_status"], 503);
    assert_eq!(manifest["status"], "succeeded");

    // More failures than the retry limit: the workflow fails after limit + 1 attempts.
    let server = stub(StubConfig::default().fail_first(10, 503));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let ran = Harness::new(API_KEY).run(&export(&project, "sdlc", &[]), None);
    assert_eq!(ran.phase, Phase::Failed);
    assert_eq!(ran.attempts("implement-feature").len(), 3, "{}", ran.logs());
    assert!(ran.attempts("configure-ci-pipeline").is_empty());
    assert!(ran.attempts("finish").is_empty());

    // A key the server refuses: 401, exit 1, not retried; nothing after it runs.
    let wrong_key = "sk-wrong-KEY-in-the-secret-9d2e";
    let server = stub(StubConfig::default().require_bearer(API_KEY));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let harness = Harness::new(wrong_key);
    let ran = harness.run(&export(&project, "sdlc", &[]), None);
    assert_eq!(ran.phase, Phase::Failed);
    assert_eq!(
        ran.attempts("implement-feature"),
        [(Phase::Failed, Some(1))],
        "{}",
        ran.logs()
    );
    assert_eq!(server.request_count(), 1);
    assert!(ran.attempts("finish").is_empty());
    for (path, text) in texts_under(harness.dir.path()) {
        assert!(
            !text.contains(wrong_key),
            "the key leaked into {}",
            path.display()
        );
    }
}

#[test]
fn a_pod_killed_mid_task_is_retried_and_no_finished_task_runs_again() {
    // The second call (the second task's first pod) hangs until its pod is killed.
    let server =
        stub(StubConfig::default().script(vec![Step::Ok, Step::Delay(Duration::from_secs(30))]));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let documents = export(&project, "sdlc", &[]);
    let kill = Kill {
        task: "configure-ci-pipeline",
        attempt: 1,
        when: Box::new(|| server.request_count() >= 2),
    };
    let harness = Harness::new(API_KEY);
    let ran = harness.run(&documents, Some(kill));
    assert_eq!(ran.phase, Phase::Succeeded, "{}", ran.logs());
    assert_eq!(
        ran.attempts("configure-ci-pipeline"),
        [(Phase::Error, None), (Phase::Succeeded, Some(0))],
        "{}",
        ran.logs()
    );
    assert_eq!(ran.attempts("implement-feature").len(), 1);
    assert_eq!(ran.attempts("create-test-plan").len(), 1);
    // Three tasks, one call repeated: the one in flight when its pod died.
    assert_eq!(server.request_count(), 4);
    let asked = user_messages(&server);
    assert_eq!(asked[1], asked[2], "the retry sent the same request");
    assert_ne!(asked[0], asked[1]);
    assert_ne!(asked[3], asked[1]);

    let local_server = stub(StubConfig::default());
    let local_project = Project::sdlc("openai", &local_server.openai_base_url());
    let local = local_run(&local_project, "sdlc");
    assert_eq!(local_server.request_count(), 3);
    assert_same_results(&ran.workspace, &local, &SDLC_TASKS);
}

/// A failed task's `_output.txt` holds its error log (where the seed's guide looks); a
/// dependent run-task refuses it as an upstream output, by the record and by the file.
#[test]
fn run_task_refuses_a_failed_upstream_whose_output_file_is_its_error_log() {
    let server = stub(StubConfig::default().fail_first(1, 401));
    let project = Project::sdlc("openai", &server.openai_base_url());
    let ws = project.workspace("sdlc");
    let failed = run_task(&project, "implement_feature", "r1", &[]);
    assert_eq!(code(&failed), 1, "{}", both(&failed));
    let next = run_task(&project, "configure_ci_pipeline", "r1", &[]);
    assert_eq!(code(&next), 2, "{}", both(&next));
    assert!(
        both(&next).contains(
            "needs the output of `implement_feature`, but `implement_feature` is failed in run `r1`"
        ),
        "{}",
        both(&next)
    );
    assert_eq!(server.request_count(), 1, "the dependent made no call");
    // Without the record (outputs copied from elsewhere), the file's heading still tells.
    std::fs::remove_file(ws.join("tasks/implement_feature.json")).expect("remove record");
    let next = run_task(&project, "configure_ci_pipeline", "r1", &[]);
    assert_eq!(code(&next), 2, "{}", both(&next));
    assert!(
        both(&next).contains("is the error log of its failed run"),
        "{}",
        both(&next)
    );
    assert_eq!(server.request_count(), 1);
}
