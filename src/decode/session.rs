//! The decode service: a model, a prompt and a [`DecodeSpec`] in, a finished [`Trace`] out,
//! with [`DecodeEvent`]s on the way. The CLI's `decode`, bench, demo recording and the
//! workbench's model thread all decode through [`run`] (or [`run_params`] with parameters
//! already resolved), so a trace is assembled and completed the same way everywhere.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;

use anyhow::Result;
use clap::Args;

use super::engine::Decoder;
use super::params::{AttentionMode, DecodeParams};
use super::spec::DecodeSpec;
use super::trace::{DecodeEvent, Trace};
use crate::model::{DeviceKind, DtypeKind, Llada2, LoadedModel, TextCodec};

/// Which model to run: the flags every model-using command shares.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model: a local directory in HF layout or a Hugging Face repo id (e.g.
    /// inclusionAI/LLaDA2.1-mini). Default: the embedded tiny model.
    #[arg(long)]
    pub model: Option<String>,
    /// LoRA adapter directory (PEFT layout) applied on top of the model.
    #[arg(long)]
    pub adapter: Option<std::path::PathBuf>,
    /// Compute device: cpu, cuda (the first GPU) or cuda:K (needs a `--features cuda` build).
    #[arg(long, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    #[arg(long, value_enum, default_value_t = DtypeKind::F32)]
    pub dtype: DtypeKind,
    /// Compute threads (0 = candle's default: every core). Applied at command start.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Loads the model named by `args` and applies its adapter, if any.
pub fn load(args: &ModelArgs) -> Result<LoadedModel> {
    let mut lm = LoadedModel::load(args.model.as_deref(), args.device, args.dtype)?;
    if let Some(dir) = &args.adapter {
        crate::model::lora::apply(&mut lm, dir)?;
    }
    Ok(lm)
}

/// A loaded model, borrowed piecewise (training evaluates an inference copy it holds apart).
#[derive(Clone, Copy)]
pub struct ModelRef<'a> {
    /// Recorded in traces and results.
    pub id: &'a str,
    pub adapter: Option<&'a str>,
    pub model: &'a Llada2,
    pub codec: &'a TextCodec,
}

impl<'a> From<&'a LoadedModel> for ModelRef<'a> {
    fn from(lm: &'a LoadedModel) -> Self {
        Self { id: &lm.id, adapter: lm.adapter.as_deref(), model: &lm.model, codec: &lm.codec }
    }
}

/// The prompt of a decode: its token ids, and the text they came from when there was one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prompt {
    pub text: Option<String>,
    pub ids: Vec<u32>,
}

/// Decodes `prompt` with `spec` on `m`; see [`run_params`].
pub fn run(
    m: ModelRef<'_>,
    prompt: &Prompt,
    spec: &DecodeSpec,
    on_event: &mut dyn FnMut(DecodeEvent<'_>) -> ControlFlow<()>,
) -> Result<Trace> {
    let params = spec.params(m.model.cfg.eos_token_id, m.model.cfg.mask_token_id);
    run_params(m, prompt, params, spec.attention, on_event)
}

/// Decodes `prompt` with resolved parameters. Events: `Start` (the head names the model,
/// adapter and prompt and has the prompt's token texts), every `Step` and `BlockEnd`, then
/// `Done` with the finished trace, whose token texts cover every token it mentions.
pub fn run_params(
    m: ModelRef<'_>,
    prompt: &Prompt,
    params: DecodeParams,
    attention: AttentionMode,
    on_event: &mut dyn FnMut(DecodeEvent<'_>) -> ControlFlow<()>,
) -> Result<Trace> {
    let dec = Decoder::new(m.model, params, attention)?;
    super::engine::check_run(dec.params(), &prompt.ids, dec.limits())?;
    let mut head = Trace::start(dec.params().clone(), attention, &prompt.ids);
    head.model = m.id.to_string();
    head.adapter = m.adapter.map(String::from);
    head.prompt = prompt.text.clone();
    fill_token_text(&mut head, m.codec);
    let mut trace = dec.run_from(head, on_event)?;
    fill_token_text(&mut trace, m.codec);
    let _ = on_event(DecodeEvent::Done { trace: &trace });
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
