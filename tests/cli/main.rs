//! End-to-end tests: the real `super` binary in temporary projects, against a loopback server
//! speaking the providers' real protocols. One test binary, so the build is shared.

mod chaos;
mod commands;
mod compat;
mod core;
mod create;
mod diagnostics;
mod durable;
mod evaluate;
mod export;
mod firstrun;
mod hierarchical;
mod history;
mod inputs;
mod kubernetes;
mod local;
mod messages;
mod observability;
mod projects;
mod reliability;
mod runner;
mod structured;
mod support;
mod surface;
mod toolloop;
mod tools;
