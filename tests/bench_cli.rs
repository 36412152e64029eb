//! `draftscope bench` / `draftscope results` end to end on the reference fixture model
//! (`tests/fixtures/llada2-tiny`, random weights), given a character-level tokenizer so the
//! text path (chat template, encode, decode, answer extraction) runs as with a real model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use draftscope::bench::{Format, Item, ResultsStore, RunOptions, Scorer, run_suite};
use draftscope::decode::{AttentionMode, DecodeParams, Mode, Trace};
use draftscope::model::{DeviceKind, DtypeKind, LoadedModel};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/llada2-tiny");
/// Small enough to be quick: 2 blocks of 8 after the prompt.
const DECODE: [&str; 4] = ["--block-length", "8", "--gen-length", "16"];

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_draftscope"));
    c.env_remove("DRAFTSCOPE_SESSIONS");
    c
}

/// The fixture's config and weights plus a character-level tokenizer: printable ASCII are ids
/// 0..95, every other id decodes as `‹id›`.
fn model_dir(root: &Path) -> PathBuf {
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(Path::new(FIXTURE).join(f), dir.join(f)).unwrap();
    }
    let mut vocab = serde_json::Map::new();
    for id in 0u32..512 {
        let tok = if id < 95 { char::from_u32(32 + id).unwrap().to_string() } else { format!("‹{id}›") };
        vocab.insert(tok, id.into());
    }
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {"type": "BPE", "dropout": null, "unk_token": "?", "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": []}
    });
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_vec(&tok).unwrap()).unwrap();
    dir
}

