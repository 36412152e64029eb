//! GGUF for LLaDA2: a streaming writer (the header is planned from shapes and types, then
//! tensors are produced and written one at a time, so a 16B-parameter model never sits in
//! memory) and a [`WeightSource`] that hands quantized linears to the model as they are.
//!
//! Layout: GGUF v3, 32-byte alignment, the checkpoint's own tensor names
//! (`model.layers.3.mlp.experts.17.up_proj.weight`, ...), metadata
//! `general.architecture = "llada2_moe"`, `draftscope.config` (the config.json text) and
//! `draftscope.quantization`. The model directory also keeps `config.json` and the tokenizer.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::linear::Linear;
use super::quant::stored_bytes;
use super::weights::WeightSource;

pub const ARCHITECTURE: &str = "llada2_moe";
const ALIGNMENT: u64 = 32;
/// The lookup table handed out by [`WeightSource::get_table`].
const TABLE: &str = "model.word_embeddings.weight";

/// One tensor of a planned file.
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    /// Checkpoint layout (`[out, in]` for linears).
    pub shape: Vec<usize>,
    pub dtype: GgmlDType,
}

impl Planned {
    pub fn bytes(&self) -> u64 {
        stored_bytes(self.dtype, self.shape.iter().product())
    }
}

/// The GGUF type id (ggml.h `ggml_type`); candle keeps its own mapping private.
fn ggml_type_id(t: GgmlDType) -> u32 {
    match t {
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

fn pad(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT) * ALIGNMENT - n
}

fn write_str(w: &mut impl Write, s: &str) -> Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())?;
    Ok(())
}

/// Writes `path` atomically: the header for `plan`, then each tensor's bytes, which
/// `produce(i, planned, writer)` writes (returning the count). `metadata` values are strings.
/// Returns the file size.
pub fn write_streaming(
    path: &Path,
    metadata: &[(&str, String)],
    plan: &[Planned],
    mut produce: impl FnMut(usize, &Planned, &mut dyn Write) -> Result<u64>,
) -> Result<u64> {
    let mut total = 0u64;
    crate::session::atomic_write_with(path, |_, f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&0x4655_4747u32.to_le_bytes())?; // "GGUF"
        w.write_all(&3u32.to_le_bytes())?;
        w.write_all(&(plan.len() as u64).to_le_bytes())?;
        w.write_all(&(metadata.len() as u64 + 2).to_le_bytes())?;
        write_str(&mut w, "general.architecture")?;
        w.write_all(&8u32.to_le_bytes())?; // string
        write_str(&mut w, ARCHITECTURE)?;
        write_str(&mut w, "general.alignment")?;
        w.write_all(&4u32.to_le_bytes())?; // u32
        w.write_all(&(ALIGNMENT as u32).to_le_bytes())?;
        for (k, v) in metadata {
            write_str(&mut w, k)?;
            w.write_all(&8u32.to_le_bytes())?;
            write_str(&mut w, v)?;
        }
        let mut offset = 0u64;
        for t in plan {
            write_str(&mut w, &t.name)?;
            w.write_all(&(t.shape.len() as u32).to_le_bytes())?;
            for &d in t.shape.iter().rev() {
                w.write_all(&(d as u64).to_le_bytes())?;
            }
            w.write_all(&ggml_type_id(t.dtype).to_le_bytes())?;
            w.write_all(&offset.to_le_bytes())?;
            offset += t.bytes() + pad(t.bytes());
        }
        let pos = w.stream_position()?;
        w.write_all(&vec![0u8; pad(pos) as usize])?;
        for (i, t) in plan.iter().enumerate() {
            let n = produce(i, t, &mut w)?;
            if n != t.bytes() {
                bail!("internal: tensor `{}` wrote {n} bytes, planned {}", t.name, t.bytes());
            }
            w.write_all(&vec![0u8; pad(n) as usize])?;
        }
        w.flush()?;
        total = w.stream_position()?;
        Ok(())
    })?;
    Ok(total)
}

