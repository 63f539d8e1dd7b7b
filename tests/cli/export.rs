//! `super orchestra export` as a user runs it: manifests with no key in them, refusals with
//! their reason, resources checked as Kubernetes quantities at load time, and the core objects
//! (ConfigMap, PersistentVolumeClaim, Job) accepted by `kubernetes-validate --strict`.

use crate::support::{code, stderr, stdout, Project, API_KEY};
use std::path::PathBuf;

const OPENAI: &str = "https://api.openai.com/v1";

#[test]
fn export_writes_no_key_only_secret_references() {
    let project = Project::sdlc("openai", OPENAI);
    let output = project.run(&["orchestra", "export", "sdlc", "--image", "example/super:1"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let yaml = stdout(&output);
    assert!(!yaml.contains(API_KEY), "the key leaked into the manifests");
    assert!(!stderr(&output).contains(API_KEY));
    assert!(yaml.contains("secretKeyRef"), "{yaml}");
    assert!(yaml.contains("super-llm-keys"), "{yaml}");
    assert!(yaml.contains("OPENAI_API_KEY"), "{yaml}");
    assert!(yaml.contains("kind: Workflow"), "{yaml}");
    assert!(yaml.contains("kind: ConfigMap"), "{yaml}");

    // To a file, with another secret: the same promise, and the next step on stderr.
    let output = project.run(&[
        "orchestra",
        "export",
        "sdlc",
        "--target",
        "job",
        "--goal",
        "Build a login page",
        "--secret",
        "team-keys",
        "-o",
        "job.yaml",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let written = project.read("job.yaml");
    assert!(!written.contains(API_KEY));
    assert!(written.contains("team-keys"));
    assert!(
        stderr(&output).contains("kubectl apply -f job.yaml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn export_needs_no_key_on_this_machine() {
    let project = Project::sdlc("openai", OPENAI);
    let output = project
        .command()
        .env_remove("OPENAI_API_KEY")
        .args(["orchestra", "export", "sdlc"])
        .output()
        .expect("run super");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("super:latest"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_key_written_into_a_playbook_is_refused() {
    let project = Project::sdlc("openai", OPENAI);
    let literal = "sk-literal-IN-PLAYBOOK-77";
    let playbook = project.read("demo/agents/developer/playbook/developer_playbook.yaml");
    let with_key = playbook.replace(
        "    temperature: 0.1\n",
        &format!("    temperature: 0.1\n    api_key: {literal}\n"),
    );
    assert_ne!(playbook, with_key);
    project.agent("developer", &with_key);
    let output = project.run(&["orchestra", "export", "sdlc"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("literal `api_key`"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains(literal));
    assert!(!stdout(&output).contains(literal));
}

#[test]
fn resources_are_kubernetes_quantities_checked_at_load_time() {
    let project = Project::sdlc("openai", OPENAI);
    let good = crate::support::SDLC.to_string()
        + "orchestration_type: kubernetes\nreplicas: 3\nresources:\n  cpu: 1000m\n  memory: 2Gi\n";
    project.orchestra("sdlc", &good);
    let output = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let bad = crate::support::SDLC.replace(
        "    timeout_seconds: 600\n  - name: configure_ci_pipeline",
        "    timeout_seconds: 600\n    resources: {cpu: lots}\n  - name: configure_ci_pipeline",
    ) + "resources:\n  cpu: 1000m\n  memory: 2GB\n";
    project.orchestra("sdlc", &bad);
    let output = project.run(&["orchestra", "validate", "sdlc"]);
    assert_eq!(code(&output), 2);
    let err = stderr(&output);
    let lines: Vec<&str> = bad.lines().collect();
    let memory_line = lines.iter().position(|l| l.contains("2GB")).expect("line") + 1;
    let cpu_line = lines.iter().position(|l| l.contains("lots")).expect("line") + 1;
    assert!(
        err.contains(&format!("sdlc_orchestra.yaml:{memory_line}:11")),
        "memory at its line and column: {err}"
    );
    assert!(err.contains("`2GB` is not a Kubernetes quantity"), "{err}");
    assert!(
        err.contains("`2Gi`"),
        "the hint names the right unit: {err}"
    );
    assert!(
        err.contains(&format!("sdlc_orchestra.yaml:{cpu_line}:22")),
        "cpu at its line and column: {err}"
    );
    assert!(err.contains("`lots` is not a Kubernetes quantity"), "{err}");

    // Export refuses the same file for the same reasons.
    let output = project.run(&["orchestra", "export", "sdlc"]);
    assert_eq!(code(&output), 2);
    assert!(stdout(&output).is_empty());
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let project = Project::sdlc("openai", OPENAI);
    for (flags, message) in [
        (vec!["--namespace", "Team_A"], "namespace `Team_A`"),
        (vec!["--pvc-size", "2GB"], "--pvc-size"),
        (vec!["--target", "job"], "needs `--goal`"),
        (
            vec!["--target", "job", "--goal", "g", "--template"],
            "--template",
        ),
    ] {
        let mut args = vec!["orchestra", "export", "sdlc", "-o", "out.yaml"];
        args.extend(flags);
        let output = project.run(&args);
        assert_eq!(code(&output), 2, "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!project.path("out.yaml").exists());
    }
}

/// The `kubernetes-validate` that `scripts/setup-kubernetes-validate.sh` installs.
fn kubernetes_validate() -> Option<PathBuf> {
    let path = std::env::var_os("SUPER_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join("super/kubernetes-validate/bin/kubernetes-validate")
        });
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "`{}` is missing: scripts/test.sh installs it with scripts/setup-kubernetes-validate.sh",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: `{}` is missing; run scripts/setup-kubernetes-validate.sh to validate the ConfigMap, claim and Job",
        path.display()
    );
    None
}

#[test]
fn configmap_claim_and_job_pass_kubernetes_validate_strict() {
    let Some(validator) = kubernetes_validate() else {
        return;
    };
    let project = Project::sdlc("openai", OPENAI);
    let resources = crate::support::SDLC.to_string()
        + "orchestration_type: kubernetes\nreplicas: 3\nresources:\n  cpu: 1000m\n  memory: 2Gi\n";
    project.orchestra("sdlc", &resources);
    let output = project.run(&[
        "orchestra",
        "export",
        "sdlc",
        "--target",
        "job",
        "--namespace",
        "agents",
        "--goal",
        "Build a login page: yes, on: no",
        "--max-wall-seconds",
        "3600",
        "-o",
        "job.yaml",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let checked = std::process::Command::new(&validator)
        .arg("--strict")
        .arg(project.path("job.yaml"))
        .output()
        .expect("run kubernetes-validate");
    let report = format!("{}{}", stdout(&checked), stderr(&checked));
    assert_eq!(code(&checked), 0, "{report}");
    for kind in ["configmap/", "persistentvolumeclaim/", "job/"] {
        assert!(report.contains(kind), "{kind} was validated: {report}");
    }
}
