//! A YAML document as a tree of nodes that remember where they came from, built from
//! saphyr-parser's events. It resolves anchors and aliases and nothing else: typing is the
//! decoder's job, so a wrong type can be reported at the value's own line and column.

use crate::diag::Diagnostic;
use crate::source::{Loc, SourceFile};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum Value {
    /// A scalar as written; `plain` is false for quoted and block scalars.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The kind of node, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "nothing (null)",
            Value::Scalar { text, plain: true } if parse_bool(text).is_some() => "a boolean",
            Value::Scalar { text, plain: true } if text.parse::<f64>().is_ok() => "a number",
            Value::Scalar { .. } => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node as plain JSON, for sections we keep but do not interpret.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            _ if self.is_null() => serde_json::Value::Null,
            Value::Scalar { text, plain } => {
                if *plain {
                    if let Some(b) = parse_bool(text) {
                        return serde_json::Value::Bool(b);
                    }
                    if let Ok(i) = text.parse::<i64>() {
                        return serde_json::Value::from(i);
                    }
                    if let Ok(f) = text.parse::<f64>() {
                        if f.is_finite() {
                            return serde_json::Value::from(f);
                        }
                    }
                }
                serde_json::Value::String(text.clone())
            }
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.scalar().unwrap_or_default().to_string(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "on" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "off" => Some(false),
        _ => None,
    }
}

fn loc_of(span: &Span, file: &SourceFile) -> Loc {
    let start = span.start;
    let len = if span.end.line() == start.line() {
        span.end.col().saturating_sub(start.col())
    } else {
        // A value running over several lines: underline to the end of its first line.
        file.line_text(start.line())
            .map(|l| l.chars().count().saturating_sub(start.col()))
            .unwrap_or(1)
    };
    Loc {
        line: start.line(),
        col: start.col(),
        len: len.max(1),
    }
}

/// The most nodes aliases may add to one document, so a few lines of nested anchors cannot
/// expand into an exponentially large tree ("billion laughs").
const MAX_ALIAS_NODES: usize = 100_000;

/// Parses the first document of a file. An empty file is a null node.
/// The scalar values of `section.key` pairs of a document's top-level mappings, read from the
/// event stream without building a tree, and stopping as soon as every pair is found, or at the
/// top-level `tasks` key once one is: listing a project's orchestras by id costs little even
/// when one file holds 10,000 tasks. `None` for a pair that is absent (or after `tasks` when
/// another was found first) or not a plain value; an invalid document gives what was read.
pub fn scan_top_level(text: &str, keys: &[(&str, &str)]) -> Vec<Option<String>> {
    /// A collection being read: a mapping (expecting a key or a value) or a sequence.
    enum Frame {
        Map { expect_key: bool },
        Seq,
    }
    let mut found: Vec<Option<String>> = vec![None; keys.len()];
    let mut stack: Vec<Frame> = Vec::new();
    // The top-level key whose value is being read, and the key just read inside it.
    let mut section: Option<String> = None;
    let mut inner_key: Option<String> = None;
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, _))) = parser.next_event() {
        match event {
            Event::MappingStart(..) => stack.push(Frame::Map { expect_key: true }),
            Event::SequenceStart(..) => stack.push(Frame::Seq),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                // The collection was a value of the mapping around it.
                if let Some(Frame::Map { expect_key }) = stack.last_mut() {
                    *expect_key = true;
                }
                if stack.len() == 1 {
                    section = None;
                }
            }
            Event::Scalar(value, ..) => {
                let depth = stack.len();
                let Some(Frame::Map { expect_key }) = stack.last_mut() else {
                    continue;
                };
                if *expect_key {
                    // The task list is the long part of an orchestra: an id found before it
                    // is the file's (ids are written first, in every file seen).
                    if depth == 1 && value == "tasks" && found.iter().any(Option::is_some) {
                        break;
                    }
                    match depth {
                        1 => section = Some(value.to_string()),
                        2 => inner_key = Some(value.to_string()),
                        _ => {}
                    }
                    *expect_key = false;
                    continue;
                }
                *expect_key = true;
                if depth != 2 {
                    continue;
                }
                if let (Some(s), Some(k)) = (&section, inner_key.take()) {
                    for (slot, (want_section, want_key)) in found.iter_mut().zip(keys) {
                        let value = value.trim();
                        if slot.is_none()
                            && s == want_section
                            && k == *want_key
                            && !value.is_empty()
                        {
                            *slot = Some(value.to_string());
                        }
                    }
                }
                if found.iter().all(Option::is_some) {
                    break;
                }
            }
            Event::StreamEnd | Event::DocumentEnd => break,
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod scan_tests {
    use super::scan_top_level;

    #[test]
    fn finds_section_keys_without_a_tree_and_ignores_nested_ones() {
        let text = "metadata:\n  name: x\n  id: meta_id\n  tags: [a, b]\n  nested: {id: wrong}\norchestra:\n  execution: {strategy: parallel}\n  id: \"orch_id\"\ntasks:\n- {name: t, id: nope}\n";
        assert_eq!(
            scan_top_level(text, &[("orchestra", "id"), ("metadata", "id")]),
            [Some("orch_id".to_string()), Some("meta_id".to_string())]
        );
        assert_eq!(
            scan_top_level("tasks: []\n", &[("orchestra", "id")]),
            [None]
        );
        assert_eq!(
            scan_top_level("orchestra:\n  id: [1]\n", &[("orchestra", "id")]),
            [None]
        );
        assert_eq!(
            scan_top_level("{{{ not yaml", &[("orchestra", "id")]),
            [None]
        );
    }
}

pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        file,
        anchors: HashMap::new(),
        aliased: 0,
        stack: Vec::new(),
        root: None,
    };
    let mut parser = Parser::new_from_str(&file.text);
    while let Some(item) = parser.next_event() {
        match item {
            Ok((event, span)) => {
                if builder.event(event, span)? {
                    break;
                }
            }
            Err(error) => {
                let marker = error.marker();
                let loc = Loc {
                    line: marker.line(),
                    col: marker.col(),
                    len: 1,
                };
                return Err(Diagnostic::error(format!("invalid YAML: {}", error.info()))
                    .at(file, loc, "here")
                    .hint("check the indentation and quoting on this line and the one above"));
            }
        }
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Scalar {
            text: String::new(),
            plain: true,
        },
        loc: Loc {
            line: 1,
            col: 0,
            len: 1,
        },
    }))
}