/// Whole rows of a tensor (`shape`, f32 values) in storage type `t`, as GGUF bytes. Blocks run
/// along rows, so quantizing row chunks gives the bytes of quantizing the whole tensor.
pub fn encode(values: &[f32], shape: &[usize], t: GgmlDType) -> Result<Vec<u8>> {
    let x = Tensor::from_slice(values, shape, &Device::Cpu)?;
    Ok(QTensor::quantize(&x, t)?.data()?.into_owned())
}

/// The `.gguf` file of a model directory, if it has exactly one.
pub fn find_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "gguf") {
            found.push(p);
        }
    }
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => bail!(
            "{}: {} .gguf files ({}); keep one per model directory",
            dir.display(),
            found.len(),
            found
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A GGUF file opened for loading: header parsed and every tensor checked to lie inside it.
pub struct GgufWeights {
    path: PathBuf,
    content: Content,
    file: RefCell<File>,
    /// The file mapped read-only (CPU): quantized weights are views of it, not heap copies.
    map: Option<std::sync::Arc<memmap2::Mmap>>,
    device: Device,
    dtype: DType,
}

impl GgufWeights {
    /// Opens `path`; on the CPU its quantized weights stay in the mapped file.
    pub fn open(path: &Path, device: &Device, dtype: DType) -> Result<Self> {
        Self::open_with(path, device, dtype, true)
    }

    /// [`Self::open`], with `mapped = false` reading every tensor onto the heap instead.
    pub fn open_with(path: &Path, device: &Device, dtype: DType, mapped: bool) -> Result<Self> {
        let p = path.display();
        let mut file = File::open(path).with_context(|| format!("cannot open {p}"))?;
        let len = file.metadata()?.len();
        let content =
            Content::read(&mut file).map_err(|e| anyhow::anyhow!("{p}: not a readable GGUF file ({e})"))?;
        let arch = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok());
        if arch.map(String::as_str) != Some(ARCHITECTURE) {
            bail!(
                "{p}: GGUF architecture is {}, expected \"{ARCHITECTURE}\" (write one with `draftscope quantize`)",
                arch.map(|a| format!("{a:?}")).unwrap_or_else(|| "missing".into())
            );
        }
        for (name, info) in &content.tensor_infos {
            let need = content.tensor_data_offset
                + info.offset
                + stored_bytes(info.ggml_dtype, info.shape.elem_count());
            if need > len {
                bail!("{p}: truncated GGUF (tensor `{name}` ends at byte {need}, the file has {len})");
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            content,
            map: if mapped && device.is_cpu() {
                // SAFETY: mapped read-only; like any mapped model file, it must not be
                // truncated while the model is loaded.
                Some(std::sync::Arc::new(
                    unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {p}"))?,
                ))
            } else {
                None
            },
            file: RefCell::new(file),
            device: device.clone(),
            dtype,
        })
    }

    /// Metadata string `key`, if present.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.content.metadata.get(key).and_then(|v| v.to_string().ok()).map(String::as_str)
    }

    /// Tensor names with their stored type and shape (checkpoint layout).
    pub fn tensors(&self) -> HashMap<&str, (GgmlDType, Vec<usize>)> {
        self.content
            .tensor_infos
            .iter()
            .map(|(n, i)| (n.as_str(), (i.ggml_dtype, i.shape.dims().to_vec())))
            .collect()
    }

    /// Tensor `name`'s entry, checked to exist with `shape`.
    fn info(&self, name: &str, shape: &[usize]) -> Result<&candle_core::quantized::gguf_file::TensorInfo> {
        let p = self.path.display();
        let info = self
            .content
            .tensor_infos
            .get(name)
            .with_context(|| format!("{p}: tensor `{name}` is missing (is this a LLaDA2 GGUF?)"))?;
        if info.shape.dims() != shape {
            bail!(
                "{p}: tensor `{name}` has shape {:?}, expected {shape:?} from config.json",
                info.shape.dims()
            );
        }
        Ok(info)
    }

    fn read(&self, name: &str, shape: &[usize]) -> Result<QTensor> {
        let p = self.path.display();
        let info = self.info(name, shape)?;
        let mut f = self.file.borrow_mut();
        let start = self.content.tensor_data_offset + info.offset;
        let mapped = self.map.as_ref().and_then(|m| map_cpu(m, start, info.ggml_dtype, &info.shape));
        let read = if let Some(q) = mapped {
            q
        } else if self.device.is_cpu() {
            read_cpu(&mut f, start, info.ggml_dtype, &info.shape)
        } else {
            info.read(&mut *f, self.content.tensor_data_offset, &self.device)
        };
        read.map_err(|e| anyhow::anyhow!("{p}: tensor `{name}` cannot be read ({e})"))
    }

    /// An f16 tensor as a dense f16 tensor, read straight into its storage.
    fn read_f16(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let info = self.info(name, shape)?;
        if info.ggml_dtype != GgmlDType::F16 || !self.device.is_cpu() {
            return Ok(None);
        }
        let start = self.content.tensor_data_offset + info.offset;
        let v = read_vec::<half::f16>(&mut self.file.borrow_mut(), start, shape.iter().product())
            .map_err(|e| anyhow::anyhow!("{}: tensor `{name}` cannot be read ({e})", self.path.display()))?;
        Ok(Some(Tensor::from_vec(v, shape, &self.device)?))
    }
}

