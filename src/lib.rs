//! `super`: runs multi-agent LLM orchestras described in SuperOptiX's YAML format.

pub mod cli;
pub mod commands;
pub mod completion;
pub(crate) mod config;
pub(crate) mod diag;
pub(crate) mod exec;
pub(crate) mod export;
pub(crate) mod inputs;
pub(crate) mod library;
pub(crate) mod load;
pub(crate) mod model_pull;
pub(crate) mod names;
pub(crate) mod plan;
pub(crate) mod project;
pub(crate) mod prompt;
pub(crate) mod provider;
pub(crate) mod redact;
pub(crate) mod report;
pub(crate) mod sanitize;
pub(crate) mod scenarios;
pub(crate) mod settings;
pub(crate) mod source;
pub(crate) mod spec;
pub(crate) mod structured;
pub(crate) mod telemetry;
pub(crate) mod template;
pub(crate) mod tools;
pub(crate) mod workspace;
pub(crate) mod yaml;

/// For the fuzz target (`fuzz/fuzz_targets/loaders.rs`) only: not a stable interface.
#[doc(hidden)]
pub mod fuzzing {
    /// Runs `text` through the whole loading pipeline (YAML, the orchestra and agent decoders
    /// on the same tree, the plan) and renders the diagnostics, plain and coloured.
    pub fn load_text(text: &str) -> (String, String) {
        use crate::diag::Diagnostics;
        use crate::plan::{Plan, PlanOptions};
        let file =
            crate::source::SourceFile::new(std::path::Path::new("fuzz.yaml"), text.to_owned());
        let mut diags = Diagnostics::default();
        match crate::yaml::parse(&file) {
            Err(diagnostic) => diags.push(diagnostic),
            Ok(root) => {
                if let Some(orchestra) = crate::spec::decode_orchestra(&file, &root, &mut diags) {
                    let _ = Plan::build(&orchestra, PlanOptions::default(), &mut diags);
                }
                let _ = crate::spec::decode_agent(&file, &root, "fallback", &mut diags);
            }
        }
        (diags.render(false), diags.render(true))
    }
}
