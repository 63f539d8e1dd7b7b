//! Quantized matrix products for the forward pass: our own kernels for Q8_0 weights
//! (AVX-512-VNNI, AVX2, and a portable scalar reference; picked by [`KERNEL_ENV`]), with
//! candle's `QMatMul` as the fallback for everything else.
//!
//! candle 0.11 multiplies Q8_0 matrices with its fast repacked VNNI kernels only when the inner
//! dimension is a multiple of 256 (SmolLM2's is 576), and its repacked copy is built *beside*
//! the original weights, doubling their memory. Here the Q8_0 weights are repacked once at load
//! into the same tiled layout (16 output rows × 32 inner values per tile, quants offset by +128
//! so `vpdpbusd` can multiply them as unsigned bytes) and the original bytes are dropped: one
//! copy, the same size as the Q8_0 data, and any inner dimension that is a multiple of 32.
//!
//! Activations are quantized exactly as candle quantizes them for the same product on this CPU
//! (Q8_0: per 32 values with an f16 scale; Q8K, per 256, when the inner dimension is a multiple
//! of 256, where candle takes its repacked kernel), and each block's integer dot product is
//! exact, so the result equals candle's up to the order of the float additions.
//!
//! Also here: the f16 helpers and the Q4_1 → Q8_0 block conversion used by [`crate::convert`].

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Result, Tensor};

/// Output rows per tile.
const TILE_N: usize = 16;
/// Inner values per Q8_0 block.
const QK: usize = 32;
/// Values per Q8K block (candle's activation format for its repacked kernels).
const QK_K: usize = 256;
/// Bytes of one Q8_0 block (f16 scale and 32 quants).
const Q8_0_BLOCK_BYTES: usize = 34;
/// Activation rows multiplied against one weight tile at a time.
const MAX_MT: usize = 4;

/// Environment variable that picks the matrix kernel, read once: `auto` (the default: VNNI
/// where the CPU has AVX-512-VNNI, else AVX2 where it has AVX2/FMA/F16C, else candle's
/// `QMatMul`), `vnni`, `avx2`, `scalar` (our packed kernels; scalar is the portable
/// reference) or `candle`. On a 2-core AVX2 machine (no VNNI) the AVX2 kernel generated
/// 17–19 tokens/s against candle's 11–13 and read the prompt 3× faster, under heavy load. A kernel the CPU lacks falls back
/// to candle's `QMatMul`. `SUPER_LOCAL_KERNELS=candle` (the older name) still works.
pub const KERNEL_ENV: &str = "SUPER_LOCAL_KERNEL";

/// The products our packed Q8_0 weights can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// AVX-512 F/BW/VNNI: `vpdpbusd` on 16 rows at once.
    Vnni,
    /// AVX2/FMA/F16C: `vpmaddubsw` + `vpmaddwd` on 8 rows at once.
    Avx2,
    /// Portable Rust: the reference the others are tested against.
    Scalar,
}

