//! The JSON Schema subset that constrained decoding supports, compiled from a
//! `serde_json::Value` into a small graph of [`Node`]s the automaton in [`crate::constraint`]
//! walks. This module owns the keyword checks (every unsupported keyword or bad value is a
//! [`SchemaError`] naming its JSON pointer) and the shortest-document lengths; it knows nothing
//! about tokens or bytes being generated.
//!
//! # Supported subset
//! - `type`: `object`, `array`, `string`, `number`, `integer`, `boolean`, `null`, or a list of
//!   those (each listed type keeps the keywords that apply to it). Without `type`, the
//!   structural keywords decide (`properties` means object, `items` array); a schema that names
//!   no type at all is an error.
//! - objects: `properties`, `required`, `additionalProperties` (any value: extra properties are
//!   never generated). Members are generated in a fixed order: the `required` properties in the
//!   order of the `required` array, then the optional ones in the schema map's order
//!   (alphabetical unless serde_json keeps insertion order); optional properties may be skipped.
//! - arrays: `items` (one schema), `minItems`, `maxItems`.
//! - strings: `minLength`, `maxLength` (in characters). Escapes `\" \\ \/ \b \f \n \r \t` are
//!   generated; `\u` escapes and raw control characters never are.
//! - numbers: `minimum`, `maximum` (inclusive). Integers have at most 15 digits; numbers at
//!   most 15 integer and 6 fraction digits and no exponent.
//! - `enum`, `const` (any JSON values, generated in their compact serde_json form; at most 64
//!   values); with a `type`, values of other types are dropped.
//! - `anyOf`; `oneOf` when its branches are distinguishable (their types differ, or each
//!   object branch requires a property the others do not define, or a required property with
//!   different `const`/`enum` values).
//! - `$ref` to `#/$defs/NAME` or `#/definitions/NAME` (a recursive reference is an error).
//! - annotations, ignored: `description`, `title`, `default`, `examples`, `$schema`, `$id`,
//!   `$comment`, `$defs`, `definitions`.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Index of a node in [`Schema::nodes`].
pub(crate) type NodeId = u16;

/// Most integer digits generated for a number.
pub(crate) const MAX_INT_DIGITS: u32 = 15;
/// Most fraction digits generated for a number.
pub(crate) const MAX_FRAC_DIGITS: u32 = 6;
/// Most `enum` values and object properties of one schema.
pub(crate) const MAX_ALTERNATIVES: usize = 64;
/// Most nodes of one compiled schema.
const MAX_NODES: usize = 4096;

/// Why a schema cannot be used for constrained decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to compile the JSON schema at `{pointer}`: {message}")]
pub struct SchemaError {
    /// JSON pointer of the offending part (`""` for the root, `/properties/name/type`, ...).
    pub pointer: String,
    pub message: String,
}

/// One property of an object node.
#[derive(Debug, Clone)]
pub(crate) struct Prop {
    /// The key as generated, quotes included (`"name"`).
    pub key: Vec<u8>,
    pub node: NodeId,
    pub required: bool,
}

/// A compiled schema node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// One of fixed serializations (`enum`, `const`, `boolean`, `null`).
    Literal(Vec<Vec<u8>>),
    String {
        min: u32,
        max: Option<u32>,
    },
    /// A number (`integer`: no fraction) within `[lo, hi]` (infinite when unbounded).
    Number {
        integer: bool,
        lo: f64,
        hi: f64,
    },
    /// Properties in generation order.
    Object {
        props: Vec<Prop>,
    },
    Array {
        item: NodeId,
        min: u32,
        max: Option<u32>,
    },
    AnyOf(Vec<NodeId>),
}

/// A compiled schema: nodes, the root, and each node's shortest document length in bytes.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub nodes: Vec<Node>,
    pub root: NodeId,
    pub min_len: Vec<u32>,
}

