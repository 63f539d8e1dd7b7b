//! Export tests: every export of the seed's examples and of parallel, mixed, hierarchical,
//! resources, retry, artifacts and template variants must validate against Argo's published
//! JSON Schema made strict (`additionalProperties: false` wherever properties are listed), and
//! that strict schema must still accept every one of Argo's own examples. The schema and the
//! examples are read from `../shared/argo` and never copied into the repository.

use super::settings::Exported;
use super::*;
use crate::load::{load_orchestra, LoadOptions, Loaded};
use crate::project::Project;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const WORKFLOW: &str = "io.argoproj.workflow.v1alpha1.Workflow";
const WORKFLOW_TEMPLATE: &str = "io.argoproj.workflow.v1alpha1.WorkflowTemplate";

/// `../shared/argo`, or `None` after saying loudly why the test is skipped (a failure in CI).
fn argo_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/argo");
    if dir.join("schema.json").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`{}` is missing: CI must have Argo's schema and examples",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: `{}` is missing (Argo's schema and examples); the export schema tests did not run",
        dir.display()
    );
    None
}

/// Adds `additionalProperties: false` to every object schema that lists `properties` and says
/// nothing about other keys, so a misspelt field fails.
fn make_strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("properties").is_some_and(Value::is_object)
                && !map.contains_key("additionalProperties")
                && !map.contains_key("x-kubernetes-preserve-unknown-fields")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                make_strict(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_strict),
        _ => {}
    }
}

struct Schemas {
    strict: Value,
    loose: Value,
}

fn schemas(dir: &Path) -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let text = std::fs::read_to_string(dir.join("schema.json")).expect("read schema.json");
        let mut loose: Value = serde_json::from_str(&text).expect("schema.json is JSON");
        // The root lists every kind; each validator points at one definition instead.
        if let Value::Object(map) = &mut loose {
            map.remove("oneOf");
            map.remove("type");
            map.remove("$schema");
        }
        // Kubernetes' IntOrString takes both (Argo's examples write `port: 80`), but the
        // published schema says string only; our own exports write strings all the same.
        loose["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] =
            serde_json::json!({"type": ["string", "integer"]});
        let mut strict = loose.clone();
        if let Some(definitions) = strict.get_mut("definitions") {
            make_strict(definitions);
        }
        Schemas { strict, loose }
    })
}

fn validator(dir: &Path, definition: &str, strict: bool) -> jsonschema::Validator {
    let schemas = schemas(dir);
    let mut root = if strict {
        schemas.strict.clone()
    } else {
        schemas.loose.clone()
    };
    root["$ref"] = Value::String(format!("#/definitions/{definition}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&root)
        .expect("Argo's schema compiles")
}

fn strict_workflow_validator(dir: &Path) -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| validator(dir, WORKFLOW, true))
}

fn errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// A copy of the repository's example project, so variants can be added beside the seed's files.
struct Fixture {
    _guard: tempfile::TempDir,
    project: Project,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn fixture() -> Fixture {
    let guard = tempfile::tempdir().expect("temp dir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sdlc"),
        guard.path(),
    );
    let project = Project::open(guard.path()).expect("the example project opens");
    Fixture {
        _guard: guard,
        project,
    }
}

impl Fixture {
    fn add(&self, id: &str, yaml: &str) {
        let path = self
            .project
            .default_orchestras_dir()
            .join(format!("{id}_orchestra.yaml"));
        std::fs::write(path, yaml).expect("write orchestra");
    }

    fn load(&self, id: &str) -> Loaded {
        let path = self.project.find_orchestra(id).expect("orchestra exists");
        load_orchestra(
            Some(&self.project),
            &path,
            &LoadOptions::default(),
            &placeholder_env,
        )
        .unwrap_or_else(|diags| panic!("`{id}` loads: {}", diags.render(false)))
    }

    fn export(&self, id: &str, settings: &ExportSettings) -> Exported {
        export(&self.project, &self.load(id), settings)
            .unwrap_or_else(|e| panic!("`{id}` exports: {e}"))
    }
}

