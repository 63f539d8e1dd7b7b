//! The built-in agent library, compiled into the binary: nine SuperSpec playbooks covering every
//! agent of the seed's examples. None sets a language model, so each runs on the embedded model
//! unless the user picks another.

pub struct LibraryAgent {
    pub name: &'static str,
    pub yaml: &'static str,
}

pub const AGENTS: &[LibraryAgent] = &[
    LibraryAgent {
        name: "data_analyzer",
        yaml: include_str!("../library/agents/data_analyzer.yaml"),
    },
    LibraryAgent {
        name: "data_collector",
        yaml: include_str!("../library/agents/data_collector.yaml"),
    },
    LibraryAgent {
        name: "developer",
        yaml: include_str!("../library/agents/developer.yaml"),
    },
    LibraryAgent {
        name: "devops_engineer",
        yaml: include_str!("../library/agents/devops_engineer.yaml"),
    },
    LibraryAgent {
        name: "editor",
        yaml: include_str!("../library/agents/editor.yaml"),
    },
    LibraryAgent {
        name: "qa_engineer",
        yaml: include_str!("../library/agents/qa_engineer.yaml"),
    },
    LibraryAgent {
        name: "report_generator",
        yaml: include_str!("../library/agents/report_generator.yaml"),
    },
    LibraryAgent {
        name: "researcher",
        yaml: include_str!("../library/agents/researcher.yaml"),
    },
    LibraryAgent {
        name: "writer",
        yaml: include_str!("../library/agents/writer.yaml"),
    },
];

pub fn find(name: &str) -> Option<&'static LibraryAgent> {
    let wanted = name.to_lowercase();
    AGENTS.iter().find(|a| a.name == wanted)
}

pub fn names() -> Vec<&'static str> {
    AGENTS.iter().map(|a| a.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use crate::source::SourceFile;
    use std::path::Path;

    #[test]
    fn every_library_playbook_loads_cleanly() {
        for agent in AGENTS {
            let file = SourceFile::new(Path::new(agent.name), agent.yaml.to_string());
            let root = crate::yaml::parse(&file).expect("valid YAML");
            let mut diags = Diagnostics::default();
            let spec =
                crate::spec::decode_agent(&file, &root, agent.name, &mut diags).expect("decodes");
            assert!(
                diags.items.is_empty(),
                "{}: {}",
                agent.name,
                diags.render(false)
            );
            assert_eq!(spec.name.as_str(), agent.name);
            assert!(
                spec.language_model.is_none(),
                "{} must not pin a model",
                agent.name
            );
            assert!(!spec.tasks.is_empty() && spec.tasks[0].instruction.is_some());
            assert!(spec.persona.role.is_some() && spec.persona.backstory.is_some());
        }
    }
}
