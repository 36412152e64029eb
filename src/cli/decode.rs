//! `draftscope decode`: run the block-diffusion decoder on a prompt, print the text and a
//! summary line, optionally save the trace.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use crossterm::style::Stylize;

use super::ModelArgs;
use crate::decode::session;
use crate::decode::{DecodeSpec, Trace};
use crate::model::TextCodec;

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
    pub spec: DecodeSpec,
    /// Save the trace (JSON) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: DecodeArgs) -> Result<()> {
    let lm = session::load(&args.model)?;
    let (text, ids) = lm.codec.prompt(args.prompt.as_deref(), args.prompt_ids.as_deref(), args.chat)?;
    let prompt = session::Prompt { text, ids };
    let trace = session::run((&lm).into(), &prompt, &args.spec, &mut |_| ControlFlow::Continue(()))?;
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
