//! The `super` binary: parse the arguments, run one command, exit with its code.

fn main() -> std::process::ExitCode {
    // `COMPLETE=bash super -- super orchestra run <TAB>`: the shell asks for candidates.
    super_orchestra::completion::complete_from_env();
    let cli = super_orchestra::cli::parse();
    std::process::ExitCode::from(super_orchestra::commands::dispatch(cli))
}
