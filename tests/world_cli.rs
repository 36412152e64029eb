//! `draftscope world` writes the same bytes every time for a seed, and the files it writes are
//! the ones shipped in `assets/`.

use std::path::Path;

use draftscope::world::cli::{WorldArgs, run};

fn regenerate(dir: &Path, corpus: bool) {
    run(WorldArgs {
        seed: draftscope::world::DEFAULT_SEED,
        assets: Some(dir.to_path_buf()),
        corpus_out: corpus.then(|| dir.join("corpus.jsonl")),
        docs: 500,
        fact_every: 1,
        testbed_per_kind: 0,
        long_testbed: true,
        long_arith: false,
        no_tokenizer: false,
    })
    .unwrap();
}

const FILES: [&str; 6] = [
    "benchmarks/arith.jsonl",
    "benchmarks/arith-add4-testbed.jsonl",
    "dev/arith-add4-dev.jsonl",
    "benchmarks/facts.jsonl",
    "model/tokenizer.json",
    "model/tokenizer_config.json",
];

#[test]
fn regenerating_twice_gives_byte_identical_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    regenerate(a.path(), true);
    regenerate(b.path(), true);
    for f in FILES.iter().chain(&["corpus.jsonl"]) {
        assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f}");
    }
}

#[test]
fn regenerated_files_equal_the_shipped_assets() {
    let d = tempfile::tempdir().unwrap();
    regenerate(d.path(), false);
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets"));
    for f in FILES {
        assert_eq!(
            std::fs::read(d.path().join(f)).unwrap(),
            std::fs::read(shipped.join(f)).unwrap(),
            "{f} differs: run `draftscope world`"
        );
    }
}

#[test]
fn corpus_lines_are_prompt_answer_objects() {
    let d = tempfile::tempdir().unwrap();
    regenerate(d.path(), true);
    let text = std::fs::read_to_string(d.path().join("corpus.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 500);
    for line in text.lines() {
        let doc: draftscope::world::Doc = serde_json::from_str(line).unwrap();
        assert!(!doc.prompt.is_empty() && !doc.answer.is_empty());
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["text"].as_str().unwrap(), doc.text());
    }
}
