//! Benchmark items of the world (`assets/benchmarks/<suite>.jsonl`).
//!
//! `arith`: 150 word problems, 50 per family (add2, sub2, mul2); the gold
//! `answer` is the value; the model is expected to answer in the worked format of
//! [`super::arith`] and is scored on the number after `Answer:`.
//! `facts`: 150 questions, 30 per attribute (every fact of the 30 countries), in held-out wordings; `answer` is the bare value,
//! `aliases` other accepted strings (e.g. "the owl").
//! Ids are `<suite>-<family>-<nnn>`; `task` is the suite name (it selects answer extraction).

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::arith::{Kind, Problem};
use super::kb::Attr;
use super::{World, stream};

/// The suites this world provides.
pub const SUITES: &[&str] = &["arith", "facts"];

const PER_KIND: usize = 50;
const PER_ATTR: usize = 30;

/// One benchmark item, as a line of `assets/benchmarks/<suite>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchItem {
    pub id: String,
    pub task: String,
    /// The user message (render it with the chat template before decoding).
    pub prompt: String,
    pub answer: String,
    pub aliases: Vec<String>,
}

pub(super) fn pick_problems(rng: &mut impl Rng) -> Vec<(Kind, Problem)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let mut k = 0;
        while k < PER_KIND {
            let p = kind.sample(rng);
            if seen.insert(p.unordered_key()) {
                out.push((kind, p));
                k += 1;
            }
        }
    }
    out
}

pub(super) fn pick_facts(rng: &mut impl Rng, n_countries: usize) -> Vec<(usize, Attr)> {
    let mut out = Vec::new();
    for attr in Attr::ALL {
        let mut idx: Vec<usize> = (0..n_countries).collect();
        idx.shuffle(rng);
        out.extend(idx.into_iter().take(PER_ATTR).map(|i| (i, attr)));
    }
    out
}

