//! Re-quantization of slow tensor types to Q8_0, and the on-disk cache of the result.
//!
//! candle 0.11 has no SIMD dot product for Q4_1 (nor Q5_0, Q5_1, Q8_1) on x86: those run the
//! scalar fallback, about 4× slower than Q8_0, which has AVX2/AVX-512 kernels (and our own
//! VNNI kernel in `qmm`). Q8_0 holds a Q4_1 block (16 levels plus an offset) almost exactly, so
//! `prepare` dequantizes each slow tensor and quantizes it again to Q8_0, and writes the
//! result as a GGUF next to the source, `<file>.q8_0.gguf`, through a temporary file and a
//! rename, so the next load reads it directly. The cache records the source's size and
//! modification time and is rebuilt when they change.
//!
//! The conversion streams: the new file's header is computed first (every tensor's converted
//! size is known from its shape), then each tensor is read, converted a few rows at a time and
//! written before the next is read, so it never holds more than one tensor. When the directory
//! is not writable, the converted file is served from memory instead, through a reader that
//! converts each tensor when it is read (one tensor held at a time, not the whole file).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::Device;

use crate::LocalError;

/// Bumped when the conversion changes, invalidating older caches.
pub const CONVERT_VERSION: u32 = 1;
const KEY_VERSION: &str = "super.requant.version";
const KEY_SOURCE_SIZE: &str = "super.requant.source_size";
const KEY_SOURCE_MTIME: &str = "super.requant.source_mtime_ns";
const KEY_SOURCE_NAME: &str = "super.requant.source_name";
/// `LLAMA_FTYPE_MOSTLY_Q8_0`.
const FILE_TYPE_Q8_0: u32 = 7;

/// Tensor types that candle 0.11 multiplies with a scalar (non-SIMD) kernel on CPU.
pub fn needs_requant(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1
    )
}

/// Where the Q8_0 conversion of `source` is cached: `<source>.q8_0.gguf`.
pub fn converted_path(source: &Path) -> PathBuf {
    let mut name = source
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".q8_0.gguf");
    source.with_file_name(name)
}

/// A readable, seekable source of GGUF bytes (a file or an in-memory conversion).
pub(crate) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// How the weights were obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsOrigin {
    /// The source file had no slow tensors and was read as is.
    Source,
    /// A valid Q8_0 cache from an earlier load was read.
    Cache(PathBuf),
    /// The source was converted now and the result cached at this path.
    Converted(PathBuf),
    /// The source was converted now, in memory (the cache could not be written).
    InMemory,
}

/// A GGUF ready for `ModelWeights::from_gguf`: parsed header plus a reader of its bytes.
pub(crate) struct Prepared {
    pub content: gguf_file::Content,
    pub reader: Box<dyn ReadSeek>,
    pub origin: WeightsOrigin,
    /// Number of tensors that were re-quantized (now or when the cache was built).
    pub requantized: usize,
}

fn gguf_err(path: &Path, e: impl std::fmt::Display) -> LocalError {
    LocalError::Gguf {
        path: path.into(),
        message: e.to_string(),
    }
}

fn convert_err(path: &Path, e: impl std::fmt::Display) -> LocalError {
    LocalError::Convert {
        path: path.into(),
        message: e.to_string(),
    }
}

/// Identity of a source file for cache invalidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: u64,
}

fn stamp(path: &Path) -> Result<Stamp, LocalError> {
    let md = std::fs::metadata(path).map_err(|e| LocalError::io("stat", path, e))?;
    let mtime_ns = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Ok(Stamp {
        size: md.len(),
        mtime_ns,
    })
}

