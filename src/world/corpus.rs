//! Training documents: the mixture of arithmetic, fact profiles and fact QA the tiny model is
//! pretrained on.
//!
//! Mixture per document: 50% arithmetic (a quarter of it bare "What is a+b?" drills, the rest
//! word problems), 15% profiles ("Tell me about X." → all five facts as sentences), 35% fact QA
//! in the training wordings. Facts are few (300) and must be memorised, so they are repeated
//! often; arithmetic problems are drawn fresh, never one of the benchmark's operand pairs (in
//! either order).

use std::collections::HashSet;

use rand::Rng;

use super::kb::Attr;
use super::{ASSISTANT_TAG, HUMAN_TAG, World, arith, stream};

/// One training document: a user prompt and the assistant's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Doc {
    pub prompt: String,
    pub answer: String,
}

impl Doc {
    /// `<role>HUMAN</role>{prompt}<role>ASSISTANT</role>{answer}` (no EOS: append the EOS id).
    pub fn text(&self) -> String {
        format!("{HUMAN_TAG}{}{ASSISTANT_TAG}{}", self.prompt, self.answer)
    }

    /// The prompt part as the chat template renders it (`text()` = this + `answer`).
    pub fn chat_prompt(&self) -> String {
        format!("{HUMAN_TAG}{}{ASSISTANT_TAG}", self.prompt)
    }

    /// An arithmetic document: its worked solution ends in an `Answer:` line.
    pub fn is_arithmetic(&self) -> bool {
        self.answer.contains(arith::ANSWER_MARKER)
    }
}

/// Keeps every arithmetic document and one fact document (profile or QA) in `fact_every`, in
/// order: the arithmetic-heavy mixture the embedded model is pretrained on.
pub fn arithmetic_heavy(docs: Vec<Doc>, fact_every: usize) -> Vec<Doc> {
    let every = fact_every.max(1);
    let mut facts = 0usize;
    docs.into_iter()
        .filter(|d| {
            if d.is_arithmetic() {
                return true;
            }
            facts += 1;
            (facts - 1).is_multiple_of(every)
        })
        .collect()
}

/// Stream ids below 1000 are reserved for the world itself.
const EPOCH_STREAM_BASE: u64 = 1000;
/// Epoch streams of the long corpus (disjoint from the base corpus' epochs).
const LONG_EPOCH_STREAM_BASE: u64 = 1_000_000;

pub(super) fn docs(world: &World, n: usize, epoch: u64) -> Vec<Doc> {
    let held_out: HashSet<_> = world.bench_problems.iter().map(|(_, p)| p.unordered_key()).collect();
    mixture(world, n, &mut stream(world.seed, EPOCH_STREAM_BASE + epoch), &arith::Kind::ALL, &held_out)
}

/// The long corpus: the base mixture with the arithmetic half drawn evenly from the base and
/// the long families ([`arith::Kind::LONG`]), never a benchmark problem or one of the withheld long problems. What
/// the embedded model's continued pretraining reads (`draftscope world --long-arith`).
pub(super) fn long_docs(world: &World, n: usize, epoch: u64) -> Vec<Doc> {
    let mut held_out: HashSet<_> = world.bench_problems.iter().map(|(_, p)| p.unordered_key()).collect();
    held_out.extend(super::bench::long_withheld_keys(world));
    let kinds: Vec<arith::Kind> = arith::Kind::ALL.into_iter().chain(arith::Kind::LONG).collect();
    mixture(world, n, &mut stream(world.seed, LONG_EPOCH_STREAM_BASE + epoch), &kinds, &held_out)
}

