//! The byte-level automaton of constrained decoding: which bytes may continue a JSON document
//! valid for a compiled [`Schema`], and the fewest bytes that can still close it.
//!
//! A [`State`] is a small set of [`Thread`]s (one per `anyOf` branch still alive), each a
//! fixed-size stack of [`Frame`]s: the value being written at each nesting level. Stepping a
//! state by one byte never allocates once its vector has grown, so the token trie walk in
//! [`crate::trie`] can step millions of times per second, and states are `Hash + Eq` so masks
//! can be cached per state.
//!
//! The grammar is JSON with bounded whitespace: no whitespace at all except at most one space
//! after a `:` or a `,`, so generation can never loop on whitespace. This module owns no
//! tokens and no model; it must not allocate per byte.

use crate::schema::{Node, NodeId, Schema, MAX_FRAC_DIGITS, MAX_INT_DIGITS};

/// Deepest nesting of values (each object or array level takes one frame, each scalar one).
pub(crate) const MAX_DEPTH: usize = 12;

/// Integer digits of a `number` (not `integer`): with [`MAX_FRAC_DIGITS`] the total stays
/// within what an f64 holds exactly.
const MAX_NUMBER_INT_DIGITS: u32 = 9;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum NumPhase {
    /// After `-`.
    Sign,
    /// The integer part is `0`.
    Zero,
    /// In the integer digits.
    Int,
    /// After `.`.
    Dot,
    /// In the fraction digits.
    Frac,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ObjPhase {
    /// After `{`.
    Open,
    /// After a member's value; members from `next` on may follow.
    AfterValue { next: u8 },
    /// After `,` (and `ws`: a space may still come).
    Comma { next: u8, ws: bool },
    /// Inside a key: `cands` are the properties still matching, `pos` bytes of the quoted key
    /// matched.
    Key { cands: u64, pos: u8 },
    /// After the key of property `prop`: `:` comes next.
    Colon { prop: u8 },
    /// The value of property `prop` is being written (the frame above).
    InValue { prop: u8 },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ArrPhase {
    Open,
    AfterItem,
    Comma { ws: bool },
    InItem,
}

/// The value being written at one nesting level.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Frame {
    /// A value of `node` starts with the next byte (`ws`: one space may come first).
    Value {
        node: NodeId,
        ws: bool,
    },
    /// `pos` bytes of the literals `cands` (a bit set) matched.
    Lit {
        node: NodeId,
        pos: u16,
        cands: u64,
    },
    /// Inside a string after the opening quote: `len` characters so far, `esc` after a
    /// backslash, `utf8` continuation bytes still due, the next one in `lo..=hi`.
    Str {
        node: NodeId,
        len: u32,
        esc: bool,
        utf8: u8,
        lo: u8,
        hi: u8,
    },
    Num {
        node: NodeId,
        phase: NumPhase,
        neg: bool,
        ndig: u8,
        nfrac: u8,
        frac: u32,
        int: u64,
    },
    Obj {
        node: NodeId,
        phase: ObjPhase,
    },
    Arr {
        node: NodeId,
        count: u32,
        phase: ArrPhase,
    },
}

const FILLER: Frame = Frame::Value { node: 0, ws: false };

/// One way the bytes so far can be read: the stack of open values (empty: a complete
/// document).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thread {
    len: u8,
    frames: [Frame; MAX_DEPTH],
}

impl PartialEq for Thread {
    fn eq(&self, other: &Self) -> bool {
        self.frames() == other.frames()
    }
}
impl Eq for Thread {}
impl std::hash::Hash for Thread {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.frames().hash(state);
    }
}

impl Thread {
    fn frames(&self) -> &[Frame] {
        &self.frames[..self.len as usize]
    }

    fn top(&self) -> Option<Frame> {
        self.frames().last().copied()
    }

    fn set_top(&mut self, f: Frame) {
        if self.len > 0 {
            self.frames[self.len as usize - 1] = f;
        }
    }

    fn push(&mut self, f: Frame) -> bool {
        if (self.len as usize) < MAX_DEPTH {
            self.frames[self.len as usize] = f;
            self.len += 1;
            true
        } else {
            false
        }
    }

    fn pop(&mut self) {
        if self.len > 0 {
            self.len -= 1;
            self.frames[self.len as usize] = FILLER;
        }
    }
}

/// Every reading of the bytes so far. Empty: the bytes cannot start a valid document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct State {
    pub threads: Vec<Thread>,
}

impl State {
    pub fn is_dead(&self) -> bool {
        self.threads.is_empty()
    }

    /// A key for mask caches: string lengths far enough from their limit to matter to no
    /// token of `max_token_bytes` bytes are replaced by one canonical value.
    pub fn cache_key(&self, schema: &Schema, max_token_bytes: u32) -> State {
        let mut key = self.clone();
        for t in &mut key.threads {
            let len = t.len as usize;
            for f in &mut t.frames[..len] {
                if let Frame::Str { node, len, .. } = f {
                    if let Node::String {
                        min,
                        max: Some(max),
                    } = schema.node(*node)
                    {
                        if *len >= *min && max.saturating_sub(*len) >= max_token_bytes {
                            *len = u32::MAX;
                        }
                    }
                }
            }
        }
        key
    }
}

