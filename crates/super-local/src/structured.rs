//! Structured output for the embedded model: [`JsonConstraint`] is a JSON Schema compiled once
//! against a vocabulary; [`JsonMatcher`] follows one generation and says, before each token,
//! which tokens keep the output a prefix of a document valid for the schema and closable
//! within the token budget. [`crate::LocalModel::generate_json`] applies it to the logits.
//!
//! Masks are cached per automaton state inside the constraint (shared by every generation
//! that uses it), so the repeated states of long strings and of recurring structure cost one
//! trie walk each. This module owns the cache and the budget rule; the grammar is in
//! [`crate::constraint`], the schema subset in [`crate::schema`], the trie in [`crate::trie`].
//!
//! The budget rule: a token is allowed only when the shortest completion after it (in bytes)
//! fits in the tokens left; every printable ASCII byte is a token of its own in byte-level
//! BPE vocabularies, so the shortest completion can always be written one byte per token and
//! the document always closes within `max_tokens`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::constraint::{Automaton, State, MAX_DEPTH};
use crate::schema::{Schema, SchemaError};
use crate::trie::{TokenMask, TokenTrie};
use crate::Tokenizer;

/// Most masks cached per constraint (each is vocabulary/8 bytes: 6 KB for SmolLM2); the cache
/// is emptied when full.
const CACHE_CAPACITY: usize = 2048;

/// Why a constraint cannot be built or used.
#[derive(Debug, thiserror::Error)]
pub enum ConstraintError {
    /// The schema uses something outside the supported subset (see [`crate::schema`]).
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The schema nests deeper than the automaton's stack.
    #[error("failed to compile the JSON schema: it nests {depth} levels deep (at most {max})")]
    TooDeep { depth: usize, max: usize },
    /// `max_tokens` cannot hold the shortest valid document.
    #[error(
        "failed to start constrained generation: `max_tokens` {max_tokens} is too small for \
         the shortest document the schema allows ({needed} tokens)"
    )]
    Budget { needed: usize, max_tokens: usize },
}

/// A JSON Schema compiled for one vocabulary. Compile once per schema, share with `Arc`.
pub struct JsonConstraint {
    source: Value,
    automaton: Automaton,
    trie: TokenTrie,
    token_bytes: Vec<Vec<u8>>,
    max_token_bytes: u32,
    /// `(string characters written, id)` of every token, most characters first (see
    /// [`crate::constraint::string_chars`]).
    by_string_chars: Vec<(u32, u32)>,
    cache: Mutex<HashMap<State, Arc<TokenMask>>>,
}

impl std::fmt::Debug for JsonConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonConstraint")
            .field("schema", &self.source)
            .finish_non_exhaustive()
    }
}

impl PartialEq for JsonConstraint {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.token_bytes == other.token_bytes
    }
}

impl JsonConstraint {
    /// Compile `schema` for the model's tokenizer (special tokens are never allowed).
    pub fn compile(schema: &Value, tokenizer: &Tokenizer) -> Result<Self, ConstraintError> {
        let mut tokens: Vec<Vec<u8>> = (0..tokenizer.vocab_size() as u32)
            .map(|id| tokenizer.token_bytes(id).to_vec())
            .collect();
        for (_, id) in tokenizer.special_tokens() {
            if let Some(t) = tokens.get_mut(id as usize) {
                t.clear();
            }
        }
        Self::with_vocabulary(schema, tokens)
    }

    /// Check that `schema` is within the supported subset without a model or vocabulary
    /// (for load-time diagnostics): the same errors [`JsonConstraint::compile`] would give.
    pub fn check(schema: &Value) -> Result<(), ConstraintError> {
        let automaton = Automaton::new(Schema::compile(schema)?);
        let depth = automaton.depth(automaton.schema.root);
        if depth > MAX_DEPTH {
            return Err(ConstraintError::TooDeep {
                depth,
                max: MAX_DEPTH,
            });
        }
        Ok(())
    }

