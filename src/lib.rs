//! `super`: runs multi-agent LLM orchestras described in SuperOptiX's YAML format.

pub mod cli;
pub mod commands;
pub mod diag;
pub mod exec;
pub mod export;
pub mod library;
pub mod load;
pub mod model_pull;
pub mod names;
pub mod plan;
pub mod project;
pub mod prompt;
pub mod provider;
pub mod redact;
pub mod report;
pub mod sanitize;
pub mod settings;
pub mod source;
pub mod spec;
pub mod tools;
pub mod workspace;
pub mod yaml;