impl Schema {
    /// Compile `schema` (see the module docs for the subset).
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let mut c = Compiler {
            root: schema,
            nodes: Vec::new(),
            refs: HashMap::new(),
            in_progress: Vec::new(),
        };
        let root = c.node(schema, "")?;
        let mut s = Schema {
            nodes: c.nodes,
            root,
            min_len: Vec::new(),
        };
        s.min_len = vec![0; s.nodes.len()];
        // Children always get smaller ids than their parents (built bottom-up), so one pass
        // in id order computes every length from already computed ones.
        for id in 0..s.nodes.len() {
            s.min_len[id] = s.compute_min_len(id);
        }
        Ok(s)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn min_len(&self, id: NodeId) -> u32 {
        self.min_len[id as usize]
    }

    fn compute_min_len(&self, id: usize) -> u32 {
        match &self.nodes[id] {
            Node::Literal(v) => v.iter().map(|l| l.len() as u32).min().unwrap_or(u32::MAX),
            Node::String { min, .. } => 2 + min,
            Node::Number { integer, lo, hi } => {
                crate::constraint::number_min_len(*integer, *lo, *hi).unwrap_or(u32::MAX)
            }
            Node::Object { .. } => 1 + self.required_cost(id as NodeId, 0, true),
            Node::Array { item, min, .. } => {
                let m = self.min_len[*item as usize];
                1 + min * m + min.saturating_sub(1) + 1
            }
            Node::AnyOf(b) => b
                .iter()
                .map(|&n| self.min_len[n as usize])
                .min()
                .unwrap_or(u32::MAX),
        }
    }

    /// Bytes of one member: `"key":value` at its shortest.
    pub fn member_cost(&self, p: &Prop) -> u32 {
        p.key.len() as u32 + 1 + self.min_len(p.node)
    }

    /// Shortest bytes to close object `obj` when the members from `next` on are still to come:
    /// the required ones among them (with their commas; `first` when no member was written
    /// yet) and the closing `}`.
    pub fn required_cost(&self, obj: NodeId, next: usize, first: bool) -> u32 {
        let Node::Object { props } = self.node(obj) else {
            return 0;
        };
        let (mut sum, mut count) = (0u32, 0u32);
        for p in props.iter().skip(next).filter(|p| p.required) {
            sum = sum.saturating_add(self.member_cost(p));
            count += 1;
        }
        let commas = if first {
            count.saturating_sub(1)
        } else {
            count
        };
        sum.saturating_add(commas).saturating_add(1)
    }
}

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    /// Compiled `$ref` targets.
    refs: HashMap<String, NodeId>,
    /// `$ref`s being compiled (a repeat is recursion).
    in_progress: Vec<String>,
}

const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
];

const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

fn err(pointer: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

/// A JSON pointer token with `~` and `/` escaped.
fn escape_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn get_u32(obj: &Map<String, Value>, key: &str, ptr: &str) -> Result<Option<u32>, SchemaError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                err(
                    &format!("{ptr}/{key}"),
                    format!("`{key}` must be a non-negative integer, not `{v}`"),
                )
            }),
    }
}

