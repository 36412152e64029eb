//! `draftscope synth`: a seeded random-weight checkpoint at a real model's widths.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::model::DtypeKind;
use crate::model::quant::QuantFormat;
use crate::model::synth::{self, Like, Output};

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Whose config to copy.
    #[arg(long, value_enum)]
    pub like: Like,
    /// Cut the depth to this many layers (default: the model's full depth).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Stored dtype of the safetensors shards.
    #[arg(long, value_enum, default_value_t = DtypeKind::F32, conflicts_with = "quantize")]
    pub dtype: DtypeKind,
    /// Write one quantized GGUF instead (generated and quantized tensor by tensor).
    #[arg(long, value_enum)]
    pub quantize: Option<QuantFormat>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (created).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: SynthArgs) -> Result<()> {
    let output = match (a.quantize, a.dtype) {
        (Some(f), _) => Output::Gguf(f),
        (None, DtypeKind::Bf16) => Output::Safetensors("BF16"),
        (None, DtypeKind::F32) => Output::Safetensors("F32"),
    };
    let t = Instant::now();
    let bytes = synth::write_dir(&a.out, a.like, a.layers, a.seed, output, &mut |s| {
        eprint!("\rsynth: {s}   ");
    })?;
    eprintln!();
    println!(
        "wrote {} ({} of weights) in {:.1} s",
        a.out.display(),
        crate::model::memory::gb(bytes),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
