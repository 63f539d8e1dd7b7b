//! Text bound for a terminal, made inert: control characters (ESC and so every CSI/OSC
//! sequence, the other C0 controls except `\n` and `\t`, DEL, the C1 controls) and the Unicode
//! bidirectional overrides are shown escaped (`\x1b`, `\u{9b}`), so a goal, a task name, a
//! model's reply or a server's error cannot move the cursor, retitle the window or hide text.
//! Carriage returns are dropped. Only for what is printed: files keep the bytes.

use std::borrow::Cow;

fn is_unsafe(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidirectional embeddings, overrides and isolates (the "trojan source" characters).
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// `text` with every control character escaped, ready to print.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\r' {
            continue;
        }
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::terminal;

    #[test]
    fn escape_sequences_are_made_visible_and_inert() {
        assert_eq!(terminal("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(terminal("\x1b[2J\x1b]0;t\x07x"), "\\x1b[2J\\x1b]0;t\\x07x");
        assert_eq!(terminal("a\u{9b}31mb"), "a\\u{9b}31mb");
        assert_eq!(terminal("line\r\n"), "line\n");
        assert_eq!(terminal("\u{202e}txt"), "\\u{202e}txt");
        assert!(!terminal("\x00\x7f").chars().any(|c| c.is_control()));
    }
}
