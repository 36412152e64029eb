//! Quantized models against their f32 originals: quantize → load → forward/decode, on the
//! fixture, the embedded model, a trained and a synth model whose widths take k-quants.
//! Run with `--nocapture` to see the agreement (with its 95% Wilson interval over the 1,024
//! rows), logit error and identical-trace share.
//!
//! The floors are what candle's kernels reach today, not the goals (q8_0 ≥ 99%,
//! q4_k ≥ 95%). The two trained models come closest: the embedded one meets them (its widths,
//! 128, take no k-quant: its q4_k file has q5_0 linears, as llama.cpp falls back); the briefly
//! trained `llada2-kquant` (real q4_k) meets q4_k's and misses q8_0's by 0.6 points, the
//! kernels' share (its q8_0 weights alone agree on 99.5%). Two controls per model:
//! - bf16: the same weights computed in bf16 (the dtype the hub ships), 8 bits of mantissa on
//!   every weight and activation;
//! - weights only: each format's stored weights dequantized and computed in f32, so the gap
//!   between it and the format is the kernels' (ggml quantizes activations to 8 bits too) and
//!   the gap between it and f32 is the weights'.
//!
//! The fixture and the synth model are random-weight MoEs whose routers sit near ties: a small
//! error anywhere before a MoE layer re-routes tokens, and a re-routed token's logits move by
//! several units; there even bf16 is below the goals.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use draftscope::decode::{AttentionMode, DecodeParams, Decoder, Mode};
use draftscope::model::quant::{QuantFormat, storage_type};
use draftscope::model::quantize::quantize_dir;
use draftscope::model::{Collect, DeviceKind, DtypeKind, LoadedModel, MaskKind};
use rand::{Rng, SeedableRng};

fn load(dir: &Path) -> LoadedModel {
    LoadedModel::load_dir("m", dir, DeviceKind::Cpu, DtypeKind::F32).expect("model loads")
}

fn quantized(src: &Path, f: QuantFormat, tmp: &Path) -> LoadedModel {
    let out = tmp.join(f.name());
    quantize_dir(src, f, &out).expect("quantize");
    load(&out)
}

/// `src` with every tensor rounded through its storage type in format `f` (quantized, then
/// dequantized), written as an f32 checkpoint: the format's weights without its kernels.
fn weights_only(src: &Path, f: QuantFormat, out: &Path) -> LoadedModel {
    use candle_core::quantized::{GgmlDType, QTensor};
    let cpu = candle_core::Device::Cpu;
    let ws =
        draftscope::model::weights::SafetensorsWeights::open_dir(src, &cpu, candle_core::DType::F32).unwrap();
    let mut tensors = std::collections::HashMap::new();
    for name in ws.tensor_names() {
        let t = ws.try_get(&name).unwrap();
        let ty = storage_type(&name, t.dims(), f);
        let t = if ty == GgmlDType::F32 {
            t
        } else {
            QTensor::quantize(&t, ty).unwrap().dequantize(&cpu).unwrap()
        };
        tensors.insert(name, t);
    }
    std::fs::create_dir_all(out).unwrap();
    candle_core::safetensors::save(&tensors, out.join("model.safetensors")).unwrap();
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        if src.join(file).exists() {
            std::fs::copy(src.join(file), out.join(file)).unwrap();
        }
    }
    load(out)
}

/// Windows like a decode sees them: a prompt, then a block half filled, half masked.
fn windows(vocab: usize, mask: u32, eos: u32, n: usize) -> Vec<Vec<u32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    (0..n)
        .map(|_| {
            (0..64)
                .map(|i| {
                    if i >= 32 && rng.random_bool(0.5) {
                        mask
                    } else {
                        loop {
                            let t = rng.random_range(0..vocab as u32);
                            if t != mask && t != eos {
                                break t;
                            }
                        }
                    }
                })
                .collect()
        })
        .collect()
}