/// The number of nodes in a tree, itself included.
fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Scalar { .. } => 0,
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
    }
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

struct Builder<'a> {
    file: &'a Arc<SourceFile>,
    /// Each anchored node, with its size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes added by aliases so far.
    aliased: usize,
    stack: Vec<Frame>,
    root: Option<Node>,
}

impl Builder<'_> {
    /// Feeds one event; returns true when the first document is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<bool, Diagnostic> {
        let loc = loc_of(&span, self.file);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: matches!(style, ScalarStyle::Plain),
                    },
                    loc,
                };
                self.finish(node, anchor)
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some((node, size)) => {
                    self.aliased = self.aliased.saturating_add(*size);
                    if self.aliased > MAX_ALIAS_NODES {
                        return Err(Diagnostic::error(
                            "invalid YAML: aliases expand to too many nodes",
                        )
                        .at(self.file, loc, "this alias")
                        .hint(format!(
                            "aliases may add at most {MAX_ALIAS_NODES} nodes to a file; nest fewer aliases"
                        )));
                    }
                    let mut node = node.clone();
                    node.loc = loc;
                    self.finish(node, 0)
                }
                None => Err(Diagnostic::error("invalid YAML: unknown alias").at(
                    self.file,
                    loc,
                    "this alias",
                )),
            },
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(
                    Node {
                        value: Value::Seq(Vec::new()),
                        loc,
                    },
                    anchor,
                ));
                Ok(false)
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(
                    Node {
                        value: Value::Map(Vec::new()),
                        loc,
                    },
                    anchor,
                    None,
                ));
                Ok(false)
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(node, anchor)) | Some(Frame::Map(node, anchor, _)) => {
                    self.finish(node, anchor)
                }
                None => Ok(false),
            },
            Event::DocumentEnd => Ok(self.root.is_some()),
            Event::StreamEnd => Ok(true),
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => Ok(false),
        }
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<bool, Diagnostic> {
        if anchor > 0 {
            self.anchors
                .insert(anchor, (node.clone(), count_nodes(&node)));
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(false)
            }
            Some(Frame::Seq(parent, _)) => {
                if let Value::Seq(items) = &mut parent.value {
                    items.push(node);
                }
                Ok(false)
            }
            Some(Frame::Map(parent, _, pending)) => {
                match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        if let Value::Map(entries) = &mut parent.value {
                            if let Some(name) = key.scalar() {
                                if let Some((first, _)) =
                                    entries.iter().find(|(k, _)| k.scalar() == Some(name))
                                {
                                    return Err(Diagnostic::error(format!(
                                        "duplicate key `{name}`"
                                    ))
                                    .at(self.file, key.loc, "this key appears twice")
                                    .hint(format!(
                                        "the first `{name}` is on line {}; keep one",
                                        first.loc.line
                                    )));
                                }
                            }
                            entries.push((key, node));
                        }
                    }
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn nested_aliases_cannot_blow_up_memory() {
        let mut text = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for level in 1..9 {
            let previous = format!("*a{}", level - 1);
            text.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                [previous.as_str(); 10].join(",")
            ));
        }
        let file = SourceFile::new(Path::new("laughs.yaml"), text);
        let error = parse(&file).expect_err("refused");
        assert!(
            error.message.contains("too many nodes"),
            "{}",
            error.message
        );
    }

    #[test]
    fn aliases_resolve_to_their_anchor() {
        let file = SourceFile::new(Path::new("a.yaml"), "base: &b {x: 1}\nuse: *b\n".into());
        let root = parse(&file).expect("parses");
        assert_eq!(
            root.get("use")
                .and_then(|n| n.get("x"))
                .and_then(Node::scalar),
            Some("1")
        );
    }
}
