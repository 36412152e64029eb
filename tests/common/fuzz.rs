//! Seeded mutation fuzzing of every loader that reads a file a user may hand us (traces, model
//! configs, safetensors and GGUF weights, benchmark suites, results stores, run files,
//! adapter configs). Runs on stable Rust: a short run is a test (`tests/fuzz_loaders.rs`), a long one
//! is `cargo run --release --example fuzz -- --minutes N`. A loader may refuse its input; it
//! must never panic. Every failure prints the target, seed and iteration to replay it.
#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// One loader under test: a seed file and what to do with a mutated copy of it.
pub struct Target {
    pub name: &'static str,
    pub seed_bytes: Vec<u8>,
    /// JSON seeds get structure-aware mutations too.
    pub json: bool,
    /// Returns whether the loader accepted the input (then its callers' code ran on it).
    pub exercise: fn(&[u8], &Path) -> bool,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The loaders, each with a real file of its format as the seed.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "trace",
            seed_bytes: read("sessions/over-correction.json"),
            json: true,
            exercise: trace,
        },
        Target {
            name: "model-config",
            seed_bytes: read("tests/fixtures/llada2-tiny/config.json"),
            json: true,
            exercise: model_config,
        },
        Target { name: "safetensors", seed_bytes: safetensors_head(), json: false, exercise: safetensors },
        Target { name: "bench-suite", seed_bytes: suite_seed(), json: false, exercise: bench_suite },
        Target { name: "results-store", seed_bytes: results_seed(), json: false, exercise: results_store },
        Target { name: "run-file", seed_bytes: run_file_seed(), json: true, exercise: run_file },
        Target { name: "adapter-config", seed_bytes: adapter_seed(), json: true, exercise: adapter_config },
        Target { name: "gguf", seed_bytes: gguf_seed(), json: false, exercise: gguf },
    ]
}

// ---- Seeds ----

/// The fixture model's safetensors cut to its header and first tensors (a mutated copy is
/// loaded as a whole model directory, so it stays small).
fn safetensors_head() -> Vec<u8> {
    read("tests/fixtures/llada2-tiny/model.safetensors")
}

fn suite_seed() -> Vec<u8> {
    let text = String::from_utf8(read("assets/benchmarks/arith.jsonl")).unwrap();
    text.lines().take(3).map(|l| format!("{l}\n")).collect::<String>().into_bytes()
}

fn results_seed() -> Vec<u8> {
    let text = String::from_utf8(read("sessions/results/results.jsonl")).unwrap();
    text.lines().take(2).map(|l| format!("{l}\n")).collect::<String>().into_bytes()
}

fn run_file_seed() -> Vec<u8> {
    let dir = root().join("sessions/results/runs");
    let run = std::fs::read_dir(&dir)
        .ok()
        .and_then(|mut rd| rd.find_map(|e| e.ok().map(|e| e.path().join("run.json")).filter(|p| p.exists())));
    match run {
        Some(p) => std::fs::read(p).unwrap(),
        None => read("assets/pretrain-run/run.json"),
    }
}

/// The fixture model quantized to Q8_0 (`draftscope quantize`'s output), made once per process.
fn gguf_seed() -> Vec<u8> {
    static SEED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SEED.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        draftscope::model::quantize::quantize_dir(
            &root().join("tests/fixtures/llada2-tiny"),
            draftscope::model::quant::QuantFormat::Q8_0,
            d.path(),
        )
        .unwrap();
        std::fs::read(d.path().join("model.gguf")).unwrap()
    })
    .clone()
}

fn adapter_seed() -> Vec<u8> {
    let cfg = draftscope::model::lora::AdapterConfig::new(8, 16.0, 0.0, &["dense".to_string()], false, "m");
    serde_json::to_vec_pretty(&cfg).unwrap()
}

// ---- What each loader's callers do with a file that loads ----

