//! The llama forward pass (what candle-transformers' `quantized_llama` does), rewritten for
//! speed on small models:
//!
//! - **Padding for candle's VNNI kernels.** candle 0.11 multiplies Q8_0 matrices with repacked
//!   AVX-512-VNNI / AVX-VNNI tiles only when the inner dimension is a multiple of 256; SmolLM2's
//!   hidden size is 576, so most matrices would take the generic Q8_0 dot product, 4–7× slower
//!   per weight. On CPUs with VNNI the hidden size is padded to the next multiple of 256: every
//!   Q8_0 matrix gets zero blocks appended to its rows (exact, no re-quantization), the
//!   residual stream carries zeros in the extra lanes, and the RMS norms are rescaled
//!   (`eps · H/H'`, weights `· sqrt(H/H')`) so they compute the same values over the wider
//!   vector. Off for other CPUs, for non-Q8_0 weights, or with `SUPER_LOCAL_PAD=0`.
//! - **A preallocated KV cache** written in place, instead of concatenating per token.
//! - **Grouped-query attention without copying K/V**: query heads are grouped per KV head.
//! - **Quantized embedding lookup**: token rows are dequantized on demand from the (tied)
//!   Q8_0 embedding matrix, rather than keeping a 113 MB f32 copy.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, IndexOp, Module, Result, Tensor, D};

/// Round `n` up to a multiple of 256 (candle's repacked-kernel granularity).
fn round_up_256(n: usize) -> usize {
    n.div_ceil(256) * 256
}

/// Whether candle's repacked Q8_0 kernels are available (mirrors candle's own detection,
/// including its `MISTRALRS_FORCE_AVX2` override).
fn vnni_kernels_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1") {
            return false;
        }
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether padding is wanted: VNNI present and not disabled by `SUPER_LOCAL_PAD=0`.
fn padding_wanted() -> bool {
    let disabled = matches!(
        std::env::var("SUPER_LOCAL_PAD").as_deref(),
        Ok("0") | Ok("false") | Ok("no") | Ok("off")
    );
    !disabled && vnni_kernels_available()
}

/// Zero-pad a 2-D Q8_0 tensor of shape `(rows, cols)` to `(rows_to, cols_to)`, block by block.
fn pad_q8_0(t: &QTensor, rows_to: usize, cols_to: usize) -> Result<QTensor> {
    let (rows, cols) = t.shape().dims2()?;
    let bs = GgmlDType::Q8_0.block_size();
    let ts = GgmlDType::Q8_0.type_size();
    if t.dtype() != GgmlDType::Q8_0
        || !cols.is_multiple_of(bs)
        || !cols_to.is_multiple_of(bs)
        || rows_to < rows
        || cols_to < cols
    {
        candle_core::bail!("cannot pad a {:?} tensor of shape {rows}x{cols}", t.dtype());
    }
    let row_bytes = cols / bs * ts;
    let row_bytes_to = cols_to / bs * ts;
    let data = t.data()?;
    if data.len() != rows * row_bytes {
        candle_core::bail!("unexpected Q8_0 data size {} for {rows}x{cols}", data.len());
    }
    // A zero Q8_0 block is all zero bytes (f16 scale 0, quants 0).
    let mut out = vec![0u8; rows_to * row_bytes_to];
    for r in 0..rows {
        out[r * row_bytes_to..r * row_bytes_to + row_bytes]
            .copy_from_slice(&data[r * row_bytes..(r + 1) * row_bytes]);
    }
    let storage = QStorage::from_data(out.into(), &Device::Cpu, GgmlDType::Q8_0)?;
    QTensor::new(storage, (rows_to, cols_to))
}

struct Layer {
    attn_norm: Tensor,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    ffn_norm: Tensor,
    w_gate: QMatMul,
    w_up: QMatMul,
    w_down: QMatMul,
}

struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    capacity: usize,
}

