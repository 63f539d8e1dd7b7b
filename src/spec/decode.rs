//! Typed reading of a YAML node tree. Every problem becomes a diagnostic at the value's own
//! line and column, and reading goes on, so one pass reports everything.

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::source::SourceFile;
use crate::yaml::{parse_bool, Node, Value};
use std::sync::Arc;

pub struct Decoder<'a> {
    pub file: &'a Arc<SourceFile>,
    pub diags: &'a mut Diagnostics,
}

impl<'a> Decoder<'a> {
    pub fn new(file: &'a Arc<SourceFile>, diags: &'a mut Diagnostics) -> Decoder<'a> {
        Decoder { file, diags }
    }

    pub fn error(
        &mut self,
        node: &Node,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::error(message).at(self.file, node.loc, label));
        self.diags.items.last_mut().expect("just pushed")
    }

    fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        let found = node.kind();
        self.error(
            node,
            format!("wrong type for `{what}`: expected {expected}, found {found}"),
            format!("expected {expected}"),
        );
    }

    /// A mapping's entries; null is an empty mapping.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.wrong_type(node, what, "a mapping");
                None
            }
        }
    }

    /// A list's items; null is an empty list.
    pub fn seq<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.wrong_type(node, what, "a list");
                None
            }
        }
    }

    /// A string; any scalar is taken as written (so `version: 1.0` reads "1.0").
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            _ if node.is_null() => None,
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    pub fn u64(&mut self, node: &Node, what: &str) -> Option<u64> {
        if node.is_null() {
            return None;
        }
        match &node.value {
            Value::Scalar { text, plain: true } => match text.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n as u64),
                Ok(_) => {
                    self.error(
                        node,
                        format!("`{what}` must not be negative"),
                        "a negative number",
                    );
                    None
                }
                Err(_) => {
                    self.wrong_type(node, what, "a whole number");
                    None
                }
            },
            _ => {
                self.wrong_type(node, what, "a whole number");
                None
            }
        }
    }

    /// A whole number within `min..=max`; outside it (or too large to read) is an error at the
    /// value, naming the bound.
    pub fn u64_in(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        if let Value::Scalar { text, plain: true } = &node.value {
            let digits = text.trim().trim_start_matches('+');
            if !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<i64>().is_err()
            {
                self.error(
                    node,
                    format!("`{what}` is too large: at most {max}"),
                    format!("above {max}"),
                );
                return None;
            }
        }
        let value = self.u64(node, what)?;
        if value < min {
            self.error(
                node,
                format!("`{what}` must be at least {min}"),
                format!("below {min}"),
            );
            None
        } else if value > max {
            self.error(
                node,
                format!("`{what}` is too large: at most {max}"),
                format!("above {max}"),
            );
            None
        } else {
            Some(value)
        }
    }

    /// A finite number within `min..=max`, else an error at the value naming the bound.
    pub fn f64_in(&mut self, node: &Node, what: &str, min: f64, max: f64) -> Option<f64> {
        let value = self.f64(node, what)?;
        if value < min {
            self.error(
                node,
                format!("`{what}` must be at least {min}"),
                format!("below {min}"),
            );
            None
        } else if value > max {
            self.error(
                node,
                format!("`{what}` is too large: at most {max}"),
                format!("above {max}"),
            );
            None
        } else {
            Some(value)
        }
    }

    pub fn f64(&mut self, node: &Node, what: &str) -> Option<f64> {
        if node.is_null() {
            return None;
        }
        match &node.value {
            Value::Scalar { text, plain: true } => match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ => {
                    self.wrong_type(node, what, "a number");
                    None
                }
            },
            _ => {
                self.wrong_type(node, what, "a number");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        if node.is_null() {
            return None;
        }
        match &node.value {
            Value::Scalar { text, .. } if parse_bool(text).is_some() => parse_bool(text),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    /// Splits a mapping into known fields, warning about every unknown key with a
    /// "did you mean" hint, so a typo such as `contxt:` is caught.
    pub fn fields<'n>(
        &mut self,
        entries: &'n [(Node, Node)],
        known: &[&'static str],
        section: &str,
        warn_unknown: bool,
    ) -> Fields<'n> {
        let mut fields = Fields {
            found: Vec::new(),
            unknown: Vec::new(),
        };
        for (key, value) in entries {
            let Some(name) = key.scalar() else {
                self.error(
                    key,
                    format!("a key in `{section}` is not a string"),
                    "expected a plain key",
                );
                continue;
            };
            match known.iter().find(|k| **k == name) {
                Some(k) => fields.found.push((k, value)),
                None => {
                    fields.unknown.push((key, value));
                    if warn_unknown {
                        let mut diagnostic =
                            Diagnostic::warning(format!("unknown key `{name}` in `{section}`")).at(
                                self.file,
                                key.loc,
                                "not a key this section knows; it is ignored",
                            );
                        diagnostic = match did_you_mean(name, known.iter().copied()) {
                            Some(close) => diagnostic.hint(format!("did you mean `{close}`?")),
                            None => diagnostic.hint(format!("known keys: {}", known.join(", "))),
                        };
                        self.diags.push(diagnostic);
                    }
                }
            }
        }
        fields
    }
}

pub struct Fields<'n> {
    found: Vec<(&'static str, &'n Node)>,
    pub unknown: Vec<(&'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.found.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}