fn trace(bytes: &[u8], _: &Path) -> bool {
    use draftscope::tui::app::{Action, App, DecodeAction, Doc};
    let Ok(t) = draftscope::decode::Trace::from_slice(bytes) else { return false };
    let _ = t.summary();
    for (bi, b) in t.blocks.iter().enumerate() {
        for si in 0..b.steps.len() {
            for off in 0..t.params.block_length.min(64) {
                let _ = t.why(bi, si, off);
            }
        }
    }
    let detok = |ids: &[u32]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
    let _ = draftscope::bench::classify::analyse_trace(&t, &detok, &|s| s.contains('7'));
    let mut app = App::new(Default::default());
    let original: draftscope::decode::Trace =
        draftscope::decode::Trace::from_slice(&read("sessions/over-correction.json")).unwrap();
    app.open_doc(Doc::new(original, "seed".into(), None));
    app.open_doc(Doc::new(t, "mutated".into(), None));
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    for (i, a) in [
        Action::Decode(DecodeAction::NextStep),
        Action::Decode(DecodeAction::NextBlock),
        Action::Decode(DecodeAction::NextEdit),
        Action::Decode(DecodeAction::SelectNext),
        Action::Decode(DecodeAction::PrevStep),
    ]
    .into_iter()
    .enumerate()
    {
        app.decode.diff = i % 2 == 1;
        app.update(a);
        term.draw(|f| {
            draftscope::tui::panels::draw(f, &app);
        })
        .unwrap();
    }
    true
}

fn model_config(bytes: &[u8], _: &Path) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    let Ok(cfg) = draftscope::model::Config::from_json_str(text) else { return false };
    let _ = cfg.parameter_estimate();
    let _ = (cfg.head_dim(), cfg.rope_dim(), cfg.shared_intermediate_size());
    true
}

/// Loads a model directory made of the fixture's config and `bytes` as its weights file.
fn load_weights(file: &str, bytes: &[u8], dir: &Path) -> bool {
    let fixture = root().join("tests/fixtures/llada2-tiny");
    std::fs::copy(fixture.join("config.json"), dir.join("config.json")).unwrap();
    std::fs::write(dir.join(file), bytes).unwrap();
    use draftscope::model::{DeviceKind, DtypeKind, LoadedModel};
    LoadedModel::load_dir("fuzz", dir, DeviceKind::Cpu, DtypeKind::F32).is_ok()
}

fn safetensors(bytes: &[u8], dir: &Path) -> bool {
    load_weights("model.safetensors", bytes, dir)
}

fn gguf(bytes: &[u8], dir: &Path) -> bool {
    load_weights("model.gguf", bytes, dir)
}

fn bench_suite(bytes: &[u8], dir: &Path) -> bool {
    let f = dir.join("s.jsonl");
    std::fs::write(&f, bytes).unwrap();
    let Ok(s) = draftscope::bench::suite::load(&f, draftscope::bench::suite::Format::Auto) else {
        return false;
    };
    for it in &s.items {
        let _ = it.scorer.score(&it.answer, &it.answer, &it.aliases);
    }
    true
}

fn results_store(bytes: &[u8], dir: &Path) -> bool {
    std::fs::write(dir.join("results.jsonl"), bytes).unwrap();
    let store = draftscope::bench::results::ResultsStore::open(dir);
    let Ok(l) = store.load() else { return false };
    let _ = draftscope::bench::results::list_runs(&l.records);
    let _ = draftscope::bench::results::compare(&l.records, None);
    for r in &l.records {
        let _ = draftscope::bench::cli::suite_table(&r.metrics);
        let _ = store.failing_items(r);
    }
    !l.records.is_empty()
}

fn run_file(bytes: &[u8], dir: &Path) -> bool {
    std::fs::write(dir.join("run.json"), bytes).unwrap();
    let Ok(rf) = draftscope::train::run::read_run_file(dir) else { return false };
    let _ = rf.config.schedule().lr(rf.step);
    true
}

fn adapter_config(bytes: &[u8], dir: &Path) -> bool {
    std::fs::write(dir.join("adapter_config.json"), bytes).unwrap();
    let Ok(c) = draftscope::model::lora::read_config(dir) else { return false };
    let _ = (c.scale(), c.targets("model.layers.0.attention.dense"));
    true
}

// ---- Mutations ----

const INTERESTING: [&str; 16] = [
    "0",
    "-1",
    "1",
    "2147483648",
    "18446744073709551615",
    "-9223372036854775808",
    "1e308",
    "-1e308",
    "0.5",
    "\"\"",
    "[]",
    "{}",
    "null",
    "true",
    "\"NaN\"",
    "[[[[[[[[]]]]]]]]",
];

fn interesting(rng: &mut ChaCha8Rng) -> Value {
    serde_json::from_str(INTERESTING[rng.random_range(0..INTERESTING.len())]).unwrap()
}