fn argo() -> ExportSettings {
    ExportSettings {
        target: ExportTarget::Argo,
        template: false,
        image: "registry.example.com/super:1.0".into(),
        namespace: Some("agents".into()),
        secret: DEFAULT_SECRET.into(),
        workspace: WorkspaceSpec::NewClaim { size: "2Gi".into() },
        max_wall_seconds: Some(3600),
        goal: None,
    }
}

/// The YAML written for the documents reads back as the same documents.
fn round_trip(documents: &[Value]) -> Vec<Value> {
    let yaml = to_yaml(documents).expect("emits YAML");
    let back: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("the YAML reads back");
    assert_eq!(back, documents, "the YAML round-trips:\n{yaml}");
    back
}

fn find<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} document"))
}

fn template<'a>(workflow: &'a Value, name: &str) -> &'a Value {
    workflow["spec"]["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("template `{name}`"))
}

fn dag_task<'a>(workflow: &'a Value, name: &str) -> &'a Value {
    template(workflow, "orchestra")["dag"]["tasks"]
        .as_array()
        .expect("dag tasks")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("dag task `{name}`"))
}

const PARALLEL: &str = "
metadata: {name: Parallel Review, id: parallel_review}
orchestra:
  execution: {strategy: parallel, max_parallel_tasks: 5, task_timeout_seconds: 120}
agents: [developer, devops_engineer, qa_engineer]
tasks:
  - {name: implement_feature, agent: developer, description: 'Build {goal}'}
  - {name: configure_ci_pipeline, agent: devops_engineer, description: 'CI for {goal}'}
  - {name: create_test_plan, agent: qa_engineer, description: 'Test {goal}', context: [implement_feature, configure_ci_pipeline]}
";

const MIXED: &str = "
metadata: {name: Mixed, id: mixed}
orchestra:
  execution:
    strategy: mixed
    max_parallel_tasks: 4
    task_groups:
      - {name: build, tasks: [implement_feature, configure_ci_pipeline], execution_strategy: parallel}
      - {name: check, tasks: [create_test_plan, review], execution_strategy: sequential}
agents: [developer, devops_engineer, qa_engineer]
tasks:
  - {name: implement_feature, agent: developer, description: 'Build {goal}'}
  - {name: configure_ci_pipeline, agent: devops_engineer, description: 'CI for {goal}'}
  - {name: create_test_plan, agent: qa_engineer, description: 'Test {goal}'}
  - {name: review, agent: developer, description: 'Review {goal}', priority: high}
";

const HIERARCHICAL: &str = "
metadata: {name: Managed, id: managed}
orchestra:
  execution: {strategy: hierarchical}
agents: [developer, qa_engineer]
tasks:
  - {name: implement_feature, agent: developer, description: 'Build {goal}'}
  - {name: create_test_plan, agent: qa_engineer, description: 'Test {goal}'}
";

/// The seed's Kubernetes snippet, with a task that needs more memory.
const RESOURCES: &str = "
metadata: {name: On Kubernetes, id: on_kubernetes}
orchestra:
  execution: {strategy: parallel, max_parallel_tasks: 8}
orchestration_type: \"kubernetes\"
replicas: 3
resources:
  cpu: \"1000m\"
  memory: \"2Gi\"
agents: [developer, devops_engineer, qa_engineer]
tasks:
  - {name: implement_feature, agent: developer, description: 'Build {goal}', resources: {memory: 4Gi}}
  - {name: configure_ci_pipeline, agent: devops_engineer, description: 'CI for {goal}'}
  - {name: create_test_plan, agent: qa_engineer, description: 'Test {goal}'}
  - {name: write_docs, agent: developer, description: 'Document {goal}'}
";

const RETRY: &str = "
metadata: {name: Retry, id: retry}
orchestra:
  execution: {strategy: sequential, retry_strategy: fixed_delay, task_timeout_seconds: 90}
agents: [developer, qa_engineer]
tasks:
  - {name: implement_feature, agent: developer, description: 'Build {goal}', retry_count: 5, timeout_seconds: 30}
  - {name: create_test_plan, agent: qa_engineer, description: 'Test {goal}', context: implement_feature, retry_count: 0}