impl Kernel {
    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// The kernel for `SUPER_LOCAL_KERNEL`'s value (`None`: candle's `QMatMul`).
fn kernel_for(value: &str) -> Option<Kernel> {
    let wanted = match value.trim() {
        "vnni" => Kernel::Vnni,
        "avx2" => Kernel::Avx2,
        "scalar" => Kernel::Scalar,
        "candle" => return None,
        // `auto`, empty or unknown: the fastest this CPU has.
        _ => {
            return [Kernel::Vnni, Kernel::Avx2]
                .into_iter()
                .find(|k| k.available())
        }
    };
    wanted.available().then_some(wanted)
}

/// The packed kernel in use (`None`: candle's `QMatMul`), from [`KERNEL_ENV`], read once.
pub(crate) fn selected_kernel() -> Option<Kernel> {
    static SELECTED: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
    *SELECTED.get_or_init(|| {
        if std::env::var("SUPER_LOCAL_KERNELS").as_deref() == Ok("candle") {
            return None;
        }
        kernel_for(&std::env::var(KERNEL_ENV).unwrap_or_default())
    })
}

/// Whether weights are packed for one of our kernels.
pub(crate) fn fast_kernels_available() -> bool {
    selected_kernel().is_some()
}

/// 64 bytes, 64-byte aligned: 16 rows × 4 quants of one tile.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A Q8_0 matrix of shape `(n, k)` (`n` outputs) in VNNI tiles: tile `(t, b)` covers rows
/// `16t..16t+16` and inner values `32b..32b+32`; its quants are 8 lines, line `g` holding for
/// each row `r` the 4 quants `32b+4g..32b+4g+4` at bytes `4r..4r+4`, offset by +128.
pub(crate) struct PackedQ8_0 {
    n: usize,
    k: usize,
    kb: usize,
    kernel: Kernel,
    qs: Vec<Line>,
    /// f16 scales, `[tile][row]`.
    d: Vec<u16>,
}

impl PackedQ8_0 {
    /// Repack row-major Q8_0 blocks for `kernel`. `None` when the shape does not fit the
    /// tiles or the CPU lacks the kernel.
    pub fn from_q8_0(data: &[u8], n: usize, k: usize, kernel: Kernel) -> Option<Self> {
        if !kernel.available()
            || n == 0
            || !n.is_multiple_of(TILE_N)
            || k == 0
            || !k.is_multiple_of(QK)
        {
            return None;
        }
        let kb = k / QK;
        if data.len() != n * kb * Q8_0_BLOCK_BYTES {
            return None;
        }
        let tiles = n / TILE_N * kb;
        let mut qs = Vec::with_capacity(tiles * 8);
        let mut d = Vec::with_capacity(tiles * TILE_N);
        for t in 0..n / TILE_N {
            for b in 0..kb {
                let mut lines = [Line([0; 64]); 8];
                for r in 0..TILE_N {
                    let off = ((t * TILE_N + r) * kb + b) * Q8_0_BLOCK_BYTES;
                    let blk = &data[off..off + Q8_0_BLOCK_BYTES];
                    d.push(u16::from_le_bytes([blk[0], blk[1]]));
                    for (g, line) in lines.iter_mut().enumerate() {
                        for j in 0..4 {
                            // +128 (mod 256): an i8 as an offset u8.
                            line.0[r * 4 + j] = blk[2 + g * 4 + j] ^ 0x80;
                        }
                    }
                }
                qs.extend_from_slice(&lines);
            }
        }
        Some(Self {
            n,
            k,
            kb,
            kernel,
            qs,
            d,
        })
    }

    /// Dequantize row `row` into `out` (`k` values), as candle's Q8_0 `to_float` does.
    fn row(&self, row: usize, out: &mut [f32]) {
        let (t, r) = (row / TILE_N, row % TILE_N);
        for b in 0..self.kb {
            let tile = t * self.kb + b;
            let d = f16_to_f32(self.d[tile * TILE_N + r]);
            for g in 0..8 {
                let line = &self.qs[tile * 8 + g].0[r * 4..r * 4 + 4];
                for (j, &q) in line.iter().enumerate() {
                    out[b * QK + g * 4 + j] = ((q ^ 0x80) as i8) as f32 * d;
                }
            }
        }
    }
}

/// The value of the f16 with bits `h`.
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    match exp {
        0 => sign * man as f32 * (1.0 / 16_777_216.0), // 2^-24
        31 if man == 0 => sign * f32::INFINITY,
        31 => f32::NAN,
        _ => f32::from_bits(((h as u32 & 0x8000) << 16) | ((exp + 112) << 23) | (man << 13)),
    }
}

/// `x` rounded to the nearest f16 (ties to even), as f32: what `f16::from_f32(x).to_f32()`
/// gives, for finite `x`.
fn round_to_f16(x: f32) -> f32 {
    let a = x.abs();
    if !a.is_finite() || a >= 65_520.0 {
        return if a.is_nan() {
            x
        } else {
            x.signum() * f32::INFINITY
        };
    }
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    // f16 has 10 fraction bits; below 2^-14 the step stays 2^-24 (subnormals).
    let e = (((a.to_bits() >> 23) & 0xff) as i32 - 127).max(-14);
    let step = pow2(e - 10);
    ((a / step).round_ties_even() * step).copysign(x)
}

