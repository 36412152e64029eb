//! The LLaDA2 MoE model: config, weights, forward pass, LoRA, sources and tokenizer glue.

pub mod config;
pub mod gguf;
pub mod linear;
pub mod llada2;
pub mod lora;
pub mod memory;
pub mod quant;
pub mod quantize;
pub mod shards;
pub mod source;
pub mod synth;
pub mod tokenizer;
pub mod weights;

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};

pub use config::Config;
pub use llada2::{Collect, ForwardOutput, KvCache, Llada2, MaskKind, clean_context_bias};
pub use tokenizer::TextCodec;

/// Compute device, chosen on the command line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

impl DeviceKind {
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda => {
                if !cfg!(feature = "cuda") {
                    bail!("--device cuda: this build has no CUDA support (rebuild with `--features cuda`)");
                }
                Device::new_cuda(0).context("--device cuda: no usable CUDA device")
            }
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DtypeKind {
    #[default]
    F32,
    Bf16,
}

impl DtypeKind {
    pub fn dtype(self) -> DType {
        match self {
            DtypeKind::F32 => DType::F32,
            DtypeKind::Bf16 => DType::BF16,
        }
    }
}

/// A model ready to run: weights, config, where it came from, and its tokenizer if any.
pub struct LoadedModel {
    pub id: String,
    /// Adapter directory applied on top, if any.
    pub adapter: Option<String>,
    pub model: Llada2,
    pub codec: TextCodec,
}

impl LoadedModel {
    /// Resolves `spec` (None = embedded default) and loads config, weights and tokenizer.
    pub fn load(spec: Option<&str>, device: DeviceKind, dtype: DtypeKind) -> Result<Self> {
        let resolved = source::resolve(spec)?;
        Self::load_dir(&resolved.id, &resolved.dir, device, dtype)
    }

    pub fn load_dir(id: &str, dir: &Path, device: DeviceKind, dtype: DtypeKind) -> Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let dev = device.device()?;
        // A directory with a `.gguf` is a quantized model (`draftscope quantize`).
        let ws: Box<dyn weights::WeightSource> = match gguf::find_gguf(dir)? {
            Some(path) => Box::new(gguf::GgufWeights::open(&path, &dev, dtype.dtype())?),
            None => Box::new(weights::SafetensorsWeights::open_dir(dir, &dev, dtype.dtype())?),
        };
        memory::check_fits(memory::estimate(&cfg, ws.as_ref()), &cfg, dir)?;
        let model = Llada2::new(&cfg, ws.as_ref())?;
        let codec = TextCodec::load(dir)?;
        Ok(Self { id: id.to_string(), adapter: None, model, codec })
    }
}