";

/// Every variant, with the settings it is exported with.
fn variants(fixture: &Fixture) -> Vec<(String, Exported)> {
    for (id, yaml) in [
        ("parallel_review", PARALLEL),
        ("mixed", MIXED),
        ("managed", HIERARCHICAL),
        ("on_kubernetes", RESOURCES),
        ("retry", RETRY),
    ] {
        fixture.add(id, yaml);
    }
    let mut out = Vec::new();
    for id in [
        "sdlc",
        "content_creation",
        "data_analysis",
        "parallel_review",
        "mixed",
        "managed",
        "on_kubernetes",
        "retry",
    ] {
        out.push((id.to_string(), fixture.export(id, &argo())));
    }
    let artifacts = ExportSettings {
        workspace: WorkspaceSpec::Artifacts,
        ..argo()
    };
    out.push((
        "mixed --artifacts".into(),
        fixture.export("mixed", &artifacts),
    ));
    let claim = ExportSettings {
        workspace: WorkspaceSpec::ExistingClaim {
            name: "team-workspaces".into(),
        },
        namespace: None,
        max_wall_seconds: None,
        goal: Some("Build a login page".into()),
        ..argo()
    };
    out.push((
        "sdlc --workspace-claim".into(),
        fixture.export("sdlc", &claim),
    ));
    out
}

#[test]
fn every_export_validates_against_argos_strict_schema() {
    let Some(dir) = argo_dir() else { return };
    let fixture = fixture();
    let strict = strict_workflow_validator(&dir);
    let mut checked = 0;
    for (name, exported) in variants(&fixture) {
        let documents = round_trip(&exported.documents);
        assert_eq!(documents[0]["kind"], "ConfigMap", "{name}");
        let workflow = find(&documents, "Workflow");
        let problems = errors(strict, workflow);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        checked += 1;
    }
    assert_eq!(checked, 10);

    let template = fixture.export(
        "sdlc",
        &ExportSettings {
            template: true,
            ..argo()
        },
    );
    let documents = round_trip(&template.documents);
    let document = find(&documents, "WorkflowTemplate");
    assert_eq!(document["metadata"]["name"], "sdlc");
    let problems = errors(&validator(&dir, WORKFLOW_TEMPLATE, true), document);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_misspelt_field_fails_only_the_strict_schema() {
    let Some(dir) = argo_dir() else { return };
    let fixture = fixture();
    let exported = fixture.export("sdlc", &argo());
    let mut workflow = find(&exported.documents, "Workflow").clone();
    let templates = workflow["spec"]["templates"]
        .as_array_mut()
        .expect("templates");
    let retry = templates
        .iter_mut()
        .find_map(|t| t.get_mut("retryStrategy"))
        .expect("a retry strategy")
        .as_object_mut()
        .expect("an object");
    let limit = retry.remove("limit").expect("a limit");
    retry.insert("limitt".into(), limit);
    let strict = errors(strict_workflow_validator(&dir), &workflow);
    assert!(
        strict.iter().any(|e| e.contains("limitt")),
        "the strict schema names the typo: {strict:#?}"
    );
    // Argo's schema as published lets it through: the strictness is what catches it.
    assert!(errors(&validator(&dir, WORKFLOW, false), &workflow).is_empty());
}

#[test]
fn the_strict_schema_accepts_every_argo_example() {
    let Some(dir) = argo_dir() else { return };
    let strict = strict_workflow_validator(&dir);
    let template = validator(&dir, WORKFLOW_TEMPLATE, true);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("examples"))
        .expect("examples")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    assert!(paths.len() > 50, "Argo's examples are there");
    let (mut validated, mut skipped, mut failures) = (0, Vec::new(), Vec::new());
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("read example");
        // One example repeats a key (`annotations`); Kubernetes' YAML reader keeps the last.
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        };
        let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, options)
            .unwrap_or_else(|e| panic!("`{}` parses: {e}", path.display()));
        for document in documents {
            let kind = document["kind"].as_str().unwrap_or("(none)").to_string();
            let problems = match kind.as_str() {
                "Workflow" => errors(strict, &document),
                "WorkflowTemplate" => errors(&template, &document),
                _ => {
                    skipped.push(format!(
                        "{} ({kind})",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ));
                    continue;
                }
            };
            validated += 1;
            if !problems.is_empty() {
                failures.push(format!("{}: {problems:?}", path.display()));
            }
        }
    }
    eprintln!(
        "validated {validated} Argo example documents; skipped {} of other kinds: {}",
        skipped.len(),
        skipped.join(", ")
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(validated > 50);
}

