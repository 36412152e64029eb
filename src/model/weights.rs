//! Where a model's tensors come from: memory-mapped safetensors (single file or sharded with
//! `model.safetensors.index.json`), or fresh initialised variables for pretraining.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Hands out tensors by their official name, checked against the shape the config implies.
pub trait WeightSource {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// Tensors that are initialised to ones (RMSNorm weights) or zeros (router bias) when new.
    fn get_init(&self, name: &str, shape: &[usize], _init: Init) -> Result<Tensor> {
        self.get(name, shape)
    }
    /// The base of a linear layer `[out, inp]` named `{name}.weight`: dense by default; a
    /// quantized source hands out its quantized tensor as is.
    fn get_linear(&self, name: &str, out: usize, inp: usize) -> Result<super::linear::Linear> {
        Ok(super::linear::Linear::new(self.get(&format!("{name}.weight"), &[out, inp])?, None))
    }
    /// A lookup table (the word embeddings): rows are gathered, then widened to the compute
    /// dtype, so a source may hand it out in a narrower stored dtype. Default: [`Self::get`].
    fn get_table(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get(name, shape)
    }
    /// Bytes tensor `name` will hold in memory once loaded (for the pre-load estimate).
    fn resident_bytes(&self, _name: &str, shape: &[usize]) -> u64 {
        shape.iter().product::<usize>() as u64 * self.dtype().size_in_bytes() as u64
    }
    fn device(&self) -> &Device;
    fn dtype(&self) -> DType;
}

#[derive(Debug, Clone, Copy)]
pub enum Init {
    Normal,
    Ones,
    Zeros,
}

pub struct SafetensorsWeights {
    st: MmapedSafetensors,
    /// Which file holds which tensor (for error messages).
    label: String,
    device: Device,
    dtype: DType,
}

impl SafetensorsWeights {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        Self::open_files(&super::shards::safetensors_files(dir)?, device, dtype)
    }

    pub fn open_files(files: &[PathBuf], device: &Device, dtype: DType) -> Result<Self> {
        for f in files {
            check_safetensors_header(f)?;
        }
        // SAFETY: the files are opened read-only; we only ever read through the mapping.
        let st = unsafe { MmapedSafetensors::multi(files) }
            .map_err(|e| anyhow::anyhow!("{}: corrupt safetensors ({e})", files[0].display()))?;
        let label = if files.len() == 1 {
            files[0].display().to_string()
        } else {
            format!("{} (+{} shards)", files[0].display(), files.len() - 1)
        };
        Ok(Self { st, label, device: device.clone(), dtype })
    }

    pub fn tensor_names(&self) -> Vec<String> {
        self.st.tensors().into_iter().map(|(n, _)| n).collect()
    }

    /// Loads a tensor that need not exist (e.g. optional biases).
    pub fn try_get(&self, name: &str) -> Option<Tensor> {
        self.st.load(name, &self.device).ok()
    }
}

impl WeightSource for SafetensorsWeights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let view =
            self.st.get(name).map_err(|_| anyhow::anyhow!("{}: tensor `{name}` is missing", self.label))?;
        let stored = view.dtype();
        if !matches!(
            stored,
            safetensors::Dtype::F32
                | safetensors::Dtype::F16
                | safetensors::Dtype::BF16
                | safetensors::Dtype::F64
        ) {
            bail!(
                "{}: tensor `{name}` is stored as {stored:?}, not a float type; weights must be F32, F16, BF16 or F64",
                self.label
            );
        }
        if view.shape() != shape {
            bail!(
                "{}: tensor `{name}` has shape {:?}, expected {:?} from config.json",
                self.label,
                view.shape(),
                shape
            );
        }
        let t = self
            .st
            .load(name, &self.device)
            .map_err(|e| anyhow::anyhow!("{}: tensor `{name}` cannot be read ({e})", self.label))?;
        let t = t.to_dtype(self.dtype)?;
        // candle's `load` copies the tensor out of the mapping (a candle CPU tensor cannot
        // borrow it); drop the pages just read from this process's resident set, so a load
        // does not hold every weight twice (mapped + copied) until the mapping is dropped.
        release_pages(view.data());
        Ok(t)
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

/// Tells the kernel this process no longer needs the whole pages inside `bytes`, a range of
/// a read-only file mapping: they leave the resident set (the page cache keeps them; a later
/// read faults them back in from it).
fn release_pages(bytes: &[u8]) {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let start = (bytes.as_ptr() as usize).div_ceil(page) * page;
        let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
        if end > start {
            // SAFETY: whole pages inside a live read-only private file mapping; MADV_DONTNEED
            // only drops this process's page-table entries for them (file-backed, so their
            // contents are unchanged on the next read).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
}

/// Validates the safetensors header before mapping, so a truncated or corrupt file gives a
/// one-line error naming the file rather than a panic deep inside a loader.
pub fn check_safetensors_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata()?.len();
    let mut n = [0u8; 8];
    if len < 8 || f.read_exact(&mut n).is_err() {
        bail!("{}: corrupt safetensors (file shorter than its 8-byte header length)", path.display());
    }
    let n = u64::from_le_bytes(n);
    if n == 0 || n > 100_000_000 || 8 + n > len {
        bail!("{}: corrupt safetensors (header length {n} does not fit a {len}-byte file)", path.display());
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| anyhow::anyhow!("{}: corrupt safetensors header ({e})", path.display()))?;
    let mut data_end = 0u64;
    if let Some(obj) = v.as_object() {
        for (name, info) in obj {
            if name == "__metadata__" {
                continue;
            }
            if let Some(off) = info.get("data_offsets").and_then(|o| o.as_array())
                && let Some(end) = off.get(1).and_then(|e| e.as_u64())
            {
                data_end = data_end.max(end);
            }
        }
    }
    if 8 + n + data_end > len {
        bail!(
            "{}: truncated safetensors (tensors need {} bytes, file has {len})",
            path.display(),
            8 + n + data_end
        );
    }
    Ok(())
}

/// Fresh trainable variables, created on demand with the official initialisation
/// (normal(0, initializer_range); norms at one; router bias at zero).
pub struct InitWeights {
    vars: RefCell<BTreeMap<String, Var>>,
    rng: RefCell<rand_chacha::ChaCha8Rng>,
    std: f64,
    device: Device,
}

impl InitWeights {
    pub fn new(seed: u64, std: f64, device: &Device) -> Self {
        Self {
            vars: RefCell::new(BTreeMap::new()),
            rng: RefCell::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
            std,
            device: device.clone(),
        }
    }

    /// All variables created so far, by official tensor name.
    pub fn into_vars(self) -> BTreeMap<String, Var> {
        self.vars.into_inner()
    }
}

impl WeightSource for InitWeights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_init(name, shape, Init::Normal)
    }

    fn get_init(&self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Normal => {
                let normal = Normal::new(0.0, self.std as f32)?;
                let mut rng = self.rng.borrow_mut();
                (0..n).map(|_| normal.sample(&mut *rng)).collect()
            }
        };
        let var = Var::from_tensor(&Tensor::from_vec(data, shape, &self.device)?)?;
        let t = var.as_tensor().clone();
        self.vars.borrow_mut().insert(name.to_string(), var);
        Ok(t)
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        DType::F32
    }
}
