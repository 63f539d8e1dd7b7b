//! The model: [`LocalModel`] loads a llama-architecture GGUF (through [`crate::convert`] for
//! fast tensor types), and generates chat completions token by token with streaming,
//! cancellation, sampling and usage/timing figures.
//!
//! The forward pass itself is in the private `llama` module: candle-transformers'
//! `quantized_llama` rewritten around our own AVX-512-VNNI kernel for the Q8_0 weights (one
//! repacked copy of the weights, no padding; an AVX2 kernel on CPUs without VNNI, candle's
//! `QMatMul` on others or with `SUPER_LOCAL_KERNEL=candle`).
//!
//! Context length: `llama.context_length` from the GGUF (8192 for SmolLM2), capped at
//! [`MAX_CONTEXT`]. When a rendered prompt does not fit together with a
//! reserve for the answer (`min(max_tokens, context / 4)` tokens), the prompt is truncated:
//! the leading system block (`<|im_start|>system ... <|im_end|>`, if not longer than half the
//! budget) and the most recent tail are kept, the middle is dropped, and
//! [`Generation::prompt_tokens_dropped`] says how many tokens went. Generation that reaches
//! the context end stops with [`StopReason::ContextFull`].

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_transformers::generation::{LogitsProcessor, Sampling};

use crate::chat::{ChatMessage, ChatTemplate};
use crate::convert::{self, WeightsOrigin};
use crate::llama::Llama;
use crate::structured::{JsonConstraint, JsonMatcher};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::{LocalError, DEFAULT_MODEL_FILE, DEFAULT_MODEL_NAME};

/// Prompt tokens fed to the model per forward pass.
const PREFILL_CHUNK: usize = 256;
/// Upper bound on the context length, whatever the GGUF says (the KV cache costs
/// `2 × layers × kv_heads × head_dim × 4` bytes per position: 46 KB for SmolLM2-135M).
pub const MAX_CONTEXT: usize = 8192;
/// `<|endoftext|>`: generation also stops on it.
const ENDOFTEXT_ID: u32 = 0;

/// Sampling settings of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Most tokens to generate (0 returns at once with [`StopReason::MaxTokens`]).
    pub max_tokens: usize,
    /// 0 (or less, or NaN) means greedy argmax: fully repeatable.
    pub temperature: f64,
    /// Nucleus sampling threshold; `None`, or a value outside (0, 1), samples from all tokens.
    pub top_p: Option<f64>,
    /// Seed of the sampler (ignored when greedy).
    pub seed: u64,
    /// Divides the logits of tokens generated in the last [`REPEAT_WINDOW`] steps (1.0: off).
    /// Small models loop under greedy decoding; 1.1 to 1.3 breaks most loops.
    pub repeat_penalty: f32,
}

/// How many recent generated tokens the repeat penalty looks at.
pub const REPEAT_WINDOW: usize = 64;

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: None,
            seed: 0,
            repeat_penalty: 1.0,
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The model produced an end token (`<|im_end|>` or `<|endoftext|>`).
    Eos,
    /// `max_tokens` were generated.
    MaxTokens,
    /// `on_token` returned `Break`, or the interrupt handle was set.
    Cancelled,
    /// The context window is full.
    ContextFull,
}

impl StopReason {
    /// The OpenAI-style `finish_reason`: `stop`, `length` or `cancelled`.
    pub fn finish_reason(self) -> &'static str {
        match self {
            StopReason::Eos => "stop",
            StopReason::MaxTokens | StopReason::ContextFull => "length",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// The result of [`LocalModel::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text: exactly the concatenation of the pieces given to `on_token`.
    pub text: String,
    /// Prompt tokens fed to the model (the rendered prompt's token count, less any dropped).
    pub prompt_tokens: usize,
    /// Tokens generated, not counting the end token.
    pub completion_tokens: usize,
    pub stop: StopReason,
    /// From the call to the first generated token (render, tokenize, prompt pass, sampling).
    pub time_to_first_token: Duration,
    /// The prompt forward passes alone.
    pub prompt_duration: Duration,
    /// From the first generated token to the end: `completion_tokens - 1` decode steps.
    pub generation_duration: Duration,
    /// The generated token ids (`completion_tokens` of them).
    pub tokens: Vec<u32>,
    /// Prompt tokens dropped to fit the context (0 normally).
    pub prompt_tokens_dropped: usize,
}

impl Generation {
    /// Prompt tokens per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens, self.prompt_duration)
    }