#[test]
fn the_sdlc_example_is_a_chain_of_run_task_pods_then_finish() {
    let fixture = fixture();
    let exported = fixture.export("sdlc", &argo());
    let documents = round_trip(&exported.documents);
    let workflow = find(&documents, "Workflow");
    let spec = &workflow["spec"];
    assert_eq!(workflow["metadata"]["generateName"], "sdlc-");
    assert_eq!(workflow["metadata"]["namespace"], "agents");
    assert_eq!(spec["entrypoint"], "orchestra");
    assert_eq!(spec["arguments"]["parameters"][0]["name"], "goal");
    assert!(spec["arguments"]["parameters"][0].get("value").is_none());
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["activeDeadlineSeconds"], 3600);
    assert!(dag_task(workflow, "implement-feature")
        .get("depends")
        .is_none());
    assert_eq!(
        dag_task(workflow, "configure-ci-pipeline")["depends"],
        "implement-feature"
    );
    assert_eq!(
        dag_task(workflow, "create-test-plan")["depends"],
        "configure-ci-pipeline"
    );
    assert_eq!(dag_task(workflow, "finish")["depends"], "create-test-plan");

    let implement = template(workflow, "implement-feature");
    // timeout_seconds 600 plus the start-up margin.
    assert_eq!(implement["activeDeadlineSeconds"], "720");
    let retry = &implement["retryStrategy"];
    assert_eq!(retry["limit"], "2");
    assert_eq!(retry["retryPolicy"], "Always");
    assert_eq!(
        retry["expression"],
        "lastRetry.status == \"Error\" || asInt(lastRetry.exitCode) == 75"
    );
    assert_eq!(retry["backoff"]["duration"], "5s");
    assert_eq!(retry["backoff"]["factor"], "2");
    let container = &implement["container"];
    assert_eq!(container["image"], "registry.example.com/super:1.0");
    assert_eq!(container["command"], serde_json::json!(["super"]));
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect();
    assert_eq!(
        args.join(" "),
        "orchestra run-task sdlc --task implement_feature --goal {{workflow.parameters.goal}} --run-id {{workflow.name}} --workspace /workspace --project /project"
    );
    let finish: Vec<&str> = template(workflow, "finish")["container"]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect();
    assert_eq!(
        finish.join(" "),
        "orchestra finish sdlc --run-id {{workflow.name}} --workspace /workspace --project /project"
    );
    assert_eq!(
        container["volumeMounts"],
        serde_json::json!([
            {"name": "project", "mountPath": "/project", "readOnly": true},
            {"name": "workspace", "mountPath": "/workspace"},
        ])
    );
    let claim = &spec["volumeClaimTemplates"][0];
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteMany");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "2Gi");

    // The project travels as a ConfigMap laid out where `super` looks for it.
    let configmap = find(&documents, "ConfigMap");
    let name = configmap["metadata"]["name"].as_str().expect("name");
    assert_eq!(spec["volumes"][0]["configMap"]["name"], name);
    let items = spec["volumes"][0]["configMap"]["items"]
        .as_array()
        .expect("items");
    let paths: Vec<&str> = items
        .iter()
        .map(|i| i["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            ".super",
            "sdlc/orchestras/sdlc_orchestra.yaml",
            "sdlc/agents/developer/playbook/developer_playbook.yaml",
            "sdlc/agents/devops_engineer/playbook/devops_engineer_playbook.yaml",
            "sdlc/agents/qa_engineer/playbook/qa_engineer_playbook.yaml",
        ]
    );
    let orchestra_key = items[1]["key"].as_str().expect("key");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/sdlc/sdlc/orchestras/sdlc_orchestra.yaml"),
    )
    .expect("read the example");
    assert_eq!(configmap["data"][orchestra_key], original.as_str());

    // Labels: the id, and as much of the file's hash as a label holds; all of it annotated.
    let labels = &workflow["metadata"]["labels"];
    assert_eq!(labels["super-orchestra/orchestra"], "sdlc");
    let full = workflow["metadata"]["annotations"]["super-orchestra/sha256"]
        .as_str()
        .expect("hash");
    use sha2::Digest;
    assert_eq!(full, hex::encode(sha2::Sha256::digest(original.as_bytes())));
    assert!(full.starts_with(
        labels["super-orchestra/sha256-prefix"]
            .as_str()
            .expect("label")
    ));
    for value in labels.as_object().expect("labels").values() {
        assert!(value.as_str().expect("string").len() <= 63);
    }
}