fn mixture(
    world: &World,
    n: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
    kinds: &[arith::Kind],
    held_out: &HashSet<(arith::Op, u32, u32)>,
) -> Vec<Doc> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r: f64 = rng.random();
        let doc = if r < 0.5 {
            let kind = kinds[rng.random_range(0..kinds.len())];
            let p = kind.sample(rng);
            if held_out.contains(&p.unordered_key()) {
                continue;
            }
            let bare = rng.random_bool(0.25);
            Doc { prompt: p.prompt(rng, bare), answer: p.solution() }
        } else if r < 0.65 {
            let c = &world.countries[rng.random_range(0..world.countries.len())];
            let (prompt, answer) = super::kb::profile(c, rng);
            Doc { prompt, answer }
        } else {
            let c = &world.countries[rng.random_range(0..world.countries.len())];
            let attr = Attr::ALL[rng.random_range(0..Attr::ALL.len())];
            Doc { prompt: c.train_question(attr, rng), answer: c.value(attr) }
        };
        out.push(doc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operand key of a worked answer's equation (`712-490: …` → (Sub, 490, 712)).
    /// The operand key of a worked answer's restated equation.
    fn key(answer: &str) -> (arith::Op, u32, u32) {
        arith::parse_equation(answer)
            .expect("an arithmetic answer starts with its equation")
            .0
            .unordered_key()
    }

    /// The long corpus teaches the long families but never a withheld or benchmark problem.
    #[test]
    fn long_corpus_holds_out_the_withheld_problems() {
        let world = World::default();
        let mut held = super::super::bench::long_withheld_keys(&world);
        held.extend(world.bench_problems.iter().map(|(_, p)| p.unordered_key()));
        let docs = long_docs(&world, 20_000, 0);
        let mut long = 0;
        for d in docs.iter().filter(|d| d.is_arithmetic()) {
            let k = key(&d.answer);
            assert!(!held.contains(&k), "{} is held out", d.answer);
            long += usize::from(k.2 >= 100);
        }
        assert!(long > 4_000, "only {long} long problems in 20000 documents");
    }

    #[test]
    fn base_corpus_draws_only_base_families() {
        let docs = World::default().training_docs(5_000, 0);
        for d in docs.iter().filter(|d| d.is_arithmetic()) {
            assert!(key(&d.answer).2 < 100, "{}", d.answer);
        }
    }

    /// Operand keys of benchmark items, read back from their prompts, so the check does not
    /// trust the generator's own bookkeeping.
    fn add4_keys(items: &[super::super::bench::BenchItem]) -> Vec<(arith::Op, u32, u32)> {
        items
            .iter()
            .map(|it| arith::parse_prompt(&it.prompt).expect("a world prompt").unordered_key())
            .collect()
    }

    /// The add4 testbed and the add4 development split are held out of the corpus the embedded
    /// model was trained on (the long corpus of 300000 documents, `world --long-arith --docs
    /// 300000`), by operands, and from each other.
    #[test]
    fn add4_testbed_and_dev_split_are_not_in_the_shipped_long_corpus() {
        use super::super::bench::{ADD4_DEV_ITEMS, ADD4_TESTBED_ITEMS, arith_add4_dev, arith_add4_testbed};
        let world = World::default();
        let testbed: HashSet<_> = add4_keys(&arith_add4_testbed(&world)).into_iter().collect();
        let dev: HashSet<_> = add4_keys(&arith_add4_dev(&world)).into_iter().collect();
        assert_eq!(testbed.len(), ADD4_TESTBED_ITEMS);
        assert_eq!(dev.len(), ADD4_DEV_ITEMS);
        assert!(testbed.is_disjoint(&dev));
        let mut add4 = 0;
        for d in long_docs(&world, 300_000, 0).iter().filter(|d| d.is_arithmetic()) {
            let k = key(&d.answer);
            if k.0 == arith::Op::Add && k.1 >= 1000 {
                add4 += 1;
                assert!(!testbed.contains(&k), "{} is in the corpus and the testbed", d.answer);
                assert!(!dev.contains(&k), "{} is in the corpus and the dev split", d.answer);
            }
        }
        assert!(add4 > 10_000, "{add4}");
    }
}
