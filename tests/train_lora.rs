//! LoRA runs: gradients reach the adapters and never the base, the self objective's pass 1
//! leaves no trace in the graph, adapters are saved in the PEFT layout, resume is exact, and
//! the CLI launches, resumes and merges.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use draftscope::model::lora::DEFAULT_TARGETS;
use draftscope::model::lora::{self, AdapterConfig};
use draftscope::model::{DeviceKind, DtypeKind, LoadedModel};
use draftscope::train::objective::{self, Kind, corrupt, loss};
use draftscope::train::{Objective, Outcome, RunConfig, RunKind, Trainer, testutil};
use rand::SeedableRng;

struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        testutil::write_base(&tmp.path().join("base"), 7).unwrap();
        testutil::write_corpus(&tmp.path().join("corpus.jsonl"), 60).unwrap();
        Self { tmp }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.tmp.path().join(p)
    }

    fn config(&self, objective: Objective, steps: usize) -> RunConfig {
        let base = self.path("base").display().to_string();
        let targets: Vec<String> = DEFAULT_TARGETS.map(String::from).to_vec();
        let adapter = AdapterConfig::new(4, 8.0, 0.0, &targets, false, &base);
        let run = RunKind::Lora { base: Some(base), adapter };
        let mut rc = testutil::run_config(
            run,
            objective,
            &self.path("corpus.jsonl"),
            &self.path("base/tokenizer.json"),
            steps,
        );
        rc.lr = 5e-3;
        rc
    }

    fn trainer(&self, name: &str, objective: Objective, steps: usize) -> Trainer {
        let mut t = Trainer::create(&self.path(name), self.config(objective, steps)).unwrap();
        t.quiet = true;
        t
    }
}