#[test]
fn mixed_groups_run_in_order_and_sequential_groups_one_at_a_time() {
    let fixture = fixture();
    fixture.add("mixed", MIXED);
    let exported = fixture.export("mixed", &argo());
    let workflow = find(&exported.documents, "Workflow");
    assert_eq!(workflow["spec"]["parallelism"], 2);
    assert!(dag_task(workflow, "implement-feature")
        .get("depends")
        .is_none());
    assert!(dag_task(workflow, "configure-ci-pipeline")
        .get("depends")
        .is_none());
    // `review` has the higher priority, so a local run starts it first in its group.
    assert_eq!(
        dag_task(workflow, "review")["depends"],
        "implement-feature && configure-ci-pipeline"
    );
    assert_eq!(
        dag_task(workflow, "create-test-plan")["depends"],
        "implement-feature && configure-ci-pipeline && review"
    );
    assert_eq!(dag_task(workflow, "finish")["depends"], "create-test-plan");
}

#[test]
fn replicas_cap_parallelism_and_resources_reach_every_pod() {
    let fixture = fixture();
    fixture.add("on_kubernetes", RESOURCES);
    let exported = fixture.export("on_kubernetes", &argo());
    let workflow = find(&exported.documents, "Workflow");
    assert_eq!(
        workflow["spec"]["parallelism"], 3,
        "max_parallel_tasks 8, replicas 3"
    );
    let resources = |name: &str| template(workflow, name)["container"]["resources"].clone();
    assert_eq!(
        resources("configure-ci-pipeline"),
        serde_json::json!({
            "requests": {"cpu": "1000m", "memory": "2Gi"},
            "limits": {"cpu": "1000m", "memory": "2Gi"},
        })
    );
    assert_eq!(
        resources("implement-feature"),
        serde_json::json!({
            "requests": {"cpu": "1000m", "memory": "4Gi"},
            "limits": {"cpu": "1000m", "memory": "4Gi"},
        })
    );
    assert_eq!(resources("finish")["limits"]["memory"], "2Gi");
    assert_eq!(
        dag_task(workflow, "finish")["depends"],
        "implement-feature && configure-ci-pipeline && create-test-plan && write-docs"
    );
}

#[test]
fn retries_follow_the_file() {
    let fixture = fixture();
    fixture.add("retry", RETRY);
    let exported = fixture.export("retry", &argo());
    let workflow = find(&exported.documents, "Workflow");
    let implement = template(workflow, "implement-feature");
    assert_eq!(implement["activeDeadlineSeconds"], "150");
    let retry = &implement["retryStrategy"];
    assert_eq!(retry["limit"], "5");
    assert_eq!(retry["backoff"]["factor"], "1", "fixed delay");
    // Six attempts of 150 s and five waits of 5 s.
    assert_eq!(retry["backoff"]["maxDuration"], "925s");
    let plan = template(workflow, "create-test-plan");
    assert!(plan.get("retryStrategy").is_none(), "retry_count: 0");
    assert_eq!(plan["activeDeadlineSeconds"], "210");
}

