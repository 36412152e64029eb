//! `bench --shard i/N` in separate processes, then `results merge`, gives exactly what one
//! unsharded bench gives; a missing or duplicated shard is refused; a second merge adds nothing.

mod common;

use std::path::Path;
use std::process::Command;

use draftscope::bench::ResultsStore;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// `results merge DIRS --into INTO [--json JSON]`.
fn merge(dirs: &[&str], into: &Path, json: Option<&Path>) -> (i32, String) {
    let mut args = vec!["results", "merge"];
    args.extend(dirs);
    args.extend(["--into", into.to_str().unwrap()]);
    if let Some(j) = json {
        args.extend(["--json", j.to_str().unwrap()]);
    }
    run(&args)
}

fn bench(dir: &Path, shard: Option<&str>) {
    let d = dir.to_str().unwrap();
    let json = dir.join("bench.json");
    let mut args = vec!["bench", "--suite", "arith,facts", "--limit", "7", "--sessions", d];
    args.extend(["--json", json.to_str().unwrap()]);
    if let Some(s) = shard {
        args.extend(["--shard", s]);
    }
    let (code, out) = run(&args);
    assert_eq!(code, 0, "{out}");
}

/// The numbers of a record, without what depends on the run (ids, times, trace paths).
fn numbers(dir: &Path) -> Vec<serde_json::Value> {
    let mut recs = ResultsStore::open(dir).load().unwrap().records;
    recs.sort_by(|a, b| a.suite.cmp(&b.suite));
    recs.iter()
        .map(|r| {
            let mut m = serde_json::to_value(&r.metrics).unwrap();
            m.as_object_mut().unwrap().remove("wall_s");
            let items: Vec<_> = r
                .items
                .iter()
                .map(|o| {
                    (
                        o.id.clone(),
                        o.correct,
                        o.predicted.clone(),
                        o.edits,
                        o.tokens,
                        o.forwards,
                        o.over_corrected,
                    )
                })
                .collect();
            serde_json::json!({"suite": r.suite, "metrics": m, "items": items, "n": r.items.len()})
        })
        .collect()
}

#[test]
fn three_shards_merged_equal_one_unsharded_bench() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s);
    bench(&p("whole"), None);
    let shards: Vec<_> = (0..3).map(|i| p(&format!("s{i}"))).collect();
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(common::bin())
                .args(["bench", "--suite", "arith,facts", "--limit", "7", "--shard", &format!("{i}/3")])
                .args(["--sessions", shards[i].to_str().unwrap()])
                .output()
        })
        .collect();
    for c in children {
        assert!(c.unwrap().status.success());
    }
    let merged = p("merged");
    let s: Vec<&str> = shards.iter().map(|d| d.to_str().unwrap()).collect();
    let (code, out) = run(&["results", "merge", s[0], s[1], s[2], "--into", merged.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("merged arith") && out.contains("7 items"), "{out}");
    assert_eq!(numbers(&merged), numbers(&p("whole")));
    // Every merged item's trace was copied.
    for r in ResultsStore::open(&merged).load().unwrap().records {
        for o in &r.items {
            assert!(merged.join(&o.trace).exists(), "{}", o.trace);
        }
    }
    // Again: nothing new; `--json` then writes the summary `bench --json` wrote for the
    // unsharded run, with the same numbers.
    let mj = p("merged.json");
    let (code, out) = merge(&s, &merged, Some(&mj));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 merged record(s) were already"), "{out}");
    assert_eq!(ResultsStore::open(&merged).load().unwrap().records.len(), 2);
    let summary = |f: &Path| {
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for m in v["suites"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("wall_s");
        }
        let mut suites = v["suites"].as_array().unwrap().clone();
        suites.sort_by_key(|m| m["suite"].as_str().unwrap().to_string());
        serde_json::json!([v["model"], v["adapter"], v["mode"], v["params"], v["attention"], suites])
    };
    assert_eq!(summary(&mj), summary(&p("whole").join("bench.json")));
    let merged_run = ResultsStore::open(&merged).load().unwrap().records[0].run_id.clone();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mj).unwrap()).unwrap();
    assert_eq!(v["run_id"], merged_run.as_str());

    // Shards of two different bench runs cannot share one summary: refused before writing.
    let other = p("other");
    let (code, out) = run(&[
        "bench",
        "--suite",
        "arith",
        "--limit",
        "2",
        "--shard",
        "0/1",
        "--sessions",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let into2 = p("two-runs");
    let (code, out) = merge(&[s[0], s[1], s[2], other.to_str().unwrap()], &into2, Some(&p("two.json")));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("2 different bench runs"), "{out}");
    assert!(!into2.join("results.jsonl").exists() && !p("two.json").exists());

    // A missing shard is named; a shard given twice is refused.
    let into = p("bad");
    let (code, out) = run(&["results", "merge", s[0], s[2], "--into", into.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard(s) 1/3 missing"), "{out}");
    let (code, out) = run(&["results", "merge", s[0], s[1], s[2], s[1], "--into", into.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard 1/3 appears twice"), "{out}");
    assert!(!into.join("results.jsonl").exists(), "nothing written on a refused merge");
}

#[test]
fn a_bad_shard_spec_is_one_line() {
    let (code, out) = run(&["bench", "--suite", "arith", "--shard", "3/3"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--shard") && out.contains("0 <= i < N"), "{out}");
}