fn grad_sum(store: &candle_core::backprop::GradStore, t: &candle_core::Tensor) -> Option<f32> {
    store.get(t).map(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
}

#[test]
fn every_lora_tensor_gets_a_gradient_and_base_weights_none() {
    let fx = Fixture::new();
    let mut t = fx.trainer("run", Objective::Random, 10);
    // After one update B ≠ 0, so A's gradient is non-zero too (at init B = 0 makes it zero).
    t.step().unwrap();
    let batch = t.loader.batch(0, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let noisy = corrupt(&batch, &t.rc.noise, 0.2, &t.specials, &mut rng);
    let store = loss(&t.model, &noisy, &t.rc.noise).unwrap().loss.backward().unwrap();
    assert!(!t.saved.is_empty());
    for (k, var) in &t.saved {
        let s = grad_sum(&store, var.as_tensor()).unwrap_or_else(|| panic!("{k}: no gradient"));
        assert!(s > 0.0, "{k}: zero gradient");
    }
    let mut model = t.model.clone();
    assert!(grad_sum(&store, &model.word_embeddings).is_none());
    for (path, lin) in model.linears_mut() {
        assert!(grad_sum(&store, &lin.weight).is_none(), "{path}: frozen weight got a gradient");
    }
    for layer in &model.layers {
        assert!(grad_sum(&store, &layer.input_layernorm.weight).is_none());
    }
}

#[test]
fn adapters_target_attention_dense_and_shared_mlps_but_not_routed_experts() {
    let fx = Fixture::new();
    let t = fx.trainer("run", Objective::Random, 1);
    let keys: Vec<&String> = t.saved.keys().collect();
    assert!(keys.iter().all(|k| k.starts_with("base_model.model.model.layers.") && !k.contains(".experts.")));
    for k in [
        "base_model.model.model.layers.0.attention.query_key_value.lora_A.weight",
        "base_model.model.model.layers.0.attention.dense.lora_B.weight",
        "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight",
        "base_model.model.model.layers.1.mlp.shared_experts.down_proj.lora_B.weight",
    ] {
        assert!(t.saved.contains_key(k), "missing {k}");
    }
    // 2 layers × (qkv, dense, 3 MLP or 3 shared) × (A, B).
    assert_eq!(t.saved.len(), 2 * 5 * 2);
}

#[test]
fn self_objective_pass_one_leaves_no_gradient_trace() {
    let fx = Fixture::new();
    let mut t = fx.trainer("run", Objective::SelfDraft, 10);
    t.step().unwrap();
    let batch = t.loader.batch(4, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let noisy = objective::make_input(&t.model, &batch, &t.rc.noise, &t.specials, &mut rng).unwrap();
    let drafts = noisy.kind.iter().filter(|k| **k == Kind::Draft).count();
    assert!(drafts > 0, "pass 1 drafted nothing");
    let wrong =
        (0..noisy.input.len()).filter(|&i| noisy.kind[i] == Kind::Draft && noisy.input[i] != noisy.target[i]);
    assert!(wrong.count() > 0, "expected some wrong drafts from a barely trained model");
    // Pass 2 after pass 1 gives exactly the gradients of pass 2 alone on the same input.
    let g1 = loss(&t.model, &noisy, &t.rc.noise).unwrap().loss.backward().unwrap();
    let fresh = noisy.clone();
    let g2 = loss(&t.model, &fresh, &t.rc.noise).unwrap().loss.backward().unwrap();
    for (k, var) in &t.saved {
        let a = g1.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = g2.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b, "{k}");
    }
    // And the pass-2 input is plain host data: no graph can hang off it.
    let ids =
        candle_core::Tensor::from_vec(noisy.input.clone(), (noisy.b, noisy.n), &candle_core::Device::Cpu)
            .unwrap();
    assert!(!ids.track_op());
}

/// Masked positions of each block of each row of a corrupted batch.
fn masks_per_block(noisy: &objective::Noisy, kinds: &[Kind], bl: usize) -> Vec<usize> {
    (0..noisy.b)
        .flat_map(|r| (0..noisy.n).step_by(bl).map(move |s| (r, s)))
        .map(|(r, s)| (s..(s + bl).min(noisy.n)).filter(|&j| kinds[r * noisy.n + j] == Kind::Masked).count())
        .collect()
}

#[test]
fn decode_drafts_commit_like_the_decoder_one_fallback_per_block_when_nothing_clears() {
    let fx = Fixture::new();
    let mut t = fx.trainer("run", Objective::SelfDraft, 10);
    t.rc.noise.draft_mode = objective::DraftMode::Decode;
    t.rc.noise.draft_threshold = 1.0; // nothing clears it: only the fallback commits
    t.rc.noise.draft_steps = 1;
    let batch = t.loader.batch(0, 4);
    let draft = |cfg: &draftscope::train::NoiseConfig| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        objective::make_input(&t.model, &batch, cfg, &t.specials, &mut rng).unwrap()
    };
    let one = draft(&t.rc.noise);
    let mut random_only = t.rc.noise;
    random_only.objective = Objective::Random;
    random_only.random_frac = random_only.random_mix;
    let bl = t.rc.noise.block_length;
    let before = masks_per_block(&one, &draft(&random_only).kind, bl);
    let after = masks_per_block(&one, &one.kind, bl);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(*a, b.saturating_sub(1), "one fallback commit per block with masks");
    }
    // Enough steps fill every mask, each step committing at least one per block.
    t.rc.noise.draft_steps = bl;
    let all = draft(&t.rc.noise);
    assert!(all.kind.iter().all(|k| *k != Kind::Masked), "every mask drafted after {bl} steps");
    assert!(all.kind.contains(&Kind::Draft));
}

#[test]
fn decode_drafts_at_a_low_threshold_commit_every_confident_mask_in_one_step() {
    let fx = Fixture::new();
    let mut t = fx.trainer("run", Objective::SelfDraft, 10);
    t.rc.noise.draft_mode = objective::DraftMode::Decode;
    t.rc.noise.draft_threshold = 0.0; // every mask clears it
    let batch = t.loader.batch(0, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let noisy = objective::make_input(&t.model, &batch, &t.rc.noise, &t.specials, &mut rng).unwrap();
    assert!(noisy.kind.iter().all(|k| *k != Kind::Masked));
}

fn adapter_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("adapter/adapter_model.safetensors")).unwrap()
}

