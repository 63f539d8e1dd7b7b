//! Re-quantization of slow tensor types to Q8_0, and the on-disk cache of the result.
//!
//! candle 0.11 has no SIMD dot product for Q4_1 (nor Q5_0, Q5_1, Q8_1) on x86: those run the
//! scalar fallback, about 4× slower than Q8_0, which has AVX2/AVX-512 kernels. Q8_0 holds a
//! Q4_1 block (16 levels plus an offset) almost exactly, so [`prepare`] dequantizes each slow
//! tensor and quantizes it again to Q8_0 (~0.7 s for SmolLM2-135M), and writes the result as a
//! GGUF next to the source, `<file>.q8_0.gguf`, through a temporary file and a rename, so the
//! next load reads it directly (~0.25 s). The cache records the source's size and modification
//! time and is rebuilt when they change. When the directory is not writable, the conversion is
//! done in memory every time instead.

use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
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

    let (metadata, tensors) = convert(path, &content, &mut reader, stamp)?;
    drop(reader);

    if let Some(written) = write_cache(&cache, &metadata, &tensors) {
        drop(tensors);
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

    let mut cursor = Cursor::new(Vec::new());
    write_gguf(&mut cursor, &metadata, &tensors).map_err(|e| convert_err(path, e))?;
    drop(tensors);
    cursor.set_position(0);
    let content = gguf_file::Content::read(&mut cursor).map_err(|e| convert_err(path, e))?;
    Ok(Prepared {
        content,
        reader: Box::new(cursor),
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

type Metadata = Vec<(String, gguf_file::Value)>;
type Tensors = Vec<(String, QTensor)>;

/// Read every tensor, re-quantizing the slow ones to Q8_0; keep the metadata, stamped.
fn convert<R: Read + Seek>(
    path: &Path,
    content: &gguf_file::Content,
    reader: &mut R,
    stamp: Stamp,
) -> Result<(Metadata, Tensors), LocalError> {
    let mut infos: Vec<(&String, &gguf_file::TensorInfo)> = content.tensor_infos.iter().collect();
    infos.sort_by_key(|(name, info)| (info.offset, (*name).clone()));
    let device = Device::Cpu;
    let mut tensors = Vec::with_capacity(infos.len());
    let mut converted = 0u32;
    for (name, info) in infos {
        let t = content
            .tensor(reader, name, &device)
            .map_err(|e| gguf_err(path, format!("tensor {name}: {e}")))?;
        let t = if needs_requant(info.ggml_dtype) {
            converted += 1;
            let f = t
                .dequantize(&device)
                .map_err(|e| convert_err(path, format!("tensor {name}: {e}")))?;
            QTensor::quantize(&f, GgmlDType::Q8_0)
                .map_err(|e| convert_err(path, format!("tensor {name}: {e}")))?
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }

    let mut metadata: Metadata = content
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
    Ok((metadata, tensors))
}

fn write_gguf<W: Write + Seek>(
    w: &mut W,
    metadata: &Metadata,
    tensors: &Tensors,
) -> candle_core::Result<()> {
    let md: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    gguf_file::write(w, &md, &ts)
}

/// Write the conversion to `cache` atomically (temporary file in the same directory, then
/// rename). `None` when the directory is not writable or the write fails for any reason: the
/// caller then converts in memory.
fn write_cache(cache: &Path, metadata: &Metadata, tensors: &Tensors) -> Option<PathBuf> {
    let dir = cache.parent()?;
    let name = cache.file_name()?.to_string_lossy().into_owned();
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let file = File::create(&tmp).ok()?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        write_gguf(&mut w, metadata, tensors)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, cache)?;
        Ok(())
    })();
    match result {
        Ok(()) => Some(cache.to_path_buf()),
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
            None
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
