//! `draftscope decode`: run the block-diffusion decoder on a prompt, print the text and a
//! summary line, optionally save the trace.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use crossterm::style::Stylize;

use super::{ModelArgs, parse_ids};
use crate::decode::{AttentionMode, DecodeParams, Decoder, EditPolicy, Mode, RemaskStrategy, Trace};
use crate::model::{LoadedModel, TextCodec};

#[derive(Debug, Clone, Args)]
pub struct DecodeFlags {
    /// Threshold preset: q (0.7/0.5), s (0.5/0.0), default (0.95/0.9); explicit flags override.
    #[arg(long, value_enum, default_value_t = Mode::Q)]
    pub mode: Mode,
    #[arg(long)]
    pub threshold: Option<f32>,
    #[arg(long)]
    pub editing_threshold: Option<f32>,
    #[arg(long)]
    pub max_post_steps: Option<usize>,
    #[arg(long, default_value_t = 32)]
    pub block_length: usize,
    #[arg(long, default_value_t = 256)]
    pub gen_length: usize,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub eos_early_stop: bool,
    #[arg(long, default_value_t = 1)]
    pub num_to_transfer: usize,
    /// Override the model config's EOS id.
    #[arg(long)]
    pub eos_id: Option<u32>,
    /// Override the model config's mask id.
    #[arg(long)]
    pub mask_id: Option<u32>,
    #[arg(long, value_enum, default_value_t = AttentionMode::BlockCausal)]
    pub attention: AttentionMode,
    /// Alternatives recorded per position and step.
    #[arg(long, default_value_t = 5)]
    pub record_top_k: usize,
    /// t2t: overwrite doubted tokens (the released decoder); t2m: reset them to the mask and
    /// let M2T re-predict them (targeted remasking, arXiv 2604.18738).
    #[arg(long, value_enum, default_value_t = EditPolicy::T2t)]
    pub edit_policy: EditPolicy,
    /// T2M: which committed tokens to remask.
    #[arg(long, value_enum, default_value_t = RemaskStrategy::LowProb)]
    pub remask_strategy: RemaskStrategy,
    /// T2M: the strategy's τ (default low_prob 0.5, t2t_remask 0.9, logit_diff 0.3).
    #[arg(long)]
    pub remask_threshold: Option<f32>,
    /// T2M: remasks allowed per position in one decode.
    #[arg(long, default_value_t = 5)]
    pub max_remask_per_pos: usize,
    /// T2M: remasks allowed per step, as a share of the block's editable positions (at least one).
    #[arg(long, default_value_t = 0.25)]
    pub max_remask_ratio: f32,
}

