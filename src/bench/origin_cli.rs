//! `draftscope origin`: where failed arithmetic answers first go wrong, over saved traces.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::origin::{Tally, Verdict, judge};
use crate::decode::trace::Trace;

#[derive(Args, Debug)]
pub struct OriginArgs {
    /// Traces, or directories searched for them (a bench's `<sessions>/bench/<run-id>`, or one
    /// suite under it). Traces whose prompt is not a world arithmetic problem are counted, not judged.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also list every failed item: trace, place, writer, and the block/step that wrote it.
    #[arg(long)]
    pub items: bool,
}

pub fn run(a: OriginArgs) -> Result<()> {
    let mut files = Vec::new();
    for p in &a.paths {
        if p.is_dir() {
            let before = files.len();
            collect(p, &mut files)?;
            if files.len() == before {
                bail!("{}: no traces (*.json) under this directory", p.display());
            }
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            bail!("{}: no such trace or directory", p.display());
        }
    }
    let mut tally = Tally::default();
    let mut items = String::new();
    for f in &files {
        let t = Trace::load(f)?;
        let v = judge(&t);
        if let (true, Verdict::Failed(o)) = (a.items, &v) {
            let at = match (o.pos, o.step) {
                (Some(pos), Some((b, s))) => format!("pos {pos}, block {b} step {s}"),
                _ => "-".into(),
            };
            let over = if o.destroyed { " over a right token" } else { "" };
            items += &format!("{}\t{}\t{}{over}\t{at}\n", f.display(), o.place.label(), o.writer.label());
        }
        tally.add(&v);
    }
    print!("{items}{}", tally.text());
    Ok(())
}

/// Every `*.json` file under `dir`, depth first, in name order (so output is stable).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}