/// Model dimensions read from the GGUF metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub hidden: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub context_length: usize,
}

/// A llama model ready to run (see the module docs).
pub(crate) struct Llama {
    dims: Dims,
    /// Padded widths of the residual stream and of the attention output.
    hidden_p: usize,
    attn_p: usize,
    embed: Arc<QTensor>,
    output: QMatMul,
    layers: Vec<Layer>,
    norm: Tensor,
    eps: f32,
    cos: Tensor,
    sin: Tensor,
    cache: Option<KvCache>,
}

fn md<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    match content.metadata.get(key) {
        Some(v) => Ok(v),
        None => candle_core::bail!("missing metadata {key}"),
    }
}

impl Llama {
    /// Build the model from a GGUF (`general.architecture = llama`, no mixture of experts).
    /// `allow_padding = false` never pads; `true` pads when it pays off (see the module docs).
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        max_context: usize,
        allow_padding: bool,
    ) -> Result<Self> {
        let dev = Device::Cpu;
        let u = |k: &str| -> Result<usize> { Ok(md(content, k)?.to_u32()? as usize) };
        if content
            .metadata
            .get("llama.expert_count")
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(0)
            > 1
        {
            candle_core::bail!("mixture-of-experts llama models are not supported");
        }
        let n_head = u("llama.attention.head_count")?;
        let hidden = u("llama.embedding_length")?;
        let n_kv_head = content
            .metadata
            .get("llama.attention.head_count_kv")
            .and_then(|v| v.to_u32().ok())
            .map(|v| v as usize)
            .unwrap_or(n_head);
        if n_head == 0
            || n_kv_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || !hidden.is_multiple_of(n_head)
        {
            candle_core::bail!("bad head counts {n_head}/{n_kv_head} for hidden size {hidden}");
        }
        let head_dim = hidden / n_head;
        let rope_dim = content
            .metadata
            .get("llama.rope.dimension_count")
            .and_then(|v| v.to_u32().ok())
            .map(|v| v as usize)
            .unwrap_or(head_dim);
        if rope_dim != head_dim {
            candle_core::bail!(
                "partial rotary embeddings ({rope_dim} of {head_dim}) are not supported"
            );
        }
        let eps = md(content, "llama.attention.layer_norm_rms_epsilon")?.to_f32()?;
        let rope_base = content
            .metadata
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        let context_length = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map(|v| v as usize)
            .unwrap_or(2048)
            .clamp(1, max_context);
        let n_layer = u("llama.block_count")?;
        let ffn = u("llama.feed_forward_length")?;
        let dims = Dims {
            hidden,
            n_head,
            n_kv_head,
            head_dim,
            context_length,
        };

        let tensor = |r: &mut R, name: &str| content.tensor(r, name, &dev);
        let embed_q = tensor(reader, "token_embd.weight")?;
        let output_q = match content.tensor_infos.contains_key("output.weight") {
            true => Some(tensor(reader, "output.weight")?),
            false => None,
        };
        let mut raw_layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let names = [
                "attn_norm",
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_norm",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            ];
            let mut ts = Vec::with_capacity(names.len());
            for n in names {
                ts.push(tensor(reader, &format!("{p}.{n}.weight"))?);
            }
            raw_layers.push(ts);
        }
        let norm_q = tensor(reader, "output_norm.weight")?;

        // Pad only when it pays off and every matrix is Q8_0 (padding is a block copy).
        let all_q8 = embed_q.dtype() == GgmlDType::Q8_0
            && output_q
                .as_ref()
                .is_none_or(|t| t.dtype() == GgmlDType::Q8_0)
            && raw_layers.iter().all(|ts| {
                [1, 2, 3, 4, 6, 7, 8]
                    .iter()
                    .all(|&j| ts[j].dtype() == GgmlDType::Q8_0)
            });
        let attn = n_head * head_dim;
        let pad = allow_padding
            && all_q8
            && (!hidden.is_multiple_of(256)
                || !ffn.is_multiple_of(256)
                || !attn.is_multiple_of(256))
            && padding_wanted();
        let (hidden_p, ffn_p, attn_p) = if pad {
            (round_up_256(hidden), round_up_256(ffn), round_up_256(attn))
        } else {
            (hidden, ffn, attn)
        };
        let kv = n_kv_head * head_dim;
        let mm = |t: QTensor, rows: usize, cols: usize| -> Result<QMatMul> {
            if pad {
                QMatMul::from_qtensor(pad_q8_0(&t, rows, cols)?)
            } else {
                QMatMul::from_qtensor(t)
            }
        };
        // RMS norm over the padded width: scale eps and weights so values are unchanged.
        let ratio = hidden as f64 / hidden_p as f64;
        let norm_eps = (eps as f64 * ratio) as f32;
        let norm = |t: &QTensor| -> Result<Tensor> {
            let w = t.dequantize(&dev)?;
            let w = (w * ratio.sqrt())?;
            w.pad_with_zeros(0, 0, hidden_p - hidden)
        };

        let vocab = embed_q.shape().dims2()?.0;
        let embed = Arc::new(if pad {
            pad_q8_0(&embed_q, vocab, hidden_p)?
        } else {
            embed_q
        });
        let output = match output_q {
            Some(t) => {
                let rows = t.shape().dims2()?.0;
                mm(t, rows, hidden_p)?
            }
            None => QMatMul::from_arc(Arc::clone(&embed))?,
        };
        let mut layers = Vec::with_capacity(n_layer);
        for ts in raw_layers {
            let Ok::<[QTensor; 9], _>([n0, q, k, v, o, n1, g, up, down]) = ts.try_into() else {
                candle_core::bail!("internal error: wrong number of layer tensors");
            };
            layers.push(Layer {
                attn_norm: norm(&n0)?,
                wq: mm(q, attn, hidden_p)?,
                wk: mm(k, kv, hidden_p)?,
                wv: mm(v, kv, hidden_p)?,
                wo: mm(o, hidden_p, attn_p)?,
                ffn_norm: norm(&n1)?,
                w_gate: mm(g, ffn_p, hidden_p)?,
                w_up: mm(up, ffn_p, hidden_p)?,
                w_down: mm(down, hidden_p, ffn_p)?,
            });
        }
        let norm = norm(&norm_q)?;

        let theta: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / rope_base.powf(i as f32 / head_dim as f32))
            .collect();
        let theta = Tensor::new(theta.as_slice(), &dev)?;
        let idx = Tensor::arange(0, context_length as u32, &dev)?
            .to_dtype(candle_core::DType::F32)?
            .reshape((context_length, 1))?
            .matmul(&theta.reshape((1, head_dim / 2))?)?;
        Ok(Self {
            dims,
            hidden_p,
            attn_p,
            embed,
            output,
            layers,
            norm,
            eps: norm_eps,
            cos: idx.cos()?,
            sin: idx.sin()?,
            cache: None,
        })
    }

    /// Run one token through the model so candle builds its repacked weight tiles now (it
    /// does so lazily on first use) rather than during the first prompt.
    pub fn warm_up(&mut self) -> Result<()> {
        self.reset_cache(1)?;
        let result = self.forward(&[0], 0).map(|_| ());
        self.drop_cache();
        result
    }

    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// Whether the weights were padded for the VNNI kernels.
    pub fn padded(&self) -> bool {
        self.hidden_p != self.dims.hidden
    }

    /// Prepare an empty KV cache for up to `capacity` positions (at most the context length).
    pub fn reset_cache(&mut self, capacity: usize) -> Result<()> {
        let capacity = capacity.clamp(1, self.dims.context_length);
        if let Some(c) = &self.cache {
            // Reuse an allocation of the same size; stale entries are overwritten before use.
            if c.capacity == capacity {
                return Ok(());
            }
        }
        self.cache = None;
        let shape = (1, self.dims.n_kv_head, capacity, self.dims.head_dim);
        let mut k = Vec::with_capacity(self.layers.len());
        let mut v = Vec::with_capacity(self.layers.len());
        for _ in 0..self.layers.len() {
            k.push(Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu)?);
            v.push(Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu)?);
        }
        self.cache = Some(KvCache { k, v, capacity });
        Ok(())
    }

    /// Free the KV cache.
    pub fn drop_cache(&mut self) {
        self.cache = None;
    }

    /// Positions the current cache can hold (0 without one).
    pub fn cache_capacity(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.capacity)
    }

    /// Run `tokens` at positions `pos..pos + tokens.len()` and return the logits of the last
    /// one, shape `(vocab,)`. Call [`Llama::reset_cache`] first.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let dev = Device::Cpu;
        let seq = tokens.len();
        let Dims {
            hidden,
            n_head,
            n_kv_head,
            head_dim,
            ..
        } = self.dims;
        let n_rep = n_head / n_kv_head;
        let Some(cache) = self.cache.as_ref() else {
            candle_core::bail!("forward called without a KV cache");
        };
        let kv_len = pos + seq;
        if seq == 0 || kv_len > cache.capacity {
            candle_core::bail!(
                "positions {pos}..{kv_len} do not fit the KV cache of {}",
                cache.capacity
            );
        }
        let ids = Tensor::new(tokens, &dev)?;
        let mut x = self.embed.embedding(&ids)?.unsqueeze(0)?; // (1, seq, H')
        let mask = if seq > 1 {
            let m: Vec<f32> = (0..seq)
                .flat_map(|i| {
                    (0..kv_len).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (seq, kv_len), &dev)?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let attn = n_head * head_dim;

        for (i, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, self.eps)?;
            let q = layer.wq.forward(&h)?;
            let k = layer.wk.forward(&h)?;
            let v = layer.wv.forward(&h)?;
            let q = q
                .reshape((1, seq, n_head, head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let k = k
                .reshape((1, seq, n_kv_head, head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let v = v
                .reshape((1, seq, n_kv_head, head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = (candle_nn::rotary_emb::rope_i(&q, &cos, &sin)? * scale)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            cache.k[i].slice_set(&k, 2, pos)?;
            cache.v[i].slice_set(&v, 2, pos)?;
            let keys = cache.k[i].narrow(2, 0, kv_len)?;
            let values = cache.v[i].narrow(2, 0, kv_len)?;

            // Query heads kv*n_rep..(kv+1)*n_rep share KV head kv: group them as rows.
            let q = q.reshape((1, n_kv_head, n_rep * seq, head_dim))?;
            let att = q.matmul(&keys.t()?)?; // (1, n_kv, n_rep*seq, kv_len)
            let att = match &mask {
                Some(m) => att
                    .reshape((1, n_kv_head, n_rep, seq, kv_len))?
                    .broadcast_add(m)?
                    .reshape((1, n_kv_head, n_rep * seq, kv_len))?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&values)?; // (1, n_kv, n_rep*seq, hd)
            let y = y
                .reshape((1, n_head, seq, head_dim))?
                .transpose(1, 2)?
                .reshape((1, seq, attn))?;
            let y = if self.attn_p > attn {
                y.pad_with_zeros(D::Minus1, 0, self.attn_p - attn)?
            } else {
                y
            };
            x = (x + layer.wo.forward(&y)?)?;

            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.eps)?;
            let gate = candle_nn::ops::silu(&layer.w_gate.forward(&h)?)?;
            let up = layer.w_up.forward(&h)?;
            x = (x + layer.w_down.forward(&(gate * up)?)?)?;
        }
        let x = x.i((.., seq - 1, ..))?; // (1, H')
        let x = candle_nn::ops::rms_norm(&x, &self.norm, self.eps)?;
        debug_assert_eq!(x.dims2()?.1, self.hidden_p.max(hidden));
        self.output.forward(&x)?.squeeze(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_q8_0_is_exact() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (48, 64), &dev)?;
        let q = QTensor::quantize(&w, GgmlDType::Q8_0)?;
        let p = pad_q8_0(&q, 64, 256)?;
        assert_eq!(p.shape().dims2()?, (64, 256));
        let a = q.dequantize(&dev)?;
        let b = p.dequantize(&dev)?;
        let diff = (b.narrow(0, 0, 48)?.narrow(1, 0, 64)? - &a)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        let rest = (b.abs()?.sum_all()?.to_scalar::<f32>()?
            - a.abs()?.sum_all()?.to_scalar::<f32>()?)
        .abs();
        assert!(rest < 1e-3, "padding is not zero: {rest}");

        // The padded weights on a zero-padded input compute the same product (checked on the
        // dequantized weights: the quantized kernels differ in how they quantize activations).
        let x = Tensor::randn(0f32, 1.0, (3, 64), &dev)?;
        let y = x.matmul(&a.t()?)?;
        let yp = x.pad_with_zeros(1, 0, 192)?.matmul(&b.t()?)?;
        let err = (yp.narrow(1, 0, 48)? - &y)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(err < 1e-4, "{err}");
        let tail = yp.narrow(1, 48, 16)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(tail, 0.0);
        // And the quantized kernel on the padded weights stays close.
        let yq = QMatMul::from_qtensor(p)?.forward(&x.pad_with_zeros(1, 0, 192)?)?;
        let err = (yq.narrow(1, 0, 48)? - &y)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        let scale = y.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err < 0.05 * scale, "{err} vs {scale}");
        Ok(())
    }

    /// Logits of our forward pass against candle-transformers' `quantized_llama` on the real
    /// model (the Q8_0 conversion), padded and not. Skips without the model file.
    #[test]
    fn matches_candle_quantized_llama() -> std::result::Result<(), Box<dyn std::error::Error>> {
        use candle_transformers::models::quantized_llama::ModelWeights;
        let path = crate::default_model_path();
        if !path.exists() {
            eprintln!("skipping: no model at {}", path.display());
            return Ok(());
        }
        crate::ensure_threads();
        let mut prepared = crate::convert::prepare(&path)?;
        let tokenizer = crate::Tokenizer::from_gguf(&prepared.content)?;
        let prompt = tokenizer.encode(
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\n",
        );
        let steps = [504u32, 2365, 314];
        let mut ours = Vec::new();
        for pad in [false, true] {
            let mut m = Llama::from_gguf(&prepared.content, &mut prepared.reader, 4096, pad)?;
            m.reset_cache(64)?;
            let mut logits = vec![m.forward(&prompt, 0)?];
            for (i, t) in steps.iter().enumerate() {
                logits.push(m.forward(&[*t], prompt.len() + i)?);
            }
            ours.push((m.padded(), logits));
        }
        use std::io::Seek;
        prepared.reader.seek(std::io::SeekFrom::Start(0))?;
        let content = gguf_file::Content::read(&mut prepared.reader)?;
        let mut reference = ModelWeights::from_gguf(content, &mut prepared.reader, &Device::Cpu)?;
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let mut want = vec![reference.forward(&input, 0)?.squeeze(0)?];
        for (i, t) in steps.iter().enumerate() {
            let input = Tensor::new(&[*t], &Device::Cpu)?.unsqueeze(0)?;
            want.push(reference.forward(&input, prompt.len() + i)?.squeeze(0)?);
        }
        for (padded, got) in ours {
            let mut kl_sum = 0.0;
            for (g, w) in got.iter().zip(&want) {
                let err = (g - w)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let scale = w.abs()?.max_all()?.to_scalar::<f32>()?;
                let g_top = g.argmax(0)?.to_scalar::<u32>()?;
                let w_top = w.argmax(0)?.to_scalar::<u32>()?;
                let kl = kl_divergence(w, g)?;
                eprintln!(
                    "padded={padded}: max |diff| {err} (max |logit| {scale}), KL {kl}, top {g_top}/{w_top}"
                );
                if padded {
                    // Activations are quantized per 256 values (Q8K) instead of per 32 (Q8_0):
                    // a small drift (mean KL ~0.016 against f32 activations over 40 tokens,
                    // vs ~0.003 for Q8_0; see `drift_vs_f32`).
                    assert!(kl < 0.25, "padded: KL {kl}");
                    kl_sum += kl;
                } else {
                    // Same kernels as candle: identical up to float summation order.
                    assert!(err <= 1e-4 * scale, "unpadded: {err} vs {scale}");
                }
                assert_eq!(g_top, w_top, "padded={padded}");
            }
            let mean = kl_sum / want.len() as f64;
            assert!(mean < 0.1, "padded={padded}: mean KL {mean}");
        }
        Ok(())
    }

    /// KL(softmax(want) || softmax(got)) in nats.
    fn kl_divergence(want: &Tensor, got: &Tensor) -> Result<f64> {
        let lw = candle_nn::ops::log_softmax(&want.unsqueeze(0)?, 1)?;
        let lg = candle_nn::ops::log_softmax(&got.unsqueeze(0)?, 1)?;
        let kl = (lw.exp()? * (lw - lg)?)?.sum_all()?.to_scalar::<f32>()?;
        Ok(kl as f64)
    }

    /// Measures how far each variant's logits drift from f32 activations over 40 greedy
    /// tokens (teacher-forced on the f32 run's tokens). Prints, asserts nothing. It sets
    /// `CANDLE_DEQUANTIZE_ALL`, which leaks into tests running beside it, hence ignored; run
    /// it alone: `cargo test -p super-local --release --lib -- --ignored --nocapture drift`.
    /// Measured: padded with f32 activations KL 7e-9 (padding is exact); Q8_0 activations
    /// KL 0.0032, top-1 40/41; padded (Q8K activations) KL 0.016, top-1 39/41.
    #[test]
    #[ignore]
    fn drift_vs_f32() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let path = crate::default_model_path();
        if !path.exists() {
            return Ok(());
        }
        let run = |pad: bool, forced: Option<Vec<u32>>| -> (Vec<Tensor>, Vec<u32>) {
            let mut prepared = crate::convert::prepare(&path).unwrap();
            let tokenizer = crate::Tokenizer::from_gguf(&prepared.content).unwrap();
            let prompt = tokenizer.encode("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWrite a haiku about the sea and explain it.<|im_end|>\n<|im_start|>assistant\n");
            let mut m =
                Llama::from_gguf(&prepared.content, &mut prepared.reader, 4096, pad).unwrap();
            m.reset_cache(256).unwrap();
            let mut out = vec![m.forward(&prompt, 0).unwrap()];
            let mut toks = vec![];
            for (i, pos) in (prompt.len()..).take(40).enumerate() {
                let t = match &forced {
                    Some(f) => f[i],
                    None => out
                        .last()
                        .unwrap()
                        .argmax(0)
                        .unwrap()
                        .to_scalar::<u32>()
                        .unwrap(),
                };
                toks.push(t);
                out.push(m.forward(&[t], pos).unwrap());
            }
            (out, toks)
        };
        std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
        let (f32r, toks) = std::thread::scope(|s| s.spawn(|| run(false, None)).join().unwrap());
        let f32p =
            std::thread::scope(|s| s.spawn(|| run(true, Some(toks.clone()))).join().unwrap()).0;
        std::env::remove_var("CANDLE_DEQUANTIZE_ALL");
        let q8 =
            std::thread::scope(|s| s.spawn(|| run(false, Some(toks.clone()))).join().unwrap()).0;
        let pd =
            std::thread::scope(|s| s.spawn(|| run(true, Some(toks.clone()))).join().unwrap()).0;
        for (name, got) in [
            ("padded f32 acts", &f32p),
            ("q8_0 acts", &q8),
            ("padded q8k acts", &pd),
        ] {
            let mut worst = 0f32;
            let mut agree = 0;
            let mut kl = 0f64;
            for (g, w) in got.iter().zip(&f32r) {
                let e = (g - w)?.abs()?.max_all()?.to_scalar::<f32>()?;
                worst = worst.max(e);
                if g.argmax(0)?.to_scalar::<u32>()? == w.argmax(0)?.to_scalar::<u32>()? {
                    agree += 1;
                }
                kl += kl_divergence(w, g)?;
            }
            eprintln!(
                "{name}: worst max|diff| {worst}, top-1 agree {agree}/{}, mean KL {}",
                got.len(),
                kl / got.len() as f64
            );
        }

        // Mean negative log-likelihood of a fixed text, one token at a time.
        let text = "The history of computing is longer than the history of computing hardware. \
            Early devices such as the abacus helped people keep track of numbers, and in the \
            seventeenth century mechanical calculators could add and multiply. Charles Babbage \
            designed the Analytical Engine, a general purpose machine that was never finished, \
            and Ada Lovelace wrote what many consider the first program for it. In the twentieth \
            century, electronic computers replaced mechanical ones, and transistors made them \
            smaller, faster and cheaper.\n\ndef mean(values):\n    total = 0\n    for v in values:\n        \
            total += v\n    return total / len(values)\n";
        let nll = |pad: bool| -> f64 {
            let mut prepared = crate::convert::prepare(&path).unwrap();
            let tokenizer = crate::Tokenizer::from_gguf(&prepared.content).unwrap();
            let toks = tokenizer.encode(text);
            let mut m =
                Llama::from_gguf(&prepared.content, &mut prepared.reader, 4096, pad).unwrap();
            m.reset_cache(toks.len()).unwrap();
            let mut total = 0f64;
            for i in 0..toks.len() - 1 {
                let logits = m.forward(&toks[i..i + 1], i).unwrap();
                let lp = candle_nn::ops::log_softmax(&logits, 0).unwrap();
                total -= lp
                    .get(toks[i + 1] as usize)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64;
            }
            total / (toks.len() - 1) as f64
        };
        std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
        let f32_nll = std::thread::scope(|s| s.spawn(|| nll(false)).join().unwrap());
        std::env::remove_var("CANDLE_DEQUANTIZE_ALL");
        let q8_nll = std::thread::scope(|s| s.spawn(|| nll(false)).join().unwrap());
        let pad_nll = std::thread::scope(|s| s.spawn(|| nll(true)).join().unwrap());
        eprintln!(
            "mean NLL: f32 activations {f32_nll:.4}, Q8_0 {q8_nll:.4}, padded Q8K {pad_nll:.4}"
        );
        Ok(())
    }

    #[test]
    fn rms_norm_rescaling_matches_over_padded_width() -> Result<()> {
        let dev = Device::Cpu;
        let (h, hp, eps) = (576usize, 768usize, 1e-5f32);
        let x = Tensor::randn(0f32, 1.0, (2, h), &dev)?;
        let w = Tensor::randn(0f32, 1.0, h, &dev)?;
        let want = candle_nn::ops::rms_norm(&x, &w, eps)?;
        let ratio = h as f64 / hp as f64;
        let wp = (w * ratio.sqrt())?.pad_with_zeros(0, 0, hp - h)?;
        let got = candle_nn::ops::rms_norm(
            &x.pad_with_zeros(1, 0, hp - h)?,
            &wp,
            (eps as f64 * ratio) as f32,
        )?;
        let err = (got.narrow(1, 0, h)? - want)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(err < 1e-4, "{err}");
        Ok(())
    }
}