/// The bits of `x` rounded to the nearest f16 (ties to even): `f16::from_f32(x).to_bits()`.
pub(crate) fn f32_to_f16_bits(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7e00;
    }
    let r = round_to_f16(x);
    let sign = if r.is_sign_negative() { 0x8000u16 } else { 0 };
    let a = r.abs();
    if a == f32::INFINITY {
        sign | 0x7c00
    } else if a < 6.103_515_6e-5 {
        // Subnormal (or zero): a multiple of 2^-24.
        sign | (a * 16_777_216.0) as u16
    } else {
        let bits = a.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        sign | ((exp as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
    }
}

/// Re-quantize Q4_1 blocks (`src`, 20 bytes each) to Q8_0 (34 bytes each), computing exactly
/// what candle's dequantization followed by `QTensor::quantize(.., Q8_0)` computes.
pub(crate) fn q4_1_to_q8_0(src: &[u8], out: &mut Vec<u8>) {
    for blk in src.chunks_exact(20) {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let m = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]));
        let mut x = [0f32; QK];
        for (j, &q) in blk[4..20].iter().enumerate() {
            x[j] = (q & 0x0f) as f32 * d + m;
            x[j + QK / 2] = (q >> 4) as f32 * d + m;
        }
        let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d8 = amax / 127.0;
        let id = if d8 != 0.0 { 1.0 / d8 } else { 0.0 };
        out.extend_from_slice(&f32_to_f16_bits(d8).to_le_bytes());
        out.extend(
            x.iter()
                .map(|&v| round_away((v * id).clamp(-128.0, 127.0)) as i8 as u8),
        );
    }
}

/// `f32::round` (half away from zero) for |x| <= 2^23, without the libm call (NaN gives 0).
#[inline(always)]
fn round_away(x: f32) -> i32 {
    let t = x as i32;
    let frac = x - t as f32;
    t + (frac >= 0.5) as i32 - (frac <= -0.5) as i32
}

/// Activations quantized to Q8_0 for [`Weight::matmul`]: `m` rows of `k` values.
#[derive(Default)]
pub(crate) struct QActs {
    m: usize,
    k: usize,
    qs: Vec<i8>,
    /// Per block of 32: the scale.
    d: Vec<f32>,
    /// Per block: 128 × the sum of the quants (the +128 weight offset's contribution).
    corr: Vec<i32>,
}

impl QActs {
    /// Quantize `x` (`m` rows of `k`, `k` a multiple of 32) the way candle quantizes the
    /// activations of a Q8_0 product on this CPU, so both compute the same integers: per 256
    /// values like `BlockQ8K::from_float` when `k` is a multiple of 256 (candle then takes its
    /// repacked VNNI kernel), else per 32 like `BlockQ8_0::from_float`.
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize) {
        debug_assert!(k.is_multiple_of(QK) && x.len() >= m * k);
        let blocks = m * k / QK;
        self.m = m;
        self.k = k;
        self.qs.resize(m * k, 0);
        self.d.resize(blocks, 0.0);
        self.corr.resize(blocks, 0);
        let x = &x[..m * k];
        if k.is_multiple_of(QK_K) {
            for (i, xs) in x.chunks_exact(QK_K).enumerate() {
                let qs = &mut self.qs[i * QK_K..(i + 1) * QK_K];
                let (mut max, mut amax) = (0f32, 0f32);
                for &v in xs {
                    if amax < v.abs() {
                        amax = v.abs();
                        max = v;
                    }
                }
                let d = if amax == 0.0 {
                    qs.fill(0);
                    0.0
                } else {
                    let iscale = -127f32 / max;
                    for (q, &v) in qs.iter_mut().zip(xs) {
                        *q = round_away((iscale * v).clamp(-128.0, 127.0)) as i8;
                    }
                    1.0 / iscale
                };
                for s in 0..QK_K / QK {
                    let j = i * (QK_K / QK) + s;
                    self.d[j] = d;
                    self.corr[j] = 128
                        * qs[s * QK..(s + 1) * QK]
                            .iter()
                            .map(|&q| q as i32)
                            .sum::<i32>();
                }
            }
            return;
        }
        for (i, xs) in x.chunks_exact(QK).enumerate() {
            let amax = xs.iter().fold(0f32, |a, &v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            self.d[i] = round_to_f16(d);
            let qs = &mut self.qs[i * QK..(i + 1) * QK];
            let mut sum = 0i32;
            for (q, &v) in qs.iter_mut().zip(xs) {
                // `f32::round(v * id) as i8`: |v * id| <= 127 (or NaN, giving 0).
                *q = round_away((v * id).clamp(-128.0, 127.0)) as i8;
                sum += *q as i32;
            }
            self.corr[i] = 128 * sum;
        }
    }
}