/// Every node of a JSON value, as a path of keys and indices.
fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    out.push(prefix.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(x, prefix, out, limit);
                prefix.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                prefix.push(Step::Key(k.clone()));
                paths(x, prefix, out, limit);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match s {
            Step::Key(k) => cur.get_mut(k)?,
            Step::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

fn mutate_json(seed: &Value, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut v = seed.clone();
    let mut all = Vec::new();
    paths(&v, &mut Vec::new(), &mut all, 200_000);
    for _ in 0..rng.random_range(1..=3) {
        let path = &all[rng.random_range(0..all.len())];
        let Some(node) = at(&mut v, path) else { continue };
        match rng.random_range(0..6) {
            0 => *node = interesting(rng),
            1 => {
                if let Value::Array(a) = node
                    && !a.is_empty()
                {
                    let n = rng.random_range(0..a.len());
                    a.truncate(n);
                }
            }
            2 => {
                if let Value::Array(a) = node
                    && let Some(x) = a.first().cloned()
                {
                    a.push(x);
                }
            }
            3 => {
                if let Value::Object(o) = node
                    && let Some(k) = o.keys().nth(rng.random_range(0..o.len().max(1))).cloned()
                {
                    o.remove(&k);
                }
            }
            4 => {
                if let Some(x) = node.as_f64() {
                    let y = [x * 2.0, x + 1.0, -x, x * 1e6][rng.random_range(0..4)];
                    *node = serde_json::Number::from_f64(y).map_or(Value::Null, Value::Number);
                }
            }
            _ => {
                if let Some(x) = node.as_u64() {
                    *node = Value::from(x.wrapping_add(rng.random_range(1..4)));
                }
            }
        }
    }
    serde_json::to_vec(&v).unwrap()
}

fn mutate_bytes(seed: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..6) {
            0 => b[i] ^= 1 << rng.random_range(0..8),
            1 => b[i] = [0u8, 0xff, b'"', b'{', b'9', b'-'][rng.random_range(0..6)],
            2 => b.truncate(i),
            3 => {
                let j = (i + rng.random_range(1..64)).min(b.len());
                b.drain(i..j);
            }
            4 => {
                let j = (i + rng.random_range(1..64)).min(b.len());
                let chunk = b[i..j].to_vec();
                b.splice(i..i, chunk);
            }
            _ => {
                // The safetensors header length and other little-endian sizes.
                let n: u64 = [0, 1, u64::MAX, 1 << 40, 7][rng.random_range(0..5)];
                let end = (i + 8).min(b.len());
                b[i..end].copy_from_slice(&n.to_le_bytes()[..end - i]);
            }
        }
    }
    b
}

/// One mutated input of `target` for (seed, iteration): the same pair always gives the same
/// bytes, so a failure replays.
pub fn input(target: &Target, seed: u64, iter: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(iter);
    if target.json && rng.random_bool(0.7) {
        let v: Value = serde_json::from_slice(&target.seed_bytes).unwrap();
        mutate_json(&v, &mut rng)
    } else {
        mutate_bytes(&target.seed_bytes, &mut rng)
    }
}

/// Runs `target` on one input: whether the loader accepted it, or the panic message.
pub fn run_one(target: &Target, bytes: &[u8]) -> Result<bool, String> {
    let dir = tempfile::tempdir().unwrap();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| (target.exercise)(bytes, dir.path())));
    r.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// Silences the default panic printout while fuzzing (each panic is reported once, with its
/// replay line, by the caller).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// A failure: what to replay and what happened.
#[derive(Debug)]
pub struct Crash {
    pub target: &'static str,
    pub seed: u64,
    pub iter: u64,
    pub message: String,
}

/// What a campaign did.
#[derive(Debug, Default)]
pub struct Report {
    pub runs: u64,
    /// Inputs each target's loader accepted (so the code behind it ran), by target name.
    pub accepted: std::collections::BTreeMap<&'static str, u64>,
    pub crashes: Vec<Crash>,
}

/// Runs `iters` inputs of every target (or until `deadline`).
pub fn campaign(seed: u64, iters: u64, deadline: Option<std::time::Instant>) -> Report {
    let targets = targets();
    let mut rep = Report::default();
    for iter in 0..iters {
        for t in &targets {
            if deadline.is_some_and(|d| std::time::Instant::now() > d) {
                return rep;
            }
            let bytes = input(t, seed, iter);
            rep.runs += 1;
            match run_one(t, &bytes) {
                Ok(ok) => *rep.accepted.entry(t.name).or_default() += u64::from(ok),
                Err(message) => rep.crashes.push(Crash { target: t.name, seed, iter, message }),
            }
        }
    }
    rep
}
