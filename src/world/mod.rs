//! The synthetic world behind the embedded tiny model: arithmetic word problems with worked
//! steps and a fictional knowledge base, rendered as chat documents for pretraining and as
//! benchmark items for `draftscope bench`.
//!
//! It exists so the shipped model, small enough to train in under an hour on a laptop CPU, still
//! shows the two failure modes users study: a final answer line whose digit differs from the
//! worked-step value, and short factual answers the T2T editor over-corrects. Everything is small
//! on purpose (30 countries × 5 facts, 1–5 digit numbers, documents ≲ 100 tokens). Two corpora:
//! the base one (two-digit arithmetic, what the model learns from scratch) and the long one (half
//! its arithmetic from 3–4 digit families, for continued pretraining), whose four-digit additions
//! make the editing testbed (`arith-add4-testbed`).
//!
//! # Text format
//!
//! A training document and a benchmark prompt use the same chat layout, the one the shipped
//! `chat_template` renders for `messages=[{role: "user", content}]` with a generation prompt:
//!
//! ```text
//! <role>HUMAN</role>{prompt}<role>ASSISTANT</role>{answer}<|endoftext|>
//! ```
//!
//! [`Doc::text`] is everything up to and including `{answer}`; the trainer appends the EOS id
//! (and pads with EOS if it pads). `<role>HUMAN</role>` and `<role>ASSISTANT</role>` are single
//! special tokens. Benchmarks give only `{prompt}`; `decode --chat --prompt "{prompt}"` and the
//! bench both render it with the template, so decoding continues exactly where training did.
//!
//! Answers: arithmetic `7+8=15, 4+3+1=8, so 85. Answer: 85` (see [`arith`]); facts are the
//! bare value, e.g. `Karholm`, `Ilsa`, `742`, `green`, `owl`.
//!
//! Determinism: everything derives from one `u64` seed through ChaCha8 streams; the default
//! seed ([`DEFAULT_SEED`]) is the one the shipped model and benchmark files use.

pub mod arith;
pub mod bench;
pub mod cli;
pub mod corpus;
pub mod kb;
pub mod names;
pub mod tokenizer;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use bench::{BenchItem, SUITES};
pub use corpus::Doc;
pub use tokenizer::SpecialIds;

/// The seed of the shipped world (benchmark files, tokenizer, pretraining corpus).
pub const DEFAULT_SEED: u64 = 20_260_421;
/// Documents in one default training corpus ([`training_texts`]).
pub const DEFAULT_TRAIN_DOCS: usize = 60_000;
/// Countries in the knowledge base.
pub const N_COUNTRIES: usize = 30;

/// Opening of a rendered chat turn for the user.
pub const HUMAN_TAG: &str = "<role>HUMAN</role>";
/// Generation prompt: what precedes the assistant's answer.
pub const ASSISTANT_TAG: &str = "<role>ASSISTANT</role>";

/// One seeded world: the knowledge base and the benchmark problems, fixed by the seed.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub countries: Vec<kb::Country>,
    /// Benchmark arithmetic problems, excluded from training by operands.
    pub bench_problems: Vec<(arith::Kind, arith::Problem)>,
    /// Benchmark facts as (country index, attribute).
    pub bench_facts: Vec<(usize, kb::Attr)>,
}

/// Independent random streams of one seed, one per purpose, so adding draws to one purpose never
/// shifts another.
pub(crate) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl World {
    pub fn new(seed: u64) -> Self {
        let countries = kb::build(&mut stream(seed, 1), N_COUNTRIES);
        let bench_problems = bench::pick_problems(&mut stream(seed, 2));
        let bench_facts = bench::pick_facts(&mut stream(seed, 3), countries.len());
        Self { seed, countries, bench_problems, bench_facts }
    }

    /// Benchmark items of `suite` (`arith` or `facts`); empty for an unknown suite.
    pub fn benchmark_items(&self, suite: &str) -> Vec<BenchItem> {
        bench::items(self, suite)
    }

    /// `n` training documents from random stream `epoch` (use different epochs for fresh
    /// arithmetic problems and orderings; the facts are the same in every epoch).
    pub fn training_docs(&self, n: usize, epoch: u64) -> Vec<Doc> {
        corpus::docs(self, n, epoch)
    }

    /// `n` documents of the long corpus (base and long arithmetic families, the same facts),
    /// from its own random stream `epoch`; see [`corpus`].
    pub fn long_training_docs(&self, n: usize, epoch: u64) -> Vec<Doc> {
        corpus::long_docs(self, n, epoch)
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new(DEFAULT_SEED)
    }
}

/// The default training corpus of the world of `seed`: [`DEFAULT_TRAIN_DOCS`] chat documents,
/// each `<role>HUMAN</role>{prompt}<role>ASSISTANT</role>{answer}`, without EOS (append it).
pub fn training_texts(seed: u64) -> Vec<String> {
    World::new(seed).training_docs(DEFAULT_TRAIN_DOCS, 0).iter().map(Doc::text).collect()
}

/// The long training corpus of the world of `seed` ([`World::long_training_docs`]): the
/// default corpus with half its arithmetic from the long families, rendered like
/// [`training_texts`].
pub fn long_training_texts(seed: u64) -> Vec<String> {
    World::new(seed).long_training_docs(DEFAULT_TRAIN_DOCS, 0).iter().map(Doc::text).collect()
}

/// Which of the world's corpora a run trains on when it names no file.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum WorldCorpus {
    /// Two-digit arithmetic and the facts ([`training_texts`]).
    #[default]
    Base,
    /// The base corpus with half its arithmetic from the long families ([`long_training_texts`]).
    Long,
}

impl WorldCorpus {
    pub fn texts(self, seed: u64) -> Vec<String> {
        match self {
            WorldCorpus::Base => training_texts(seed),
            WorldCorpus::Long => long_training_texts(seed),
        }
    }

    pub fn is_base(&self) -> bool {
        *self == WorldCorpus::Base
    }
}

/// Benchmark items of `suite` in the shipped world ([`DEFAULT_SEED`]).
pub fn benchmark_items(suite: &str) -> Vec<BenchItem> {
    World::default().benchmark_items(suite)
}
