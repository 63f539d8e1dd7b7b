//! The token trie: the vocabulary's byte strings as a prefix tree in depth-first order, and
//! the walk that turns an automaton [`State`] into a [`TokenMask`].
//!
//! Nodes are stored in preorder with the index just past each subtree, so the walk is one
//! loop over an array: step the parent's state by the node's byte; when the result is dead,
//! jump past the whole subtree (every token sharing that prefix is impossible). Like
//! llama.cpp's grammar sampler and llguidance, the cost is proportional to the live part of
//! the trie, not to the vocabulary times the token length. This module owns no model and no
//! schema keywords.

use crate::constraint::{Automaton, State};

/// One trie node: the byte on the edge into it.
#[derive(Debug, Clone, Copy)]
struct TrieNode {
    byte: u8,
    /// Distance from the root (the root itself is not stored; first-level nodes have 1).
    depth: u8,
    /// Index just past this node's subtree.
    end: u32,
    /// Tokens ending here: `ids[tok_start..tok_start + tok_len]`.
    tok_start: u32,
    tok_len: u16,
}

/// The vocabulary as a prefix tree.
#[derive(Debug, Clone)]
pub(crate) struct TokenTrie {
    nodes: Vec<TrieNode>,
    ids: Vec<u32>,
    vocab_size: usize,
    max_depth: usize,
}

impl TokenTrie {
    /// Build from each token id's bytes (index = id). Empty byte strings (special tokens)
    /// and tokens longer than 255 bytes are never allowed.
    pub fn new(tokens: &[Vec<u8>]) -> Self {
        let mut order: Vec<u32> = (0..tokens.len() as u32)
            .filter(|&i| {
                let t = &tokens[i as usize];
                !t.is_empty() && t.len() <= 255
            })
            .collect();
        order.sort_by(|&a, &b| tokens[a as usize].cmp(&tokens[b as usize]).then(a.cmp(&b)));
        let mut nodes: Vec<TrieNode> = Vec::new();
        let mut ids = Vec::with_capacity(order.len());
        // The node index at each depth of the current path.
        let mut path: Vec<usize> = Vec::new();
        let mut prev: &[u8] = &[];
        let mut max_depth = 0;
        for &id in &order {
            let t = tokens[id as usize].as_slice();
            let lcp = prev.iter().zip(t).take_while(|(a, b)| a == b).count();
            while path.len() > lcp {
                if let Some(i) = path.pop() {
                    nodes[i].end = nodes.len() as u32;
                }
            }
            for (d, &b) in t.iter().enumerate().skip(lcp) {
                path.push(nodes.len());
                nodes.push(TrieNode {
                    byte: b,
                    depth: (d + 1) as u8,
                    end: 0,
                    tok_start: 0,
                    tok_len: 0,
                });
            }
            if let Some(&last) = path.last() {
                let n = &mut nodes[last];
                if n.tok_len == 0 {
                    n.tok_start = ids.len() as u32;
                }
                n.tok_len += 1;
                ids.push(id);
            }
            max_depth = max_depth.max(t.len());
            prev = t;
        }
        while let Some(i) = path.pop() {
            nodes[i].end = nodes.len() as u32;
        }
        Self {
            nodes,
            ids,
            vocab_size: tokens.len(),
            max_depth,
        }
    }

    /// Bytes of the longest token.
    pub fn max_token_bytes(&self) -> usize {
        self.max_depth
    }

    /// The tokens that keep `state` alive. `stack` is scratch space reused between calls.
    pub fn mask(&self, automaton: &Automaton, state: &State, stack: &mut Vec<State>) -> TokenMask {
        let mut mask = TokenMask::empty(self.vocab_size);
        if stack.len() < self.max_depth + 1 {
            stack.resize_with(self.max_depth + 1, State::default);
        }
        stack[0].clone_from(state);
        let mut i = 0usize;
        while i < self.nodes.len() {
            let n = self.nodes[i];
            let d = n.depth as usize;
            let (lo, hi) = stack.split_at_mut(d);
            let dst = &mut hi[0];
            automaton.step(&lo[d - 1], n.byte, dst);
            if dst.is_dead() {
                i = n.end as usize;
                continue;
            }
            let start = n.tok_start as usize;
            for &id in &self.ids[start..start + n.tok_len as usize] {
                mask.allow(id);
            }
            i += 1;
        }
        mask
    }
}

/// A set of allowed token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMask {
    bits: Vec<u64>,
    count: usize,
}

impl TokenMask {
    pub(crate) fn empty(vocab_size: usize) -> Self {
        Self {
            bits: vec![0; vocab_size.div_ceil(64)],
            count: 0,
        }
    }

    pub(crate) fn allow(&mut self, id: u32) {
        let (w, b) = (id as usize / 64, id % 64);
        if let Some(word) = self.bits.get_mut(w) {
            if *word & (1 << b) == 0 {
                *word |= 1 << b;
                self.count += 1;
            }
        }
    }

    pub(crate) fn deny(&mut self, id: u32) {
        let (w, b) = (id as usize / 64, id % 64);
        if let Some(word) = self.bits.get_mut(w) {
            if *word & (1 << b) != 0 {
                *word &= !(1 << b);
                self.count -= 1;
            }
        }
    }

    /// Whether token `id` is allowed.
    pub fn allows(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// How many tokens are allowed.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The allowed ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut x = word;
            std::iter::from_fn(move || {
                if x == 0 {
                    return None;
                }
                let b = x.trailing_zeros();
                x &= x - 1;
                Some(w as u32 * 64 + b)
            })
        })
    }

    /// Set every disallowed entry of `logits` (one per token id) to minus infinity.
    pub fn apply(&self, logits: &mut [f32]) {
        for (w, chunk) in logits.chunks_mut(64).enumerate() {
            let word = self.bits.get(w).copied().unwrap_or(0);
            if word == u64::MAX {
                continue;
            }
            for (b, l) in chunk.iter_mut().enumerate() {
                if word & (1 << b) == 0 {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
    }
}
