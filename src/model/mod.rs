//! The LLaDA2 MoE model: config, weights, forward pass, LoRA, sources and tokenizer glue.

mod attention_cpu;
pub mod config;
mod cpu_f32;
pub mod f32_avx2;
pub mod gguf;
pub mod linear;
pub mod llada2;
pub mod lora;
pub mod mapped;
pub mod memory;
pub mod mlp;
pub mod moe_cpu;
mod moe_f32;
mod pooled_ops;
pub mod q8_avx2;
pub mod quant;
mod quant_cpu;
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

/// Compute device, chosen on the command line: `cpu`, `cuda` (the first GPU) or `cuda:K`.
/// Written as that same text in run files, so `cuda` in an older run.json still reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    #[default]
    Cpu,
    /// A CUDA device by ordinal, as the driver numbers the GPUs this process can see (so
    /// under SLURM or `CUDA_VISIBLE_DEVICES`, `cuda:0` is the first GPU the job was given).
    Cuda(usize),
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(0) => f.write_str("cuda"),
            DeviceKind::Cuda(k) => write!(f, "cuda:{k}"),
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(k)) => Ok(DeviceKind::Cuda(k)),
                _ => Err(format!("`{s}` is not a device: use cpu, cuda or cuda:K (K = 0, 1, …)")),
            },
        }
    }
}

impl serde::Serialize for DeviceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl DeviceKind {
    pub fn is_cuda(self) -> bool {
        matches!(self, DeviceKind::Cuda(_))
    }

    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda(k) => {
                if !cfg!(feature = "cuda") {
                    bail!("--device {self}: this build has no CUDA support (rebuild with `--features cuda`)");
                }
                Device::new_cuda(k).with_context(|| format!("--device {self}: no usable CUDA device {k}"))
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

/// Whether `--device cuda` can work here; `Some(reason)` when not.
pub fn cuda_unavailable() -> Option<String> {
    if !cfg!(feature = "cuda") {
        return Some("not built with --features cuda".into());
    }
    let found = Path::new("/dev/nvidiactl").exists()
        || Path::new("/proc/driver/nvidia/version").exists()
        || std::fs::read_dir("/dev")
            .is_ok_and(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("nvidia")));
    (!found).then(|| "no NVIDIA GPU found (no /dev/nvidia*)".into())
}

#[cfg(test)]
mod tests {
    use super::DeviceKind;

    #[test]
    fn devices_parse_print_and_round_trip_through_run_files() {
        for (text, d) in
            [("cpu", DeviceKind::Cpu), ("cuda", DeviceKind::Cuda(0)), ("cuda:3", DeviceKind::Cuda(3))]
        {
            assert_eq!(text.parse::<DeviceKind>().unwrap(), d);
            assert_eq!(d.to_string(), text);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<DeviceKind>(&json).unwrap(), d);
        }
        assert_eq!("cuda:0".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""] {
            let e = bad.parse::<DeviceKind>().unwrap_err();
            assert!(e.contains("cpu, cuda or cuda:K"), "{bad}: {e}");
        }
        assert!(serde_json::from_str::<DeviceKind>("\"tpu\"").is_err());
    }

    #[test]
    fn a_cpu_build_refuses_any_cuda_ordinal_with_the_flag_named() {
        if cfg!(feature = "cuda") {
            return;
        }
        let e = DeviceKind::Cuda(2).device().unwrap_err().to_string();
        assert!(e.starts_with("--device cuda:2:"), "{e}");
    }
}
