//! `draftscope world`: regenerates the world's files (benchmarks, tokenizer) and optionally
//! writes the training corpus. Same seed → byte-identical files.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{DEFAULT_SEED, DEFAULT_TRAIN_DOCS, SUITES, World, bench, tokenizer};

#[derive(clap::Args, Debug)]
pub struct WorldArgs {
    /// World seed (knowledge base, benchmark items, corpus).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Directory to write `benchmarks/*.jsonl` and `model/tokenizer*.json` into. Default:
    /// `world/` in the session data directory (`DRAFTSCOPE_SESSIONS`, else the platform data
    /// dir), never the source tree; pass `--assets assets` in a checkout to regenerate the
    /// shipped files.
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// Also write the training corpus here, one JSON object `{"text","prompt","answer"}` per
    /// line (`text` is the chat-rendered document, as `train --data` reads it).
    #[arg(long)]
    pub corpus_out: Option<PathBuf>,
    /// Documents in the written corpus.
    #[arg(long, default_value_t = DEFAULT_TRAIN_DOCS)]
    pub docs: usize,
    /// Keep only one fact document (profile or QA) in K in the written corpus, every arithmetic
    /// one (1 = the plain mixture). The embedded model's corpus: `--docs 300000 --fact-every 3`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub fact_every: u64,
    /// Also write the arithmetic testbed (`benchmarks/arith-testbed.jsonl`) with this many
    /// problems per family (0 = none).
    #[arg(long, default_value_t = 0)]
    pub testbed_per_kind: usize,
    /// Also write the editing testbed (`benchmarks/arith-add4-testbed.jsonl`: 1000 four-digit
    /// additions, none in the embedded model's long corpus) and its development split for
    /// recipe sweeps (`dev/arith-add4-dev.jsonl`: 500 more, outside the benchmark folder).
    #[arg(long)]
    pub long_testbed: bool,
    /// Write the long corpus instead of the base one: half of its arithmetic documents are the
    /// long families (3–4 digit operands). What the embedded model's continued pretraining reads.
    #[arg(long, requires = "corpus_out")]
    pub long_arith: bool,
    /// Skip the tokenizer (only benchmarks and corpus).
    #[arg(long)]
    pub no_tokenizer: bool,
}

pub fn run(args: WorldArgs) -> Result<()> {
    let world = World::new(args.seed);
    let assets = args.assets.clone().unwrap_or_else(|| crate::session::data_dir(None).join("world"));
    for suite in SUITES {
        let items = world.benchmark_items(suite);
        let path = assets.join("benchmarks").join(format!("{suite}.jsonl"));
        write(&path, &bench::to_jsonl(&items))?;
        println!("{}: {} items", path.display(), items.len());
    }
    if args.testbed_per_kind > 0 {
        let items = bench::arith_testbed(&world, args.testbed_per_kind);
        let path = assets.join("benchmarks").join("arith-testbed.jsonl");
        write(&path, &bench::to_jsonl(&items))?;
        println!("{}: {} items", path.display(), items.len());
    }
    if args.long_testbed {
        let items = bench::arith_add4_testbed(&world);
        let path = assets.join("benchmarks").join("arith-add4-testbed.jsonl");
        write(&path, &bench::to_jsonl(&items))?;
        println!("{}: {} items", path.display(), items.len());
        let items = bench::arith_add4_dev(&world);
        let path = assets.join("dev").join("arith-add4-dev.jsonl");
        write(&path, &bench::to_jsonl(&items))?;
        println!("{}: {} items (development split)", path.display(), items.len());
    }
    let mut tok = None;
    if !args.no_tokenizer {
        let t = tok.insert(tokenizer::train(&world)?);
        let dir = assets.join("model");
        write(&dir.join("tokenizer.json"), &tokenizer::tokenizer_json(t)?)?;
        write(&dir.join("tokenizer_config.json"), &tokenizer::tokenizer_config_json())?;
        let ids = tokenizer::SpecialIds::of(t)?;
        println!(
            "{}: vocab {} (eos {}, mask {}, bos {}, pad {})",
            dir.join("tokenizer.json").display(),
            ids.vocab_size,
            ids.eos,
            ids.mask,
            ids.bos,
            ids.pad
        );
    }
    if let Some(path) = &args.corpus_out {
        let docs = if args.long_arith {
            world.long_training_docs(args.docs, 0)
        } else {
            world.training_docs(args.docs, 0)
        };
        let docs = super::corpus::arithmetic_heavy(docs, args.fact_every as usize);
        let mut s = String::new();
        for d in &docs {
            let line = CorpusLine { text: d.text(), prompt: &d.prompt, answer: &d.answer };
            s.push_str(&serde_json::to_string(&line)?);
            s.push('\n');
        }
        write(path, &s)?;
        println!("{}: {} documents", path.display(), docs.len());
        if let Some(t) = &tok {
            let lens: Vec<usize> = docs
                .iter()
                .map(|d| t.encode(d.text(), false).map(|e| e.len() + 1))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
            let total: usize = lens.iter().sum();
            println!(
                "  tokens per document (EOS included): mean {:.1}, max {}; total {total}",
                total as f64 / lens.len().max(1) as f64,
                lens.iter().max().copied().unwrap_or(0)
            );
        }
    }
    Ok(())
}

/// A `--corpus-out` line: `text` is the rendered chat document (what `train --data` reads; the
/// trainer appends EOS), `prompt` and `answer` its parts.
#[derive(serde::Serialize)]
struct CorpusLine<'a> {
    text: String,
    prompt: &'a str,
    answer: &'a str,
}

/// Writes atomically (temp file in the same directory, then rename).
fn write(path: &Path, text: &str) -> Result<()> {
    crate::session::atomic_write(path, text.as_bytes())
}
