//! The real SuperOptiX files in `../shared/compat` load, when that folder is present.

use crate::support::{code, stderr, stdout, Project};
use std::path::Path;

#[test]
fn superoptix_files_load_and_validate() {
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat");
    if !compat.is_dir() {
        crate::support::skip_or_fail(&format!("{} is not present", compat.display()));
        return;
    }
    let project = Project::empty();
    for agent in ["developer", "devops_engineer", "qa_engineer"] {
        let text = std::fs::read_to_string(compat.join(format!("{agent}_playbook.yaml")))
            .expect("read playbook");
        project.agent(agent, &text);
    }
    let orchestra =
        std::fs::read_to_string(compat.join("sdlc_orchestra.yaml")).expect("read orchestra");
    project.orchestra("sdlc", &orchestra);
    let output = project.run(&["orchestra", "validate", "sdlc", "--strict"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    for agent in ["developer", "devops_engineer", "qa_engineer"] {
        let shown = project.run(&["agent", "show", agent]);
        assert_eq!(code(&shown), 0, "{}", stderr(&shown));
        let text = stdout(&shown);
        assert!(
            text.contains("ollama/qwen3.5:9b") && text.contains("Other sections kept"),
            "{text}"
        );
    }
}
