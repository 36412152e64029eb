//! Command-line entry points. Each subcommand parses its flags here and calls into the
//! library; errors surface as one line and exit code 2 (see `main.rs`).

pub mod decode;
pub mod logits;
pub mod quantize;
pub mod speed;
pub mod speed_model;
pub mod synth;

use clap::Args;

use crate::model::{DeviceKind, DtypeKind};

/// Flags every model-using command shares.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model: a local directory in HF layout or a Hugging Face repo id (e.g.
    /// inclusionAI/LLaDA2.1-mini). Default: the embedded tiny model.
    #[arg(long)]
    pub model: Option<String>,
    /// LoRA adapter directory (PEFT layout) applied on top of the model.
    #[arg(long)]
    pub adapter: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    #[arg(long, value_enum, default_value_t = DtypeKind::F32)]
    pub dtype: DtypeKind,
    /// Compute threads (0 = candle's default: every core). Applied at command start.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Sets candle's thread count from a subcommand's `--threads`, before any thread exists.
pub fn apply_threads(sub: &clap::ArgMatches) {
    if let Ok(Some(&n)) = sub.try_get_one::<usize>("threads")
        && n > 0
        && std::env::var_os("RAYON_NUM_THREADS").is_none()
    {
        // SAFETY: called first thing in main, before this process starts any thread.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

/// The ids of the flags the user typed (not defaults), so a command can tell "left at the
/// default" from "set to the default value".
pub fn given_flags(m: &clap::ArgMatches) -> Vec<String> {
    m.ids()
        // clap also lists each flattened struct as a group named after the struct.
        .filter(|id| !id.as_str().starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|id| m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

/// Parses `1,2,3` (spaces allowed) into ids.
pub fn parse_ids(s: &str, flag: &str) -> anyhow::Result<Vec<u32>> {
    let ids: Result<Vec<u32>, _> =
        s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse::<u32>()).collect();
    let ids = ids.map_err(|e| anyhow::anyhow!("{flag}: not a comma-separated list of token ids ({e})"))?;
    if ids.is_empty() {
        anyhow::bail!("{flag}: the id list is empty");
    }
    Ok(ids)
}
