//! The tokenizer: GPT-2 byte-level BPE built from a GGUF file's `tokenizer.ggml.*` metadata,
//! matching Hugging Face `tokenizers` for SmolLM2 (`tokenizer.ggml.pre = "smollm"`).
//!
//! Encoding, in order:
//! 1. control/user-defined tokens (`token_type` 3 or 4; ids 0–16 in SmolLM2, such as
//!    `<|im_start|>`) are split out of the raw text, longest match first, and map to their ids;
//! 2. every numeric character (`char::is_numeric`, like HF's `Digits(individual_digits)`)
//!    becomes a piece of its own;
//! 3. each remaining stretch is split with the GPT-2 pattern (its `\s+(?!\S)` look-ahead needs
//!    `fancy-regex`);
//! 4. each piece's UTF-8 bytes are mapped to GPT-2's printable byte alphabet and merged with
//!    the BPE merges, rank = position in `tokenizer.ggml.merges`.
//!
//! No BOS token is prepended (`add_bos_token = false`; the chat template opens with
//! `<|im_start|>` itself).

use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use candle_core::quantized::gguf_file;

use crate::LocalError;

/// The GPT-2 pre-tokenization pattern used by Hugging Face's `ByteLevel(use_regex = true)`.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// GGUF token types that are matched as whole special tokens before BPE.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// A GPT-2 byte-level BPE tokenizer. Cheap to share (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    /// Token string (in GPT-2's byte alphabet) to id.
    vocab: HashMap<String, u32>,
    /// Raw bytes each id decodes to (special tokens decode to their literal text).
    token_bytes: Vec<Vec<u8>>,
    /// Token string of each id, as stored in the GGUF.
    token_strings: Vec<String>,
    /// `(left id, right id)` to `(rank, merged id)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Id of the single-symbol token of each byte. SmolLM2 has none for a few control bytes
    /// (and bytes that never occur in UTF-8); like Hugging Face's BPE without an unknown
    /// token, those bytes are dropped.
    byte_ids: [Option<u32>; 256],
    /// Special tokens, longest first.
    specials: Vec<(String, u32)>,
    pattern: fancy_regex::Regex,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
}

/// GPT-2's reversible map from bytes to printable characters.
fn bytes_to_unicode() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        map[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + n).unwrap_or('\u{FFFD}');
            n += 1;
            c
        };
    }
    map
}

fn get_string_array(content: &gguf_file::Content, key: &str) -> Result<Vec<String>, String> {
    let value = content
        .metadata
        .get(key)
        .ok_or_else(|| format!("missing {key}"))?;
    let items = value
        .to_vec()
        .map_err(|e| format!("{key} is not an array: {e}"))?;
    items
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| format!("{key} holds a non-string: {e}"))
        })
        .collect()
}