impl State {
    /// When the only reading is inside a string with a `maxLength`, past its `minLength`
    /// and not inside an escape or a character: the same state with unlimited room, and the
    /// characters of room left. Its mask is the unlimited state's mask less the tokens that
    /// write more string characters than that.
    pub fn string_room(&self, schema: &Schema) -> Option<(State, u32)> {
        let [t] = self.threads.as_slice() else {
            return None;
        };
        let Some(Frame::Str {
            node,
            len,
            esc: false,
            utf8: 0,
            lo,
            hi,
        }) = t.top()
        else {
            return None;
        };
        let Node::String {
            min,
            max: Some(max),
        } = schema.node(node)
        else {
            return None;
        };
        if len == u32::MAX || len < *min {
            return None;
        }
        let mut open = *t;
        open.set_top(Frame::Str {
            node,
            len: u32::MAX,
            esc: false,
            utf8: 0,
            lo,
            hi,
        });
        Some((
            State {
                threads: vec![open],
            },
            max.saturating_sub(len),
        ))
    }
}

/// String characters a token writes when it starts inside a string (no escape or character
/// pending), up to its first unescaped quote; a trailing backslash counts as the character
/// it starts.
pub(crate) fn string_chars(bytes: &[u8]) -> u32 {
    let (mut n, mut esc) = (0u32, false);
    for &b in bytes {
        if esc {
            esc = false;
            continue;
        }
        match b {
            b'\\' => {
                esc = true;
                n += 1;
            }
            b'"' => break,
            0x80..=0xBF => {}
            _ => n += 1,
        }
    }
    n
}

/// The automaton over one compiled schema.
#[derive(Debug, Clone)]
pub(crate) struct Automaton {
    pub schema: Schema,
}

fn num_frame(node: NodeId, phase: NumPhase, neg: bool) -> Frame {
    Frame::Num {
        node,
        phase,
        neg,
        ndig: 0,
        nfrac: 0,
        frac: 0,
        int: 0,
    }
}

impl Automaton {
    pub fn new(schema: Schema) -> Self {
        Self { schema }
    }

    /// The state before the first byte.
    pub fn start(&self) -> State {
        let mut t = Thread {
            len: 0,
            frames: [FILLER; MAX_DEPTH],
        };
        t.push(Frame::Value {
            node: self.schema.root,
            ws: false,
        });
        State { threads: vec![t] }
    }

    /// Deepest frame stack the schema can need.
    pub fn depth(&self, node: NodeId) -> usize {
        match self.schema.node(node) {
            Node::Object { props } => {
                1 + props.iter().map(|p| self.depth(p.node)).max().unwrap_or(0)
            }
            Node::Array { item, .. } => 1 + self.depth(*item),
            Node::AnyOf(b) => b.iter().map(|&n| self.depth(n)).max().unwrap_or(1),
            _ => 1,
        }
    }