/// `n` elements (blocks) of `T` from byte `start`, read straight into their vector: the one
/// copy of the weight that stays. (candle's `TensorInfo::read` reads into a byte buffer and
/// copies that into the block vector; with mimalloc keeping freed pages, the staging
/// buffers of the largest tensors stayed resident.)
fn read_vec<T: candle_core::quantized::GgmlType>(
    f: &mut File,
    start: u64,
    n: usize,
) -> std::io::Result<Vec<T>> {
    use std::io::{Read, SeekFrom};
    let mut v: Vec<T> = vec![T::zeros(); n];
    // SAFETY: the vector's n initialised elements, viewed as bytes; GGUF block types are
    // plain old data (#[repr(C)], every bit pattern valid), as candle's own loader assumes.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>()) };
    f.seek(SeekFrom::Start(start))?;
    f.read_exact(bytes)?;
    Ok(v)
}

/// A GGUF tensor on the CPU, read with [`read_vec`].
fn read_cpu(
    f: &mut File,
    start: u64,
    t: GgmlDType,
    shape: &candle_core::Shape,
) -> candle_core::Result<QTensor> {
    use candle_core::quantized::QStorage;
    use candle_core::quantized::k_quants::*;
    let blocks = shape.elem_count() / t.block_size();
    macro_rules! read {
        ($ty:ty) => {
            Box::new(read_vec::<$ty>(f, start, blocks)?) as Box<dyn candle_core::quantized::QuantizedType>
        };
    }
    let storage = match t {
        GgmlDType::F32 => read!(f32),
        GgmlDType::F16 => read!(half::f16),
        GgmlDType::BF16 => read!(half::bf16),
        GgmlDType::Q4_0 => read!(BlockQ4_0),
        GgmlDType::Q4_1 => read!(BlockQ4_1),
        GgmlDType::Q5_0 => read!(BlockQ5_0),
        GgmlDType::Q5_1 => read!(BlockQ5_1),
        GgmlDType::Q8_0 => read!(BlockQ8_0),
        GgmlDType::Q8_1 => read!(BlockQ8_1),
        GgmlDType::Q2K => read!(BlockQ2K),
        GgmlDType::Q3K => read!(BlockQ3K),
        GgmlDType::Q4K => read!(BlockQ4K),
        GgmlDType::Q5K => read!(BlockQ5K),
        GgmlDType::Q6K => read!(BlockQ6K),
        GgmlDType::Q8K => read!(BlockQ8K),
    };
    QTensor::new(QStorage::Cpu(storage), shape.clone())
}

