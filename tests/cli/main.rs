//! End-to-end tests: the real `super` binary in temporary projects, against a loopback server
//! speaking the providers' real protocols. One test binary, so the build is shared.

mod commands;
mod compat;
mod create;
mod diagnostics;
mod durable;
mod export;
mod local;
mod runner;
mod support;
