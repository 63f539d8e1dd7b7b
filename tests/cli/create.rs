//! `init`, `agent pull`, `orchestra create`: every file written passes `validate`, and runs.

use crate::support::{code, stderr, stdout, Project};
use llm_stub::{StubConfig, StubServer};

fn redact_timestamp(yaml: &str) -> String {
    yaml.lines()
        .map(|l| {
            if l.trim_start().starts_with("created_at:") {
                "  created_at: \"[TIMESTAMP]\""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn init_pull_create_validate_run() {
    let project = Project::init("shop");
    assert_eq!(project.read(".super"), "project: shop\n");
    assert!(project.path("shop/agents").is_dir() && project.path("shop/orchestras").is_dir());
    assert!(project.read("README.md").contains("super agent pull"));

    let pull = project.run(&[
        "agent",
        "pull",
        "developer",
        "devops_engineer",
        "qa_engineer",
    ]);
    assert_eq!(code(&pull), 0, "{}", stderr(&pull));
    assert!(project
        .path("shop/agents/developer/playbook/developer_playbook.yaml")
        .is_file());

    let create = project.run(&["orchestra", "create", "sdlc"]);
    assert_eq!(code(&create), 0, "{}", stderr(&create));
    let text = stdout(&create);
    assert!(
        text.contains("Found 3 agent(s): developer, devops_engineer, qa_engineer"),
        "{text}"
    );
    assert!(text.contains("super orchestra run sdlc --goal"), "{text}");
    assert!(
        project.path("orchestra_workspaces/sdlc").is_dir(),
        "create makes the workspace folder"
    );
    let yaml = project.read("shop/orchestras/sdlc_orchestra.yaml");
    assert!(yaml.ends_with('\n'));
    assert_eq!(
        yaml.matches("  - developer").count(),
        1,
        "each agent listed once"
    );
    insta::assert_snapshot!("created_sdlc", redact_timestamp(&yaml));

    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let validate = project
        .command()
        .env("SUPER_PROVIDER", "openai")
        .env("SUPER_BASE_URL", server.openai_base_url())
        .args(["orchestra", "validate", "sdlc"])
        .output()
        .expect("run");
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));

    // Run from a folder inside the project: it is found by walking up.
    let inside = project.path("shop/agents");
    let run = project
        .command()
        .current_dir(&inside)
        .args([
            "orchestra",
            "run",
            "sdlc",
            "--goal",
            "Build a login page",
            "--provider",
            "openai",
            "--base-url",
            &server.openai_base_url(),
        ])
        .output()
        .expect("run");
    assert_eq!(code(&run), 0, "{}{}", stdout(&run), stderr(&run));
    assert_eq!(server.request_count(), 3);
    for file in [
        "task_outputs/implement_feature_output.txt",
        "task_outputs/configure_ci_pipeline_output.txt",
        "task_outputs/create_test_plan_output.txt",
        "intermediate/shared_data.json",
        "final_results/orchestra_output.txt",
        "run.json",
        "metrics.json",
        "trace.jsonl",
    ] {
        assert!(
            project
                .path(&format!("orchestra_workspaces/sdlc/{file}"))
                .is_file(),
            "{file}"
        );
    }
    let list = project
        .command()
        .current_dir(&inside)
        .args(["orchestra", "list"])
        .output()
        .expect("list");
    assert!(stdout(&list).contains("sdlc"), "{}", stdout(&list));
}

#[test]
fn create_with_no_agents_refuses_and_writes_nothing() {
    // An orchestra with no tasks fails validate as it fails run, so create writes none.
    let project = Project::init("empty");
    let create = project.run(&["orchestra", "create", "starter"]);
    assert_eq!(code(&create), 2, "{}", stdout(&create));
    assert!(
        stderr(&create).contains("no agents") && stderr(&create).contains("super agent pull"),
        "{}",
        stderr(&create)
    );
    assert!(!project
        .path("empty/orchestras/starter_orchestra.yaml")
        .exists());
}

#[test]
fn create_over_an_existing_file_exits_1() {
    let project = Project::init("again");
    assert_eq!(code(&project.run(&["agent", "pull", "writer"])), 0);
    assert_eq!(code(&project.run(&["orchestra", "create", "blog"])), 0);
    let before = project.read("again/orchestras/blog_orchestra.yaml");
    let second = project.run(&["orchestra", "create", "blog"]);
    assert_eq!(code(&second), 1);
    assert!(stderr(&second).contains("already exists") && stderr(&second).contains("--force"));
    assert_eq!(project.read("again/orchestras/blog_orchestra.yaml"), before);
    assert_eq!(
        code(&project.run(&["orchestra", "create", "blog", "--force"])),
        0
    );
}

#[test]
fn unsafe_ids_are_rejected() {
    let project = Project::init("ids");
    for bad in ["../evil", "a/b", ".hidden", "", "bad*name"] {
        let output = project.run(&["orchestra", "create", bad]);
        assert_eq!(code(&output), 2, "{bad:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("cannot be an orchestra id"),
            "{bad:?}"
        );
    }
    assert_eq!(code(&project.run(&["agent", "pull", "writer"])), 0);
    let spaced = project.run(&["orchestra", "create", "My Pipeline"]);
    assert_eq!(code(&spaced), 0, "{}", stderr(&spaced));
    assert!(project
        .path("ids/orchestras/my_pipeline_orchestra.yaml")
        .is_file());
}

#[test]
fn agent_pull_refuses_to_overwrite_and_names_the_library() {
    let project = Project::init("lib");
    assert_eq!(code(&project.run(&["agent", "pull", "editor"])), 0);
    let again = project.run(&["agent", "pull", "editor"]);
    assert_eq!(code(&again), 1);
    assert!(stderr(&again).contains("--force"));
    assert_eq!(
        code(&project.run(&["agent", "pull", "editor", "--force"])),
        0
    );
    let unknown = project.run(&["agent", "pull", "astronaut"]);
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("developer, devops_engineer"),
        "{}",
        stderr(&unknown)
    );
    let list = stdout(&project.run(&["agent", "list"]));
    assert!(
        list.contains("[project] editor")
            && list.contains("[library] writer")
            && list.contains("(in project)"),
        "{list}"
    );
    let show = stdout(&project.run(&["agent", "show", "editor"]));
    assert!(
        show.contains("Persona")
            && show.contains("edit_and_polish")
            && show.contains("local/smollm2-135m-instruct"),
        "{show}"
    );
}

#[test]
fn content_creation_and_data_analysis_are_created_validated_and_run() {
    for (id, agents, tasks) in [
        (
            "content_creation",
            "researcher,writer,editor",
            ["research_topic", "write_content", "edit_and_polish"],
        ),
        (
            "data_analysis",
            "data_collector,data_analyzer,report_generator",
            ["collect_data", "analyze_data", "generate_report"],
        ),
    ] {
        let project = Project::init("seed");
        let names: Vec<&str> = agents.split(',').collect();
        let mut pull = vec!["agent", "pull"];
        pull.extend(&names);
        assert_eq!(code(&project.run(&pull)), 0);
        let create = project.run(&["orchestra", "create", id, "--agents", agents]);
        assert_eq!(code(&create), 0, "{}", stderr(&create));
        let yaml = project.read(&format!("seed/orchestras/{id}_orchestra.yaml"));
        for task in tasks {
            assert!(
                yaml.contains(&format!("name: \"{task}\"")),
                "{task} in {yaml}"
            );
        }
        let server = StubServer::start_background(StubConfig::default()).expect("stub");
        let base = server.openai_base_url();
        let validate = project
            .command()
            .env("SUPER_PROVIDER", "openai")
            .env("SUPER_BASE_URL", &base)
            .args(["orchestra", "validate", id, "--strict"])
            .output()
            .expect("run");
        assert_eq!(code(&validate), 0, "{}", stderr(&validate));
        let run = project.run(&[
            "orchestra",
            "run",
            id,
            "--goal",
            "Analyze customer satisfaction",
            "--provider",
            "openai",
            "--base-url",
            &base,
        ]);
        assert_eq!(code(&run), 0, "{}{}", stdout(&run), stderr(&run));
        assert_eq!(server.request_count(), 3);
        let manifest = project.manifest(id);
        let order: Vec<&str> = manifest["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(order, tasks);
    }
}

#[test]
fn mixed_and_parallel_create_valid_files() {
    let project = Project::init("strategies");
    assert_eq!(
        code(&project.run(&["agent", "pull", "researcher", "writer"])),
        0
    );
    for strategy in ["parallel", "mixed"] {
        let id = format!("s_{strategy}");
        let create = project.run(&["orchestra", "create", &id, "--strategy", strategy]);
        assert_eq!(code(&create), 0, "{}", stderr(&create));
        let server = StubServer::start_background(StubConfig::default()).expect("stub");
        let validate = project
            .command()
            .env("SUPER_PROVIDER", "openai")
            .env("SUPER_BASE_URL", server.openai_base_url())
            .args(["orchestra", "validate", &id, "--strict"])
            .output()
            .expect("run");
        assert_eq!(code(&validate), 0, "{strategy}: {}", stderr(&validate));
    }
}

/// `create --strategy hierarchical`: a manager-like agent of the project becomes the manager
/// (and runs no task); without one the manager line is a comment. Both validate strictly.
#[test]
fn hierarchical_create_writes_a_valid_file_with_its_manager() {
    let project = Project::init("managed");
    assert_eq!(
        code(&project.run(&["agent", "pull", "researcher", "writer"])),
        0
    );
    let server = StubServer::start_background(StubConfig::default()).expect("stub");
    let validate = |id: &str| {
        project
            .command()
            .env("SUPER_PROVIDER", "openai")
            .env("SUPER_BASE_URL", server.openai_base_url())
            .args(["orchestra", "validate", id, "--strict"])
            .output()
            .expect("run")
    };
    let create = project.run(&["orchestra", "create", "plain", "--strategy", "hierarchical"]);
    assert_eq!(code(&create), 0, "{}", stderr(&create));
    let text = std::fs::read_to_string(project.path("managed/orchestras/plain_orchestra.yaml"))
        .expect("file");
    assert!(text.contains("strategy: \"hierarchical\""), "{text}");
    assert!(text.contains("# manager: project_manager"), "{text}");
    assert!(text.contains("max_review_rounds: 1"), "{text}");
    let checked = validate("plain");
    assert_eq!(
        code(&checked),
        0,
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );

    assert_eq!(code(&project.run(&["agent", "pull", "project_manager"])), 0);
    let create = project.run(&[
        "orchestra",
        "create",
        "managed",
        "--strategy",
        "hierarchical",
    ]);
    assert_eq!(code(&create), 0, "{}", stderr(&create));
    let text = std::fs::read_to_string(project.path("managed/orchestras/managed_orchestra.yaml"))
        .expect("file");
    assert!(text.contains("manager: \"project_manager\""), "{text}");
    assert!(
        !text.contains("agent: \"project_manager\""),
        "the manager runs no task: {text}"
    );
    let checked = validate("managed");
    assert_eq!(
        code(&checked),
        0,
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );
}
