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

pub(super) fn docs(world: &World, n: usize, epoch: u64) -> Vec<Doc> {
    let mut rng = stream(world.seed, EPOCH_STREAM_BASE + epoch);
    let held_out: HashSet<_> = world.bench_problems.iter().map(|(_, p)| p.unordered_key()).collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r: f64 = rng.random();
        let doc = if r < 0.5 {
            let kind = arith::Kind::ALL[rng.random_range(0..arith::Kind::ALL.len())];
            let p = kind.sample(&mut rng);
            if held_out.contains(&p.unordered_key()) {
                continue;
            }
            let bare = rng.random_bool(0.25);
            Doc { prompt: p.prompt(&mut rng, bare), answer: p.solution() }
        } else if r < 0.65 {
            let c = &world.countries[rng.random_range(0..world.countries.len())];
            let (prompt, answer) = super::kb::profile(c, &mut rng);
            Doc { prompt, answer }
        } else {
            let c = &world.countries[rng.random_range(0..world.countries.len())];
            let attr = Attr::ALL[rng.random_range(0..Attr::ALL.len())];
            Doc { prompt: c.train_question(attr, &mut rng), answer: c.value(attr) }
        };
        out.push(doc);
    }
    out
}
