//! The spec layer: YAML files to typed orchestra and agent specs, every error with file:line:col.

pub mod agent;
pub mod decode;
pub mod orchestra;
pub mod quantity;
pub mod tools;

pub use agent::{decode_agent, AgentSpec, AgentTaskSpec, LanguageModelSpec, Persona};
pub use orchestra::{
    decode_orchestra, BudgetSpec, ExecutionSpec, OrchestraSpec, Price, Priority, RateLimitSpec,
    ResourcesSpec, RetryStrategy, Strategy, TaskGroupSpec, TaskRef, TaskSpec,
};
pub use tools::{
    AgentToolsSpec, McpServerSpec, McpSpec, McpTransport, OrchestraToolsSpec, ReactConfig,
    TaskToolsSpec, ToolName,
};