/// A weight matrix of shape `(n, k)` multiplied as `x · Wᵀ`.
pub(crate) enum Weight {
    Packed(Arc<PackedQ8_0>),
    Candle {
        mm: QMatMul,
        /// Kept for embedding lookups (the tied embedding matrix), `None` otherwise.
        table: Option<Arc<QTensor>>,
        n: usize,
        k: usize,
    },
}

impl Weight {
    /// A weight from the raw GGUF bytes of a 2-D tensor: packed for our kernel when `fast`
    /// and it is Q8_0 with a fitting shape, else a candle `QMatMul` (which honours
    /// `CANDLE_DEQUANTIZE_ALL`). `keep_table` keeps what embedding lookups need.
    pub fn new(
        data: Vec<u8>,
        dtype: GgmlDType,
        (n, k): (usize, usize),
        fast: bool,
        keep_table: bool,
    ) -> Result<Self> {
        Self::with_kernel(
            data,
            dtype,
            (n, k),
            fast.then(selected_kernel).flatten(),
            keep_table,
        )
    }

    /// [`Weight::new`] with an explicit kernel (`None`: candle's `QMatMul`).
    pub fn with_kernel(
        data: Vec<u8>,
        dtype: GgmlDType,
        (n, k): (usize, usize),
        kernel: Option<Kernel>,
        keep_table: bool,
    ) -> Result<Self> {
        if let (Some(kernel), GgmlDType::Q8_0) = (kernel, dtype) {
            if let Some(p) = PackedQ8_0::from_q8_0(&data, n, k, kernel) {
                return Ok(Weight::Packed(Arc::new(p)));
            }
        }
        let storage = QStorage::from_data(Cow::Owned(data), &Device::Cpu, dtype)?;
        let t = Arc::new(QTensor::new(storage, (n, k))?);
        let mm = QMatMul::from_arc(Arc::clone(&t))?;
        Ok(Weight::Candle {
            mm,
            table: keep_table.then_some(t),
            n,
            k,
        })
    }

    /// Another handle on the same weights (the tied LM head), without a copy.
    pub fn share(&self) -> Result<Self> {
        Ok(match self {
            Weight::Packed(p) => Weight::Packed(Arc::clone(p)),
            Weight::Candle { table, n, k, .. } => {
                let Some(t) = table else {
                    candle_core::bail!("internal error: no table to share");
                };
                Weight::Candle {
                    mm: QMatMul::from_arc(Arc::clone(t))?,
                    table: Some(Arc::clone(t)),
                    n: *n,
                    k: *k,
                }
            }
        })
    }

    pub fn n(&self) -> usize {
        match self {
            Weight::Packed(p) => p.n,
            Weight::Candle { n, .. } => *n,
        }
    }

    pub fn k(&self) -> usize {
        match self {
            Weight::Packed(p) => p.k,
            Weight::Candle { k, .. } => *k,
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self, Weight::Packed(_))
    }

    /// Rows `ids` of the matrix, dequantized, into `out` (`ids.len() × k`).
    pub fn rows(&self, ids: &[u32], out: &mut [f32]) -> Result<()> {
        let k = self.k();
        for &id in ids {
            if id as usize >= self.n() {
                candle_core::bail!("token id {id} out of range ({} rows)", self.n());
            }
        }
        match self {
            Weight::Packed(p) => {
                for (&id, o) in ids.iter().zip(out.chunks_exact_mut(k)) {
                    p.row(id as usize, o);
                }
            }
            Weight::Candle { table, .. } => {
                let Some(t) = table else {
                    candle_core::bail!("internal error: no embedding table");
                };
                let rows = t.embedding(&Tensor::new(ids, &Device::Cpu)?)?;
                let rows = rows.flatten_all()?.to_vec1::<f32>()?;
                out[..rows.len()].copy_from_slice(&rows);
            }
        }
        Ok(())
    }

