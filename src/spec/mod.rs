//! The spec layer: YAML files to typed orchestra and agent specs, every error with file:line:col.

pub mod agent;
pub mod decode;
pub mod orchestra;
pub mod quantity;
pub mod tools;

pub use agent::{decode_agent, AgentSpec, AgentTaskSpec, LanguageModelSpec};
pub use orchestra::{
    decode_orchestra, BudgetSpec, InputSpec, OrchestraSpec, OutputFormat, Price, Priority,
    ResourcesSpec, RetryStrategy, Strategy, TaskRef, TaskSpec,
};
pub use tools::{McpServerSpec, McpTransport, OrchestraToolsSpec, TaskToolsSpec};
