//! Pretraining: gradients reach every trainable tensor through composed ops, the loss falls,
//! and the result is a model directory the loader reads.

use std::sync::atomic::AtomicBool;

use candle_core::Device;
use draftscope::model::weights::InitWeights;
use draftscope::model::{DeviceKind, DtypeKind, Llada2, LoadedModel};
use draftscope::train::data::Specials;
use draftscope::train::objective::{corrupt, loss};
use draftscope::train::{Objective, Outcome, RunKind, Trainer, testutil};
use rand::SeedableRng;

fn random_batch(vocab: u32, b: usize, n: usize, seed: u64) -> Vec<Vec<u32>> {
    use rand::Rng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..b).map(|_| (0..n).map(|_| rng.random_range(2..vocab)).collect()).collect()
}

#[test]
fn pretraining_gives_every_trainable_tensor_a_nonzero_gradient() {
    let cfg = testutil::tiny_config(25);
    let iw = InitWeights::new(3, 0.1, &Device::Cpu);
    let mut model = Llada2::new(&cfg, &iw).unwrap();
    for (_, lin) in model.linears_mut() {
        lin.trainable = true;
    }
    model.fused = false;
    let vars = iw.into_vars();
    let sp = Specials { eos: 0, mask: 1, vocab_size: 25 };
    let nc = testutil::noise(Objective::Random);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let noisy = corrupt(&random_batch(25, 4, 32, 1), &nc, nc.random_frac, &sp, &mut rng);
    let out = loss(&model, &noisy, &nc).unwrap();
    let store = out.loss.backward().unwrap();
    let mut checked = 0;
    for (name, var) in &vars {
        if name.ends_with("expert_bias") {
            // Selection only (balanced by the bias-update rule, not by gradients).
            assert!(store.get(var.as_tensor()).is_none(), "{name} got a gradient");
            continue;
        }
        let g = store.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
        let s = g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(s > 0.0 && s.is_finite(), "{name}: gradient sum {s}");
        checked += 1;
    }
    // embeddings, lm_head, final norm + per layer: 2 norms, qkv, dense, q/k norms, MLP or
    // router + 4 experts × 3 + shared × 3.
    assert_eq!(checked, 3 + (6 + 3) + (6 + 1 + 12 + 3));
}

#[test]
fn pretraining_loss_falls_and_the_model_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let vocab = testutil::write_tokenizer(&tmp.path().join("tok")).unwrap();
    let corpus = tmp.path().join("corpus.jsonl");
    testutil::write_corpus(&corpus, 200).unwrap();
    let run = RunKind::Pretrain {
        model: testutil::tiny_config(vocab),
        init_std: 0.05,
        bias_update_rate: 1e-3,
        init_from: None,
    };
    let rc =
        testutil::run_config(run, Objective::Random, &corpus, &tmp.path().join("tok/tokenizer.json"), 60);
    let dir = tmp.path().join("run");
    let mut t = Trainer::create(&dir, rc).unwrap();
    t.quiet = true;
    // A fixed noisy batch, scored before and after training.
    let batch = t.loader.batch(0, 8);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let fixed = corrupt(&batch, &t.rc.noise, t.rc.noise.random_frac, &t.specials, &mut rng);
    let eval = |t: &Trainer| loss(&t.model, &fixed, &t.rc.noise).unwrap().loss.to_scalar::<f32>().unwrap();
    let before = eval(&t);
    for _ in 0..60 {
        t.step().unwrap();
    }
    let after = eval(&t);
    assert!(after < 0.8 * before, "loss did not fall: {before:.3} -> {after:.3}");
    t.write_final().unwrap();
    let lm = LoadedModel::load_dir("pre", &dir.join("model"), DeviceKind::Cpu, DtypeKind::F32).unwrap();
    assert!(lm.codec.has_tokenizer());
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "llada2_moe");
    assert_eq!(cfg["architectures"][0], "LLaDA2MoeModelLM");
    assert_eq!(cfg["mask_token_id"], 1);
}

/// A tiny pretraining run of `steps` steps on a 50-document corpus, in a fresh temp dir.
fn tiny_pretrain_run(steps: usize) -> (tempfile::TempDir, draftscope::train::RunConfig) {
    let tmp = tempfile::tempdir().unwrap();
    let vocab = testutil::write_tokenizer(&tmp.path().join("tok")).unwrap();
    let corpus = tmp.path().join("corpus.jsonl");
    testutil::write_corpus(&corpus, 50).unwrap();
    let tok = tmp.path().join("tok/tokenizer.json");
    let run = RunKind::Pretrain {
        model: testutil::tiny_config(vocab),
        init_std: 0.05,
        bias_update_rate: 1e-3,
        init_from: None,
    };
    let rc = testutil::run_config(run, Objective::Random, &corpus, &tok, steps);
    (tmp, rc)
}

#[test]
fn pretraining_resumes_exactly() {
    let (tmp, rc) = tiny_pretrain_run(6);
    let never = AtomicBool::new(false);
    let mut straight = Trainer::create(&tmp.path().join("a"), rc.clone()).unwrap();
    straight.quiet = true;
    assert_eq!(straight.run(&never, None).unwrap(), Outcome::Finished);
    let mut first = Trainer::create(&tmp.path().join("b"), rc).unwrap();
    first.quiet = true;
    assert_eq!(first.run(&never, Some(3)).unwrap(), Outcome::Stopped);
    drop(first);
    let mut second = Trainer::resume(&tmp.path().join("b"), &Default::default()).unwrap();
    second.quiet = true;
    assert_eq!(second.state.step, 3);
    assert_eq!(second.run(&never, None).unwrap(), Outcome::Finished);
    let a = std::fs::read(tmp.path().join("a/model/model.safetensors")).unwrap();
    let b = std::fs::read(tmp.path().join("b/model/model.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from a straight run");
}

#[test]
fn data_parallel_workers_compute_the_same_steps() {
    let (tmp, rc) = tiny_pretrain_run(4);
    let mut losses = Vec::new();
    let mut weights = Vec::new();
    for (dir, workers) in [("one", 1), ("three", 3)] {
        let mut t = Trainer::create(&tmp.path().join(dir), rc.clone()).unwrap();
        t.quiet = true;
        t.workers = workers;
        let mut l = Vec::new();
        for _ in 0..4 {
            l.push(t.step().unwrap().loss);
        }
        losses.push(l);
        let all: Vec<f32> = t
            .saved
            .values()
            .flat_map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        weights.push(all);
    }
    for (a, b) in losses[0].iter().zip(&losses[1]) {
        assert!((a - b).abs() < 1e-5, "loss {a} (1 worker) vs {b} (3 workers)");
    }
    let diff = weights[0].iter().zip(&weights[1]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // AdamW divides by sqrt(v): where a gradient is near zero, float-order differences of the
    // split sums move a weight by up to ~lr·1e-3 (lr = 1e-2 here); a wrong split moves it by ~lr.
    assert!(diff < 5e-5, "weights differ by {diff}");
    assert!(losses[0][0] != losses[0][3], "the steps must train");
}