const MINI: &str = r#"{"id":"arith-1","task":"arith","prompt":"Ann has 21 coins and gets 62 more. How many?","answer":"83","aliases":[]}
{"id":"facts-1","task":"facts","prompt":"Which city is the capital of Saria?","answer":"Dunford","aliases":["dunford city"]}
{this line is broken
{"id":"arith-2","task":"arith","prompt":"Bo has 9 cards and gets 9 more. How many?","answer":"18","aliases":[]}
"#;

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn bench(model: &Path, sessions: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("bench")
        .args(["--model", model.to_str().unwrap(), "--sessions", sessions.to_str().unwrap()])
        .args(DECODE)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> (String, String) {
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "exit {:?}\nstdout:\n{so}\nstderr:\n{se}", out.status.code());
    (so, se)
}

fn records(sessions: &Path) -> Vec<draftscope::bench::RunRecord> {
    let loaded = ResultsStore::open(sessions).load().unwrap();
    assert!(loaded.bad_lines.is_empty(), "{:?}", loaded.bad_lines);
    loaded.records
}

#[test]
fn bench_prints_the_table_writes_json_saves_traces_and_results() {
    let d = tempfile::tempdir().unwrap();
    let model = model_dir(d.path());
    let suite = write(&d.path().join("mini.jsonl"), MINI);
    let sessions = d.path().join("sessions");
    let json = d.path().join("out.json");
    let out = bench(
        &model,
        &sessions,
        &["--suite", suite.to_str().unwrap(), "--jobs", "2", "--json", json.to_str().unwrap()],
    );
    let (stdout, stderr) = ok(&out);
    assert!(stdout.contains("mini — 3 items, 1 malformed lines skipped"), "{stdout}");
    for row in [
        "accuracy",
        "95% CI",
        "edit intensity",
        "tokens per forward",
        "final-digit errors",
        "over-corrected items",
        "edits harmful/helpful",
        "churn (A→B→A)",
        "wall time",
    ] {
        assert!(stdout.contains(row), "missing {row}:\n{stdout}");
    }
    assert!(stderr.contains(&format!("{}:3: not valid JSON", suite.display())), "{stderr}");

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &v["suites"][0];
    assert_eq!(
        (s["suite"].as_str(), s["n"].as_u64(), s["skipped"].as_u64()),
        (Some("mini"), Some(3), Some(1))
    );
    for k in [
        "accuracy",
        "accuracy_ci",
        "edit_intensity",
        "tpf",
        "over_corrected",
        "harmful_edits",
        "helpful_edits",
        "churn",
        "wall_s",
    ] {
        assert!(!s[k].is_null(), "missing {k}");
    }
    assert_eq!(s["accuracy_ci"].as_array().unwrap().len(), 2);
    for k in ["total", "substituted", "extra", "dropped", "marker"] {
        assert!(s["final_digit_errors"][k].is_u64(), "missing final_digit_errors.{k}");
    }

    let recs = records(&sessions);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!((r.suite.as_str(), r.format, r.items.len(), r.mode.label()), ("mini", Format::World, 3, "q"));
    assert_eq!(r.model, model.to_str().unwrap());
    assert_eq!(r.run_id, v["run_id"].as_str().unwrap());
    // Every item's trace opens, with the chat-templated prompt and the run's parameters.
    let store = ResultsStore::open(&sessions);
    for item in &r.items {
        assert!(item.error.is_none(), "{item:?}");
        let t = Trace::load(&store.trace_path(item)).unwrap();
        assert!(t.prompt.as_deref().unwrap().starts_with("<role>HUMAN</role>"));
        assert_eq!((t.params.block_length, t.params.gen_length, t.params.threshold), (8, 16, 0.7));
        assert_eq!(t.output.len(), item.tokens);
        assert_eq!(t.edit_count(), item.edits);
        // Re-judged from the saved trace alone, the classifier agrees with the run.
        let f = draftscope::bench::item_findings(item, &t).unwrap();
        assert_eq!(
            (f.harmful.len(), f.helpful.len(), f.churn.len(), f.over_corrected, f.first_right),
            (item.harmful_edits, item.helpful_edits, item.churn, item.over_corrected, item.first_right)
        );
    }
    assert_eq!(r.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["arith-1", "facts-1", "arith-2"]);
}

#[test]
fn results_do_not_depend_on_jobs() {
    let d = tempfile::tempdir().unwrap();
    let model = model_dir(d.path());
    let suite = write(&d.path().join("mini.jsonl"), MINI);
    let (s1, s3) = (d.path().join("s1"), d.path().join("s3"));
    ok(&bench(&model, &s1, &["--suite", suite.to_str().unwrap(), "--jobs", "1"]));
    ok(&bench(&model, &s3, &["--suite", suite.to_str().unwrap(), "--jobs", "3"]));
    let (a, b) = (&records(&s1)[0], &records(&s3)[0]);
    let strip = |r: &draftscope::bench::RunRecord| {
        r.items
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.wall_ms = 0.0;
                i.trace = i.trace.rsplit('/').next().unwrap().to_string();
                i
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(a), strip(b));
    let (mut ma, mut mb) = (a.metrics.clone(), b.metrics.clone());
    ma.wall_s = 0.0;
    mb.wall_s = 0.0;
    assert_eq!(ma, mb);
    for (x, y) in a.items.iter().zip(&b.items) {
        let tx = Trace::load(&s1.join(&x.trace)).unwrap();
        let ty = Trace::load(&s3.join(&y.trace)).unwrap();
        assert_eq!(tx.output, ty.output);
        assert_eq!(tx.final_canvas, ty.final_canvas);
    }
}

#[test]
fn results_compares_base_runs_and_lists_failing_items() {
    let d = tempfile::tempdir().unwrap();
    let model = model_dir(d.path());
    let suite = write(&d.path().join("mini.jsonl"), MINI);
    let sessions = d.path().join("sessions");
    ok(&bench(&model, &sessions, &["--suite", suite.to_str().unwrap(), "--limit", "2"]));
    ok(&bench(&model, &sessions, &["--suite", suite.to_str().unwrap(), "--limit", "2", "--mode", "s"]));
    let recs = records(&sessions);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.items.len() == 2 && r.limit == Some(2)));

    let (table, _) = ok(&bin().args(["results", "--sessions", sessions.to_str().unwrap()]).output().unwrap());
    assert!(table.lines().next().unwrap().starts_with("suite"), "{table}");
    assert_eq!(table.lines().filter(|l| l.starts_with("mini")).count(), 2, "{table}");
    assert!(table.contains("(base)"));

    let (json, _) =
        ok(&bin().args(["results", "--json", "--sessions", sessions.to_str().unwrap()]).output().unwrap());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let modes: Vec<&str> =
        v["rows"].as_array().unwrap().iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["q", "s"]);

    let run = &recs[0].run_id;
    let (failing, _) = ok(&bin()
        .args(["results", "--sessions", sessions.to_str().unwrap(), "--failing", run])
        .output()
        .unwrap());
    let wrong = recs[0].items.iter().filter(|i| !i.correct).count();
    assert!(failing.starts_with(&format!("mini: {wrong} failing")), "{failing}");
    assert!(failing.contains(".json"), "{failing}");

    let (runs, _) =
        ok(&bin().args(["results", "--runs", "--sessions", sessions.to_str().unwrap()]).output().unwrap());
    assert_eq!(runs.lines().count(), 2, "{runs}");
}

