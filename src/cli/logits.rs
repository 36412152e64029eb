//! `draftscope logits`: one forward pass written to safetensors, for checking ports and
//! checkpoints against the official implementation.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use candle_core::Tensor;
use clap::Args;

use super::{ModelArgs, parse_ids};
use crate::decode::AttentionMode;
use crate::model::{Collect, LoadedModel, MaskKind};

#[derive(Debug, Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input ids, comma-separated.
    #[arg(long)]
    pub ids: String,
    /// Block length of the attention mask.
    #[arg(long, default_value_t = 32)]
    pub block_length: usize,
    /// `hf`: generate()'s additive 0/1 bias; `block-causal`: hard block-causal mask.
    #[arg(long, value_enum, default_value_t = AttentionMode::BlockCausal)]
    pub attention: AttentionMode,
    /// Output safetensors file (tensor `logits`, f32 [1, L, vocab]).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write `hidden_states` (f32 [layers+1, L, hidden]).
    #[arg(long)]
    pub hidden_states: bool,
}

pub fn run(args: LogitsArgs) -> Result<()> {
    let ids = parse_ids(&args.ids, "--ids")?;
    if args.block_length == 0 {
        bail!("--block-length must be at least 1");
    }
    let lm = crate::decode::session::load(&args.model)?;
    let cfg = &lm.model.cfg;
    if let Some((i, id)) = ids.iter().enumerate().find(|(_, id)| **id as usize >= cfg.vocab_size) {
        bail!("--ids: id {id} at index {i} is outside the vocabulary (size {})", cfg.vocab_size);
    }
    if ids.len() > cfg.max_position_embeddings {
        bail!("--ids: {} ids exceed max_position_embeddings ({})", ids.len(), cfg.max_position_embeddings);
    }
    let out = forward_for_export(&lm, &ids, args.block_length, args.attention, args.hidden_states)?;
    let bytes = safetensors_bytes(&out)?;
    crate::session::atomic_write(&args.out, &bytes)?;
    eprintln!("wrote {} ({} ids, {} attention)", args.out.display(), ids.len(), args.attention.label());
    Ok(())
}

/// Full-window forward for export: logits `[1, L, vocab]` and optionally stacked hidden states.
pub fn forward_for_export(
    lm: &LoadedModel,
    ids: &[u32],
    block_length: usize,
    attention: AttentionMode,
    hidden: bool,
) -> Result<HashMap<String, Tensor>> {
    let mask = match attention {
        AttentionMode::Hf => MaskKind::GenerateBias { block_length },
        _ => MaskKind::BlockCausal { block_length },
    };
    let out = lm.model.forward_window(ids, mask, &Collect { hidden_states: hidden, router: false })?;
    let mut map = HashMap::new();
    let logits = out.logits.expect("all rows asked").to_dtype(candle_core::DType::F32)?;
    map.insert("logits".to_string(), logits);
    if hidden {
        let hs: Vec<Tensor> =
            out.hidden_states.iter().map(|h| h.squeeze(0)).collect::<candle_core::Result<_>>()?;
        map.insert("hidden_states".to_string(), Tensor::stack(&hs, 0)?.to_dtype(candle_core::DType::F32)?);
    }
    Ok(map)
}

fn safetensors_bytes(map: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("out.safetensors");
    candle_core::safetensors::save(map, &p)?;
    Ok(std::fs::read(&p)?)
}
