//! Quantized models against their f32 originals: quantize → load → forward/decode, on the
//! fixture, the embedded model and a synth model whose widths take k-quants.
//! Run with `--nocapture` to see the agreement, logit error and identical-trace share.
//!
//! The floors are what candle's kernels reach today, not the goals (q8_0 ≥ 99%,
//! q4_k ≥ 95%). The embedded model meets them (its widths, 128, take no k-quant, so its q4_k
//! file is q8_0 throughout). Each model is also run in bf16 and printed as a control: what an
//! 8-bit rounding of the same model agrees with f32, whatever the format's kernels. The fixture and the synth model are random-weight MoEs whose
//! routers sit near ties: the ~1% error of a q8 matmul (weights *and* activations are
//! quantized to 8 bits by ggml's kernels) re-routes 5–15% of tokens in the first MoE layer,
//! and a re-routed token's logits move by several units.

mod common;

use std::ops::ControlFlow;
use std::path::Path;

use draftscope::decode::{AttentionMode, DecodeParams, Decoder, Mode};
use draftscope::model::{Collect, DeviceKind, DtypeKind, LoadedModel, MaskKind};
use draftscope::model::{quant::QuantFormat, quantize::quantize_dir};
use rand::{Rng, SeedableRng};

fn load(dir: &Path) -> LoadedModel {
    LoadedModel::load_dir("m", dir, DeviceKind::Cpu, DtypeKind::F32).expect("model loads")
}

fn quantized(src: &Path, f: QuantFormat, tmp: &Path) -> LoadedModel {
    let out = tmp.join(f.name());
    quantize_dir(src, f, &out).expect("quantize");
    load(&out)
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

/// Share of Q-mode decodes (16 prompts, 32 tokens) whose output ids equal the f32 ones.
fn identical_traces(a: &LoadedModel, b: &LoadedModel) -> f64 {
    let cfg = &a.model.cfg;
    let prompts = windows(cfg.vocab_size, cfg.mask_token_id, cfg.eos_token_id, 16);
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

fn check(name: &str, dir: &Path, min_q8: f64, min_q4: f64, min_q4_moe: f64) {
    let tmp = tempfile::tempdir().unwrap();
    let base = load(dir);
    // The control: the same weights computed in bf16 (the dtype the hub ships), 8 bits of
    // mantissa against q8_0's 8-bit integers. On a random-weight MoE it bounds what any
    // 8-bit format can agree with f32, whatever the kernels.
    let bf16 = LoadedModel::load_dir("m", dir, DeviceKind::Cpu, DtypeKind::Bf16).expect("bf16 loads");
    let (agree, err, mean) = agreement(&base, &bf16);
    println!(
        "{name} bf16 (control): argmax agreement {:.2}%, |logit error| max {err:.3} mean {mean:.4}, identical decodes {:.0}%",
        100.0 * agree,
        100.0 * identical_traces(&base, &bf16)
    );
    for (f, min) in
        [(QuantFormat::Q8_0, min_q8), (QuantFormat::Q4K, min_q4), (QuantFormat::Q4KMoe, min_q4_moe)]
    {
        let q = quantized(dir, f, tmp.path());
        let (agree, err, mean) = agreement(&base, &q);
        let traces = identical_traces(&base, &q);
        println!(
            "{name} {}: argmax agreement {:.2}%, |logit error| max {err:.3} mean {mean:.4}, identical decodes {:.0}%",
            f.name(),
            100.0 * agree,
            100.0 * traces
        );
        assert!(agree >= min, "{name} {}: argmax agreement {agree} < {min}", f.name());
    }
}

#[test]
fn fixture_quantized_agrees_with_f32() {
    check("fixture", &common::fixture_dir(), 0.85, 0.85, 0.85);
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