    /// `out = x · Wᵀ` for `m` rows: `x` is `m × k` (used by the candle fallback), `q` the same
    /// rows quantized (used by the packed kernel), `out` is `m × n`.
    pub fn matmul(&self, x: &[f32], q: &QActs, m: usize, out: &mut [f32]) -> Result<()> {
        let (n, k) = (self.n(), self.k());
        match self {
            Weight::Packed(p) => {
                debug_assert!(q.m == m && q.k == k);
                gemm(p, q, &mut out[..m * n]);
            }
            Weight::Candle { mm, .. } => {
                let xt = Tensor::from_slice(&x[..m * k], (m, k), &Device::Cpu)?;
                let y = mm.forward(&xt)?.flatten_all()?.to_vec1::<f32>()?;
                out[..m * n].copy_from_slice(&y);
            }
        }
        Ok(())
    }
}

/// Run `f` over `0..n_units`, split across candle's thread pool when more than one thread is
/// configured.
fn par_units<F: Fn(std::ops::Range<usize>) + Sync>(n_units: usize, f: F) {
    if n_units > 1 && crate::threads() > 1 {
        candle_core::utils::barrier_pool().execute_chunked(n_units, f);
    } else {
        f(0..n_units);
    }
}

fn gemm(w: &PackedQ8_0, q: &QActs, out: &mut [f32]) {
    let m = q.m;
    let n_tiles = w.n / TILE_N;
    let m_units = m.div_ceil(MAX_MT);
    let out_ptr = out.as_mut_ptr() as usize;
    debug_assert!(out.len() >= m * w.n);
    // Units walk the row chunks of one weight tile row before the next, so a tile row
    // (k/32 tiles, 10 KB for k = 576) stays in cache while the activation rows go by.
    par_units(n_tiles * m_units, |range| {
        for unit in range {
            let (nt, m0) = (unit / m_units, unit % m_units * MAX_MT);
            let mt = (m - m0).min(MAX_MT);
            let out = out_ptr as *mut f32;
            // SAFETY: `w.kernel` was checked to be available when the weights were packed
            // (`PackedQ8_0::from_q8_0`); each unit writes its own 16 columns of its own rows
            // of `out`, which holds m × n values.
            unsafe {
                match w.kernel {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Vnni => match mt {
                        1 => x86::unit::<1>(w, q, nt, m0, out),
                        2 => x86::unit::<2>(w, q, nt, m0, out),
                        3 => x86::unit::<3>(w, q, nt, m0, out),
                        _ => x86::unit::<4>(w, q, nt, m0, out),
                    },
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => match mt {
                        1 => x86::unit_avx2::<1>(w, q, nt, m0, out),
                        2 => x86::unit_avx2::<2>(w, q, nt, m0, out),
                        3 => x86::unit_avx2::<3>(w, q, nt, m0, out),
                        _ => x86::unit_avx2::<4>(w, q, nt, m0, out),
                    },
                    _ => unit_scalar(w, q, nt, m0, mt, out),
                }
            }
        }
    });
}