/// Open `path` and make it ready for loading, re-quantizing slow tensors to Q8_0 through the
/// on-disk cache (see the module docs).
pub(crate) fn prepare(path: &Path) -> Result<Prepared, LocalError> {
    let file = File::open(path).map_err(|e| LocalError::io("open", path, e))?;
    let mut reader = BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| gguf_err(path, e))?;
    let slow = content
        .tensor_infos
        .values()
        .filter(|t| needs_requant(t.ggml_dtype))
        .count();
    if slow == 0 {
        let requantized = previously_requantized(&content);
        return Ok(Prepared {
            content,
            reader: Box::new(reader),
            origin: WeightsOrigin::Source,
            requantized,
        });
    }

    let stamp = stamp(path)?;
    let cache = converted_path(path);
    if let Some((content, reader)) = open_valid_cache(&cache, stamp) {
        return Ok(Prepared {
            content,
            reader: Box::new(reader),
            origin: WeightsOrigin::Cache(cache),
            requantized: slow,
        });
    }

    let plan = Plan::new(path, &content, stamp)?;
    drop(content);

    if let Some(written) = write_cache(&cache, &plan, &mut reader, path)? {
        drop(reader);
        let file = File::open(&written).map_err(|e| LocalError::io("open", &written, e))?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| gguf_err(&written, e))?;
        return Ok(Prepared {
            content,
            reader: Box::new(reader),
            origin: WeightsOrigin::Converted(written),
            requantized: slow,
        });
    }

    let mut reader = ConvertingReader {
        plan,
        source: reader,
        pos: 0,
        current: None,
    };
    let content = gguf_file::Content::read(&mut reader).map_err(|e| convert_err(path, e))?;
    Ok(Prepared {
        content,
        reader: Box::new(reader),
        origin: WeightsOrigin::InMemory,
        requantized: slow,
    })
}

/// For a file we converted earlier and loaded directly, how many tensors it says it converted
/// (0 when it is not one of ours).
fn previously_requantized(content: &gguf_file::Content) -> usize {
    content
        .metadata
        .get("super.requant.tensors")
        .and_then(|v| v.to_u32().ok())
        .unwrap_or(0) as usize
}

/// The cache at `cache` if it was built by this version from a source with `stamp` and holds
/// all its tensor bytes.
fn open_valid_cache(cache: &Path, stamp: Stamp) -> Option<(gguf_file::Content, BufReader<File>)> {
    let file = File::open(cache).ok()?;
    let len = file.metadata().ok()?.len();
    let mut reader = BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader).ok()?;
    let md_u64 = |k: &str| content.metadata.get(k).and_then(|v| v.to_u64().ok());
    let version = content.metadata.get(KEY_VERSION)?.to_u32().ok()?;
    if version != CONVERT_VERSION
        || md_u64(KEY_SOURCE_SIZE)? != stamp.size
        || md_u64(KEY_SOURCE_MTIME)? != stamp.mtime_ns
    {
        return None;
    }
    for info in content.tensor_infos.values() {
        if needs_requant(info.ggml_dtype) {
            return None;
        }
        let bytes = (info.shape.elem_count() / info.ggml_dtype.block_size()) as u64
            * info.ggml_dtype.type_size() as u64;
        if content.tensor_data_offset + info.offset + bytes > len {
            return None;
        }
    }
    Some((content, reader))
}

/// One tensor of the converted file.
struct PlannedTensor {
    name: String,
    /// Shape in candle's order (rows first).
    dims: Vec<usize>,
    src_dtype: GgmlDType,
    /// Absolute position and size of the tensor in the source file.
    src_offset: u64,
    src_size: usize,
    dtype: GgmlDType,
    /// Position relative to the start of the tensor data, and size, in the converted file.
    offset: u64,
    size: usize,
}

/// The converted file, laid out before any tensor is converted.
struct Plan {
    /// Everything before the tensor data, alignment padding included.
    header: Vec<u8>,
    /// In file order.
    tensors: Vec<PlannedTensor>,
    /// Total length of the file.
    len: u64,
}

fn tensor_bytes(dtype: GgmlDType, elems: usize) -> usize {
    elems / dtype.block_size() * dtype.type_size()
}

fn align_to(n: u64, align: u64) -> u64 {
    n.div_ceil(align) * align
}