impl DecodeFlags {
    pub fn params(&self, eos_id: u32, mask_id: u32) -> DecodeParams {
        let mut p =
            DecodeParams::preset(self.mode, self.eos_id.unwrap_or(eos_id), self.mask_id.unwrap_or(mask_id));
        if let Some(t) = self.threshold {
            p.threshold = t;
        }
        if let Some(t) = self.editing_threshold {
            p.editing_threshold = t;
        }
        if let Some(n) = self.max_post_steps {
            p.max_post_steps = n;
        }
        p.block_length = self.block_length;
        p.gen_length = self.gen_length;
        p.temperature = self.temperature;
        p.top_k = self.top_k;
        p.top_p = self.top_p;
        p.seed = self.seed;
        p.eos_early_stop = self.eos_early_stop;
        p.num_to_transfer = self.num_to_transfer;
        p.record_top_k = self.record_top_k;
        p.edit_policy = self.edit_policy;
        p.remask_strategy = self.remask_strategy;
        p.remask_threshold = self.remask_threshold.unwrap_or(self.remask_strategy.default_threshold());
        p.max_remask_per_pos = self.max_remask_per_pos;
        p.max_remask_ratio = self.max_remask_ratio;
        p
    }
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt text (needs the model's tokenizer).
    #[arg(long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Prompt as token ids, comma-separated.
    #[arg(long)]
    pub prompt_ids: Option<String>,
    /// Wrap the prompt in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    #[command(flatten)]
    pub flags: DecodeFlags,
    /// Save the trace (JSON) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Loads the model named by the flags and applies `--adapter` if given.
pub fn load_with_adapter(args: &ModelArgs) -> Result<LoadedModel> {
    let mut lm = LoadedModel::load(args.model.as_deref(), args.device, args.dtype)?;
    if let Some(dir) = &args.adapter {
        crate::model::apply_adapter(&mut lm, dir)?;
    }
    Ok(lm)
}

/// Prompt ids from `--prompt` / `--prompt-ids` (with `--chat` applied to text).
pub fn prompt_ids(
    codec: &TextCodec,
    text: Option<&str>,
    ids: Option<&str>,
    chat: bool,
) -> Result<(Option<String>, Vec<u32>)> {
    match (text, ids) {
        (Some(t), None) => {
            let t = if chat { codec.chat_prompt(t)? } else { t.to_string() };
            let ids = codec.encode(&t)?;
            if ids.is_empty() {
                bail!("--prompt encodes to no tokens");
            }
            Ok((Some(t), ids))
        }
        (None, Some(s)) => {
            if chat {
                bail!("--chat applies to --prompt text, not --prompt-ids");
            }
            Ok((None, parse_ids(s, "--prompt-ids")?))
        }
        _ => bail!("give the prompt as --prompt TEXT or --prompt-ids 1,2,3"),
    }
}

/// Runs a decode and fills the trace's model, adapter, prompt and token texts.
pub fn run_decode(
    lm: &LoadedModel,
    params: DecodeParams,
    attention: AttentionMode,
    prompt: Option<String>,
    ids: &[u32],
    on_step: &mut dyn FnMut(crate::decode::StepEvent<'_>) -> ControlFlow<()>,
) -> Result<Trace> {
    let dec = Decoder::new(&lm.model, params, attention)?;
    let mut trace = dec.run(ids, on_step)?;
    trace.model = lm.id.clone();
    trace.adapter = lm.adapter.clone();
    trace.prompt = prompt;
    fill_token_text(&mut trace, &lm.codec);
    Ok(trace)
}

/// Records the display text of every token the trace mentions, so it opens without a model.
pub fn fill_token_text(trace: &mut Trace, codec: &TextCodec) {
    if !codec.has_tokenizer() {
        return;
    }
    let mut ids: HashSet<u32> = trace.prompt_ids.iter().chain(&trace.output).copied().collect();
    for b in &trace.blocks {
        for s in &b.steps {
            ids.extend(&s.before);
            ids.extend(&s.after);
            ids.extend(s.remasks.iter().map(|r| r.argmax));
            for r in &s.positions {
                ids.insert(r.argmax);
                ids.extend(r.top.iter().map(|(t, _)| *t));
            }
        }
    }
    ids.remove(&trace.params.mask_id);
    trace.token_text = ids.into_iter().map(|i| (i, codec.token_text(i))).collect::<BTreeMap<_, _>>();
}

pub fn run(args: DecodeArgs) -> Result<()> {
    let lm = load_with_adapter(&args.model)?;
    let (prompt, ids) = prompt_ids(&lm.codec, args.prompt.as_deref(), args.prompt_ids.as_deref(), args.chat)?;
    let params = args.flags.params(lm.model.cfg.eos_token_id, lm.model.cfg.mask_token_id);
    let trace =
        run_decode(&lm, params, args.flags.attention, prompt, &ids, &mut |_| ControlFlow::Continue(()))?;
    let color = std::io::stdout().is_terminal();
    println!("{}", render_output(&trace, &lm.codec, color));
    println!("{}", trace.summary());
    if let Some(path) = &args.json {
        trace.save(path)?;
        eprintln!("trace saved to {}", path.display());
    }
    Ok(())
}

/// The generated text; in colour, tokens last changed by an edit are yellow, tokens refilled
/// after a remask cyan, other commits green.
pub fn render_output(trace: &Trace, codec: &TextCodec, color: bool) -> String {
    if !color {
        return codec.decode(&trace.output);
    }
    let p0 = trace.prompt_ids.len();
    let mut last_edit: HashSet<usize> = HashSet::new();
    let mut remasked: HashSet<usize> = HashSet::new();
    for b in &trace.blocks {
        for s in &b.steps {
            for c in &s.commits {
                last_edit.remove(&c.pos);
            }
            for e in &s.edits {
                last_edit.insert(e.pos);
            }
            remasked.extend(s.remasks.iter().map(|r| r.pos));
        }
    }
    trace
        .output
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let text = codec.token_text(t);
            if last_edit.contains(&(p0 + i)) {
                text.yellow().to_string()
            } else if remasked.contains(&(p0 + i)) {
                text.cyan().to_string()
            } else {
                text.green().to_string()
            }
        })
        .collect()
}
