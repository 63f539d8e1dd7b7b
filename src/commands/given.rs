//! What a run is given beside the orchestra: the goal (`--goal TEXT`, `--goal -` from stdin,
//! `--goal-file FILE`) and the inputs (`--var`, `--vars`), read once, every problem a clear
//! usage error.

use super::{Context, Failure};
use crate::cli::{GoalArgs, InputArgs};
use crate::inputs::{GivenInputs, InputError};
use std::io::{IsTerminal, Read};

/// The goal's text. Empty (or only white space) is an error naming where it came from.
pub(crate) fn goal(args: &GoalArgs) -> Result<String, Failure> {
    let (text, from) = match (&args.goal, &args.goal_file) {
        (Some(text), _) if text == "-" => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(Failure::usage(
                    "`--goal -` reads the goal from stdin, but stdin is a terminal",
                )
                .hint("pipe it in (`cat brief.md | super orchestra run ... --goal -`), or use `--goal-file FILE`"));
            }
            let mut bytes = Vec::new();
            stdin
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::usage(format!("failed to read the goal from stdin: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                Failure::usage(format!(
                    "the goal read from stdin is not UTF-8 text (byte offset {})",
                    e.utf8_error().valid_up_to()
                ))
            })?;
            (text, "stdin (`--goal -`)".to_string())
        }
        (Some(text), _) => (text.clone(), "`--goal`".to_string()),
        (None, Some(path)) => {
            let shown = crate::source::display_path(path);
            let bytes = std::fs::read(path).map_err(|e| {
                Failure::usage(format!("failed to read the goal file `{shown}`: {e}"))
                    .hint("check the path given to `--goal-file`")
            })?;
            let text = String::from_utf8(bytes).map_err(|e| {
                Failure::usage(format!(
                    "the goal file `{shown}` is not UTF-8 text (byte offset {})",
                    e.utf8_error().valid_up_to()
                ))
                .hint("save it as UTF-8")
            })?;
            (text, format!("the goal file `{shown}`"))
        }
        (None, None) => (String::new(), "`--goal`".to_string()),
    };
    if text.trim().is_empty() {
        return Err(Failure::usage(format!("the goal is empty (from {from})")).hint(
            "pass `--goal \"what the orchestra should achieve\"`, `--goal-file FILE` or `--goal -` (stdin)",
        ));
    }
    Ok(text.trim().to_string())
}

/// The `--var` and `--vars` values. A bad `--vars` file's problems are printed as
/// diagnostics (`file:line:col`) before the usage error.
pub(crate) fn inputs(context: &Context, args: &InputArgs) -> Result<GivenInputs, Failure> {
    GivenInputs::read(&args.var, &args.vars).map_err(|error| match error {
        InputError::Flag { message, hint } => Failure::usage(message).hint(hint),
        InputError::File(diags) => {
            context.print_diagnostics(&diags);
            Failure::usage("a `--vars` file cannot be used; nothing was run")
        }
    })
}