fn get_f64(obj: &Map<String, Value>, key: &str, ptr: &str) -> Result<Option<f64>, SchemaError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| {
                err(
                    &format!("{ptr}/{key}"),
                    format!("`{key}` must be a number, not `{v}`"),
                )
            }),
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Compiler<'_> {
    fn push(&mut self, node: Node, ptr: &str) -> Result<NodeId, SchemaError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(err(
                ptr,
                format!("the schema is too large (more than {MAX_NODES} nodes)"),
            ));
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as NodeId)
    }

    fn node(&mut self, schema: &Value, ptr: &str) -> Result<NodeId, SchemaError> {
        let obj = match schema {
            Value::Object(o) => o,
            Value::Bool(true) => {
                return Err(err(
                    ptr,
                    "the schema `true` (any value) is not supported: give a `type`",
                ))
            }
            other => {
                return Err(err(
                    ptr,
                    format!("a schema must be an object, not `{other}`"),
                ))
            }
        };
        for key in obj.keys() {
            let known = ANNOTATIONS.contains(&key.as_str())
                || [
                    "type",
                    "properties",
                    "required",
                    "items",
                    "enum",
                    "const",
                    "anyOf",
                    "oneOf",
                    "minimum",
                    "maximum",
                    "minLength",
                    "maxLength",
                    "minItems",
                    "maxItems",
                    "additionalProperties",
                    "$ref",
                ]
                .contains(&key.as_str());
            if !known {
                return Err(err(
                    &format!("{ptr}/{}", escape_token(key)),
                    format!("unsupported keyword `{key}`"),
                ));
            }
        }
        if let Some(r) = obj.get("$ref") {
            let structural = obj
                .keys()
                .filter(|k| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
                .count();
            if structural > 0 {
                return Err(err(ptr, "`$ref` beside other keywords is not supported"));
            }
            return self.reference(r, &format!("{ptr}/$ref"));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = obj.get(key) {
                let others = obj
                    .keys()
                    .filter(|k| *k != key && !ANNOTATIONS.contains(&k.as_str()))
                    .count();
                if others > 0 {
                    return Err(err(
                        ptr,
                        format!("`{key}` beside other keywords is not supported"),
                    ));
                }
                let bptr = format!("{ptr}/{key}");
                let Some(list) = branches.as_array().filter(|l| !l.is_empty()) else {
                    return Err(err(&bptr, format!("`{key}` must be a non-empty array")));
                };
                let mut ids = Vec::with_capacity(list.len());
                for (i, b) in list.iter().enumerate() {
                    ids.push(self.node(b, &format!("{bptr}/{i}"))?);
                }
                if key == "oneOf" {
                    self.check_distinguishable(&ids, &bptr)?;
                }
                return if ids.len() == 1 {
                    Ok(ids[0])
                } else {
                    self.push(Node::AnyOf(ids), ptr)
                };
            }
        }
        let types: Vec<&str> = match obj.get("type") {
            None => {
                if obj.contains_key("enum") || obj.contains_key("const") {
                    Vec::new()
                } else if obj.contains_key("properties") || obj.contains_key("required") {
                    vec!["object"]
                } else if obj.contains_key("items") {
                    vec!["array"]
                } else {
                    return Err(err(
                        ptr,
                        "a schema without `type`, `enum`, `const`, `properties` or `items` \
                         (any value) is not supported",
                    ));
                }
            }
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) if !list.is_empty() => {
                let mut v = Vec::new();
                for (i, t) in list.iter().enumerate() {
                    match t.as_str() {
                        Some(s) => v.push(s),
                        None => {
                            return Err(err(
                                &format!("{ptr}/type/{i}"),
                                format!("a type must be a string, not `{t}`"),
                            ))
                        }
                    }
                }
                v
            }
            Some(other) => {
                return Err(err(
                    &format!("{ptr}/type"),
                    format!("`type` must be a string or a non-empty list, not `{other}`"),
                ))
            }
        };
        for (i, t) in types.iter().enumerate() {
            if !TYPES.contains(t) {
                let p = if matches!(obj.get("type"), Some(Value::Array(_))) {
                    format!("{ptr}/type/{i}")
                } else {
                    format!("{ptr}/type")
                };
                return Err(err(&p, format!("unknown type `{t}`")));
            }
        }
        if let Some(values) = self.literal_values(obj, ptr)? {
            let kept: Vec<&Value> = values
                .into_iter()
                .filter(|v| {
                    types.is_empty()
                        || types.contains(&type_of(v))
                        || (type_of(v) == "integer" && types.contains(&"number"))
                })
                .collect();
            if kept.is_empty() {
                return Err(err(ptr, "no `enum`/`const` value has the schema's `type`"));
            }
            let mut lits: Vec<Vec<u8>> = Vec::new();
            for v in kept {
                let s = serde_json::to_vec(v)
                    .map_err(|e| err(ptr, format!("failed to serialize `{v}`: {e}")))?;
                if !lits.contains(&s) {
                    lits.push(s);
                }
            }
            return self.push(Node::Literal(lits), ptr);
        }
        let mut ids = Vec::with_capacity(types.len());
        for t in &types {
            let id = self.typed(t, obj, ptr)?;
            ids.push(id);
        }
        if ids.len() == 1 {
            Ok(ids[0])
        } else {
            self.push(Node::AnyOf(ids), ptr)
        }
    }

    fn literal_values<'v>(
        &self,
        obj: &'v Map<String, Value>,
        ptr: &str,
    ) -> Result<Option<Vec<&'v Value>>, SchemaError> {
        if let Some(c) = obj.get("const") {
            return Ok(Some(vec![c]));
        }
        match obj.get("enum") {
            None => Ok(None),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_ALTERNATIVES => {
                Ok(Some(list.iter().collect()))
            }
            Some(other) => Err(err(
                &format!("{ptr}/enum"),
                format!("`enum` must be a list of 1 to {MAX_ALTERNATIVES} values, not `{other}`"),
            )),
        }
    }

    fn typed(
        &mut self,
        t: &str,
        obj: &Map<String, Value>,
        ptr: &str,
    ) -> Result<NodeId, SchemaError> {
        let node = match t {
            "null" => Node::Literal(vec![b"null".to_vec()]),
            "boolean" => Node::Literal(vec![b"true".to_vec(), b"false".to_vec()]),
            "string" => {
                let min = get_u32(obj, "minLength", ptr)?.unwrap_or(0);
                let max = get_u32(obj, "maxLength", ptr)?;
                if max.is_some_and(|m| m < min) {
                    return Err(err(
                        &format!("{ptr}/maxLength"),
                        "`maxLength` is less than `minLength`",
                    ));
                }
                Node::String { min, max }
            }
            "number" | "integer" => {
                let integer = t == "integer";
                let lo = get_f64(obj, "minimum", ptr)?.unwrap_or(f64::NEG_INFINITY);
                let hi = get_f64(obj, "maximum", ptr)?.unwrap_or(f64::INFINITY);
                if crate::constraint::number_min_len(integer, lo, hi).is_none() {
                    return Err(err(
                        ptr,
                        format!(
                            "no {t} between `minimum` and `maximum` can be written with at \
                             most {MAX_INT_DIGITS} integer and {MAX_FRAC_DIGITS} fraction digits"
                        ),
                    ));
                }
                Node::Number { integer, lo, hi }
            }
            "array" => {
                let min = get_u32(obj, "minItems", ptr)?.unwrap_or(0);
                let max = get_u32(obj, "maxItems", ptr)?;
                if max.is_some_and(|m| m < min) {
                    return Err(err(
                        &format!("{ptr}/maxItems"),
                        "`maxItems` is less than `minItems`",
                    ));
                }
                let item = match obj.get("items") {
                    Some(items) => self.node(items, &format!("{ptr}/items"))?,
                    None if max == Some(0) => {
                        self.push(Node::Literal(vec![b"null".to_vec()]), ptr)?
                    }
                    None => {
                        return Err(err(
                            ptr,
                            "an array without `items` (any values) is not supported",
                        ))
                    }
                };
                Node::Array { item, min, max }
            }
            _ => self.object(obj, ptr)?,
        };
        self.push(node, ptr)
    }

    fn object(&mut self, obj: &Map<String, Value>, ptr: &str) -> Result<Node, SchemaError> {
        let empty = Map::new();
        let props = match obj.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(other) => {
                return Err(err(
                    &format!("{ptr}/properties"),
                    format!("`properties` must be an object, not `{other}`"),
                ))
            }
        };
        if props.len() > MAX_ALTERNATIVES {
            return Err(err(
                &format!("{ptr}/properties"),
                format!("more than {MAX_ALTERNATIVES} properties"),
            ));
        }
        let mut required: Vec<&str> = Vec::new();
        match obj.get("required") {
            None => {}
            Some(Value::Array(list)) => {
                for (i, r) in list.iter().enumerate() {
                    let rptr = format!("{ptr}/required/{i}");
                    let Some(name) = r.as_str() else {
                        return Err(err(
                            &rptr,
                            format!("a required name must be a string, not `{r}`"),
                        ));
                    };
                    if !props.contains_key(name) {
                        return Err(err(
                            &rptr,
                            format!("required property `{name}` is not in `properties`"),
                        ));
                    }
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
            }
            Some(other) => {
                return Err(err(
                    &format!("{ptr}/required"),
                    format!("`required` must be a list of names, not `{other}`"),
                ))
            }
        }
        let order = required.iter().copied().chain(
            props
                .keys()
                .map(String::as_str)
                .filter(|k| !required.contains(k)),
        );
        let mut out = Vec::with_capacity(props.len());
        for name in order {
            let Some(schema) = props.get(name) else {
                continue;
            };
            let pptr = format!("{ptr}/properties/{}", escape_token(name));
            let node = self.node(schema, &pptr)?;
            let key = serde_json::to_vec(name)
                .map_err(|e| err(&pptr, format!("failed to serialize the key: {e}")))?;
            out.push(Prop {
                key,
                node,
                required: required.contains(&name),
            });
        }
        Ok(Node::Object { props: out })
    }

    fn reference(&mut self, r: &Value, ptr: &str) -> Result<NodeId, SchemaError> {
        let Some(target) = r.as_str() else {
            return Err(err(ptr, format!("`$ref` must be a string, not `{r}`")));
        };
        let supported = target.starts_with("#/$defs/") || target.starts_with("#/definitions/");
        let path = target.strip_prefix('#').unwrap_or(target);
        if !supported || path.matches('/').count() != 2 {
            return Err(err(
                ptr,
                format!(
                    "unsupported `$ref` `{target}` (only `#/$defs/NAME` and \
                     `#/definitions/NAME` are supported)"
                ),
            ));
        }
        if let Some(&id) = self.refs.get(target) {
            return Ok(id);
        }
        if self.in_progress.iter().any(|t| t == target) {
            return Err(err(
                ptr,
                format!("recursive `$ref` `{target}` is not supported"),
            ));
        }
        let unescaped = path.replace("~1", "/").replace("~0", "~");
        let Some(schema) = self
            .root
            .pointer(path)
            .or_else(|| self.root.pointer(&unescaped))
        else {
            return Err(err(ptr, format!("`$ref` `{target}` does not resolve")));
        };
        self.in_progress.push(target.to_owned());
        let id = self.node(schema, path);
        self.in_progress.pop();
        let id = id?;
        self.refs.insert(target.to_owned(), id);
        Ok(id)
    }

    /// `oneOf` branches must never both accept a generated document.
    fn check_distinguishable(&self, ids: &[NodeId], ptr: &str) -> Result<(), SchemaError> {
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                if !self.distinct(a, b) {
                    return Err(err(
                        ptr,
                        "`oneOf` branches that one document could match are not supported \
                         (use `anyOf`)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn kinds(&self, id: NodeId) -> Vec<&'static str> {
        match &self.nodes[id as usize] {
            Node::Literal(v) => v
                .iter()
                .map(|l| match l.first() {
                    Some(b'"') => "string",
                    Some(b'{') => "object",
                    Some(b'[') => "array",
                    Some(b't' | b'f') => "boolean",
                    Some(b'n') => "null",
                    _ => "number",
                })
                .collect(),
            Node::String { .. } => vec!["string"],
            Node::Number { .. } => vec!["number"],
            Node::Object { .. } => vec!["object"],
            Node::Array { .. } => vec!["array"],
            Node::AnyOf(b) => b.iter().flat_map(|&n| self.kinds(n)).collect(),
        }
    }

    fn distinct(&self, a: NodeId, b: NodeId) -> bool {
        let (ka, kb) = (self.kinds(a), self.kinds(b));
        if !ka.iter().any(|k| kb.contains(k)) {
            return true;
        }
        match (&self.nodes[a as usize], &self.nodes[b as usize]) {
            (Node::Literal(x), Node::Literal(y)) => !x.iter().any(|l| y.contains(l)),
            (Node::Object { props: pa }, Node::Object { props: pb }) => {
                let needs_missing = |p: &[Prop], q: &[Prop]| {
                    p.iter()
                        .filter(|x| x.required)
                        .any(|x| !q.iter().any(|y| y.key == x.key))
                };
                let literal_clash = pa.iter().filter(|x| x.required).any(|x| {
                    pb.iter().filter(|y| y.required && y.key == x.key).any(|y| {
                        matches!(
                            (&self.nodes[x.node as usize], &self.nodes[y.node as usize]),
                            (Node::Literal(u), Node::Literal(v)) if !u.iter().any(|l| v.contains(l))
                        )
                    })
                });
                literal_clash || (needs_missing(pa, pb) && needs_missing(pb, pa))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile_err(v: Value) -> SchemaError {
        match Schema::compile(&v) {
            Ok(_) => panic!("expected an error for {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn unsupported_keywords_name_their_pointer() {
        let e = compile_err(
            json!({"type":"object","properties":{"a":{"type":"string","format":"date"}}}),
        );
        assert_eq!(e.pointer, "/properties/a/format");
        assert!(e.message.contains("`format`"), "{e}");
        let e = compile_err(json!({"type":"strin"}));
        assert_eq!(e.pointer, "/type");
        let e = compile_err(json!({"type":"object","properties":{"a":{}}}));
        assert_eq!(e.pointer, "/properties/a");
        let e = compile_err(
            json!({"type":"object","required":["b"],"properties":{"a":{"type":"null"}}}),
        );
        assert_eq!(e.pointer, "/required/0");
        let e = compile_err(json!({"type":"integer","minimum":5,"maximum":4}));
        assert_eq!(e.pointer, "");
        let e = compile_err(json!({"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]}));
        assert_eq!(e.pointer, "/oneOf");
    }

    #[test]
    fn refs_resolve_and_recursion_is_an_error() {
        let s = Schema::compile(&json!({
            "$defs": {"name": {"type": "string", "maxLength": 4}},
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/name"}, "b": {"$ref": "#/$defs/name"}},
            "required": ["a", "b"]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        // `{"a":"","b":""}`
        assert_eq!(s.min_len(s.root), 15);
        let e = compile_err(json!({
            "definitions": {"t": {"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/definitions/t"}}}}},
            "$ref": "#/definitions/t"
        }));
        assert!(e.message.contains("recursive"), "{e}");
        let e = compile_err(json!({"$ref": "#/$defs/missing"}));
        assert!(e.message.contains("does not resolve"), "{e}");
        assert_eq!(e.pointer, "/$ref");
        let e = compile_err(json!({"$ref": "http://example.com/x"}));
        assert!(e.message.contains("unsupported `$ref`"), "{e}");
    }

    #[test]
    fn shortest_lengths() {
        let s = Schema::compile(&json!({
            "type":"object",
            "properties": {
                "n": {"type":"integer","minimum":100},
                "t": {"type":"array","items":{"type":"boolean"},"minItems":2},
                "o": {"type":"string"}
            },
            "required": ["t", "n"]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        // {"t":[true,true],"n":100}
        assert_eq!(
            s.min_len(s.root),
            r#"{"t":[true,true],"n":100}"#.len() as u32
        );
        let Node::Object { props } = s.node(s.root) else {
            panic!("not an object")
        };
        let keys: Vec<&[u8]> = props.iter().map(|p| p.key.as_slice()).collect();
        assert_eq!(keys, vec![&b"\"t\""[..], b"\"n\"", b"\"o\""]);
    }

    #[test]
    fn tool_call_one_of_is_distinguishable() {
        Schema::compile(&json!({"oneOf":[
            {"type":"object","properties":{"tool":{"const":"calculator"},"arguments":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}},"required":["tool","arguments"]},
            {"type":"object","properties":{"final_answer":{"type":"string"}},"required":["final_answer"]}
        ]}))
        .unwrap_or_else(|e| panic!("{e}"));
    }
}