pub(super) fn items(world: &World, suite: &str) -> Vec<BenchItem> {
    match suite {
        "arith" => {
            let mut rng = stream(world.seed, 4);
            let mut counters = std::collections::HashMap::new();
            world
                .bench_problems
                .iter()
                .map(|(kind, p)| {
                    let n = counters.entry(*kind).or_insert(0usize);
                    *n += 1;
                    BenchItem {
                        id: format!("arith-{}-{:03}", kind.name(), n),
                        task: "arith".into(),
                        prompt: p.prompt(&mut rng, false),
                        answer: p.value().to_string(),
                        aliases: Vec::new(),
                    }
                })
                .collect()
        }
        "facts" => {
            let mut counters = std::collections::HashMap::new();
            world
                .bench_facts
                .iter()
                .map(|&(ci, attr)| {
                    let c = &world.countries[ci];
                    let n = counters.entry(attr).or_insert(0usize);
                    *n += 1;
                    BenchItem {
                        id: format!("facts-{}-{:03}", attr.name(), n),
                        task: "facts".into(),
                        prompt: c.bench_question(attr),
                        answer: c.value(attr),
                        aliases: c.aliases(attr),
                    }
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Stream of the testbed's problems: disjoint from the world's own streams (1–4), from the
/// training corpus' epoch streams (1000 + epoch) and from the benchmark problems' stream.
const TESTBED_STREAM: u64 = 900;

/// The arithmetic testbed: `per_kind` problems of each family, drawn from a stream no training
/// corpus uses, none equal to a benchmark problem, each prompt in a word-problem wording.
/// Held out by seed, not by operands: the two-digit problem space is small enough that the
/// shipped model's corpus contains most operand pairs in some wording.
pub fn arith_testbed(world: &World, per_kind: usize) -> Vec<BenchItem> {
    let mut rng = stream(world.seed, TESTBED_STREAM);
    let mut seen: HashSet<_> = world.bench_problems.iter().map(|(_, p)| p.unordered_key()).collect();
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let mut k = 0;
        while k < per_kind {
            let p = kind.sample(&mut rng);
            if !seen.insert(p.unordered_key()) {
                continue;
            }
            k += 1;
            out.push(BenchItem {
                id: format!("arith-tb-{}-{k:04}", kind.name()),
                task: "arith".into(),
                prompt: p.prompt(&mut rng, false),
                answer: p.value().to_string(),
                aliases: Vec::new(),
            });
        }
    }
    out
}

/// Stream of the problems withheld from the long corpus (see [`TESTBED_STREAM`]).
const LONG_WITHHELD_STREAM: u64 = 901;
/// Problems per long family withheld from the long corpus.
const LONG_WITHHELD_PER_KIND: usize = 250;
/// Stream of the add4 testbed's problems.
const ADD4_TESTBED_STREAM: u64 = 902;
/// Items in the add4 testbed.
pub const ADD4_TESTBED_ITEMS: usize = 1000;

/// The editing testbed (`arith-add4-testbed`): [`ADD4_TESTBED_ITEMS`] four-digit additions
/// from their own stream, none a benchmark problem or one withheld from the long corpus, each
/// in a word-problem wording. Four-digit addition is the long family whose worked value and
/// answer line (5 digits each, drafted in one block) the embedded model gets right about half
/// the time while committing them inconsistently: see README, "The editing testbed".
pub fn arith_add4_testbed(world: &World) -> Vec<BenchItem> {
    let mut seen = long_withheld_keys(world);
    seen.extend(world.bench_problems.iter().map(|(_, p)| p.unordered_key()));
    draw_add4(&mut stream(world.seed, ADD4_TESTBED_STREAM), &mut seen, ADD4_TESTBED_ITEMS, "arith-tb-add4")
}

/// Stream of the add4 development split's problems.
const ADD4_DEV_STREAM: u64 = 903;
/// Items in the add4 development split.
pub const ADD4_DEV_ITEMS: usize = 500;

/// The development split for choosing a training recipe (`arith-add4-dev`, shipped in
/// `assets/dev/`, outside the benchmark folder so that a bare `bench` never scores it): four-digit
/// additions like the testbed's, from a third stream, none a testbed, withheld or benchmark
/// problem. Recipes are compared here so that the testbed stays unseen until the final run.
pub fn arith_add4_dev(world: &World) -> Vec<BenchItem> {
    let mut seen = long_withheld_keys(world);
    seen.extend(world.bench_problems.iter().map(|(_, p)| p.unordered_key()));
    // Drawing the testbed again adds its keys to `seen`, exactly as it was drawn.
    draw_add4(&mut stream(world.seed, ADD4_TESTBED_STREAM), &mut seen, ADD4_TESTBED_ITEMS, "arith-tb-add4");
    draw_add4(&mut stream(world.seed, ADD4_DEV_STREAM), &mut seen, ADD4_DEV_ITEMS, "arith-dev-add4")
}

/// `n` four-digit additions from `rng`, none of whose operand keys is in `seen` (which grows),
/// with ids `{prefix}-0001…`.
fn draw_add4(
    rng: &mut rand_chacha::ChaCha8Rng,
    seen: &mut HashSet<(super::arith::Op, u32, u32)>,
    n: usize,
    prefix: &str,
) -> Vec<BenchItem> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = Kind::Add4.sample(rng);
        if !seen.insert(p.unordered_key()) {
            continue;
        }
        out.push(BenchItem {
            id: format!("{prefix}-{:04}", out.len() + 1),
            task: "arith".into(),
            prompt: p.prompt(rng, false),
            answer: p.value().to_string(),
            aliases: Vec::new(),
        });
    }
    out
}

/// Operand keys withheld from the long corpus: the first [`LONG_WITHHELD_PER_KIND`] problems
/// of each long family drawn from their own stream, distinct up to operand order.
pub(super) fn long_withheld_keys(world: &World) -> HashSet<(super::arith::Op, u32, u32)> {
    let mut rng = stream(world.seed, LONG_WITHHELD_STREAM);
    let mut seen = HashSet::new();
    for kind in Kind::LONG {
        let mut k = 0;
        while k < LONG_WITHHELD_PER_KIND {
            if seen.insert(kind.sample(&mut rng).unordered_key()) {
                k += 1;
            }
        }
    }
    seen
}

/// Items as JSONL text: one compact JSON object per line, fields in the order
/// `id, task, prompt, answer, aliases`, with a final newline.
pub fn to_jsonl(items: &[BenchItem]) -> String {
    let mut s = String::new();
    for it in items {
        s.push_str(&serde_json::to_string(it).expect("BenchItem serialises"));
        s.push('\n');
    }
    s
}

/// Reads a JSONL file of items (blank lines skipped); errors name the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<BenchItem>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a benchmark item", path.display(), i + 1))
        })
        .collect()
}