    /// Compile `schema` for a vocabulary given as each token id's bytes (an empty entry is a
    /// token that is never allowed, such as a control token).
    pub fn with_vocabulary(schema: &Value, tokens: Vec<Vec<u8>>) -> Result<Self, ConstraintError> {
        let compiled = Schema::compile(schema)?;
        let automaton = Automaton::new(compiled);
        let depth = automaton.depth(automaton.schema.root);
        if depth > MAX_DEPTH {
            return Err(ConstraintError::TooDeep {
                depth,
                max: MAX_DEPTH,
            });
        }
        let trie = TokenTrie::new(&tokens);
        let mut by_string_chars: Vec<(u32, u32)> = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(id, t)| (crate::constraint::string_chars(t), id as u32))
            .collect();
        by_string_chars.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Self {
            by_string_chars,
            source: schema.clone(),
            max_token_bytes: trie.max_token_bytes() as u32,
            automaton,
            trie,
            token_bytes: tokens,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The schema this was compiled from.
    pub fn schema(&self) -> &Value {
        &self.source
    }

    /// Bytes of the shortest valid document: the fewest `max_tokens` a generation needs.
    pub fn min_document_bytes(&self) -> usize {
        self.automaton.min_close(&self.automaton.start()) as usize
    }

    /// Start following one generation of at most `max_tokens` tokens.
    pub fn matcher(self: &Arc<Self>, max_tokens: usize) -> Result<JsonMatcher, ConstraintError> {
        let needed = self.min_document_bytes();
        if needed > max_tokens {
            return Err(ConstraintError::Budget { needed, max_tokens });
        }
        Ok(JsonMatcher {
            constraint: Arc::clone(self),
            state: self.automaton.start(),
            scratch: Vec::new(),
            used: 0,
            max_tokens,
        })
    }

    fn cached_mask(&self, state: &State, scratch: &mut Vec<State>) -> Arc<TokenMask> {
        let key = state.cache_key(&self.automaton.schema, self.max_token_bytes);
        if let Some(m) = self.lock().get(&key) {
            return Arc::clone(m);
        }
        let mask = match state.string_room(&self.automaton.schema) {
            // Inside a bounded string: the unbounded string's (cached) mask less the tokens
            // that write too many characters, instead of a walk per length.
            Some((open, room)) => {
                let mut mask = (*self.cached_mask(&open, scratch)).clone();
                for &(chars, id) in &self.by_string_chars {
                    if chars <= room {
                        break;
                    }
                    mask.deny(id);
                }
                Arc::new(mask)
            }
            None => Arc::new(self.trie.mask(&self.automaton, state, scratch)),
        };
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&mask));
        mask
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<State, Arc<TokenMask>>> {
        // A panic elsewhere cannot leave a half-written mask: recover the map.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_of(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The progress of one constrained generation.
pub struct JsonMatcher {
    constraint: Arc<JsonConstraint>,
    state: State,
    scratch: Vec<State>,
    used: usize,
    max_tokens: usize,
}

impl std::fmt::Debug for JsonMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonMatcher")
            .field("used", &self.used)
            .field("max_tokens", &self.max_tokens)
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}

impl JsonMatcher {
    /// Tokens that keep the output a valid prefix (not counting the budget; see
    /// [`JsonMatcher::fits`]). Cached per state.
    pub fn allowed(&mut self) -> Arc<TokenMask> {
        self.constraint.cached_mask(&self.state, &mut self.scratch)
    }

    /// [`JsonMatcher::allowed`] less the tokens after which the document could no longer
    /// close within the budget. Not cached: call it only when [`JsonMatcher::fits`] refused
    /// the token the sampler chose.
    pub fn allowed_within_budget(&mut self) -> TokenMask {
        let mut mask = (*self.allowed()).clone();
        let ids: Vec<u32> = mask.ids().collect();
        for id in ids {
            if !self.fits(id) {
                mask.deny(id);
            }
        }
        mask
    }

    /// Whether token `id` keeps the output valid and closable in the tokens left after it.
    pub fn fits(&self, id: u32) -> bool {
        let a = &self.constraint.automaton;
        let bytes = self.constraint.bytes_of(id);
        if bytes.is_empty() {
            return false;
        }
        let mut s = self.state.clone();
        if !a.advance(&mut s, bytes) {
            return false;
        }
        let left = self.max_tokens.saturating_sub(self.used + 1);
        a.min_close(&s) as usize <= left
    }

    /// Take token `id` as generated. False (and nothing changes) when it is not allowed.
    pub fn accept(&mut self, id: u32) -> bool {
        let bytes = self.constraint.bytes_of(id);
        if bytes.is_empty() {
            return false;
        }
        let mut s = self.state.clone();
        if !self.constraint.automaton.advance(&mut s, bytes) {
            return false;
        }
        self.state = s;
        self.used += 1;
        true
    }

    /// Whether the output so far is a complete document (an end token may come now).
    pub fn is_complete(&self) -> bool {
        self.constraint.automaton.is_complete(&self.state)
    }