fn get_u32(content: &gguf_file::Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

impl Tokenizer {
    /// Build the tokenizer from parsed GGUF metadata (`tokenizer.ggml.model` must be `gpt2`).
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, LocalError> {
        Self::build(content).map_err(|message| LocalError::Tokenizer {
            path: "GGUF metadata".into(),
            message,
        })
    }

    /// Read only the metadata of a GGUF file and build its tokenizer (no weights are loaded).
    pub fn from_gguf_file(path: &Path) -> Result<Self, LocalError> {
        if !path.exists() {
            return Err(LocalError::ModelNotFound { path: path.into() });
        }
        let file = std::fs::File::open(path).map_err(|e| LocalError::io("open", path, e))?;
        let mut reader = std::io::BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| LocalError::Gguf {
            path: path.into(),
            message: e.to_string(),
        })?;
        Self::build(&content).map_err(|message| LocalError::Tokenizer {
            path: path.into(),
            message,
        })
    }

    fn build(content: &gguf_file::Content) -> Result<Self, String> {
        if let Some(model) = content.metadata.get("tokenizer.ggml.model") {
            let model = model
                .to_string()
                .map_err(|e| format!("tokenizer.ggml.model: {e}"))?;
            if model != "gpt2" {
                return Err(format!(
                    "unsupported tokenizer.ggml.model {model:?} (only \"gpt2\" byte-level BPE is supported)"
                ));
            }
        }
        let tokens = get_string_array(content, "tokenizer.ggml.tokens")?;
        if tokens.is_empty() || tokens.len() > u32::MAX as usize {
            return Err(format!("bad vocabulary size {}", tokens.len()));
        }
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| format!("tokenizer.ggml.token_type: {e}"))?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        let merges_raw = get_string_array(content, "tokenizer.ggml.merges")?;

        let to_unicode = bytes_to_unicode();
        let mut from_unicode: HashMap<char, u8> = HashMap::with_capacity(256);
        for (b, c) in to_unicode.iter().enumerate() {
            from_unicode.insert(*c, b as u8);
        }

        let mut vocab = HashMap::with_capacity(tokens.len());
        let mut token_bytes = Vec::with_capacity(tokens.len());
        let mut specials = Vec::new();
        for (id, tok) in tokens.iter().enumerate() {
            let id = id as u32;
            vocab.entry(tok.clone()).or_insert(id);
            let ty = types.get(id as usize).copied().unwrap_or(1);
            if (ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED) && !tok.is_empty() {
                specials.push((tok.clone(), id));
                token_bytes.push(tok.as_bytes().to_vec());
            } else {
                let mut bytes = Vec::with_capacity(tok.len());
                for c in tok.chars() {
                    match from_unicode.get(&c) {
                        Some(b) => bytes.push(*b),
                        None => {
                            let mut buf = [0u8; 4];
                            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                token_bytes.push(bytes);
            }
        }
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));

        let mut byte_ids = [None; 256];
        for (b, c) in to_unicode.iter().enumerate() {
            byte_ids[b] = vocab.get(&c.to_string()).copied();
        }
        if byte_ids.iter().filter(|i| i.is_some()).count() < 128 {
            return Err(
                "the vocabulary is not a byte-level BPE vocabulary (too few byte tokens)".into(),
            );
        }

        let mut merges = HashMap::with_capacity(merges_raw.len());
        for (rank, m) in merges_raw.iter().enumerate() {
            let Some((a, b)) = m.split_once(' ') else {
                return Err(format!("malformed merge #{rank}: {m:?}"));
            };
            let (Some(&ia), Some(&ib), Some(&im)) =
                (vocab.get(a), vocab.get(b), vocab.get(&format!("{a}{b}")))
            else {
                // A merge whose parts or result are not in the vocabulary can never apply.
                continue;
            };
            merges.entry((ia, ib)).or_insert((rank as u32, im));
        }

        let pattern = fancy_regex::Regex::new(GPT2_PATTERN)
            .map_err(|e| format!("failed to compile the GPT-2 pattern: {e}"))?;

        let n = tokens.len() as u32;
        Ok(Self {
            vocab,
            token_bytes,
            token_strings: tokens,
            merges,
            byte_ids,
            specials,
            pattern,
            bos_id: get_u32(content, "tokenizer.ggml.bos_token_id").filter(|&i| i < n),
            eos_id: get_u32(content, "tokenizer.ggml.eos_token_id").filter(|&i| i < n),
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.token_strings.len()
    }

    /// `tokenizer.ggml.bos_token_id`, if present.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// `tokenizer.ggml.eos_token_id`, if present.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    /// The id of an exact token string (in the GGUF's byte alphabet, e.g. `"Ġthe"`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// The token string of an id, as stored in the GGUF.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.token_strings.get(id as usize).map(String::as_str)
    }

    /// The raw bytes an id decodes to (empty for an unknown id). A token can end in the middle
    /// of a UTF-8 character; see [`Tokenizer::decode`] for text.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The special (control) tokens and their ids, longest first.
    pub fn special_tokens(&self) -> impl Iterator<Item = (&str, u32)> {
        self.specials.iter().map(|(s, id)| (s.as_str(), *id))
    }

    /// Encode text to token ids. Special token strings in `text` become their ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        let mut rest = text;
        while !rest.is_empty() {
            match self.find_special(rest) {
                Some((start, len, id)) => {
                    self.encode_ordinary(&rest[..start], &mut ids);
                    ids.push(id);
                    rest = &rest[start + len..];
                }
                None => {
                    self.encode_ordinary(rest, &mut ids);
                    break;
                }
            }
        }
        ids
    }

    /// Number of tokens `text` encodes to.
    pub fn token_count(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// Decode ids to text; bytes that do not form valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Leftmost special token in `text`, longest first at the same position.
    fn find_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        if self.specials.is_empty() {
            return None;
        }
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            for (s, id) in &self.specials {
                if s.as_bytes()[0] == *b && bytes[i..].starts_with(s.as_bytes()) {
                    return Some((i, s.len(), *id));
                }
            }
        }
        None
    }

    /// Encode text that contains no special tokens.
    fn encode_ordinary(&self, text: &str, out: &mut Vec<u32>) {
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c.is_numeric() {
                self.encode_stretch(&text[start..i], out);
                self.bpe(&text[i..i + c.len_utf8()], out);
                start = i + c.len_utf8();
            }
        }
        self.encode_stretch(&text[start..], out);
    }

    /// Split a digit-free stretch with the GPT-2 pattern and BPE each piece.
    fn encode_stretch(&self, text: &str, out: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < text.len() {
            match self.pattern.find_from_pos(text, pos) {
                Ok(Some(m)) if m.end() > pos => {
                    if m.start() > pos {
                        // Cannot happen with this pattern (it matches every character), but a
                        // gap is still encoded rather than dropped.
                        self.bpe(&text[pos..m.start()], out);
                    }
                    self.bpe(m.as_str(), out);
                    pos = m.end();
                }
                // No match, an empty match or a regex runtime error (backtrack limit): encode
                // the rest as one piece rather than lose text.
                _ => {
                    self.bpe(&text[pos..], out);
                    break;
                }
            }
        }
    }

    /// Byte-level BPE of one pre-token: repeatedly merge the adjacent pair with the lowest
    /// rank (leftmost on ties), like Hugging Face's `BPE::merge_word`.
    fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let ids: Vec<u32> = piece
            .bytes()
            .filter_map(|b| self.byte_ids[b as usize])
            .collect();
        if ids.len() <= 1 {
            out.extend_from_slice(&ids);
            return;
        }
        // Symbols as a doubly linked list over a vector.
        struct Sym {
            id: u32,
            prev: usize,
            next: usize,
            alive: bool,
        }
        const NONE: usize = usize::MAX;
        let n = ids.len();
        let mut syms: Vec<Sym> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| Sym {
                id,
                prev: if i == 0 { NONE } else { i - 1 },
                next: if i + 1 == n { NONE } else { i + 1 },
                alive: true,
            })
            .collect();
        // Min-heap on (rank, left position); entries carry the pair they were made for so
        // stale ones can be recognised.
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<std::cmp::Reverse<(u32, usize, u32, u32)>>,
                    syms: &Vec<Sym>,
                    left: usize| {
            let right = syms[left].next;
            if right == NONE {
                return;
            }
            let key = (syms[left].id, syms[right].id);
            if let Some(&(rank, _)) = self.merges.get(&key) {
                heap.push(std::cmp::Reverse((rank, left, key.0, key.1)));
            }
        };
        for i in 0..n - 1 {
            push(&mut heap, &syms, i);
        }
        while let Some(std::cmp::Reverse((_rank, left, a, b))) = heap.pop() {
            let right = syms[left].next;
            if !syms[left].alive || right == NONE || syms[left].id != a || syms[right].id != b {
                continue;
            }
            let Some(&(_, merged)) = self.merges.get(&(a, b)) else {
                continue;
            };
            syms[left].id = merged;
            let after = syms[right].next;
            syms[left].next = after;
            syms[right].alive = false;
            if after != NONE {
                syms[after].prev = left;
            }
            let prev = syms[left].prev;
            if prev != NONE {
                push(&mut heap, &syms, prev);
            }
            push(&mut heap, &syms, left);
        }
        let mut i = 0;
        while i != NONE {
            out.push(syms[i].id);
            i = syms[i].next;
        }
    }
}