#[test]
fn resume_after_n_steps_matches_two_n_straight_steps_bit_for_bit() {
    for objective in [Objective::Random, Objective::SelfDraft] {
        let fx = Fixture::new();
        let never = AtomicBool::new(false);
        let mut straight = fx.trainer("a", objective, 6);
        assert_eq!(straight.run(&never, None).unwrap(), Outcome::Finished);
        let mut first = fx.trainer("b", objective, 6);
        assert_eq!(first.run(&never, Some(3)).unwrap(), Outcome::Stopped);
        drop(first);
        let mut second = Trainer::resume(&fx.path("b"), &Default::default()).unwrap();
        second.quiet = true;
        assert_eq!(second.state.step, 3);
        assert_eq!(second.run(&never, None).unwrap(), Outcome::Finished);
        assert!(
            adapter_bytes(&fx.path("a")) == adapter_bytes(&fx.path("b")),
            "{objective:?}: resumed adapter differs"
        );
        let lines = std::fs::read_to_string(fx.path("b/metrics.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 6);
    }
}

#[test]
fn saved_adapter_has_the_peft_layout_and_loads_back() {
    let fx = Fixture::new();
    let never = AtomicBool::new(false);
    let mut t = fx.trainer("run", Objective::Random, 3);
    t.run(&never, None).unwrap();
    let dir = fx.path("run/adapter");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["lora_alpha"], 8.0);
    assert_eq!(cfg["base_model_name_or_path"], fx.path("base").display().to_string());
    assert!(cfg["target_modules"].as_array().unwrap().iter().any(|t| t == "query_key_value"));
    let tensors =
        candle_core::safetensors::load(dir.join("adapter_model.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    assert!(tensors.keys().all(|k| k.starts_with("base_model.model.")
        && (k.ends_with(".lora_A.weight") || k.ends_with(".lora_B.weight"))));
    let a = &tensors["base_model.model.model.layers.0.attention.query_key_value.lora_A.weight"];
    assert_eq!(a.dims(), &[4, 32]);
    let mut lm = LoadedModel::load_dir("base", &fx.path("base"), DeviceKind::Cpu, DtypeKind::F32).unwrap();
    lora::load_adapter(&mut lm.model, &dir).unwrap();
    // Checkpoints hold the same layout plus optimizer state.
    let ck = fx.path("run/checkpoints/step-3");
    assert!(ck.join("adapter/adapter_config.json").exists());
    assert!(ck.join("optimizer.safetensors").exists());
    assert!(ck.join("state.json").exists());
    let run = run_json(&fx.path("run"));
    assert_eq!(run["status"], "finished");
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_draftscope"))
}

#[test]
fn cli_trains_extends_on_resume_and_merges() {
    let fx = Fixture::new();
    let run = fx.path("run");
    let out = bin()
        .args(["train", "--objective", "self", "--base"])
        .arg(fx.path("base"))
        .arg("--data")
        .arg(fx.path("corpus.jsonl"))
        .args([
            "--steps",
            "3",
            "--seq-len",
            "32",
            "--block-length",
            "8",
            "--batch-size",
            "2",
            "--rank",
            "2",
            "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Not a terminal: one JSON line per step on stdout.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let out = bin().args(["train", "--steps", "5", "--resume"]).arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for f in ["loss_m2t", "loss_t2t", "lr", "grad_norm", "tokens_per_s", "elapsed_s"] {
        assert!(first.get(f).is_some(), "metrics line lacks {f}");
    }
    let merged = fx.path("merged");
    let out = bin()
        .args(["merge", "--adapter"])
        .arg(run.join("adapter"))
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The merged model equals base + adapter.
    let ids: Vec<u32> = vec![3, 4, 5, 6, 1, 1, 1, 1];
    let mut with = LoadedModel::load_dir("b", &fx.path("base"), DeviceKind::Cpu, DtypeKind::F32).unwrap();
    lora::load_adapter(&mut with.model, &run.join("adapter")).unwrap();
    let m = LoadedModel::load_dir("m", &merged, DeviceKind::Cpu, DtypeKind::F32).unwrap();
    let mk = draftscope::model::MaskKind::BlockCausal { block_length: 8 };
    let c = draftscope::model::Collect::default();
    let a = with.model.forward_window(&ids, mk, &c).unwrap().logits.unwrap();
    let b = m.model.forward_window(&ids, mk, &c).unwrap().logits.unwrap();
    let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-4, "merged model differs by {diff}");
}

/// Starts a (practically endless) random-objective run in `fx.path("run")` and returns once it
/// has logged `steps` steps. The caller signals and waits for it.
#[allow(clippy::zombie_processes)]
fn spawn_long_run(fx: &Fixture, extra: &[&str], steps: usize) -> std::process::Child {
    let run = fx.path("run");
    let child = bin()
        .args(["train", "--objective", "random", "--base"])
        .arg(fx.path("base"))
        .arg("--data")
        .arg(fx.path("corpus.jsonl"))
        .args(["--steps", "100000", "--seq-len", "32", "--block-length", "8", "--batch-size", "2"])
        .args(extra)
        .arg("--out")
        .arg(&run)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let n = std::fs::read_to_string(run.join("metrics.jsonl")).map(|s| s.lines().count()).unwrap_or(0);
        if n >= steps || t0.elapsed().as_secs() > 60 {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn sigterm_checkpoints_marks_cancelled_and_exits_zero() {
    let fx = Fixture::new();
    let run = fx.path("run");
    let mut child = spawn_long_run(&fx, &[], 3);
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rf = run_json(&run);
    assert_eq!(rf["status"], "cancelled");
    let step = rf["step"].as_u64().unwrap();
    assert!(run.join(format!("checkpoints/step-{step}/state.json")).exists());
}

#[test]
fn eval_every_records_benchmark_results_in_the_run_and_the_results_store() {
    let fx = Fixture::new();
    let suite = fx.path("mini.jsonl");
    std::fs::write(
        &suite,
        "{\"id\":\"f1\",\"task\":\"facts\",\"prompt\":\"capital of Arden is\",\"answer\":\"Belo\",\"aliases\":[]}\n",
    )
    .unwrap();
    let run = fx.path("run");
    let out = bin()
        .env("DRAFTSCOPE_SESSIONS", fx.path("sessions"))
        .args(["train", "--objective", "random", "--base"])
        .arg(fx.path("base"))
        .arg("--data")
        .arg(fx.path("corpus.jsonl"))
        .args([
            "--steps",
            "4",
            "--seq-len",
            "32",
            "--block-length",
            "8",
            "--batch-size",
            "2",
            "--eval-every",
            "2",
        ])
        .arg("--eval-suites")
        .arg(&suite)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rf = run_json(&run);
    let evals = rf["evals"].as_array().unwrap();
    assert_eq!(evals.iter().map(|e| e["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![2, 4]);
    assert_eq!(evals[0]["n"], 1);
    let results = std::fs::read_to_string(fx.path("sessions/results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 2);
    assert!(results.contains("checkpoints/step-2/adapter"));
}

#[test]
fn after_kill_9_resume_continues_from_the_last_complete_checkpoint() {
    let fx = Fixture::new();
    let run = fx.path("run");
    let mut child = spawn_long_run(&fx, &["--checkpoint-every", "2"], 5);
    child.kill().unwrap(); // SIGKILL: no chance to checkpoint or update run.json
    child.wait().unwrap();
    let last = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("step-")?.parse::<u64>().ok())
        .max()
        .expect("a checkpoint was written before the kill");
    let out = bin()
        .args(["train", "--steps"])
        .arg((last + 2).to_string())
        .arg("--resume")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rf = run_json(&run);
    assert_eq!(rf["status"], "finished");
    assert_eq!(rf["step"].as_u64().unwrap(), last + 2);
    assert!(run.join("adapter/adapter_model.safetensors").exists());
}

/// A run directory's `run.json`, parsed.
fn run_json(run: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_run_from_its_config_file_equals_the_run_from_flags_and_given_flags_override_the_file() {
    let fx = Fixture::new();
    let flags = |cmd: &mut std::process::Command| {
        cmd.args(["train", "--objective", "random", "--base"]).arg(fx.path("base")).arg("--data");
        cmd.arg(fx.path("corpus.jsonl"));
        cmd.args([
            "--steps",
            "2",
            "--seq-len",
            "32",
            "--block-length",
            "8",
            "--batch-size",
            "2",
            "--rank",
            "2",
        ]);
    };
    let (a, b, c) = (fx.path("a"), fx.path("b"), fx.path("c"));
    let mut cmd = bin();
    flags(&mut cmd);
    let out = cmd.arg("--out").arg(&a).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The config of run a, as a file.
    let file = fx.path("run-config.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&run_json(&a)["config"]).unwrap()).unwrap();
    let out = bin().args(["train", "--config"]).arg(&file).arg("--out").arg(&b).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let without_pid = |run: &Path| {
        let mut v = run_json(run);
        v.as_object_mut().unwrap().remove("pid");
        v
    };
    assert_eq!(without_pid(&a), without_pid(&b));
    assert_eq!(adapter_bytes(&a), adapter_bytes(&b));
    // Flags given with --config set their fields; the rest comes from the file.
    let out = bin()
        .args(["train", "--config"])
        .arg(&file)
        .args(["--steps", "1", "--rank", "3", "--eval-every", "7", "--out"])
        .arg(&c)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut want = run_json(&a)["config"].clone();
    want["steps"] = 1.into();
    want["run"]["adapter"]["r"] = 3.into();
    want["eval_every"] = 7.into();
    assert_eq!(run_json(&c)["config"], want);
}