/// The GGUF code of a tensor type.
fn dtype_code(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

/// The GGUF code of a metadata value's type.
fn value_code(v: &gguf_file::Value) -> u32 {
    use gguf_file::Value as V;
    match v {
        V::U8(_) => 0,
        V::I8(_) => 1,
        V::U16(_) => 2,
        V::I16(_) => 3,
        V::U32(_) => 4,
        V::I32(_) => 5,
        V::F32(_) => 6,
        V::Bool(_) => 7,
        V::String(_) => 8,
        V::Array(_) => 9,
        V::U64(_) => 10,
        V::I64(_) => 11,
        V::F64(_) => 12,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A metadata value as GGUF writes it (what candle's `gguf_file::write` does).
fn put_value(out: &mut Vec<u8>, v: &gguf_file::Value) -> Result<(), String> {
    use gguf_file::Value as V;
    match v {
        V::U8(x) => out.push(*x),
        V::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        V::Bool(x) => out.push(u8::from(*x)),
        V::String(x) => put_string(out, x),
        V::Array(items) => {
            let code = items.first().map_or(4, value_code);
            if items.iter().any(|i| value_code(i) != code) {
                return Err("metadata array with mixed value types".into());
            }
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item)?;
            }
        }
    }
    Ok(())
}

impl Plan {
    /// Lay out the conversion of `content` (read from `path`): the source's metadata (minus
    /// ours, the file type set to Q8_0, our stamp added, sorted by key), then its tensors in
    /// file order, the slow ones as Q8_0. The bytes are those candle's `gguf_file::write`
    /// produced for the same tensors (GGUF v2), so older caches stay valid.
    fn new(path: &Path, content: &gguf_file::Content, stamp: Stamp) -> Result<Self, LocalError> {
        let mut infos: Vec<(&String, &gguf_file::TensorInfo)> =
            content.tensor_infos.iter().collect();
        infos.sort_by_key(|(name, info)| (info.offset, (*name).clone()));
        let mut converted = 0u32;
        let mut tensors = Vec::with_capacity(infos.len());
        for (name, info) in infos {
            let elems = info.shape.elem_count();
            let src_dtype = info.ggml_dtype;
            let dims = info.shape.dims().to_vec();
            let dtype = if needs_requant(src_dtype) {
                let cols = dims.last().copied().unwrap_or(0);
                if !cols.is_multiple_of(GgmlDType::Q8_0.block_size())
                    || !cols.is_multiple_of(src_dtype.block_size())
                {
                    return Err(convert_err(path, format!("tensor {name}: shape {dims:?}")));
                }
                converted += 1;
                GgmlDType::Q8_0
            } else {
                src_dtype
            };
            if !elems.is_multiple_of(src_dtype.block_size()) {
                return Err(gguf_err(path, format!("tensor {name}: shape {dims:?}")));
            }
            tensors.push(PlannedTensor {
                name: name.clone(),
                dims,
                src_dtype,
                src_offset: content.tensor_data_offset + info.offset,
                src_size: tensor_bytes(src_dtype, elems),
                dtype,
                offset: 0,
                size: tensor_bytes(dtype, elems),
            });
        }

        let mut metadata: Vec<(String, gguf_file::Value)> = content
            .metadata
            .iter()
            .filter(|(k, _)| !k.starts_with("super.requant."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in metadata.iter_mut() {
            if k == "general.file_type" {
                *v = gguf_file::Value::U32(FILE_TYPE_Q8_0);
            }
        }
        let source_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        metadata.extend([
            (
                KEY_VERSION.to_owned(),
                gguf_file::Value::U32(CONVERT_VERSION),
            ),
            (
                KEY_SOURCE_SIZE.to_owned(),
                gguf_file::Value::U64(stamp.size),
            ),
            (
                KEY_SOURCE_MTIME.to_owned(),
                gguf_file::Value::U64(stamp.mtime_ns),
            ),
            (
                KEY_SOURCE_NAME.to_owned(),
                gguf_file::Value::String(source_name),
            ),
            (
                "super.requant.tensors".to_owned(),
                gguf_file::Value::U32(converted),
            ),
        ]);
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        // What the reader will align the data to (candle's writer always pads to 32, the
        // default; honour an explicit `general.alignment` so reading matches writing).
        let align = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            Some((_, v)) => v.to_u32().ok().filter(|&a| a > 0).unwrap_or(32) as u64,
            None => 32,
        };

        let mut header = Vec::new();
        header.extend_from_slice(&0x4655_4747u32.to_le_bytes()); // "GGUF"
        header.extend_from_slice(&2u32.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in &metadata {
            put_string(&mut header, k);
            header.extend_from_slice(&value_code(v).to_le_bytes());
            put_value(&mut header, v).map_err(|e| convert_err(path, format!("{k}: {e}")))?;
        }
        let mut offset = 0u64;
        for t in tensors.iter_mut() {
            put_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for &d in t.dims.iter().rev() {
                header.extend_from_slice(&(d as u64).to_le_bytes());
            }
            header.extend_from_slice(&dtype_code(t.dtype).to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            t.offset = offset;
            offset = align_to(offset + t.size as u64, align);
        }
        header.resize(align_to(header.len() as u64, align) as usize, 0);
        let len = header.len() as u64 + offset;
        Ok(Self {
            header,
            tensors,
            len,
        })
    }

    /// Where tensor `i`'s padded slot ends, relative to the start of the data.
    fn slot_end(&self, i: usize) -> u64 {
        match self.tensors.get(i + 1) {
            Some(next) => next.offset,
            None => self.len - self.header.len() as u64,
        }
    }
}

/// Rows converted at once: bounds the f32 buffer to ~1 MB.
const CHUNK_VALUES: usize = 1 << 18;

/// The bytes of tensor `t` in the converted file: read from the source, re-quantized to
/// Q8_0 a few rows at a time when it is a slow type (Q8_0 blocks are independent, so the bytes
/// are those of converting the whole tensor at once).
fn tensor_data<R: Read + Seek>(source: &mut R, t: &PlannedTensor) -> Result<Vec<u8>, String> {
    let mut src = vec![0u8; t.src_size];
    source
        .seek(SeekFrom::Start(t.src_offset))
        .and_then(|_| source.read_exact(&mut src))
        .map_err(|e| format!("tensor {}: {e}", t.name))?;
    if t.dtype == t.src_dtype {
        return Ok(src);
    }
    let mut out = Vec::with_capacity(t.size);
    if t.src_dtype == GgmlDType::Q4_1 && t.dtype == GgmlDType::Q8_0 {
        crate::qmm::q4_1_to_q8_0(&src, &mut out);
        return Ok(out);
    }
    let cols = t.dims.last().copied().unwrap_or(1).max(1);
    let row_bytes = tensor_bytes(t.src_dtype, cols);
    let rows = (CHUNK_VALUES / cols).max(1);
    let device = Device::Cpu;
    for chunk in src.chunks(rows * row_bytes) {
        let mut convert = || -> candle_core::Result<()> {
            let storage = QStorage::from_data(Cow::Borrowed(chunk), &device, t.src_dtype)?;
            let q = QTensor::new(storage, (chunk.len() / row_bytes, cols))?;
            let q8 = QTensor::quantize(&q.dequantize(&device)?, GgmlDType::Q8_0)?;
            out.extend_from_slice(&q8.data()?);
            Ok(())
        };
        convert().map_err(|e| format!("tensor {}: {e}", t.name))?;
    }
    if out.len() != t.size {
        return Err(format!(
            "tensor {}: converted to {} bytes, expected {}",
            t.name,
            out.len(),
            t.size
        ));
    }
    Ok(out)
}

/// Write the conversion to `cache` atomically (temporary file in the same directory, then
/// rename), one tensor at a time. `Ok(None)` when the directory is not writable or the write
/// fails for any reason (the caller then converts in memory); an error when the source cannot
/// be read or converted.
fn write_cache<R: Read + Seek>(
    cache: &Path,
    plan: &Plan,
    source: &mut R,
    path: &Path,
) -> Result<Option<PathBuf>, LocalError> {
    let (Some(dir), Some(name)) = (cache.parent(), cache.file_name()) else {
        return Ok(None);
    };
    let name = name.to_string_lossy().into_owned();
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    // Something that is not a file squats on the cache path: the rename would fail after
    // the whole conversion.
    if cache.symlink_metadata().is_ok_and(|m| !m.is_file()) {
        return Ok(None);
    }
    let Ok(file) = File::create(&tmp) else {
        return Ok(None);
    };
    enum Failure {
        Write,
        Convert(String),
    }
    let result = (|| -> Result<(), Failure> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&plan.header).map_err(|_| Failure::Write)?;
        let mut written = plan.header.len() as u64;
        for (i, t) in plan.tensors.iter().enumerate() {
            let data = tensor_data(source, t).map_err(Failure::Convert)?;
            w.write_all(&data).map_err(|_| Failure::Write)?;
            let end = plan.header.len() as u64 + plan.slot_end(i);
            written += data.len() as u64;
            let pad = vec![0u8; (end - written) as usize];
            w.write_all(&pad).map_err(|_| Failure::Write)?;
            written = end;
        }
        let file = w.into_inner().map_err(|_| Failure::Write)?;
        file.sync_all().map_err(|_| Failure::Write)?;
        std::fs::rename(&tmp, cache).map_err(|_| Failure::Write)?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(Some(cache.to_path_buf())),
        Err(failure) => {
            let _ = std::fs::remove_file(&tmp);
            match failure {
                Failure::Write => Ok(None),
                Failure::Convert(message) => Err(convert_err(path, message)),
            }
        }
    }
}

/// The converted file, read from memory without ever holding it: the header is kept, and a
/// tensor is converted from the source when its bytes are read (the last one stays cached,
/// which suits loaders that read tensor by tensor).
struct ConvertingReader {
    plan: Plan,
    source: BufReader<File>,
    pos: u64,
    current: Option<(usize, Vec<u8>)>,
}

impl Read for ConvertingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || self.pos >= self.plan.len {
            return Ok(0);
        }
        let header = self.plan.header.len() as u64;
        if self.pos < header {
            let at = self.pos as usize;
            let n = buf.len().min(self.plan.header.len() - at);
            buf[..n].copy_from_slice(&self.plan.header[at..at + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let d = self.pos - header;
        let i = self.plan.tensors.partition_point(|t| t.offset <= d) - 1;
        let (offset, size) = (self.plan.tensors[i].offset, self.plan.tensors[i].size);
        let within = (d - offset) as usize;
        let n = if within >= size {
            // Alignment padding.
            let n = buf.len().min((self.plan.slot_end(i) - d) as usize);
            buf[..n].fill(0);
            n
        } else {
            if self.current.as_ref().map(|c| c.0) != Some(i) {
                self.current = None;
                let data = tensor_data(&mut self.source, &self.plan.tensors[i])
                    .map_err(std::io::Error::other)?;
                self.current = Some((i, data));
            }
            let data = &self.current.as_ref().expect("just converted").1;
            let n = buf.len().min(size - within);
            buf[..n].copy_from_slice(&data[within..within + n]);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ConvertingReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.plan.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_path_appends_a_suffix() {
        assert_eq!(
            converted_path(Path::new("/m/SmolLM2-135M-Instruct.Q4_1.gguf")),
            PathBuf::from("/m/SmolLM2-135M-Instruct.Q4_1.gguf.q8_0.gguf")
        );
    }

    #[test]
    fn q4_1_survives_requantization_to_q8_0() -> candle_core::Result<()> {
        let device = Device::Cpu;
        let data: Vec<f32> = (0..64 * 32)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let t = candle_core::Tensor::from_vec(data, (64, 32), &device)?;
        let q41 = QTensor::quantize(&t, GgmlDType::Q4_1)?;
        let ref41 = q41.dequantize(&device)?;
        let q8 = QTensor::quantize(&ref41, GgmlDType::Q8_0)?;
        let back = q8.dequantize(&device)?;
        let err = (back - &ref41)?.abs()?.max_all()?.to_scalar::<f32>()?;
        // Q8_0's step is max|x|/127 per block of 32: here at most 2/127.
        assert!(err < 0.02, "max error {err}");
        Ok(())
    }
}
