//! The forward pass against the official implementation's outputs on the tiny fixture model
//! (`tests/fixtures/llada2-tiny/forward.safetensors`).

mod common;

use std::collections::{BTreeSet, HashMap};

use candle_core::{DType, Device, Tensor};
use draftscope::model::{Collect, KvCache, MaskKind};

fn fixture_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(common::fixture_dir().join("forward.safetensors"), &Device::Cpu).unwrap()
}

fn ids(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap()
        .to_vec1::<i64>()
        .unwrap()
        .iter()
        .map(|&i| i as u32)
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

const B: usize = 8;

/// The fixture input under the generate() mask, collecting what a test asks for.
fn generate_mask_forward(
    f: &HashMap<String, Tensor>,
    collect: Collect,
) -> (draftscope::model::LoadedModel, draftscope::model::ForwardOutput) {
    let lm = common::fixture_model();
    let out = lm
        .model
        .forward_window(&ids(&f["input_ids"]), MaskKind::GenerateBias { block_length: B }, &collect)
        .unwrap();
    (lm, out)
}

fn logits(mask: MaskKind, input: &[u32]) -> Tensor {
    let lm = common::fixture_model();
    lm.model.forward_window(input, mask, &Collect::default()).unwrap().logits.unwrap()
}

#[test]
fn generate_mask_logits_match_official_within_1e3() {
    let f = fixture_tensors();
    let got = logits(MaskKind::GenerateBias { block_length: B }, &ids(&f["input_ids"]));
    let d = max_abs_diff(&got, &f["logits_generate_mask"]);
    assert!(d < 1e-3, "max |Δ| = {d}");
}

#[test]
fn hard_block_causal_logits_match_official_within_1e3() {
    let f = fixture_tensors();
    let got = logits(MaskKind::BlockCausal { block_length: B }, &ids(&f["input_ids"]));
    let d = max_abs_diff(&got, &f["logits_hard_block_causal"]);
    assert!(d < 1e-3, "max |Δ| = {d}");
}

#[test]
fn all_ones_mask_logits_match_official_within_1e3() {
    let f = fixture_tensors();
    let got = logits(MaskKind::Full, &ids(&f["input_ids"]));
    let d = max_abs_diff(&got, &f["logits_full_mask"]);
    assert!(d < 1e-3, "max |Δ| = {d}");
}

#[test]
fn perturbed_inputs_match_official_in_both_semantics() {
    let f = fixture_tensors();
    let input = ids(&f["input_ids_perturbed"]);
    let d1 = max_abs_diff(
        &logits(MaskKind::GenerateBias { block_length: B }, &input),
        &f["logits_generate_mask_perturbed"],
    );
    let d2 = max_abs_diff(
        &logits(MaskKind::BlockCausal { block_length: B }, &input),
        &f["logits_hard_block_causal_perturbed"],
    );
    assert!(d1 < 1e-3 && d2 < 1e-3, "{d1} {d2}");
}

#[test]
fn hidden_states_match_official_within_1e4() {
    let f = fixture_tensors();
    let (lm, out) = generate_mask_forward(&f, Collect { hidden_states: true, router: false });
    assert_eq!(out.hidden_states.len(), lm.model.cfg.num_hidden_layers + 1);
    let got = Tensor::stack(&out.hidden_states.iter().map(|h| h.squeeze(0).unwrap()).collect::<Vec<_>>(), 0)
        .unwrap();
    let d = max_abs_diff(&got, &f["hidden_states_generate_mask"]);
    assert!(d < 1e-4, "max |Δ| = {d}");
}

#[test]
fn router_logits_and_choices_match_official() {
    let f = fixture_tensors();
    let (_lm, out) = generate_mask_forward(&f, Collect { hidden_states: false, router: true });
    let want_logits = &f["router_logits_generate_mask"];
    let want_idx: Vec<Vec<Vec<i64>>> = f["router_topk_idx_generate_mask"].to_vec3().unwrap();
    assert_eq!(out.router.len(), want_idx.len());
    for (layer, (logits, chosen)) in out.router.iter().enumerate() {
        let d = max_abs_diff(logits, &want_logits.get(layer).unwrap());
        assert!(d < 1e-4, "router logits layer {layer}: {d}");
        for (tok, experts) in chosen.iter().enumerate() {
            let got: BTreeSet<usize> = experts.iter().copied().collect();
            let want: BTreeSet<usize> = want_idx[layer][tok].iter().map(|&e| e as usize).collect();
            assert_eq!(got, want, "layer {layer} token {tok}");
        }
    }
}

#[test]
fn block_causal_change_in_block_5_leaves_blocks_0_to_4_unchanged() {
    let f = fixture_tensors();
    let a = logits(MaskKind::BlockCausal { block_length: B }, &ids(&f["input_ids"]));
    let b = logits(MaskKind::BlockCausal { block_length: B }, &ids(&f["input_ids_perturbed"]));
    let d = max_abs_diff(&a.narrow(1, 0, 40).unwrap(), &b.narrow(1, 0, 40).unwrap());
    assert!(d < 1e-5, "prefix moved by {d}");
    let d5 = max_abs_diff(&a.narrow(1, 40, 8).unwrap(), &b.narrow(1, 40, 8).unwrap());
    assert!(d5 > 1.0, "block 5 should change, moved {d5}");
}

#[test]
fn kv_cached_block_step_equals_full_window_within_1e4() {
    let f = fixture_tensors();
    let lm = common::fixture_model();
    let input = ids(&f["input_ids"]);
    let full = logits(MaskKind::BlockCausal { block_length: B }, &input);
    // Prefix of 5 blocks into the cache, then block 5 alone.
    let dev = Device::Cpu;
    let mut cache = KvCache::default();
    let prefix = Tensor::new(&input[..40], &dev).unwrap().unsqueeze(0).unwrap();
    let bias = MaskKind::BlockCausal { block_length: B }.bias(0, 40, 40, &dev).unwrap();
    let out = lm.model.forward(&prefix, 0, bias.as_ref(), None, 40, &Collect::default()).unwrap();
    assert!(out.logits.is_none(), "no logits were asked for the prefix");
    cache.extend(out.new_kv).unwrap();
    assert_eq!(cache.len(), 40);
    let block = Tensor::new(&input[40..48], &dev).unwrap().unsqueeze(0).unwrap();
    let step = lm.model.forward(&block, 40, None, Some(&cache), 0, &Collect::default()).unwrap();
    let d = max_abs_diff(&step.logits.unwrap(), &full.narrow(1, 40, 8).unwrap());
    assert!(d < 1e-4, "cached vs full: {d}");
}

#[test]
fn generate_bias_differs_from_hard_mask_as_the_official_evidence_says() {
    // The released mask is soft: earlier blocks see later ones, so a change in block 5 moves them.
    let f = fixture_tensors();
    let a = logits(MaskKind::GenerateBias { block_length: B }, &ids(&f["input_ids"]));
    let b = logits(MaskKind::GenerateBias { block_length: B }, &ids(&f["input_ids_perturbed"]));
    let d = max_abs_diff(&a.narrow(1, 0, 40).unwrap(), &b.narrow(1, 0, 40).unwrap());
    assert!(d > 1.0, "generate mask prefix should move, moved {d}");
}

/// The last layer runs on the logits rows alone when nothing else is collected; the logits
/// equal those of the whole-window forward (here forced by collecting hidden states) up to
/// the last bits, and asking for no row still gives every layer's keys and values.
#[test]
fn logits_rows_alone_in_the_last_layer_change_nothing() {
    let f = fixture_tensors();
    let lm = common::fixture_model();
    let input = ids(&f["input_ids"]);
    let n = input.len();
    let t = Tensor::new(input.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let mask = MaskKind::GenerateBias { block_length: B };
    let bias = mask.bias(0, n, n, &Device::Cpu).unwrap();
    let whole =
        lm.model.forward(&t, 0, bias.as_ref(), None, 0, &Collect { hidden_states: true, router: false });
    let whole = whole.unwrap().logits.unwrap();
    for from in [1, n - B, n - 1] {
        let part = lm.model.forward(&t, 0, bias.as_ref(), None, from, &Collect::default()).unwrap();
        let want: Vec<f32> =
            whole.narrow(1, from, n - from).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let got: Vec<f32> = part.logits.unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got.len(), want.len());
        // Same arithmetic per row; candle's matmul may block fewer rows otherwise, so the
        // last bits may move (1.9e-6 measured), never an argmax.
        let d = got.iter().zip(&want).fold(0f32, |d, (a, b)| d.max((a - b).abs()));
        assert!(d < 1e-5, "rows {from}..{n}: max |diff| {d:e}");
        let argmax = |v: &[f32]| {
            v.chunks(v.len() / (n - from))
                .map(|r| r.iter().enumerate().fold(0, |b, (i, x)| if *x > r[b] { i } else { b }))
                .collect::<Vec<_>>()
        };
        assert_eq!(argmax(&got), argmax(&want), "rows {from}..{n}");
    }
    let none = lm.model.forward(&t, 0, bias.as_ref(), None, n, &Collect::default()).unwrap();
    assert!(none.logits.is_none());
    assert_eq!(none.new_kv.len(), lm.model.cfg.num_hidden_layers);
    let all = lm.model.forward(&t, 0, bias.as_ref(), None, 0, &Collect::default()).unwrap();
    for (a, b) in none.new_kv.iter().zip(&all.new_kv) {
        assert_eq!(max_abs_diff(&a.0, &b.0), 0.0);
        assert_eq!(max_abs_diff(&a.1, &b.1), 0.0);
    }
}