/// (argmax agreement, max |logit error|, mean |logit error|) over every row of every window.
fn agreement(a: &LoadedModel, b: &LoadedModel) -> (f64, f32, f32) {
    let cfg = &a.model.cfg;
    let (mut same, mut total, mut err, mut mean) = (0usize, 0usize, 0f32, 0f32);
    for w in windows(cfg.vocab_size, cfg.mask_token_id, cfg.eos_token_id, 16) {
        let m_kind = MaskKind::GenerateBias { block_length: 32 };
        let f32 = |m: &LoadedModel| {
            let l = m.model.forward_window(&w, m_kind, &Collect::default()).unwrap().logits.unwrap();
            l.to_dtype(candle_core::DType::F32).unwrap()
        };
        let (la, lb) = (f32(a), f32(b));
        let d = (&la - &lb).unwrap().abs().unwrap().flatten_all().unwrap();
        err = err.max(d.max(0).unwrap().to_scalar::<f32>().unwrap());
        mean += d.mean(0).unwrap().to_scalar::<f32>().unwrap() / 16.0;
        let xa: Vec<u32> = la.argmax(2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let xb: Vec<u32> = lb.argmax(2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        same += xa.iter().zip(&xb).filter(|(x, y)| x == y).count();
        total += xa.len();
    }
    (same as f64 / total as f64, err, mean)
}

/// Share of Q-mode decodes (`n` prompts, 32 tokens) whose output ids equal the f32 ones.
fn identical_traces(a: &LoadedModel, b: &LoadedModel, n: usize) -> f64 {
    let cfg = &a.model.cfg;
    let prompts = windows(cfg.vocab_size, cfg.mask_token_id, cfg.eos_token_id, n);
    let mut same = 0;
    for p in &prompts {
        let mut params = DecodeParams::preset(Mode::Q, cfg.eos_token_id, cfg.mask_token_id);
        params.gen_length = 32;
        params.block_length = 32;
        let run = |m: &LoadedModel| {
            Decoder::new(&m.model, params.clone(), AttentionMode::BlockCausal)
                .unwrap()
                .run(&p[..16], &mut |_| ControlFlow::Continue(()))
                .unwrap()
                .final_canvas
        };
        same += (run(a) == run(b)) as usize;
    }
    same as f64 / prompts.len() as f64
}

/// Rows `agreement` compares: 16 windows of 64.
const ROWS: usize = 16 * 64;

fn line(name: &str, what: &str, (agree, err, mean): (f64, f32, f32), traces: Option<f64>) {
    let k = (agree * ROWS as f64).round() as usize;
    let [lo, hi] =
        draftscope::bench::stats::wilson(k, ROWS, draftscope::bench::stats::Z95).map(|x| 100.0 * x);
    let traces = traces.map(|t| format!(", identical decodes {:.0}%", 100.0 * t)).unwrap_or_default();
    println!(
        "{name} {what}: argmax agreement {:.2}% [{lo:.1}, {hi:.1}], |logit error| max {err:.3} mean {mean:.4}{traces}",
        100.0 * agree
    );
}

fn check(name: &str, dir: &Path, min_q8: f64, min_q4: f64, min_q4_moe: f64) {
    check_with(name, dir, [min_q8, min_q4, min_q4_moe], true, 16);
}

/// `check` with the weights-only controls optional (each writes an f32 copy of the model) and
/// `prompts` decodes per format.
fn check_with(name: &str, dir: &Path, floors: [f64; 3], weights_controls: bool, prompts: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let base = load(dir);
    {
        let bf16 = LoadedModel::load_dir("m", dir, DeviceKind::Cpu, DtypeKind::Bf16).expect("bf16 loads");
        line(name, "bf16 (control)", agreement(&base, &bf16), Some(identical_traces(&base, &bf16, prompts)));
    }
    for (f, min) in [QuantFormat::Q8_0, QuantFormat::Q4K, QuantFormat::Q4KMoe].into_iter().zip(floors) {
        if weights_controls {
            let w = weights_only(dir, f, &tmp.path().join(format!("{}-weights", f.name())));
            line(name, &format!("{} weights only (control)", f.name()), agreement(&base, &w), None);
        }
        let q = quantized(dir, f, tmp.path());
        let a = agreement(&base, &q);
        line(name, f.name(), a, Some(identical_traces(&base, &q, prompts)));
        assert!(a.0 >= min, "{name} {}: argmax agreement {} < {min}", f.name(), a.0);
    }
}

#[test]
fn fixture_quantized_agrees_with_f32() {
    check("fixture", &common::fixture_dir(), 0.82, 0.52, 0.75);
}

#[test]
fn embedded_quantized_agrees_with_f32() {
    check("embedded", &draftscope::model::source::embedded_model_dir(), 0.99, 0.95, 0.95);
}

#[test]
fn synth_tiny_quantized_agrees_with_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    draftscope::model::synth::write_dir(
        &dir,
        draftscope::model::synth::Like::Tiny,
        None,
        0,
        draftscope::model::synth::Output::Safetensors("F32"),
        &mut |_| {},
    )
    .unwrap();
    check("synth-tiny", &dir, 0.94, 0.80, 0.88);
}

/// A briefly trained model whose widths take k-quants (`tests/fixtures/llada2-kquant`): q4_k
/// here is q4_k in every linear. Floors are today's measurements less ~0.6–1.5 points, not the
/// goals: q8_0 measures 99.12% (its weights alone, 99.51%), q4_k 95.51%, q4_k_moe 98.73%.
#[test]
fn trained_kquant_model_quantized_agrees_with_f32() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llada2-kquant");
    let tmp = tempfile::tempdir().unwrap();
    let report = quantize_dir(&dir, QuantFormat::Q4K, &tmp.path().join("q4k")).unwrap();
    let kinds: Vec<_> = report.linears.keys().cloned().collect();
    assert_eq!(kinds, ["Q4K", "Q8_0"], "every linear but lm_head takes q4_k");
    assert_eq!(report.linears["Q8_0"], 1);
    check("kquant-trained", &dir, 0.985, 0.94, 0.975);
}

/// A model directory of your own (e.g. `draftscope synth --like llada2.1-mini --layers 2`), with
/// no floors: `QUANT_PARITY_MODEL=DIR cargo test --release --test quant_parity -- --ignored
/// --nocapture`. Quantized copies go to a temporary directory, removed after.
#[test]
#[ignore = "measurement on a model directory named by QUANT_PARITY_MODEL"]
fn model_dir_quantized_agrees_with_f32() {
    let dir = std::path::PathBuf::from(std::env::var("QUANT_PARITY_MODEL").expect("QUANT_PARITY_MODEL=DIR"));
    let prompts =
        std::env::var("QUANT_PARITY_PROMPTS").map_or(4, |p| p.parse().expect("QUANT_PARITY_PROMPTS"));
    check_with("model", &dir, [0.0; 3], std::env::var_os("QUANT_PARITY_WEIGHTS").is_some(), prompts);
}