/// Rows `m0..m0 + mt` of the product against tile row `nt`, in portable Rust.
///
/// # Safety
/// `out` must hold `q.m × w.n` values.
unsafe fn unit_scalar(w: &PackedQ8_0, a: &QActs, nt: usize, m0: usize, mt: usize, out: *mut f32) {
    let (kb, k, n) = (w.kb, w.k, w.n);
    for i in m0..m0 + mt {
        for r in 0..TILE_N {
            let mut acc = 0f32;
            for b in 0..kb {
                let tile = nt * kb + b;
                let mut sum = 0i32;
                for g in 0..8 {
                    let line = &w.qs[tile * 8 + g].0[r * 4..r * 4 + 4];
                    let act = &a.qs[i * k + b * QK + g * 4..i * k + b * QK + g * 4 + 4];
                    for (&wq, &aq) in line.iter().zip(act) {
                        sum += ((wq ^ 0x80) as i8) as i32 * aq as i32;
                    }
                }
                let d = f16_to_f32(w.d[tile * TILE_N + r]);
                acc += sum as f32 * (d * a.d[i * kb + b]);
            }
            *out.add(i * n + nt * TILE_N + r) = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PackedQ8_0, QActs, TILE_N};
    use core::arch::x86_64::*;

    /// Rows `m0..m0 + MT` of the product against tile row `nt` (16 outputs).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn unit<const MT: usize>(
        w: &PackedQ8_0,
        a: &QActs,
        nt: usize,
        m0: usize,
        out: *mut f32,
    ) {
        let (kb, k, n) = (w.kb, w.k, w.n);
        let qs = w.qs.as_ptr().add(nt * kb * 8) as *const __m512i;
        let ds = w.d.as_ptr().add(nt * kb * TILE_N) as *const __m256i;
        let aq = a.qs.as_ptr().add(m0 * k);
        let ad = a.d.as_ptr().add(m0 * kb);
        let ac = a.corr.as_ptr().add(m0 * kb);
        let mut acc = [_mm512_setzero_ps(); MT];
        for b in 0..kb {
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(ds.add(b)));
            let mut isum = [_mm512_setzero_si512(); MT];
            for g in 0..8 {
                let wv = _mm512_load_si512(qs.add(b * 8 + g));
                for (i, s) in isum.iter_mut().enumerate() {
                    let p = aq.add(i * k + b * 32 + g * 4) as *const i32;
                    *s = _mm512_dpbusd_epi32(*s, wv, _mm512_set1_epi32(p.read_unaligned()));
                }
            }
            for (i, (s, acc)) in isum.iter().zip(acc.iter_mut()).enumerate() {
                let j = i * kb + b;
                let f = _mm512_cvtepi32_ps(_mm512_sub_epi32(*s, _mm512_set1_epi32(*ac.add(j))));
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*ad.add(j)));
                *acc = _mm512_fmadd_ps(f, scale, *acc);
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add((m0 + i) * n + nt * TILE_N), *acc);
        }
    }

    /// [`unit`] with AVX2: each 64-byte line is two halves of 8 rows; the weights are made
    /// signed again and multiplied with `vpmaddubsw` on |w| and the activation carrying w's
    /// sign (|w| ≤ 128, |a| ≤ 127: the pair sums fit in i16), then summed with `vpmaddwd`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn unit_avx2<const MT: usize>(
        w: &PackedQ8_0,
        a: &QActs,
        nt: usize,
        m0: usize,
        out: *mut f32,
    ) {
        let (kb, k, n) = (w.kb, w.k, w.n);
        let qs = w.qs.as_ptr().add(nt * kb * 8) as *const __m256i;
        let ds = w.d.as_ptr().add(nt * kb * TILE_N);
        let aq = a.qs.as_ptr().add(m0 * k);
        let ad = a.d.as_ptr().add(m0 * kb);
        let ones = _mm256_set1_epi16(1);
        let flip = _mm256_set1_epi8(-128);
        let mut acc = [[_mm256_setzero_ps(); 2]; MT];
        for b in 0..kb {
            let dw = [
                _mm256_cvtph_ps(_mm_loadu_si128(ds.add(b * TILE_N) as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(ds.add(b * TILE_N + 8) as *const __m128i)),
            ];
            let mut isum = [[_mm256_setzero_si256(); 2]; MT];
            for g in 0..8 {
                let mut av = [_mm256_setzero_si256(); MT];
                for (i, v) in av.iter_mut().enumerate() {
                    let p = aq.add(i * k + b * 32 + g * 4) as *const i32;
                    *v = _mm256_set1_epi32(p.read_unaligned());
                }
                for h in 0..2 {
                    let wv = _mm256_xor_si256(_mm256_load_si256(qs.add((b * 8 + g) * 2 + h)), flip);
                    let wabs = _mm256_sign_epi8(wv, wv);
                    for (sums, a) in isum.iter_mut().zip(&av) {
                        let prod = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(*a, wv));
                        sums[h] = _mm256_add_epi32(sums[h], _mm256_madd_epi16(prod, ones));
                    }
                }
            }
            for (i, (sums, accs)) in isum.iter().zip(acc.iter_mut()).enumerate() {
                let scale = _mm256_set1_ps(*ad.add(i * kb + b));
                for ((s, a), d) in sums.iter().zip(accs.iter_mut()).zip(&dw) {
                    let f = _mm256_cvtepi32_ps(*s);
                    *a = _mm256_fmadd_ps(f, _mm256_mul_ps(*d, scale), *a);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let o = out.add((m0 + i) * n + nt * TILE_N);
            _mm256_storeu_ps(o, acc[0]);
            _mm256_storeu_ps(o.add(8), acc[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_q8_0(n: usize, k: usize, seed: u64) -> Result<QTensor> {
        let mut s = seed;
        let data: Vec<f32> = (0..n * k)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        QTensor::quantize(
            &Tensor::from_vec(data, (n, k), &Device::Cpu)?,
            GgmlDType::Q8_0,
        )
    }

    #[test]
    fn round_away_matches_round() {
        let mut s = 5u64;
        let mut xs = vec![
            0.5f32,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999997,
            -0.49999997,
            127.0,
            -128.0,
            126.5,
        ];
        for _ in 0..100_000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            xs.push(((s >> 33) as f32 / (1u64 << 31) as f32) * 256.0 - 128.0);
        }
        for x in xs {
            assert_eq!(round_away(x), x.round() as i32, "{x}");
        }
        assert_eq!(round_away(f32::NAN), f32::NAN.round() as i8 as i32);
    }

    /// Our Q4_1 -> Q8_0 conversion against candle's dequantize-then-quantize.
    #[test]
    fn q4_1_to_q8_0_matches_candle() -> Result<()> {
        for scale in [1e-3f32, 0.1, 1.0, 30.0] {
            let x = (Tensor::randn(0f32, scale, (64, 96), &Device::Cpu)? + 0.3 * scale as f64)?;
            let q41 = QTensor::quantize(&x, GgmlDType::Q4_1)?;
            let want = QTensor::quantize(&q41.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?;
            let mut got = Vec::new();
            q4_1_to_q8_0(&q41.data()?, &mut got);
            assert_eq!(got.as_slice(), &*want.data()?, "scale {scale}");
        }
        Ok(())
    }

    /// Our f16 helpers against the scales candle stores in Q8_0 blocks.
    #[test]
    fn f16_rounding_matches_candle() -> Result<()> {
        let mut amaxes: Vec<f32> = vec![0.0, 1e-9, 6.1e-5, 5.9e-5, 1.0, 127.0, 1000.0, 65_000.0];
        let mut s = 1u64;
        for _ in 0..2000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = (s >> 60) as i32 - 10;
            amaxes.push(((s >> 33) as f32 / (1u64 << 31) as f32) * 2f32.powi(e));
        }
        for &amax in &amaxes {
            let mut x = vec![0f32; 32];
            x[5] = -amax;
            let t = QTensor::quantize(
                &Tensor::from_vec(x, (1, 32), &Device::Cpu)?,
                GgmlDType::Q8_0,
            )?;
            let data = t.data()?;
            let bits = u16::from_le_bytes([data[0], data[1]]);
            let d = amax / 127.0;
            assert_eq!(round_to_f16(d), f16_to_f32(bits), "amax {amax}");
            assert_eq!(f32_to_f16_bits(d), bits, "amax {amax}");
        }
        Ok(())
    }

    /// Each packed kernel the CPU has against the scalar one (the same integers, so equal up
    /// to float summation order), the scalar one against candle's Q8_0 product, and the row
    /// lookup against candle's dequantization. A kernel the CPU lacks is skipped loudly (a CPU
    /// feature is not something CI can install).
    #[test]
    fn packed_kernels_match_scalar_and_candle() -> Result<()> {
        let kernels = [Kernel::Avx2, Kernel::Vnni];
        for k in kernels.iter().filter(|k| !k.available()) {
            eprintln!("SKIPPED: the {k:?} kernel (this CPU lacks its instructions)");
        }
        for (n, k, m) in [
            (48, 96, 1),
            (32, 576, 3),
            (64, 1536, 7),
            (16, 32, 5),
            (32, 64, 4),
        ] {
            let t = random_q8_0(n, k, (n * k + m) as u64)?;
            let want_rows = t.dequantize(&Device::Cpu)?.to_vec2::<f32>()?;
            let data = t.data()?.into_owned();
            let x = random_q8_0(m, k, 7)?.dequantize(&Device::Cpu)?;
            let want = QMatMul::from_qtensor(t)?.forward(&x)?.to_vec2::<f32>()?;
            let x = x.flatten_all()?.to_vec1::<f32>()?;
            let mut q = QActs::default();
            q.quantize(&x, m, k);
            let run = |kernel: Kernel| -> Result<Vec<f32>> {
                let w =
                    Weight::with_kernel(data.clone(), GgmlDType::Q8_0, (n, k), Some(kernel), true)?;
                assert!(w.is_packed());
                let mut got = vec![0f32; m * n];
                w.matmul(&x, &q, m, &mut got)?;
                let mut row = vec![0f32; k];
                for r in [0, n / 2, n - 1] {
                    w.rows(&[r as u32], &mut row)?;
                    assert_eq!(row, want_rows[r]);
                }
                Ok(got)
            };
            let scalar = run(Kernel::Scalar)?;
            // candle quantizes the activations per 32 values except on AVX-512-VNNI when k is
            // a multiple of 256 (per 256, like `QActs`): there the results differ by the
            // activations' rounding, elsewhere only by summation order.
            let same_acts = !k.is_multiple_of(QK_K) || Kernel::Vnni.available();
            let tol = if same_acts { 1e-4 } else { 3e-2 };
            for (i, row) in want.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let g = scalar[i * n + j];
                    assert!(
                        (g - v).abs() <= tol * (1.0 + v.abs()),
                        "{n}x{k} m={m}: {g} vs {v}"
                    );
                }
            }
            for &kernel in kernels.iter().filter(|k| k.available()) {
                let got = run(kernel)?;
                for (g, s) in got.iter().zip(&scalar) {
                    assert!(
                        (g - s).abs() <= 1e-4 * (1.0 + s.abs()),
                        "{kernel:?} {n}x{k} m={m}: {g} vs {s}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn kernel_names() {
        assert_eq!(kernel_for("scalar"), Some(Kernel::Scalar));
        assert_eq!(kernel_for("candle"), None);
        assert_eq!(
            kernel_for("avx2"),
            Kernel::Avx2.available().then_some(Kernel::Avx2)
        );
        let best = [Kernel::Vnni, Kernel::Avx2]
            .into_iter()
            .find(|k| k.available());
        assert_eq!(kernel_for("auto"), best);
        assert_eq!(kernel_for(""), kernel_for("auto"));
    }

    /// Kernel throughput on a small (cache-resident) and a large matrix. Prints only:
    /// `cargo test -p super-local --release --lib -- --ignored --nocapture kernel_speed`.
    #[test]
    #[ignore]
    fn kernel_speed() -> Result<()> {
        for kernel in [Kernel::Scalar, Kernel::Avx2, Kernel::Vnni] {
            if kernel.available() {
                kernel_speed_of(Some(kernel))?;
            }
        }
        kernel_speed_of(None)
    }

    fn kernel_speed_of(kernel: Option<Kernel>) -> Result<()> {
        eprintln!("{kernel:?}:");
        for (n, k, m, reps) in [
            (576, 576, 1, 4000),
            (1536, 576, 1, 1000),
            (49152, 576, 1, 40),
            (576, 576, 4, 1000),
            (1536, 576, 64, 20),
        ] {
            let t = random_q8_0(n, k, 3)?;
            let w = Weight::with_kernel(
                t.data()?.into_owned(),
                GgmlDType::Q8_0,
                (n, k),
                kernel,
                false,
            )?;
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut q = QActs::default();
            q.quantize(&x, m, k);
            let mut out = vec![0f32; m * n];
            let start = std::time::Instant::now();
            for _ in 0..reps {
                w.matmul(&x, &q, m, &mut out)?;
            }
            let dt = start.elapsed().as_secs_f64() / reps as f64;
            let bytes = (n * k / 32 * 34) as f64;
            eprintln!(
                "{n}x{k} m={m}: {:.1} us, {:.1} GB/s of weights, {:.1} GMAC/s",
                dt * 1e6,
                bytes / dt / 1e9,
                (n * k * m) as f64 / dt / 1e9
            );
        }
        Ok(())
    }
}
