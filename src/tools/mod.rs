//! Tools agents may call: the `Tool` interface and the limits around a call, the built-in
//! tools (safe by construction), MCP servers as tools, and the per-task resolution of what a
//! task may use. The tool loop itself belongs to the executor.

pub mod calculator;
pub mod catalog;
pub mod datetime;
pub mod files;
pub mod http;
pub mod json;
pub mod mcp;
#[cfg(test)]
mod mcp_tests;
pub(crate) mod replayed;
pub mod resolve;
pub mod shell;
pub mod text;
pub mod tool;

pub use mcp::{McpError, McpSessions};
pub use resolve::{
    check_orchestra_tools, resolve_agent_tools, resolve_task_tools, run_servers, ToolSettings,
};
pub use tool::{run_tool, Tool, ToolContext, ToolOutcome};