/// A GGUF tensor as a view of the mapped file; None when its bytes are not aligned for the
/// block type (then it is read onto the heap).
fn map_cpu(
    map: &std::sync::Arc<memmap2::Mmap>,
    start: u64,
    t: GgmlDType,
    shape: &candle_core::Shape,
) -> Option<candle_core::Result<QTensor>> {
    use candle_core::quantized::k_quants::*;
    use candle_core::quantized::{QStorage, QuantizedType};

    use super::mapped::Mapped;
    let blocks = shape.elem_count() / t.block_size();
    let start = usize::try_from(start).ok()?;
    macro_rules! view {
        ($ty:ty) => {
            Box::new(Mapped::<$ty>::new(map.clone(), start, blocks)?) as Box<dyn QuantizedType>
        };
    }
    let storage = match t {
        GgmlDType::F32 => view!(f32),
        GgmlDType::F16 => view!(half::f16),
        GgmlDType::BF16 => view!(half::bf16),
        GgmlDType::Q4_0 => view!(BlockQ4_0),
        GgmlDType::Q4_1 => view!(BlockQ4_1),
        GgmlDType::Q5_0 => view!(BlockQ5_0),
        GgmlDType::Q5_1 => view!(BlockQ5_1),
        GgmlDType::Q8_0 => view!(BlockQ8_0),
        GgmlDType::Q8_1 => view!(BlockQ8_1),
        GgmlDType::Q2K => view!(BlockQ2K),
        GgmlDType::Q3K => view!(BlockQ3K),
        GgmlDType::Q4K => view!(BlockQ4K),
        GgmlDType::Q5K => view!(BlockQ5K),
        GgmlDType::Q6K => view!(BlockQ6K),
        GgmlDType::Q8K => view!(BlockQ8K),
    };
    Some(QTensor::new(QStorage::Cpu(storage), shape.clone()))
}

fn is_float(t: GgmlDType) -> bool {
    matches!(t, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
}

impl WeightSource for GgufWeights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let q = self.read(name, shape)?;
        Ok(q.dequantize(&self.device)?.to_dtype(self.dtype)?)
    }

    /// An f16 table stays f16 (half the memory of f32); the gathered rows are widened.
    fn get_table(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if self.dtype != DType::F16
            && let Some(t) = self.read_f16(name, shape)?
        {
            return Ok(t);
        }
        self.get(name, shape)
    }

    fn get_linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear> {
        let wname = format!("{name}.weight");
        let q = self.read(&wname, &[out, inp])?;
        if is_float(q.dtype()) {
            Ok(Linear::new(q.dequantize(&self.device)?.to_dtype(self.dtype)?, None))
        } else {
            Ok(Linear::quantized(q, &self.device)?)
        }
    }

    fn resident_bytes(&self, name: &str, shape: &[usize]) -> u64 {
        let elems = shape.iter().product::<usize>() as u64;
        match self.content.tensor_infos.get(name) {
            Some(i) if !is_float(i.ggml_dtype) => {
                // Linears other than the routed experts also hold candle's repacked copy.
                let repacked = match shape {
                    [out, inp] if self.device.is_cpu() && !super::quant::is_routed_expert(name) => {
                        super::quant::repacked_bytes(i.ggml_dtype, *out, *inp)
                    }
                    _ => 0,
                };
                stored_bytes(i.ggml_dtype, elems as usize) + repacked
            }
            Some(i) if name == TABLE && i.ggml_dtype == GgmlDType::F16 => elems * 2,
            _ => elems * self.dtype.size_in_bytes() as u64,
        }
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}