    /// Whether any token can still extend the output (false once a document is closed).
    pub fn can_continue(&mut self) -> bool {
        self.allowed().count() > 0
    }

    /// Fewest bytes that complete the document from here.
    pub fn min_bytes_to_close(&self) -> usize {
        self.constraint.automaton.min_close(&self.state) as usize
    }

    /// Tokens accepted so far.
    pub fn tokens_used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small vocabulary: every printable ASCII byte, some multi-byte pieces, a control
    /// token (id 0, empty) and a two-byte UTF-8 character split in halves.
    fn vocab() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![Vec::new()];
        for b in 0x20u8..0x7f {
            v.push(vec![b]);
        }
        for s in [
            "{\"",
            "\":",
            "\": \"",
            "\",",
            "\", \"",
            "\"}",
            "name",
            "age",
            "true",
            "false",
            "null",
            "12",
            "\n",
            "  ",
            "}}",
            "{\"name\":\"",
            "hello world",
            "\"calculator\"",
            "tool",
            "é",
        ] {
            v.push(s.as_bytes().to_vec());
        }
        v.push(vec![0xC3]);
        v.push(vec![0xA9]);
        v
    }

    fn id(v: &[Vec<u8>], s: &[u8]) -> u32 {
        v.iter()
            .position(|t| t == s)
            .unwrap_or_else(|| panic!("no token {s:?}")) as u32
    }