/// Incremental UTF-8 decoding for streaming: feed each token's bytes, get back the text that
/// is complete so far; a character split across tokens is held until its last byte arrives.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `bytes` and return the complete text now available (possibly empty). Invalid
    /// sequences become U+FFFD; an incomplete trailing character is kept for the next call.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: the prefix up to `valid_up_to` is valid UTF-8.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        None => {
                            // Incomplete character at the end: wait for more bytes.
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flush whatever is pending (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let map = bytes_to_unicode();
        let mut seen = std::collections::HashSet::new();
        for c in map {
            assert!(seen.insert(c));
        }
        assert_eq!(map[b' ' as usize], 'Ġ');
        assert_eq!(map[b'\n' as usize], 'Ċ');
        assert_eq!(map[b'a' as usize], 'a');
    }

    #[test]
    fn stream_decoder_holds_split_characters() {
        let mut d = StreamDecoder::new();
        let crab = "🦀".as_bytes();
        assert_eq!(d.push(b"a"), "a");
        assert_eq!(d.push(&crab[..1]), "");
        assert_eq!(d.push(&crab[1..3]), "");
        assert_eq!(d.push(&crab[3..]), "🦀");
        assert_eq!(d.push(&[0xff, b'b']), "\u{FFFD}b");
        assert_eq!(d.push(&crab[..2]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        assert_eq!(d.finish(), "");
    }
}
