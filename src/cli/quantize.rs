//! `draftscope quantize`: a safetensors model directory to a GGUF model directory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::model::{quant::QuantFormat, quantize::quantize_dir};

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Source model: a local directory in HF layout or a Hugging Face repo id.
    #[arg(long)]
    pub model: Option<String>,
    /// Format of the linear layers (see `model/quant.rs` for what stays in higher precision).
    #[arg(long, value_enum)]
    pub to: QuantFormat,
    /// Output directory: model.gguf, config.json and the tokenizer files.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let src = crate::model::source::resolve(a.model.as_deref())?;
    let t = Instant::now();
    let r = quantize_dir(&src.dir, a.to, &a.out)?;
    let kinds: Vec<String> = r.linears.iter().map(|(k, n)| format!("{n} {}", k.to_lowercase())).collect();
    println!(
        "wrote {} ({}) in {:.1} s; linear layers: {}",
        a.out.join("model.gguf").display(),
        crate::model::memory::gb(r.bytes),
        t.elapsed().as_secs_f64(),
        kinds.join(", ")
    );
    Ok(())
}