#[test]
fn unknown_suite_lists_the_known_ones_and_exits_2() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("alpha.jsonl"), "");
    let out = bin()
        .args(["bench", "--suite", "nope", "--bench-dir", d.path().to_str().unwrap()])
        .args(["--sessions", d.path().join("s").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: unknown suite `nope`; known suites: alpha"), "{err}");
    // The world's suites are listed too.
    assert!(err.contains("arith") && err.contains("facts"), "{err}");
}

#[test]
fn a_file_with_only_malformed_lines_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let f = write(&d.path().join("bad.jsonl"), "{oops\n");
    let out = bin()
        .args(["bench", "--suite", f.to_str().unwrap(), "--sessions", d.path().join("s").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:1: not valid JSON", f.display())), "{err}");
    assert!(err.contains("no usable items"), "{err}");
}

#[test]
fn public_format_file_runs_with_format_flag() {
    let d = tempfile::tempdir().unwrap();
    let model = model_dir(d.path());
    let f = write(
        &d.path().join("mydata.jsonl"),
        "{\"question\":\"Tom has 3 apples and buys 4. How many?\",\"answer\":\"3+4=<<3+4=7>>7\\n#### 7\"}\n\
         {\"question\":\"A box holds 12 eggs. How many in 2 boxes?\",\"answer\":\"#### 24\"}\n",
    );
    let sessions = d.path().join("s");
    let json = d.path().join("o.json");
    ok(&bench(
        &model,
        &sessions,
        &["--suite", f.to_str().unwrap(), "--format", "gsm8k", "--json", json.to_str().unwrap()],
    ));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["suites"][0]["n"], 2);
    assert_eq!(v["suites"][0]["format"], "gsm8k");
    let r = &records(&sessions)[0];
    assert_eq!(r.format, Format::Gsm8k);
    assert_eq!(r.items.iter().map(|i| i.gold.as_str()).collect::<Vec<_>>(), ["7", "24"]);
    let t = Trace::load(&sessions.join(&r.items[0].trace)).unwrap();
    assert!(t.prompt.unwrap().contains("put your final answer within \\boxed{}"));
}

/// Id-only items on the tokenizer-less fixture, through the library API: an item whose gold is
/// what the model writes scores right, and the outcome agrees with the saved trace.
#[test]
fn id_items_score_by_prefix_through_the_library() {
    let d = tempfile::tempdir().unwrap();
    let lm = LoadedModel::load_dir("fixture", Path::new(FIXTURE), DeviceKind::Cpu, DtypeKind::F32).unwrap();
    let mut params = DecodeParams::preset(Mode::Q, 508, 511);
    params.block_length = 8;
    params.gen_length = 16;
    let opts = RunOptions { params, attention: AttentionMode::BlockCausal, jobs: 2, chat: false };
    let item = |id: &str, answer: &str| Item {
        id: id.into(),
        line: 1,
        prompt: String::new(),
        prompt_ids: Some(vec![5, 17, 42, 99, 7]),
        answer: answer.into(),
        aliases: Vec::new(),
        scorer: Scorer::Prefix,
    };
    let suite = draftscope::bench::Suite {
        name: "ids".into(),
        path: d.path().join("ids.jsonl"),
        format: Format::World,
        items: vec![item("probe", "<0>")],
        skipped: Vec::new(),
    };
    let first = run_suite((&lm).into(), &suite, &suite.items, &opts, d.path(), "t1", &|_| {}).unwrap();
    let trace = Trace::load(&d.path().join(&first[0].trace)).unwrap();
    let eos = trace.output.iter().position(|&t| t == 508).unwrap_or(trace.output.len());
    let text: String = trace.output[..eos].iter().map(|i| format!("<{i}>")).collect();
    assert_eq!(first[0].predicted.as_deref(), Some(text.as_str()));
    let items = vec![item("right", &text), item("wrong", "<511><511>")];
    let out = run_suite((&lm).into(), &suite, &items, &opts, d.path(), "t2", &|_| {}).unwrap();
    assert_eq!(out.iter().map(|o| o.correct).collect::<Vec<_>>(), [!text.is_empty(), false]);
    assert_eq!(out[0].tokens, trace.output.len());
}

/// On a real decode: make the gold the generated text up to the first edited position as it
/// stood before that edit; that edit is then harmful, and the item is over-corrected exactly
/// when the final text no longer starts with it.
#[test]
fn an_edit_that_breaks_a_right_answer_is_found_in_a_real_trace() {
    let d = tempfile::tempdir().unwrap();
    let lm = LoadedModel::load_dir("fixture", Path::new(FIXTURE), DeviceKind::Cpu, DtypeKind::F32).unwrap();
    let mut params = DecodeParams::preset(Mode::Q, 508, 511);
    params.block_length = 8;
    params.gen_length = 24;
    let opts = RunOptions { params, attention: AttentionMode::BlockCausal, jobs: 1, chat: false };
    let item = |answer: &str| Item {
        id: "x".into(),
        line: 1,
        prompt: String::new(),
        prompt_ids: Some(vec![3, 1, 4, 1, 5, 9, 2, 6, 5, 3]),
        answer: answer.into(),
        aliases: Vec::new(),
        scorer: Scorer::Prefix,
    };
    let suite = draftscope::bench::Suite {
        name: "ids".into(),
        path: d.path().join("ids.jsonl"),
        format: Format::World,
        items: vec![item("<0>")],
        skipped: Vec::new(),
    };
    let probe = run_suite((&lm).into(), &suite, &suite.items, &opts, d.path(), "probe", &|_| {}).unwrap();
    let t = Trace::load(&d.path().join(&probe[0].trace)).unwrap();
    let p0 = t.prompt_ids.len();
    let mut canvas = t.final_canvas.clone();
    canvas[p0..].fill(511);
    let mut gold = None;
    'find: for b in &t.blocks {
        for s in &b.steps {
            canvas[b.start..b.start + s.before.len()].copy_from_slice(&s.before);
            for e in &s.edits {
                let head = &canvas[p0..=e.pos];
                if !head.contains(&511) && !head.contains(&508) {
                    gold = Some((head.iter().map(|i| format!("<{i}>")).collect::<String>(), e.clone()));
                    break 'find;
                }
            }
        }
    }
    let (gold, edit) = gold.expect("the random fixture edits a fully written prefix");
    let out = run_suite((&lm).into(), &suite, &[item(&gold)], &opts, d.path(), "t", &|_| {}).unwrap();
    let t2 = Trace::load(&d.path().join(&out[0].trace)).unwrap();
    let f = draftscope::bench::item_findings(&out[0], &t2).unwrap();
    assert!(f.harmful.iter().any(|h| h.pos == edit.pos && h.from == edit.from && h.to == edit.to), "{f:?}");
    assert!(out[0].harmful_edits >= 1);
    assert!(f.first_right.is_some());
    let final_text: String = t2.output.iter().take_while(|&&i| i != 508).map(|i| format!("<{i}>")).collect();
    assert_eq!(out[0].over_corrected, !final_text.starts_with(&gold));
    assert_eq!(out[0].correct, final_text.starts_with(&gold));
}
