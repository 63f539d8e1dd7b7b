//! The built-in agent library, compiled into the binary: 44 SuperSpec playbooks written for
//! `super`, covering the roles users reach for (software, content and marketing, research, data,
//! finance, legal, support, product, security, education, management), grouped by
//! `metadata.namespace`. None sets a language model, so each runs on the embedded model unless
//! the user picks another. Owns the list and name lookup; never writes files.

pub struct LibraryAgent {
    pub name: &'static str,
    pub yaml: &'static str,
}

pub const AGENTS: &[LibraryAgent] = &[
    LibraryAgent {
        name: "accountant",
        yaml: include_str!("../library/agents/accountant.yaml"),
    },
    LibraryAgent {
        name: "budget_planner",
        yaml: include_str!("../library/agents/budget_planner.yaml"),
    },
    LibraryAgent {
        name: "business_analyst",
        yaml: include_str!("../library/agents/business_analyst.yaml"),
    },
    LibraryAgent {
        name: "code_reviewer",
        yaml: include_str!("../library/agents/code_reviewer.yaml"),
    },
    LibraryAgent {
        name: "compliance_officer",
        yaml: include_str!("../library/agents/compliance_officer.yaml"),
    },
    LibraryAgent {
        name: "content_creator",
        yaml: include_str!("../library/agents/content_creator.yaml"),
    },
    LibraryAgent {
        name: "contract_reviewer",
        yaml: include_str!("../library/agents/contract_reviewer.yaml"),
    },
    LibraryAgent {
        name: "copywriter",
        yaml: include_str!("../library/agents/copywriter.yaml"),
    },
    LibraryAgent {
        name: "curriculum_designer",
        yaml: include_str!("../library/agents/curriculum_designer.yaml"),
    },
    LibraryAgent {
        name: "customer_support",
        yaml: include_str!("../library/agents/customer_support.yaml"),
    },
    LibraryAgent {
        name: "data_analyzer",
        yaml: include_str!("../library/agents/data_analyzer.yaml"),
    },
    LibraryAgent {
        name: "data_collector",
        yaml: include_str!("../library/agents/data_collector.yaml"),
    },
    LibraryAgent {
        name: "data_engineer",
        yaml: include_str!("../library/agents/data_engineer.yaml"),
    },
    LibraryAgent {
        name: "data_scientist",
        yaml: include_str!("../library/agents/data_scientist.yaml"),
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
        name: "email_marketer",
        yaml: include_str!("../library/agents/email_marketer.yaml"),
    },
    LibraryAgent {
        name: "fact_checker",
        yaml: include_str!("../library/agents/fact_checker.yaml"),
    },
    LibraryAgent {
        name: "financial_analyst",
        yaml: include_str!("../library/agents/financial_analyst.yaml"),
    },
    LibraryAgent {
        name: "incident_responder",
        yaml: include_str!("../library/agents/incident_responder.yaml"),
    },
    LibraryAgent {
        name: "investment_analyst",
        yaml: include_str!("../library/agents/investment_analyst.yaml"),
    },
    LibraryAgent {
        name: "legal_advisor",
        yaml: include_str!("../library/agents/legal_advisor.yaml"),
    },
    LibraryAgent {
        name: "literature_reviewer",
        yaml: include_str!("../library/agents/literature_reviewer.yaml"),
    },
    LibraryAgent {
        name: "market_researcher",
        yaml: include_str!("../library/agents/market_researcher.yaml"),
    },
    LibraryAgent {
        name: "marketing_strategist",
        yaml: include_str!("../library/agents/marketing_strategist.yaml"),
    },
    LibraryAgent {
        name: "product_manager",
        yaml: include_str!("../library/agents/product_manager.yaml"),
    },
    LibraryAgent {
        name: "project_manager",
        yaml: include_str!("../library/agents/project_manager.yaml"),
    },
    LibraryAgent {
        name: "qa_engineer",
        yaml: include_str!("../library/agents/qa_engineer.yaml"),
    },
    LibraryAgent {
        name: "quiz_generator",
        yaml: include_str!("../library/agents/quiz_generator.yaml"),
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
        name: "security_analyst",
        yaml: include_str!("../library/agents/security_analyst.yaml"),
    },
    LibraryAgent {
        name: "seo_specialist",
        yaml: include_str!("../library/agents/seo_specialist.yaml"),
    },
    LibraryAgent {
        name: "social_media_manager",
        yaml: include_str!("../library/agents/social_media_manager.yaml"),
    },
    LibraryAgent {
        name: "software_architect",
        yaml: include_str!("../library/agents/software_architect.yaml"),
    },
    LibraryAgent {
        name: "sql_analyst",
        yaml: include_str!("../library/agents/sql_analyst.yaml"),
    },
    LibraryAgent {
        name: "support_triager",
        yaml: include_str!("../library/agents/support_triager.yaml"),
    },
    LibraryAgent {
        name: "technical_support",
        yaml: include_str!("../library/agents/technical_support.yaml"),
    },
    LibraryAgent {
        name: "technical_writer",
        yaml: include_str!("../library/agents/technical_writer.yaml"),
    },
    LibraryAgent {
        name: "threat_modeler",
        yaml: include_str!("../library/agents/threat_modeler.yaml"),
    },
    LibraryAgent {
        name: "tutor",
        yaml: include_str!("../library/agents/tutor.yaml"),
    },
    LibraryAgent {
        name: "ux_designer",
        yaml: include_str!("../library/agents/ux_designer.yaml"),
    },
    LibraryAgent {
        name: "writer",
        yaml: include_str!("../library/agents/writer.yaml"),
    },
];

