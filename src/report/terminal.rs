//! What the terminal allows: how wide stdout is, and whether a stream may be coloured.

use std::io::IsTerminal;

/// The columns stdout has: `COLUMNS` when it holds a number, else the terminal's width when
/// stdout is one; `None` (no limit) when stdout is a pipe or a file, so scripts get whole lines.
pub(crate) fn stdout_width() -> Option<usize> {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0);
    if from_env.is_some() {
        return from_env;
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_columns(libc::STDOUT_FILENO)
}

#[cfg(unix)]
fn terminal_columns(fd: libc::c_int) -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; nothing else is touched.
    let result = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (result == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn terminal_columns(_fd: i32) -> Option<usize> {
    None
}

/// The width of each column of a table: its widest cell or header, in characters.
pub(crate) fn column_widths<const N: usize>(
    headers: &[&str; N],
    rows: &[[String; N]],
) -> [usize; N] {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    widths
}

/// One row of a table: each cell padded to its column, two spaces between, no trailing blank.
pub(crate) fn table_row<S: AsRef<str>>(cells: &[S], widths: &[usize]) -> String {
    cells
        .iter()
        .zip(widths)
        .map(|(cell, &width)| format!("{:<width$}", cell.as_ref()))
        .collect::<Vec<_>>()
        .join("  ")
        .trim_end()
        .to_string()
}

/// Narrows the `shrinkable` columns (widest first, none below `min`) until a table of these
/// column widths, two spaces between columns, fits in `max_total` columns, when it can.
pub(crate) fn fit_columns(
    widths: &mut [usize],
    shrinkable: &[usize],
    max_total: usize,
    min: usize,
) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(widths) > max_total {
        let widest = shrinkable
            .iter()
            .copied()
            .filter(|&i| widths.get(i).is_some_and(|&w| w > min))
            .max_by_key(|&i| widths[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
}

/// Whether to colour a stream, as the common conventions say: `--no-color` or `NO_COLOR` (any
/// value) never, `CLICOLOR_FORCE` (not `0`) always, `CLICOLOR=0` never, else only a terminal.
pub(crate) fn colour(no_color_flag: bool, is_terminal: bool) -> bool {
    colour_with(no_color_flag, is_terminal, &|name| std::env::var(name).ok())
}

fn colour_with(
    no_color_flag: bool,
    is_terminal: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> bool {
    if no_color_flag || env("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if env("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    if env("CLICOLOR").is_some_and(|v| v == "0") {
        return false;
    }
    is_terminal
}

/// How a line of a report reads at a glance; painted only when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Good,
    Bad,
    Warn,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Good => "\x1b[32m",
            Tone::Bad => "\x1b[31m",
            Tone::Warn => "\x1b[33m",
        }
    }
}

/// Paints whole lines of `text` (already sanitized: it holds no escape of its own) by index.
pub(crate) fn paint_lines(text: &str, tones: &[(usize, Tone)]) -> String {
    if tones.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + tones.len() * 9);
    for (index, line) in text.split_inclusive('\n').enumerate() {
        match tones.iter().find(|(i, _)| *i == index) {
            Some((_, tone)) => {
                let (body, end) = match line.strip_suffix('\n') {
                    Some(body) => (body, "\n"),
                    None => (line, ""),
                };
                out.push_str(tone.code());
                out.push_str(body);
                out.push_str("\x1b[0m");
                out.push_str(end);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn no_color_wins_over_everything() {
        let env = env_of(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]);
        assert!(!colour_with(false, true, &env));
        assert!(!colour_with(true, true, &env_of(&[])));
    }

    #[test]
    fn clicolor_force_colours_a_pipe_and_clicolor_0_stops_a_terminal() {
        assert!(colour_with(
            false,
            false,
            &env_of(&[("CLICOLOR_FORCE", "1")])
        ));
        assert!(!colour_with(
            false,
            false,
            &env_of(&[("CLICOLOR_FORCE", "0")])
        ));
        assert!(!colour_with(false, true, &env_of(&[("CLICOLOR", "0")])));
        assert!(colour_with(false, true, &env_of(&[])));
        assert!(!colour_with(false, false, &env_of(&[])));
        // An empty NO_COLOR is unset, as no-color.org says.
        assert!(colour_with(false, true, &env_of(&[("NO_COLOR", "")])));
    }

    #[test]
    fn columns_narrow_widest_first_and_never_below_the_minimum() {
        let mut widths = [10, 40, 30, 5];
        fit_columns(&mut widths, &[1, 2], 60, 8);
        assert_eq!(widths.iter().sum::<usize>() + 6, 60);
        assert_eq!(widths, [10, 20, 19, 5]);
        let mut tight = [10, 40, 30, 5];
        fit_columns(&mut tight, &[1, 2], 10, 8);
        assert_eq!(tight, [10, 8, 8, 5]);
    }

    #[test]
    fn painting_wraps_the_chosen_lines_only() {
        let text = "a\nb\nc";
        assert_eq!(
            paint_lines(text, &[(1, Tone::Bad), (2, Tone::Good)]),
            "a\n\x1b[31mb\x1b[0m\n\x1b[32mc\x1b[0m"
        );
        assert_eq!(paint_lines(text, &[]), text);
    }
}