    /// Decode tokens per second (steps after the first token).
    pub fn generation_tokens_per_second(&self) -> f64 {
        per_second(
            self.completion_tokens.saturating_sub(1),
            self.generation_duration,
        )
    }
}

fn per_second(n: usize, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// What [`LocalModel::load`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadInfo {
    /// The file asked for.
    pub source: PathBuf,
    /// Where the weights came from (the file itself, the Q8_0 cache, a fresh conversion).
    pub origin: WeightsOrigin,
    /// Tensors re-quantized to Q8_0.
    pub requantized_tensors: usize,
    /// Wall time of the whole load.
    pub duration: Duration,
    /// Usable context length in tokens.
    pub context_length: usize,
    /// CPU threads in effect.
    pub threads: usize,
    /// Always false: the weights used to be zero-padded for candle's AVX-512-VNNI kernels;
    /// our own kernel needs no padding. Kept for compatibility.
    pub padded_for_vnni: bool,
}

/// The embedded model, ready to generate. `Send`; one generation at a time (`&mut self`).
pub struct LocalModel {
    name: String,
    weights: Llama,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    context_length: usize,
    stop_ids: Vec<u32>,
    stop_on_eos: bool,
    info: LoadInfo,
    interrupt: Arc<AtomicBool>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("name", &self.name)
            .field("context_length", &self.context_length)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn model_name_for(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file == DEFAULT_MODEL_FILE || file == format!("{DEFAULT_MODEL_FILE}.q8_0.gguf") {
        return DEFAULT_MODEL_NAME.to_owned();
    }
    file.strip_suffix(".gguf").unwrap_or(&file).to_lowercase()
}

impl LocalModel {
    /// Load a GGUF model. Slow tensor types (Q4_1, Q5_0, Q5_1) are re-quantized to Q8_0 and
    /// the result cached next to the file as `<file>.q8_0.gguf` (in memory when that directory
    /// is read-only); see [`crate::convert`]. Applies the default thread count first if
    /// [`crate::set_threads`] was not called.
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let start = Instant::now();
        crate::ensure_threads();
        if !path.is_file() {
            return Err(LocalError::ModelNotFound { path: path.into() });
        }
        let convert::Prepared {
            content,
            mut reader,
            origin,
            requantized,
        } = convert::prepare(path)?;
        let md_path = match &origin {
            WeightsOrigin::Cache(p) | WeightsOrigin::Converted(p) => p.clone(),
            WeightsOrigin::Source | WeightsOrigin::InMemory => path.to_path_buf(),
        };

        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(LocalError::Metadata {
                path: md_path,
                message: format!(
                    "unsupported general.architecture {arch:?} (only \"llama\" is supported)"
                ),
            });
        }
        let tokenizer = Tokenizer::from_gguf(&content).map_err(|e| match e {
            LocalError::Tokenizer { message, .. } => LocalError::Tokenizer {
                path: md_path.clone(),
                message,
            },
            other => other,
        })?;
        let template = ChatTemplate::from_gguf(&content, &tokenizer);
        let mut stop_ids = vec![ENDOFTEXT_ID];
        if let Some(eos) = tokenizer.eos_id() {
            stop_ids.push(eos);
        }
        if let Some(im_end) = tokenizer.token_to_id("<|im_end|>") {
            stop_ids.push(im_end);
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();

        let weights = Llama::from_gguf(&content, &mut reader, MAX_CONTEXT, true).map_err(|e| {
            LocalError::Weights {
                path: md_path.clone(),
                message: e.to_string(),
            }
        })?;
        drop(reader);
        drop(content);
        let context_length = weights.dims().context_length;

        let info = LoadInfo {
            source: path.to_path_buf(),
            origin,
            requantized_tensors: requantized,
            duration: start.elapsed(),
            context_length,
            threads: crate::threads(),
            padded_for_vnni: false,
        };
        Ok(Self {
            name: model_name_for(path),
            weights,
            tokenizer,
            template,
            context_length,
            stop_ids,
            stop_on_eos: true,
            info,
            interrupt: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The model id for usage and metrics ([`DEFAULT_MODEL_NAME`] for the default file, else
    /// the lowercased file stem).
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template in use.
    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Usable context length in tokens (prompt plus completion).
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// What the load did and how long it took.
    pub fn load_info(&self) -> &LoadInfo {
        &self.info
    }

    /// Token ids that end generation (`<|endoftext|>`, `<|im_end|>`).
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Whether end tokens stop generation (default true). Turning it off makes every
    /// generation run to `max_tokens`, for benchmarks.
    pub fn set_stop_on_eos(&mut self, stop: bool) {
        self.stop_on_eos = stop;
    }

    /// A flag another thread can set to stop the current generation at the next prompt chunk
    /// or token ([`StopReason::Cancelled`]). [`LocalModel::generate`] clears it on entry.
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt)
    }

    /// Render messages with the model's chat template and the assistant generation prompt
    /// (ChatML when the template is absent or fails). SmolLM2's template adds its own default
    /// system message when the first message is not a system message.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, LocalError> {
        self.template.render(messages)
    }

    /// Tokens of the rendered prompt: what [`Generation::prompt_tokens`] will report (unless
    /// the prompt must be truncated to fit the context).
    pub fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, LocalError> {
        Ok(self.tokenizer.token_count(&self.render_chat(messages)?))
    }

    /// Generate the assistant's reply to `messages`. Each decoded piece of text goes to
    /// `on_token` as soon as it is complete UTF-8; returning `ControlFlow::Break(())` stops at
    /// once with [`StopReason::Cancelled`].
    pub fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerateParams,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, LocalError> {
        self.generate_inner(messages, params, None, on_token)
    }

    /// Compile a JSON Schema for this model's vocabulary (see [`crate::schema`] for the
    /// supported subset). Compile once per schema and reuse it: masks are cached inside.
    pub fn compile_constraint(
        &self,
        schema: &serde_json::Value,
    ) -> Result<Arc<JsonConstraint>, LocalError> {
        Ok(Arc::new(JsonConstraint::compile(schema, &self.tokenizer)?))
    }

    /// Like [`LocalModel::generate`], but every token is masked so the reply is a JSON
    /// document valid for `constraint`'s schema, complete within `params.max_tokens` (fails up
    /// front when the shortest valid document does not fit). The mask is applied after the
    /// repeat penalty; end tokens are allowed only once the document is complete, and
    /// generation stops ([`StopReason::Eos`]) as soon as nothing can follow it.
    pub fn generate_json(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerateParams,
        constraint: &Arc<JsonConstraint>,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, LocalError> {
        self.generate_inner(messages, params, Some(constraint), on_token)
    }

    fn generate_inner(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerateParams,
        constraint: Option<&Arc<JsonConstraint>>,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, LocalError> {
        let start = Instant::now();
        let mut matcher = match constraint {
            Some(c) => Some(c.matcher(params.max_tokens)?),
            None => None,
        };
        self.interrupt.store(false, Ordering::SeqCst);
        let prompt = self.render_chat(messages)?;
        let tokens = self.tokenizer.encode(&prompt);
        if tokens.is_empty() {
            return Err(LocalError::EmptyPrompt);
        }
        let reserve = params.max_tokens.clamp(1, (self.context_length / 4).max(1));
        let (tokens, dropped) = fit_to_context(
            tokens,
            self.context_length.saturating_sub(reserve).max(1),
            &self.stop_ids,
        );
        let mut out = Generation {
            text: String::new(),
            prompt_tokens: tokens.len(),
            completion_tokens: 0,
            stop: StopReason::MaxTokens,
            time_to_first_token: Duration::ZERO,
            prompt_duration: Duration::ZERO,
            generation_duration: Duration::ZERO,
            tokens: Vec::new(),
            prompt_tokens_dropped: dropped,
        };
        if params.max_tokens == 0 {
            return Ok(out);
        }
        let capacity = tokens.len().saturating_add(params.max_tokens);
        let result = self
            .weights
            .reset_cache(capacity)
            .map_err(LocalError::from)
            .and_then(|()| self.run(&tokens, params, matcher.as_mut(), on_token, start, &mut out));
        // The KV cache holds ~46 KB per position: free it between generations.
        self.weights.drop_cache();
        result.map(|()| out)
    }

    fn run(
        &mut self,
        prompt: &[u32],
        params: &GenerateParams,
        mut matcher: Option<&mut JsonMatcher>,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
        start: Instant,
        out: &mut Generation,
    ) -> Result<(), LocalError> {
        let prefill_start = Instant::now();
        let mut pos = 0usize;
        let mut logits = None;
        for chunk in prompt.chunks(PREFILL_CHUNK) {
            if self.interrupt.load(Ordering::Relaxed) {
                out.stop = StopReason::Cancelled;
                out.prompt_duration = prefill_start.elapsed();
                return Ok(());
            }
            logits = Some(self.weights.forward(chunk, pos)?);
            pos += chunk.len();
        }
        out.prompt_duration = prefill_start.elapsed();
        let Some(mut logits) = logits else {
            return Err(LocalError::EmptyPrompt);
        };

        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let mut decoder = StreamDecoder::new();
        let mut first_at: Option<Instant> = None;
        loop {
            if params.repeat_penalty != 1.0 && !out.tokens.is_empty() {
                let recent = &out.tokens[out.tokens.len().saturating_sub(REPEAT_WINDOW)..];
                logits = candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    params.repeat_penalty,
                    recent,
                )?;
            }
            let next = match matcher.as_deref_mut() {
                None => sampler.sample(&logits)?,
                Some(m) => self.sample_constrained(&mut sampler, &logits, m)?,
            };
            if first_at.is_none() {
                let now = Instant::now();
                out.time_to_first_token = now - start;
                first_at = Some(now);
            }
            let is_stop = self.stop_ids.contains(&next);
            if is_stop && (self.stop_on_eos || matcher.is_some()) {
                out.stop = StopReason::Eos;
                break;
            }
            let mut document_closed = false;
            if let Some(m) = matcher.as_deref_mut() {
                if !m.accept(next) {
                    return Err(LocalError::Inference(format!(
                        "internal error: the constrained sampler chose token {next}, which the \
                         schema does not allow"
                    )));
                }
                document_closed = m.is_complete() && !m.can_continue();
            }
            out.tokens.push(next);
            let piece = decoder.push(self.tokenizer.token_bytes(next));
            if !piece.is_empty() {
                out.text.push_str(&piece);
                if on_token(&piece).is_break() {
                    out.stop = StopReason::Cancelled;
                    break;
                }
            }
            if self.interrupt.load(Ordering::Relaxed) {
                out.stop = StopReason::Cancelled;
                break;
            }
            if document_closed {
                out.stop = StopReason::Eos;
                break;
            }
            if out.tokens.len() >= params.max_tokens {
                out.stop = StopReason::MaxTokens;
                break;
            }
            if pos >= self.weights.cache_capacity() {
                // The cache is sized to prompt + max_tokens capped at the context length, so
                // this only triggers at the context end.
                out.stop = StopReason::ContextFull;
                break;
            }
            logits = self.weights.forward(&[next], pos)?;
            pos += 1;
        }
        // An unfinished character left at the end becomes U+FFFD, except after a Break: the
        // caller asked for no more pieces.
        if out.stop != StopReason::Cancelled {
            let rest = decoder.finish();
            if !rest.is_empty() {
                out.text.push_str(&rest);
                let _ = on_token(&rest);
            }
        }
        out.completion_tokens = out.tokens.len();
        out.generation_duration = first_at.map(|t| t.elapsed()).unwrap_or_default();
        Ok(())
    }
}

impl LocalModel {
    /// Sample one token with the constraint's mask applied: end tokens only when the document
    /// is complete; a token after which the document could not close in time is replaced by
    /// the best one that can.
    fn sample_constrained(
        &self,
        sampler: &mut LogitsProcessor,
        logits: &candle_core::Tensor,
        m: &mut JsonMatcher,
    ) -> Result<u32, LocalError> {
        let raw = logits.flatten_all()?.to_vec1::<f32>()?;
        let complete = m.is_complete();
        let pick = |sampler: &mut LogitsProcessor,
                    mask: &crate::TokenMask|
         -> Result<Option<u32>, LocalError> {
            let mut v = raw.clone();
            mask.apply(&mut v);
            if complete {
                for &s in &self.stop_ids {
                    if let (Some(slot), Some(&r)) = (v.get_mut(s as usize), raw.get(s as usize)) {
                        *slot = r;
                    }
                }
            }
            if v.iter().all(|x| *x == f32::NEG_INFINITY) {
                return Ok(None);
            }
            let n = v.len();
            let t = candle_core::Tensor::from_vec(v, n, &candle_core::Device::Cpu)?;
            Ok(Some(sampler.sample(&t)?))
        };
        let mask = m.allowed();
        let next = pick(sampler, &mask)?;
        match next {
            Some(id) if self.stop_ids.contains(&id) || m.fits(id) => return Ok(id),
            _ => {}
        }
        let within = m.allowed_within_budget();
        match pick(sampler, &within)? {
            Some(id) => Ok(id),
            None => Err(LocalError::Inference(
                "internal error: no token can continue the constrained document".into(),
            )),
        }
    }
}

fn sampling(params: &GenerateParams) -> Sampling {
    let t = params.temperature;
    if t.is_nan() || t < 1e-7 {
        return Sampling::ArgMax;
    }
    match params.top_p {
        Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP { p, temperature: t },
        _ => Sampling::All { temperature: t },
    }
}

/// Cut `tokens` to at most `budget`, keeping the leading system block (up to and including
/// the first end token and a following newline, when it takes at most half the budget) and
/// the most recent tail. Returns the tokens and how many were dropped.
fn fit_to_context(tokens: Vec<u32>, budget: usize, end_ids: &[u32]) -> (Vec<u32>, usize) {
    if tokens.len() <= budget {
        return (tokens, 0);
    }
    let head = tokens
        .iter()
        .position(|t| end_ids.contains(t))
        .map(|i| i + 2) // the end token and the "\n" after it
        .filter(|&h| h <= budget / 2 && h < tokens.len())
        .unwrap_or(0);
    let tail = budget - head;
    let dropped = tokens.len() - head - tail;
    let mut kept = Vec::with_capacity(budget);
    kept.extend_from_slice(&tokens[..head]);
    kept.extend_from_slice(&tokens[tokens.len() - tail..]);
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_model_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<LocalModel>();
        assert_send::<Tokenizer>();
    }

    #[test]
    fn fit_to_context_keeps_system_head_and_tail() {
        // [im_start system ... im_end \n] [user ...]
        let tokens: Vec<u32> = vec![1, 9, 9, 2, 198, 1, 10, 11, 12, 13, 14, 15, 16, 17, 2, 198];
        let (kept, dropped) = fit_to_context(tokens.clone(), 100, &[0, 2]);
        assert_eq!((kept.as_slice(), dropped), (tokens.as_slice(), 0));
        let (kept, dropped) = fit_to_context(tokens.clone(), 10, &[0, 2]);
        assert_eq!(dropped, 6);
        assert_eq!(kept, vec![1, 9, 9, 2, 198, 15, 16, 17, 2, 198]);
        // Head too long for half the budget: pure tail.
        let (kept, dropped) = fit_to_context(tokens.clone(), 8, &[0, 2]);
        assert_eq!(dropped, 8);
        assert_eq!(kept, tokens[8..].to_vec());
    }

    #[test]
    fn sampling_modes() {
        let mut p = GenerateParams::default();
        assert_eq!(sampling(&p), Sampling::ArgMax);
        p.temperature = f64::NAN;
        assert_eq!(sampling(&p), Sampling::ArgMax);
        p.temperature = 0.7;
        assert_eq!(sampling(&p), Sampling::All { temperature: 0.7 });
        p.top_p = Some(0.9);
        assert_eq!(
            sampling(&p),
            Sampling::TopP {
                p: 0.9,
                temperature: 0.7
            }
        );
        p.top_p = Some(1.0);
        assert_eq!(sampling(&p), Sampling::All { temperature: 0.7 });
    }

    #[test]
    fn model_names() {
        assert_eq!(
            model_name_for(Path::new("/x/SmolLM2-135M-Instruct.Q4_1.gguf")),
            DEFAULT_MODEL_NAME
        );
        assert_eq!(
            model_name_for(Path::new("/x/SmolLM2-135M-Instruct.Q4_1.gguf.q8_0.gguf")),
            DEFAULT_MODEL_NAME
        );
        assert_eq!(
            model_name_for(Path::new("/x/Other-Model.Q8_0.gguf")),
            "other-model.q8_0"
        );
    }
}
