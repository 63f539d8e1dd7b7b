//! The placeholders of a task's description and expected output, and their escapes. One scanner
//! serves every reader (the plan's dependencies, the load-time checks, the prompt), so what is a
//! placeholder is decided in one place:
//!
//! - `{name}` or `{name.field.sub}` (names of letters, digits, `_` and `-`, starting with a
//!   letter or `_`) is a placeholder: `{goal}`, an input, or a task's output.
//! - `{{` is a literal `{`, and the `}}` that closes it a literal `}`: `{{name}}` is the text
//!   `{name}`, `{{"a": 1}}` the text `{"a": 1}`.
//! - Any other brace is text as written: a `{` not followed by a name and `}` (so JSON written
//!   as it is, `{"a": {"b": 1}}`, keeps every brace), and the `}` that closes it.

/// A `{name}` or `{name.field.sub}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldRef {
    /// The first name: `goal`, an input or a task.
    pub task: String,
    pub path: Vec<String>,
    /// Byte offset of the `{` in the text.
    pub offset: usize,
}

impl FieldRef {
    pub fn is_goal(&self) -> bool {
        self.task == "goal" && self.path.is_empty()
    }

    /// As written, braces included.
    pub fn written(&self) -> String {
        let mut text = format!("{{{}", self.task);
        for key in &self.path {
            text.push('.');
            text.push_str(key);
        }
        text.push('}');
        text
    }
}

/// A piece of a scanned text: literal text (escapes already undone) or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Placeholder(FieldRef),
}

fn is_name(part: &str) -> bool {
    part.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `name` may name an input (`--var NAME=...`, `inputs:`): the shape of a placeholder.
pub(crate) fn is_input_name(name: &str) -> bool {
    is_name(name)
}

/// The text as pieces, in order.
pub(crate) fn scan(text: &str) -> Vec<Piece> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    // The braces opened and not yet closed: `true` for an escaped `{{`.
    let mut open: Vec<bool> = Vec::new();
    let mut start = 0; // the start of the text not yet copied into `literal`
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                literal.push_str(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'{') {
                    literal.push('{');
                    open.push(true);
                    i += 2;
                    start = i;
                    continue;
                }
                let placeholder = text[i + 1..].find('}').and_then(|len| {
                    let inside = &text[i + 1..i + 1 + len];
                    let parts: Vec<&str> = inside.split('.').collect();
                    parts.iter().all(|p| is_name(p)).then(|| {
                        (
                            len,
                            FieldRef {
                                task: parts[0].to_string(),
                                path: parts[1..].iter().map(|p| p.to_string()).collect(),
                                offset: i,
                            },
                        )
                    })
                });
                match placeholder {
                    Some((len, reference)) => {
                        if !literal.is_empty() {
                            pieces.push(Piece::Text(std::mem::take(&mut literal)));
                        }
                        pieces.push(Piece::Placeholder(reference));
                        i += len + 2;
                    }
                    None => {
                        literal.push('{');
                        open.push(false);
                        i += 1;
                    }
                }
                start = i;
            }
            b'}' => {
                literal.push_str(&text[start..i]);
                literal.push('}');
                match open.last() {
                    // Closes a brace written as text.
                    Some(false) => {
                        open.pop();
                        i += 1;
                    }
                    // `}}` closes an escaped `{{` (or stands alone): one literal `}`.
                    Some(true) | None if bytes.get(i + 1) == Some(&b'}') => {
                        open.pop();
                        i += 2;
                    }
                    _ => i += 1,
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    literal.push_str(&text[start..]);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    pieces
}

/// Every placeholder, `{goal}` included, in order.
pub(crate) fn placeholders(text: &str) -> Vec<FieldRef> {
    scan(text)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Placeholder(reference) => Some(reference),
            Piece::Text(_) => None,
        })
        .collect()
}

/// The text with each placeholder replaced by what `value` gives for it (`None`: left as
/// written) and the escapes undone.
pub(crate) fn render(text: &str, value: &dyn Fn(&FieldRef) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in scan(text) {
        match piece {
            Piece::Text(literal) => out.push_str(&literal),
            Piece::Placeholder(reference) => match value(&reference) {
                Some(filled) => out.push_str(&filled),
                None => out.push_str(&reference.written()),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        render(text, &|r| Some(format!("<{}>", r.written())))
    }

    #[test]
    fn placeholders_are_names_in_single_braces() {
        assert_eq!(
            placeholders("Use {design.endpoints} for {goal}; keep {not a ref} and {x.}.")
                .iter()
                .map(FieldRef::written)
                .collect::<Vec<_>>(),
            ["{design.endpoints}", "{goal}"]
        );
        assert_eq!(placeholders("{a}{b-c}")[1].offset, 3);
    }

    #[test]
    fn double_braces_are_literal_braces() {
        assert_eq!(shown("{{topic}}"), "{topic}");
        assert_eq!(shown("{{{topic}}}"), "{<{topic}>}");
        assert_eq!(shown(r#"{{"a": 1}}"#), r#"{"a": 1}"#);
        assert_eq!(shown(r#"{{"a": {{"b": 1}}}}"#), r#"{"a": {"b": 1}}"#);
        assert_eq!(shown("{{}}"), "{}");
        assert!(placeholders("{{topic}}").is_empty());
    }

    #[test]
    fn json_written_as_it_is_keeps_every_brace() {
        for text in [
            r#"{"a": 1}"#,
            r#"{"a": {"b": 1}}"#,
            r#"[{"a": 1}, {"b": [2]}]"#,
            "function f() { return {x: 1}; }",
            "{ unclosed",
            "stray } brace",
            "a set {1, 2}",
        ] {
            assert_eq!(shown(text), text);
        }
        assert_eq!(
            shown(r#"{"user": "{name}", "n": {"m": 1}}"#),
            r#"{"user": "<{name}>", "n": {"m": 1}}"#
        );
        // A brace opened as text is closed by one `}`; the escaped `{{` by the `}}` after it.
        assert_eq!(shown(r#"{{"a": {"b": 1}}}"#), r#"{"a": {"b": 1}}"#);
    }

    #[test]
    fn unfilled_placeholders_stay_as_written_and_text_survives_unicode() {
        assert_eq!(
            render("héllo {a} ünd {b} {{c}}", &|r| (r.task == "a")
                .then(|| "✓".to_string())),
            "héllo ✓ ünd {b} {c}"
        );
    }
}