    /// `out` = `src` stepped by byte `b` (`out` is cleared first).
    pub fn step(&self, src: &State, b: u8, out: &mut State) {
        out.threads.clear();
        for t in &src.threads {
            self.step_thread(t, b, &mut out.threads);
        }
        if out.threads.len() > 1 {
            let mut i = 1;
            while i < out.threads.len() {
                if out.threads[..i].contains(&out.threads[i]) {
                    out.threads.swap_remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Step `state` in place by all of `bytes`; false (and `state` dead) when rejected.
    pub fn advance(&self, state: &mut State, bytes: &[u8]) -> bool {
        let mut next = State::default();
        for &b in bytes {
            self.step(state, b, &mut next);
            std::mem::swap(state, &mut next);
            if state.is_dead() {
                return false;
            }
        }
        true
    }

    /// Whether the bytes so far are a complete document.
    pub fn is_complete(&self, state: &State) -> bool {
        state.threads.iter().any(|t| match t.len {
            0 => true,
            1 => t.top().is_some_and(|f| self.can_end(f)),
            _ => false,
        })
    }

    /// Fewest bytes that complete the document (`u32::MAX` when dead).
    pub fn min_close(&self, state: &State) -> u32 {
        state
            .threads
            .iter()
            .map(|t| {
                t.frames()
                    .iter()
                    .fold(0u32, |acc, f| acc.saturating_add(self.rest(*f)))
            })
            .min()
            .unwrap_or(u32::MAX)
    }

    /// Whether a literal or number frame may end here (its value is complete).
    fn can_end(&self, f: Frame) -> bool {
        match f {
            Frame::Lit { node, pos, cands } => match self.schema.node(node) {
                Node::Literal(v) => bits(cands).any(|i| v[i].len() == pos as usize),
                _ => false,
            },
            Frame::Num { .. } => self.num_cost(f) == Some(0),
            _ => false,
        }
    }

    /// Pop the finished top frame and tell its parent.
    fn finish(t: &mut Thread) {
        t.pop();
        match t.top() {
            Some(Frame::Obj {
                node,
                phase: ObjPhase::InValue { prop },
            }) => t.set_top(Frame::Obj {
                node,
                phase: ObjPhase::AfterValue { next: prop + 1 },
            }),
            Some(Frame::Arr {
                node,
                count,
                phase: ArrPhase::InItem,
            }) => t.set_top(Frame::Arr {
                node,
                count: count.saturating_add(1),
                phase: ArrPhase::AfterItem,
            }),
            _ => {}
        }
    }

    fn with_top(t: &Thread, f: Frame) -> Thread {
        let mut n = *t;
        n.set_top(f);
        n
    }

    fn step_thread(&self, t: &Thread, b: u8, out: &mut Vec<Thread>) {
        let Some(top) = t.top() else {
            return; // a complete document takes nothing more
        };
        match top {
            Frame::Value { node, ws } => {
                if ws && b == b' ' {
                    out.push(Self::with_top(t, Frame::Value { node, ws: false }));
                    return;
                }
                let mut base = *t;
                base.pop();
                self.start_value(&base, node, b, out);
            }
            Frame::Lit { node, pos, cands } => {
                let Node::Literal(v) = self.schema.node(node) else {
                    return;
                };
                let p = pos as usize;
                let mut next = 0u64;
                for i in bits(cands) {
                    if v[i].len() > p && v[i][p] == b {
                        next |= 1 << i;
                    }
                }
                if next != 0 {
                    out.push(Self::with_top(
                        t,
                        Frame::Lit {
                            node,
                            pos: pos + 1,
                            cands: next,
                        },
                    ));
                }
                if self.can_end(top) {
                    self.close_and_step(t, b, out);
                }
            }
            Frame::Str {
                node,
                len,
                esc,
                utf8,
                lo,
                hi,
            } => {
                let Node::String { min, max } = *self.schema.node(node) else {
                    return;
                };
                // `len == u32::MAX`: past `minLength` with unlimited room (a cache key state,
                // see `State::cache_key`).
                let room = len == u32::MAX || max.is_none_or(|m| len < m);
                let s = |len, esc, utf8, lo, hi| Frame::Str {
                    node,
                    len,
                    esc,
                    utf8,
                    lo,
                    hi,
                };
                // Without maxLength, lengths past minLength all behave alike: saturate.
                let grow = |len: u32| match max {
                    _ if len == u32::MAX => len,
                    None => (len + 1).min(min),
                    Some(_) => len + 1,
                };
                if utf8 > 0 {
                    if (lo..=hi).contains(&b) {
                        out.push(Self::with_top(t, s(len, false, utf8 - 1, 0x80, 0xBF)));
                    }
                    return;
                }
                if esc {
                    if matches!(b, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                        out.push(Self::with_top(t, s(grow(len), false, 0, 0, 0)));
                    }
                    return;
                }
                match b {
                    b'"' if len >= min => {
                        let mut n = *t;
                        Self::finish(&mut n);
                        out.push(n);
                    }
                    b'"' => {}
                    b'\\' if room => out.push(Self::with_top(t, s(len, true, 0, 0, 0))),
                    0x20..=0x7F if room => {
                        out.push(Self::with_top(t, s(grow(len), false, 0, 0, 0)))
                    }
                    0xC2..=0xDF if room => {
                        out.push(Self::with_top(t, s(grow(len), false, 1, 0x80, 0xBF)))
                    }
                    0xE0..=0xEF if room => {
                        let (lo, hi) = match b {
                            0xE0 => (0xA0, 0xBF),
                            0xED => (0x80, 0x9F),
                            _ => (0x80, 0xBF),
                        };
                        out.push(Self::with_top(t, s(grow(len), false, 2, lo, hi)))
                    }
                    0xF0..=0xF4 if room => {
                        let (lo, hi) = match b {
                            0xF0 => (0x90, 0xBF),
                            0xF4 => (0x80, 0x8F),
                            _ => (0x80, 0xBF),
                        };
                        out.push(Self::with_top(t, s(grow(len), false, 3, lo, hi)))
                    }
                    _ => {}
                }
            }
            Frame::Num { .. } => {
                if let Some(f) = self.num_next(top, b) {
                    out.push(Self::with_top(t, f));
                }
                if self.can_end(top) {
                    self.close_and_step(t, b, out);
                }
            }
            Frame::Obj { node, phase } => self.step_obj(t, node, phase, b, out),
            Frame::Arr { node, count, phase } => {
                let Node::Array { item, min, max } = *self.schema.node(node) else {
                    return;
                };
                let arr = |count, phase| Frame::Arr { node, count, phase };
                match phase {
                    ArrPhase::Open => {
                        if b == b']' && min == 0 {
                            let mut n = *t;
                            Self::finish(&mut n);
                            out.push(n);
                        } else if max != Some(0) {
                            let base = Self::with_top(t, arr(count, ArrPhase::InItem));
                            self.start_value(&base, item, b, out);
                        }
                    }
                    ArrPhase::AfterItem => {
                        if b == b',' && max.is_none_or(|m| count < m) {
                            out.push(Self::with_top(t, arr(count, ArrPhase::Comma { ws: true })));
                        } else if b == b']' && count >= min {
                            let mut n = *t;
                            Self::finish(&mut n);
                            out.push(n);
                        }
                    }
                    ArrPhase::Comma { ws } => {
                        if ws && b == b' ' {
                            out.push(Self::with_top(t, arr(count, ArrPhase::Comma { ws: false })));
                        } else {
                            let base = Self::with_top(t, arr(count, ArrPhase::InItem));
                            self.start_value(&base, item, b, out);
                        }
                    }
                    ArrPhase::InItem => {}
                }
            }
        }
    }

    /// The top frame (a literal or number) ends here: close it and give `b` to its parent.
    fn close_and_step(&self, t: &Thread, b: u8, out: &mut Vec<Thread>) {
        let mut n = *t;
        Self::finish(&mut n);
        self.step_thread(&n, b, out);
    }

    /// Properties of `obj` that may come next when members from `next` on remain: up to and
    /// including the first required one.
    fn key_cands(&self, obj: NodeId, next: usize) -> u64 {
        let Node::Object { props } = self.schema.node(obj) else {
            return 0;
        };
        let mut c = 0u64;
        for (i, p) in props.iter().enumerate().skip(next) {
            c |= 1 << i;
            if p.required {
                break;
            }
        }
        c
    }

    fn step_obj(&self, t: &Thread, node: NodeId, phase: ObjPhase, b: u8, out: &mut Vec<Thread>) {
        let Node::Object { props } = self.schema.node(node) else {
            return;
        };
        let obj = |phase| Frame::Obj { node, phase };
        let may_close = |next: usize| !props.iter().skip(next).any(|p| p.required);
        let close = |out: &mut Vec<Thread>| {
            let mut n = *t;
            Self::finish(&mut n);
            out.push(n);
        };
        let key_start = |next: usize, out: &mut Vec<Thread>| {
            let cands = self.key_cands(node, next);
            if b == b'"' && cands != 0 {
                out.push(Self::with_top(t, obj(ObjPhase::Key { cands, pos: 1 })));
            }
        };
        match phase {
            ObjPhase::Open => {
                if b == b'}' && may_close(0) {
                    close(out);
                } else {
                    key_start(0, out);
                }
            }
            ObjPhase::AfterValue { next } => {
                let next = next as usize;
                if b == b',' && self.key_cands(node, next) != 0 {
                    out.push(Self::with_top(
                        t,
                        obj(ObjPhase::Comma {
                            next: next as u8,
                            ws: true,
                        }),
                    ));
                } else if b == b'}' && may_close(next) {
                    close(out);
                }
            }
            ObjPhase::Comma { next, ws } => {
                if ws && b == b' ' {
                    out.push(Self::with_top(t, obj(ObjPhase::Comma { next, ws: false })));
                } else {
                    key_start(next as usize, out);
                }
            }
            ObjPhase::Key { cands, pos } => {
                let p = pos as usize;
                let mut next = 0u64;
                let mut done = None;
                for i in bits(cands) {
                    let key = &props[i].key;
                    if key.len() > p && key[p] == b {
                        next |= 1 << i;
                        if key.len() == p + 1 {
                            done = Some(i);
                        }
                    }
                }
                if let Some(i) = done {
                    out.push(Self::with_top(t, obj(ObjPhase::Colon { prop: i as u8 })));
                } else if next != 0 {
                    out.push(Self::with_top(
                        t,
                        obj(ObjPhase::Key {
                            cands: next,
                            pos: pos + 1,
                        }),
                    ));
                }
            }
            ObjPhase::Colon { prop } => {
                if b == b':' {
                    let mut n = Self::with_top(t, obj(ObjPhase::InValue { prop }));
                    if n.push(Frame::Value {
                        node: props[prop as usize].node,
                        ws: true,
                    }) {
                        out.push(n);
                    }
                }
            }
            ObjPhase::InValue { .. } => {}
        }
    }

    /// A value of `node` starting with byte `b`, pushed onto `base`.
    fn start_value(&self, base: &Thread, node: NodeId, b: u8, out: &mut Vec<Thread>) {
        let push = |f: Frame, out: &mut Vec<Thread>| {
            let mut n = *base;
            if n.push(f) {
                out.push(n);
            }
        };
        match self.schema.node(node) {
            Node::Literal(v) => {
                let mut cands = 0u64;
                for (i, l) in v.iter().enumerate() {
                    if l.first() == Some(&b) {
                        cands |= 1 << i;
                    }
                }
                if cands != 0 {
                    push(
                        Frame::Lit {
                            node,
                            pos: 1,
                            cands,
                        },
                        out,
                    );
                }
            }
            Node::String { .. } => {
                if b == b'"' {
                    push(
                        Frame::Str {
                            node,
                            len: 0,
                            esc: false,
                            utf8: 0,
                            lo: 0,
                            hi: 0,
                        },
                        out,
                    );
                }
            }
            Node::Number { .. } => {
                let f = if b == b'-' {
                    Some(num_frame(node, NumPhase::Sign, true))
                } else {
                    // A virtual "no digits yet" positive state, then the digit.
                    self.num_next(num_frame(node, NumPhase::Sign, false), b)
                };
                if let Some(f) = f.filter(|f| self.num_cost(*f).is_some()) {
                    push(f, out);
                }
            }
            Node::Object { .. } => {
                if b == b'{' {
                    push(
                        Frame::Obj {
                            node,
                            phase: ObjPhase::Open,
                        },
                        out,
                    );
                }
            }
            Node::Array { .. } => {
                if b == b'[' {
                    push(
                        Frame::Arr {
                            node,
                            count: 0,
                            phase: ArrPhase::Open,
                        },
                        out,
                    );
                }
            }
            Node::AnyOf(branches) => {
                for &br in branches {
                    self.start_value(base, br, b, out);
                }
            }
        }
    }

    /// The number frame after byte `b`, if the number can still end in range.
    fn num_next(&self, f: Frame, b: u8) -> Option<Frame> {
        let Frame::Num {
            node,
            phase,
            neg,
            ndig,
            nfrac,
            frac,
            int,
        } = f
        else {
            return None;
        };
        let Node::Number { integer, .. } = *self.schema.node(node) else {
            return None;
        };
        let max_int = if integer {
            MAX_INT_DIGITS
        } else {
            MAX_NUMBER_INT_DIGITS
        };
        let d = b.wrapping_sub(b'0');
        let mk = |phase, ndig, int, nfrac, frac| Frame::Num {
            node,
            phase,
            neg,
            ndig,
            nfrac,
            frac,
            int,
        };
        let next = match (phase, b) {
            (NumPhase::Sign, b'0') => mk(NumPhase::Zero, 1, 0, 0, 0),
            (NumPhase::Sign, b'1'..=b'9') => mk(NumPhase::Int, 1, d as u64, 0, 0),
            (NumPhase::Int, b'0'..=b'9') if (ndig as u32) < max_int => {
                mk(NumPhase::Int, ndig + 1, int * 10 + d as u64, 0, 0)
            }
            (NumPhase::Zero | NumPhase::Int, b'.') if !integer => {
                mk(NumPhase::Dot, ndig, int, 0, 0)
            }
            (NumPhase::Dot, b'0'..=b'9') => mk(NumPhase::Frac, ndig, int, 1, d as u32),
            (NumPhase::Frac, b'0'..=b'9') if (nfrac as u32) < MAX_FRAC_DIGITS => {
                mk(NumPhase::Frac, ndig, int, nfrac + 1, frac * 10 + d as u32)
            }
            _ => return None,
        };
        self.num_cost(next).map(|_| next)
    }

    /// Fewest bytes that end number frame `f` in range (`Some(0)`: it may end now).
    fn num_cost(&self, f: Frame) -> Option<u32> {
        let Frame::Num {
            node,
            phase,
            neg,
            ndig,
            nfrac,
            frac,
            int,
        } = f
        else {
            return None;
        };
        let Node::Number { integer, lo, hi } = *self.schema.node(node) else {
            return None;
        };
        number_cost(
            integer,
            lo,
            hi,
            phase,
            neg,
            ndig as u32,
            int,
            nfrac as u32,
            frac,
        )
    }

    /// Fewest bytes that finish frame `f` (for a frame below the top: what is left once the
    /// value above it is done).
    fn rest(&self, f: Frame) -> u32 {
        let s = &self.schema;
        match f {
            Frame::Value { node, .. } => s.min_len(node),
            Frame::Lit { node, pos, cands } => match s.node(node) {
                Node::Literal(v) => bits(cands)
                    .map(|i| v[i].len().saturating_sub(pos as usize) as u32)
                    .min()
                    .unwrap_or(u32::MAX),
                _ => u32::MAX,
            },
            Frame::Str {
                node,
                len,
                esc,
                utf8,
                ..
            } => {
                let min = match s.node(node) {
                    Node::String { min, .. } => *min,
                    _ => 0,
                };
                let len = if len == u32::MAX { min } else { len };
                utf8 as u32 + esc as u32 + min.saturating_sub(len + esc as u32) + 1
            }
            Frame::Num { .. } => self.num_cost(f).unwrap_or(u32::MAX),
            Frame::Obj { node, phase } => {
                let Node::Object { props } = s.node(node) else {
                    return u32::MAX;
                };
                let after = |j: usize| s.required_cost(node, j + 1, false);
                match phase {
                    ObjPhase::Open => s.required_cost(node, 0, true),
                    ObjPhase::AfterValue { next } => s.required_cost(node, next as usize, false),
                    ObjPhase::Comma { next, .. } => bits(self.key_cands(node, next as usize))
                        .map(|j| s.member_cost(&props[j]).saturating_add(after(j)))
                        .min()
                        .unwrap_or(u32::MAX),
                    ObjPhase::Key { cands, pos } => bits(cands)
                        .map(|j| {
                            (props[j].key.len() as u32 - pos as u32)
                                .saturating_add(1 + s.min_len(props[j].node))
                                .saturating_add(after(j))
                        })
                        .min()
                        .unwrap_or(u32::MAX),
                    ObjPhase::Colon { prop } => (1 + s.min_len(props[prop as usize].node))
                        .saturating_add(after(prop as usize)),
                    ObjPhase::InValue { prop } => after(prop as usize),
                }
            }
            Frame::Arr { node, count, phase } => {
                let Node::Array { item, min, .. } = *s.node(node) else {
                    return u32::MAX;
                };
                let ml = s.min_len(item).saturating_add(1);
                let need = |c: u32| min.saturating_sub(c).saturating_mul(ml);
                match phase {
                    ArrPhase::Open if min == 0 => 1,
                    ArrPhase::Open => need(0), // n items, n - 1 commas, `]`
                    ArrPhase::AfterItem => need(count).saturating_add(1),
                    ArrPhase::Comma { .. } => {
                        (ml - 1).saturating_add(need(count + 1)).saturating_add(1)
                    }
                    ArrPhase::InItem => need(count + 1).saturating_add(1),
                }
            }
        }
    }
}

/// The indices of the set bits of `x`.
fn bits(mut x: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if x == 0 {
            return None;
        }
        let i = x.trailing_zeros() as usize;
        x &= x - 1;
        Some(i)
    })
}

fn pow10(k: u32) -> f64 {
    10f64.powi(k as i32)
}

/// Whether some point `a + i·step` (i ≥ 0) below `b` lies in `[lo, hi]`.
fn grid_hits(a: f64, b: f64, lo: f64, hi: f64, step: f64) -> bool {
    let eps = step * 1e-6;
    let start = a.max(lo);
    let i = ((start - a) / step - 1e-6).ceil().max(0.0);
    let x = a + i * step;
    x <= hi + eps && x < b - step * 0.5
}

/// Fewest bytes that end a number in `[lo, hi]` from the given prefix (see [`Frame::Num`];
/// `NumPhase::Sign` with `neg` false is the empty prefix). `None` when no ending exists.
#[allow(clippy::too_many_arguments)]
fn number_cost(
    integer: bool,
    lo: f64,
    hi: f64,
    phase: NumPhase,
    neg: bool,
    ndig: u32,
    int: u64,
    nfrac: u32,
    frac: u32,
) -> Option<u32> {
    // Work on the magnitude X >= 0 of the value: X in [mlo, mhi]; a negative value must not
    // be zero ("-0").
    let (mut mlo, mhi) = if neg { (-hi, -lo) } else { (lo, hi) };
    mlo = mlo.max(0.0);
    if neg {
        mlo = mlo.max(if integer { 1.0 } else { 1e-9 });
    }
    if mlo > mhi {
        return None;
    }
    let max_int = if integer {
        MAX_INT_DIGITS
    } else {
        MAX_NUMBER_INT_DIGITS
    };
    let mut best: Option<u32> = None;
    let mut offer = |c: u32| best = Some(best.map_or(c, |b| b.min(c)));
    match phase {
        NumPhase::Sign | NumPhase::Zero | NumPhase::Int => {
            for k in 0..=max_int.saturating_sub(ndig) {
                let (a, b) = match phase {
                    NumPhase::Sign => match k {
                        0 => continue,
                        1 => (0.0, 9.0),
                        _ => (pow10(k - 1), pow10(k) - 1.0),
                    },
                    NumPhase::Zero if k == 0 => (0.0, 0.0),
                    NumPhase::Zero => break,
                    _ => {
                        let base = int as f64 * pow10(k);
                        (base, base + pow10(k) - 1.0)
                    }
                };
                // An integer ending.
                let x = a.max(mlo.ceil());
                if x <= b && x <= mhi {
                    offer(k);
                }
                if !integer {
                    for m in 1..=MAX_FRAC_DIGITS {
                        if grid_hits(a, b + 1.0, mlo, mhi, pow10(m).recip()) {
                            offer(k + 1 + m);
                            break;
                        }
                    }
                }
            }
        }
        NumPhase::Dot | NumPhase::Frac => {
            let width = pow10(nfrac).recip();
            let a = int as f64 + frac as f64 * width;
            if phase == NumPhase::Frac && a >= mlo && a <= mhi {
                offer(0);
            }
            for m in 1..=MAX_FRAC_DIGITS.saturating_sub(nfrac) {
                if grid_hits(a, a + width, mlo, mhi, pow10(nfrac + m).recip()) {
                    offer(m);
                    break;
                }
            }
        }
    }
    best
}

/// Bytes of the shortest number in `[lo, hi]` (`None`: none can be written).
pub(crate) fn number_min_len(integer: bool, lo: f64, hi: f64) -> Option<u32> {
    let pos = number_cost(integer, lo, hi, NumPhase::Sign, false, 0, 0, 0, 0);
    let neg = number_cost(integer, lo, hi, NumPhase::Sign, true, 0, 0, 0, 0).map(|c| c + 1);
    match (pos, neg) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn automaton(schema: Value) -> Automaton {
        Automaton::new(Schema::compile(&schema).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Every prefix of `doc` is alive, the whole is complete, and the shortest closing
    /// estimate never exceeds what is really left.
    fn accepts(a: &Automaton, doc: &str) {
        let mut s = a.start();
        for (i, &b) in doc.as_bytes().iter().enumerate() {
            assert!(
                a.advance(&mut s, &[b]),
                "rejected {:?} after {:?}",
                b as char,
                &doc[..i]
            );
            assert!(!a.is_complete(&s) || i + 1 == doc.len() || a.min_close(&s) == 0);
        }
        assert!(a.is_complete(&s), "incomplete: {doc}");
        assert_eq!(a.min_close(&s), 0, "{doc}");
    }

    /// `doc` is rejected at its last byte (every earlier prefix is accepted).
    fn rejects_last(a: &Automaton, doc: &str) {
        let mut s = a.start();
        let (head, last) = doc.as_bytes().split_at(doc.len() - 1);
        assert!(a.advance(&mut s, head), "prefix rejected: {doc}");
        assert!(!a.advance(&mut s, last), "accepted: {doc}");
    }

    /// `doc` is accepted as bytes but not complete.
    fn incomplete(a: &Automaton, doc: &str) {
        let mut s = a.start();
        assert!(a.advance(&mut s, doc.as_bytes()), "rejected: {doc}");
        assert!(!a.is_complete(&s), "complete: {doc}");
    }

    /// Following the shortest closing path byte by byte always works and takes exactly
    /// `min_close` bytes.
    fn closes_in_min(a: &Automaton, prefix: &str) {
        let mut s = a.start();
        assert!(a.advance(&mut s, prefix.as_bytes()), "rejected: {prefix}");
        let mut left = a.min_close(&s);
        let mut text = prefix.to_owned();
        while left > 0 {
            let mut found = false;
            for b in 0x20u8..0x7f {
                let mut n = s.clone();
                if a.advance(&mut n, &[b]) && a.min_close(&n) == left - 1 {
                    s = n;
                    text.push(b as char);
                    found = true;
                    break;
                }
            }
            assert!(found, "no byte closes {text:?} ({left} left)");
            left -= 1;
        }
        assert!(a.is_complete(&s), "{text}");
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }

    fn object_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 2, "maxLength": 5},
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
                "tags": {"type": "array", "items": {"enum": ["a", "bc"]}, "maxItems": 2},
                "ok": {"type": "boolean"},
                "score": {"type": "number", "minimum": -1.5, "maximum": 2.25}
            },
            "required": ["name", "age"]
        })
    }

    #[test]
    fn objects_accept_valid_prefixes() {
        let a = automaton(object_schema());
        for doc in [
            r#"{"name":"Bob","age":42}"#,
            r#"{"name": "Al", "age": 0,"ok":true}"#,
            r#"{"name":"Éva","age":120,"ok":false,"score":-1.5}"#,
            r#"{"name":"a\"b","age":7,"score":2.25,"tags":["bc","a"]}"#,
            r#"{"name":"xy","age":1,"score":0.125,"tags":[]}"#,
        ] {
            accepts(&a, doc);
            closes_in_min(&a, &doc[..doc.len() / 2]);
        }
        for prefix in [
            "",
            "{",
            r#"{"na"#,
            r#"{"name":"#,
            r#"{"name":"x"#,
            r#"{"name":"xy","age":1"#,
        ] {
            closes_in_min(&a, prefix);
        }
    }

    #[test]
    fn objects_reject_invalid_continuations() {
        let a = automaton(object_schema());
        rejects_last(&a, r#"{"nb"#); // wrong key
        rejects_last(&a, r#"{"a"#); // required `name` must come first
        rejects_last(&a, r#"{"name":"Bob"}"#); // missing required `age`
        rejects_last(&a, r#"{"name":"B""#); // too short
        rejects_last(&a, r#"{"name":"Bobby1"#); // too long
        rejects_last(&a, r#"{"name":"Bob","age":121"#); // above maximum
        rejects_last(&a, r#"{"name":"Bob","age":-"#); // below minimum
        rejects_last(&a, r#"{"name":"Bob","age":01"#); // leading zero
        rejects_last(&a, r#"{"name":"Bob","age":4."#); // no fraction in an integer
        rejects_last(&a, r#"{"name":"Bob","age":4,"tags":["c"#); // enum outside
        rejects_last(&a, r#"{"name":"Bob","age":4,"tags":["a","a","#); // too many items
        rejects_last(&a, r#"{"name":"Bob","age":4,"score":2.26"#); // number above maximum
        rejects_last(&a, r#"{"name":"Bob","age":4,"score":-2"#);
        rejects_last(&a, r#"{ "#); // no space after `{`
        rejects_last(&a, r#"{"name":  "#); // at most one space
        rejects_last(&a, r#"{"name" "#); // no space before `:`
        rejects_last(&a, r#"{"name":"Bob","age":4} "#); // nothing after the end
        rejects_last(&a, "{\"name\":\"a\n"); // raw control character
        rejects_last(&a, r#"{"name":"a\u"#); // no \u escapes
        incomplete(&a, r#"{"name":"Bob","age":4"#);
        // Invalid UTF-8 is rejected.
        let mut s = a.start();
        assert!(a.advance(&mut s, br#"{"name":""#));
        assert!(!a.advance(&mut s.clone(), &[0xC0]));
        assert!(!a.advance(&mut s.clone(), &[0xE0, 0x80]));
        assert!(!a.advance(&mut s.clone(), &[0xC3, 0x28]));
    }

    #[test]
    fn any_of_tool_call_shape() {
        let a = automaton(json!({"anyOf": [
            {"type":"object","properties":{"tool":{"const":"calculator"},
              "arguments":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}},
              "required":["tool","arguments"]},
            {"type":"object","properties":{"final_answer":{"type":"string"}},"required":["final_answer"]}
        ]}));
        accepts(
            &a,
            r#"{"tool":"calculator","arguments":{"expression":"2+2"}}"#,
        );
        accepts(&a, r#"{"final_answer":"4"}"#);
        rejects_last(&a, r#"{"tool":"calc""#);
        rejects_last(
            &a,
            r#"{"tool":"calculator","arguments":{"expression":"1"},"#,
        );
        rejects_last(&a, r#"{"final_answer":"4","#);
        closes_in_min(&a, "{");
        closes_in_min(&a, r#"{"tool":"#);
        let mut s = a.start();
        a.advance(&mut s, b"{");
        assert_eq!(a.min_close(&s), r#""final_answer":""}"#.len() as u32);
    }

    #[test]
    fn numbers_and_literals_at_the_root() {
        let a = automaton(json!({"type": "integer", "minimum": -20, "maximum": 300}));
        for doc in ["0", "-20", "-1", "300", "299", "45"] {
            accepts(&a, doc);
        }
        rejects_last(&a, "-0");
        rejects_last(&a, "-21");
        rejects_last(&a, "301");
        rejects_last(&a, "3000");
        rejects_last(&a, "1.");
        let a = automaton(json!({"type": "number", "minimum": 0.5, "maximum": 0.75}));
        accepts(&a, "0.5");
        accepts(&a, "0.625");
        rejects_last(&a, "0.4");
        rejects_last(&a, "0.76");
        rejects_last(&a, "1");
        incomplete(&a, "0.");
        let a = automaton(json!({"enum": [1, 12, "x", null, {"k": [true]}]}));
        for doc in ["1", "12", "\"x\"", "null", r#"{"k":[true]}"#] {
            accepts(&a, doc);
        }
        rejects_last(&a, "13");
        rejects_last(&a, "nul ");
        let a = automaton(json!({"type": ["string", "null"], "maxLength": 1}));
        accepts(&a, "null");
        accepts(&a, "\"a\"");
        rejects_last(&a, "\"ab");
        assert_eq!(number_min_len(true, 100.0, 200.0), Some(3));
        assert_eq!(number_min_len(true, -200.0, -100.0), Some(4));
        assert_eq!(number_min_len(false, 0.25, 0.3), Some(3)); // 0.3
        assert_eq!(number_min_len(false, 0.25, 0.29), Some(4));
        assert_eq!(number_min_len(true, 0.25, 0.3), None);
    }

    #[test]
    fn arrays_of_objects_nest() {
        let a = automaton(json!({
            "type":"array","minItems":1,"maxItems":3,
            "items":{"type":"object","properties":{"id":{"type":"integer","minimum":1},"sub":{"type":"array","items":{"type":"number"}}},"required":["id"]}
        }));
        accepts(&a, r#"[{"id":1}]"#);
        accepts(
            &a,
            r#"[{"id":1}, {"id":22,"sub":[1.5, -2]},{"id":3,"sub":[]}]"#,
        );
        rejects_last(&a, "[]");
        rejects_last(&a, r#"[{"id":0"#);
        rejects_last(&a, r#"[{"id":1},{"id":1},{"id":1},"#);
        closes_in_min(&a, "");
        closes_in_min(&a, r#"[{"id":1,"sub":[2"#);
    }

    #[test]
    fn cache_keys_merge_far_string_lengths() {
        let schema = Schema::compile(&json!({"type":"string","maxLength":100}))
            .unwrap_or_else(|e| panic!("{e}"));
        let a = Automaton::new(schema);
        let mut s1 = a.start();
        let mut s2 = a.start();
        a.advance(&mut s1, b"\"abc");
        a.advance(&mut s2, b"\"abcdef");
        assert_ne!(s1, s2);
        assert_eq!(s1.cache_key(&a.schema, 16), s2.cache_key(&a.schema, 16));
        let mut s3 = a.start();
        a.advance(&mut s3, b"\"");
        a.advance(&mut s3, "x".repeat(90).as_bytes());
        assert_ne!(s1.cache_key(&a.schema, 16), s3.cache_key(&a.schema, 16));
    }
}