pub fn find(name: &str) -> Option<&'static LibraryAgent> {
    let wanted = crate::project::slug(name);
    AGENTS.iter().find(|a| a.name == wanted)
}

pub fn names() -> Vec<&'static str> {
    AGENTS.iter().map(|a| a.name).collect()
}

/// `metadata.namespace` of a library playbook (its group in `agent list`), read from its text.
pub fn category(agent: &LibraryAgent) -> &'static str {
    agent
        .yaml
        .lines()
        .find_map(|line| line.strip_prefix("  namespace:"))
        .map(str::trim)
        .unwrap_or("other")
}

/// Up to three library names close to a mistyped `name`: by spelling, or containing it.
pub fn suggestions(name: &str) -> Vec<&'static str> {
    let wanted = crate::project::slug(name);
    let mut scored: Vec<(f64, &'static str)> = AGENTS
        .iter()
        .map(|agent| {
            let mut score = strsim::jaro_winkler(&wanted, agent.name);
            let contains = wanted.len() >= 3
                && (agent.name.contains(wanted.as_str())
                    || agent
                        .name
                        .split('_')
                        .any(|part| part.len() >= 3 && wanted.contains(part)));
            if contains {
                score = score.max(0.9);
            }
            (score, agent.name)
        })
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use crate::source::SourceFile;
    use std::path::Path;

    #[test]
    fn every_library_playbook_loads_cleanly() {
        assert!(
            AGENTS.len() >= 40,
            "the library has {} agents",
            AGENTS.len()
        );
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
            assert!(!spec.tasks.is_empty(), "{} has tasks", agent.name);
            for task in &spec.tasks {
                assert!(
                    task.instruction.is_some()
                        && !task.inputs.is_empty()
                        && !task.outputs.is_empty(),
                    "{}: task `{}` has an instruction, inputs and outputs",
                    agent.name,
                    task.name
                );
            }
            assert!(spec.persona.role.is_some() && spec.persona.backstory.is_some());
            assert_eq!(spec.namespace.as_deref(), Some(category(agent)));
        }
        for needed in ["content_creator", "seo_specialist", "project_manager"] {
            assert!(find(needed).is_some(), "{needed}");
        }
    }

    #[test]
    fn suggests_close_names_for_a_typo() {
        assert_eq!(suggestions("developr").first(), Some(&"developer"));
        assert!(suggestions("seo").contains(&"seo_specialist"));
        assert!(suggestions("project-manger").contains(&"project_manager"));
        assert!(suggestions("zzzzzz").is_empty());
    }
}
