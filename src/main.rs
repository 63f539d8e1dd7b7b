//! The `super` binary: parse the arguments, run one command, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = super_orchestra::cli::Cli::parse();
    std::process::ExitCode::from(super_orchestra::commands::dispatch(cli))
}
