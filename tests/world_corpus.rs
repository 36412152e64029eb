//! The synthetic world: deterministic, benchmark disjoint from training text, answer formats,
//! shipped benchmark files equal to a fresh generation.

use std::collections::HashSet;
use std::path::Path;

use draftscope::world::{self, World, arith, bench};

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets"))
}

#[test]
fn same_seed_gives_the_same_world_and_corpus() {
    let (a, b) = (World::new(5), World::new(5));
    assert_eq!(a.countries, b.countries);
    assert_eq!(a.training_docs(2000, 0), b.training_docs(2000, 0));
    assert_eq!(a.benchmark_items("arith"), b.benchmark_items("arith"));
    assert_eq!(a.benchmark_items("facts"), b.benchmark_items("facts"));
}

#[test]
fn different_seeds_and_epochs_differ() {
    let w = World::new(5);
    assert_ne!(w.training_docs(200, 0), w.training_docs(200, 1));
    assert_ne!(World::new(6).countries, w.countries);
}

#[test]
fn no_benchmark_prompt_occurs_in_the_training_corpus() {
    let corpus = world::training_texts(world::DEFAULT_SEED);
    let all = corpus.join("\n");
    for suite in world::SUITES {
        for item in world::benchmark_items(suite) {
            assert!(!all.contains(&item.prompt), "{} leaks into training: {}", item.id, item.prompt);
        }
    }
}

#[test]
fn no_benchmark_arithmetic_problem_is_trained_on_in_either_order() {
    let w = World::default();
    let held: HashSet<_> = w.bench_problems.iter().map(|(_, p)| p.unordered_key()).collect();
    let mut n = 0;
    for doc in w.training_docs(20_000, 0) {
        if !doc.is_arithmetic() {
            continue;
        }
        let op = match doc.answer.chars().find(|c| "+-*".contains(*c)).unwrap() {
            '+' => arith::Op::Add,
            '-' => arith::Op::Sub,
            _ => arith::Op::Mul,
        };
        let nums: Vec<u32> = doc
            .prompt
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(nums.len(), 2, "{}", doc.prompt);
        let key = (op, nums[0].min(nums[1]), nums[0].max(nums[1]));
        assert!(!held.contains(&key), "benchmark problem in training: {}", doc.prompt);
        n += 1;
    }
    assert!(n > 5000);
}

#[test]
fn every_benchmark_fact_is_stated_in_training() {
    let w = World::default();
    let docs = w.training_docs(world::DEFAULT_TRAIN_DOCS, 0);
    for item in w.benchmark_items("facts") {
        // A profile document ("Tell me about X.") of the entity states the value.
        let entity = item.prompt.trim_end_matches('?').rsplit(' ').next().unwrap().to_string();
        let stated = docs.iter().any(|d| {
            world::kb::PROFILE_PROMPTS.iter().any(|p| d.prompt == p.replace("{e}", &entity))
                && d.answer.contains(&format!(" {}", item.answer))
        });
        assert!(stated, "{}: {} / {}", item.id, entity, item.answer);
    }
}

#[test]
fn suites_have_the_documented_sizes_and_unique_ids() {
    for suite in world::SUITES {
        let items = world::benchmark_items(suite);
        assert_eq!(items.len(), 150, "{suite}");
        let ids: HashSet<_> = items.iter().map(|i| i.id.clone()).collect();
        assert_eq!(ids.len(), items.len());
        assert!(items.iter().all(|i| i.task == *suite && i.id.starts_with(&format!("{suite}-"))));
        let prompts: HashSet<_> = items.iter().map(|i| i.prompt.clone()).collect();
        assert_eq!(prompts.len(), items.len(), "{suite}: duplicate prompts");
    }
}

#[test]
fn arithmetic_answers_have_worked_steps_and_the_marker() {
    for doc in World::default().training_docs(3000, 0) {
        if doc.answer.contains("Answer:") {
            let (worked, fin) = arith::split_answer(&doc.answer);
            assert!(worked.is_some() && worked == fin, "{}", doc.answer);
            assert_eq!(doc.answer.matches(arith::ANSWER_MARKER).count(), 1);
        }
    }
    for item in world::benchmark_items("arith") {
        assert!(
            item.answer.chars().all(|c| c.is_ascii_digit()) && (1..=4).contains(&item.answer.len()),
            "{}",
            item.answer
        );
    }
}

#[test]
fn fact_answers_are_short() {
    for item in world::benchmark_items("facts") {
        assert_eq!(item.answer.split_whitespace().count(), 1, "{}", item.answer);
    }
}

#[test]
fn shipped_benchmark_files_parse_and_match_a_fresh_generation() {
    for suite in world::SUITES {
        let path = assets().join(format!("benchmarks/{suite}.jsonl"));
        let items = bench::read_jsonl(&path).unwrap();
        assert_eq!(items, world::benchmark_items(suite), "run `draftscope world` to regenerate {suite}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, bench::to_jsonl(&items));
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5);
        for k in ["id", "task", "prompt", "answer", "aliases"] {
            assert!(first.get(k).is_some(), "{k}");
        }
    }
}

#[test]
fn training_documents_are_short() {
    let tok = tokenizers::Tokenizer::from_file(assets().join("model/tokenizer.json")).unwrap();
    let mut max = 0;
    for doc in World::default().training_docs(3000, 0) {
        max = max.max(tok.encode(doc.text(), false).unwrap().len());
    }
    assert!(max <= 72, "longest document {max} tokens");
}

#[test]
fn the_arithmetic_heavy_mixture_keeps_all_arithmetic_and_one_fact_document_in_k() {
    let docs = World::default().training_docs(3000, 0);
    let (arith, facts): (Vec<_>, Vec<_>) = docs.iter().cloned().partition(|d| d.is_arithmetic());
    assert!(!arith.is_empty() && !facts.is_empty());
    let heavy = world::corpus::arithmetic_heavy(docs.clone(), 3);
    let (h_arith, h_facts): (Vec<_>, Vec<_>) = heavy.into_iter().partition(|d| d.is_arithmetic());
    assert_eq!(h_arith, arith, "every arithmetic document, in order");
    let every_third: Vec<_> = facts.iter().step_by(3).cloned().collect();
    assert_eq!(h_facts, every_third);
    assert_eq!(world::corpus::arithmetic_heavy(docs.clone(), 1), docs, "K = 1 is the plain mixture");
}