    fn constraint(schema: Value) -> Arc<JsonConstraint> {
        Arc::new(
            JsonConstraint::with_vocabulary(&schema, vocab()).unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn allowed_strings(m: &mut JsonMatcher) -> Vec<String> {
        let v = vocab();
        m.allowed()
            .ids()
            .map(|i| String::from_utf8_lossy(&v[i as usize]).into_owned())
            .collect()
    }

    #[test]
    fn masks_follow_the_schema() {
        let c = constraint(json!({
            "type":"object",
            "properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0}},
            "required":["name","age"]
        }));
        let v = vocab();
        let mut m = c.matcher(64).unwrap_or_else(|e| panic!("{e}"));
        let first = allowed_strings(&mut m);
        assert_eq!(first, vec!["{", "{\"", "{\"name\":\""]);
        assert!(m.accept(id(&v, b"{\"")));
        let key = allowed_strings(&mut m);
        assert_eq!(key, vec!["n", "name"]);
        assert!(!m.accept(id(&v, b"age")), "required `name` comes first");
        for t in ["name", "\":"] {
            assert!(m.accept(id(&v, t.as_bytes())));
        }
        // After `:` at most one space, then the string.
        let val = allowed_strings(&mut m);
        for t in [" ", "\"", "\"calculator\"", "\": \""] {
            assert!(val.contains(&t.to_owned()), "{t:?} in {val:?}");
        }
        for t in ["  ", "name", "12", "{"] {
            assert!(!val.contains(&t.to_owned()), "{t:?} in {val:?}");
        }
        assert!(m.accept(id(&v, b"\"")));
        let inside = m.allowed();
        for t in ["hello world", "é", "a", "\"", "\",", "\", \"", "  "] {
            assert!(inside.allows(id(&v, t.as_bytes())), "{t:?}");
        }
        assert!(inside.allows(id(&v, &[0xC3])));
        assert!(!inside.allows(id(&v, &[0xA9])), "a lone continuation byte");
        assert!(!inside.allows(id(&v, b"\"}")), "`age` is required");
        assert!(!inside.allows(id(&v, b"\n")));
        assert!(!inside.allows(0), "control tokens never");
        assert!(m.accept(id(&v, &[0xC3])));
        assert_eq!(allowed_strings(&mut m), vec!["\u{FFFD}"]);
        assert!(m.accept(id(&v, &[0xA9])));
        for t in ["\",", "\"", "age", "\":", "12"] {
            assert!(m.accept(id(&v, t.as_bytes())), "{t}");
        }
        assert!(!m.is_complete());
        assert!(m.accept(id(&v, b"}")));
        assert!(m.is_complete());
        assert!(!m.can_continue());
    }

    #[test]
    fn the_budget_forces_the_closing_path() {
        let c = constraint(json!({
            "type":"object","properties":{"name":{"type":"string"}},"required":["name"]
        }));
        let v = vocab();
        // `{"name":""}` is 11 bytes: 10 tokens cannot hold it.
        assert!(matches!(
            c.matcher(10),
            Err(ConstraintError::Budget {
                needed: 11,
                max_tokens: 10
            })
        ));
        let mut m = c.matcher(11).unwrap_or_else(|e| panic!("{e}"));
        // With exactly 11 tokens, the fused `{"name":"` token leaves 10 for `"}`: fine, but
        // then no string content fits except what still closes in time.
        assert!(m.fits(id(&v, b"{\"name\":\"")));
        assert!(m.accept(id(&v, b"{\"name\":\"")));
        assert!(m.fits(id(&v, b"hello world")));
        let mut budget = c.matcher(12).unwrap_or_else(|e| panic!("{e}"));
        for t in ["{", "\"", "name", "\":", "\""] {
            assert!(budget.accept(id(&v, t.as_bytes())));
        }
        // 5 used of 12: after one more token, 6 are left and `"}` needs 2.
        assert!(budget.fits(id(&v, b"hello world")));
        for _ in 0..5 {
            assert!(budget.accept(id(&v, b"a")));
        }
        // 10 used: the next token must leave room for `}` after it.
        assert!(!budget.fits(id(&v, b"a")));
        let within = budget.allowed_within_budget();
        let left: Vec<u32> = within.ids().collect();
        // `"` (then `}`), `{"` (a `{` of content, then `"`: then `}`), and `"}`.
        assert_eq!(left, vec![id(&v, b"\""), id(&v, b"{\""), id(&v, b"\"}")]);
    }

    /// Inside a bounded string, the mask derived from the unbounded one equals a direct walk
    /// at every length.
    #[test]
    fn bounded_string_masks_match_a_direct_walk() {
        let v = vocab();
        for schema in [
            json!({"type":"object","properties":{"s":{"type":"string","minLength":1,"maxLength":12}},"required":["s"]}),
            json!({"type":"array","items":{"type":"string","maxLength":3}}),
        ] {
            let c = constraint(schema.clone());
            let mut m = c.matcher(200).unwrap_or_else(|e| panic!("{e}"));
            let prefix: &[&[u8]] = if schema["type"] == "object" {
                &[b"{\"", b"s", b"\":", b"\""]
            } else {
                &[b"[", b"\""]
            };
            for t in prefix {
                assert!(m.accept(id(&v, t)));
            }
            for step in 0..12 {
                let got = m.allowed();
                let mut scratch = Vec::new();
                let want = c.trie.mask(&c.automaton, &m.state, &mut scratch);
                assert_eq!(*got, want, "{schema} step {step}");
                let next = if step % 3 == 2 { &b"\\"[..] } else { &b"a"[..] };
                if !m.accept(id(&v, next)) {
                    break;
                }
                if next == b"\\" {
                    assert!(m.accept(id(&v, b"n")));
                }
            }
        }
    }

    #[test]
    fn check_needs_no_vocabulary() {
        assert!(JsonConstraint::check(&json!({"type":"array","items":{"type":"integer"}})).is_ok());
        let e = JsonConstraint::check(&json!({"type":"string","pattern":"a+"})).err();
        assert!(
            matches!(&e, Some(ConstraintError::Schema(s)) if s.pointer == "/pattern"),
            "{e:?}"
        );
        let mut deep = json!({"type":"integer"});
        for _ in 0..MAX_DEPTH {
            deep = json!({"type":"array","items":deep});
        }
        assert!(matches!(
            JsonConstraint::check(&deep),
            Err(ConstraintError::TooDeep { .. })
        ));
    }

    #[test]
    fn whitespace_is_bounded_and_numbers_end_cleanly() {
        let c = constraint(json!({"type":"array","items":{"type":"integer"},"maxItems":3}));
        let v = vocab();
        let mut m = c.matcher(40).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.accept(id(&v, b"[")));
        assert!(!m.allowed().allows(id(&v, b" ")));
        for t in ["12", ",", " "] {
            assert!(m.accept(id(&v, t.as_bytes())));
        }
        assert!(!m.allowed().allows(id(&v, b" ")), "one space at most");
        assert!(!m.allowed().allows(id(&v, b"  ")));
        assert!(m.accept(id(&v, b"7")));
        assert!(m.accept(id(&v, b"]")));
        assert!(m.is_complete() && !m.can_continue());
        // A root number is complete yet may continue.
        let c = constraint(json!({"type":"integer","maximum":999}));
        let mut m = c.matcher(8).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.accept(id(&v, b"12")));
        assert!(m.is_complete() && m.can_continue());
        assert!(m.accept(id(&v, b"3")));
        assert!(m.is_complete() && !m.can_continue());
    }
}