#[test]
fn hierarchical_is_one_pod_running_the_whole_orchestra() {
    let fixture = fixture();
    fixture.add("managed", HIERARCHICAL);
    let exported = fixture.export("managed", &argo());
    assert!(exported.notes.iter().any(|n| n.contains("hierarchical")));
    let workflow = find(&exported.documents, "Workflow");
    let templates = workflow["spec"]["templates"].as_array().expect("templates");
    assert_eq!(templates.len(), 1);
    assert_eq!(workflow["spec"]["entrypoint"], "run");
    assert_eq!(templates[0]["container"]["args"][1], "run");
}

#[test]
fn artifacts_pass_each_output_to_its_dependents() {
    let fixture = fixture();
    fixture.add("parallel_review", PARALLEL);
    let settings = ExportSettings {
        workspace: WorkspaceSpec::Artifacts,
        ..argo()
    };
    let exported = fixture.export("parallel_review", &settings);
    let workflow = find(&exported.documents, "Workflow");
    assert!(workflow["spec"].get("volumeClaimTemplates").is_none());
    let task = dag_task(workflow, "create-test-plan");
    let arguments: Vec<&str> = task["arguments"]["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| a["from"].as_str().expect("from"))
        .collect();
    assert_eq!(
        arguments,
        [
            "{{tasks.implement-feature.outputs.artifacts.output}}",
            "{{tasks.implement-feature.outputs.artifacts.record}}",
            "{{tasks.configure-ci-pipeline.outputs.artifacts.output}}",
            "{{tasks.configure-ci-pipeline.outputs.artifacts.record}}",
        ]
    );
    let inputs = &template(workflow, "create-test-plan")["inputs"]["artifacts"];
    assert_eq!(
        inputs[0]["path"],
        "/workspace/task_outputs/implement_feature_output.txt"
    );
    assert_eq!(inputs[1]["path"], "/workspace/tasks/implement_feature.json");
}

#[test]
fn a_job_runs_the_whole_orchestra_in_one_pod() {
    let fixture = fixture();
    let settings = ExportSettings {
        target: ExportTarget::Job,
        goal: Some("Cost $(HOME) nothing".into()),
        ..argo()
    };
    let exported = fixture.export("sdlc", &settings);
    let documents = round_trip(&exported.documents);
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["ConfigMap", "PersistentVolumeClaim", "Job"]);
    let job = find(&documents, "Job");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect();
    assert_eq!(
        args,
        [
            "orchestra",
            "run",
            "sdlc",
            "--goal",
            "Cost $$(HOME) nothing",
            "--workspace",
            "/workspace",
            "--project",
            "/project",
            "--resume"
        ]
    );
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 3600);

    let missing_goal = ExportSettings {
        target: ExportTarget::Job,
        ..argo()
    };
    let error = export(&fixture.project, &fixture.load("sdlc"), &missing_goal).unwrap_err();
    assert!(error.to_string().contains("needs `--goal`"), "{error}");
}

#[test]
fn inputs_become_workflow_parameters_passed_to_every_pod() {
    let fixture = fixture();
    fixture.add(
        "blog",
        "metadata: {id: blog}\ninputs:\n  topic: {description: What it is about}\n  audience: {default: engineers}\ntasks:\n- {name: write, agent: developer, description: 'Write about {topic} for {audience}.'}\n",
    );
    let exported = fixture.export("blog", &argo());
    let documents = round_trip(&exported.documents);
    let workflow = find(&documents, "Workflow");
    let parameters = &workflow["spec"]["arguments"]["parameters"];
    assert_eq!(parameters[1]["name"], "topic");
    assert_eq!(parameters[1]["description"], "What it is about");
    assert!(parameters[1].get("value").is_none(), "given at submit time");
    assert_eq!(parameters[2]["name"], "audience");
    assert_eq!(parameters[2]["value"], "engineers");
    let args: Vec<&str> = template(workflow, "write")["container"]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect();
    let joined = args.join(" ");
    assert!(
        joined.contains("--var topic={{workflow.parameters.topic}}")
            && joined.contains("--var audience={{workflow.parameters.audience}}"),
        "{joined}"
    );
}
