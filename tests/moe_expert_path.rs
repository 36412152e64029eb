//! The quantized MoE expert path (route once, rows grouped per expert, experts spread over
//! the pool, one output buffer, dot products on the stored blocks) against the reference
//! per-expert tensor loop (candle's quantized matmul per expert, `index_select` + sum).
//!
//! One test in its own binary: it pins candle's x86 kernel tier to AVX2 before any kernel
//! runs (`MISTRALRS_FORCE_AVX2`, read once per process). At that tier candle's q8_0 matmul is
//! its generic kernel — the dot products the expert path calls — so q8_0 agrees bit for bit.
//! candle's repacked q4_k kernel sums the blocks' float terms in another order: outputs differ
//! by ~1e-6, and where that moves an activation of the down projection across a q8 rounding
//! boundary, that token's output moves by one quantization step (measured: up to 2.7e-3 of a
//! max |hidden| of 3.6, on 3 of 12 inputs). A wrong expert, row or weight moves outputs by
//! their own size. The model has one MoE layer, so a difference cannot re-route a later one.

use draftscope::model::llada2::FeedForward;
use draftscope::model::quant::QuantFormat;
use draftscope::model::synth::{self, Like, Output};
use draftscope::model::{Collect, DeviceKind, DtypeKind, LoadedModel, MaskKind};

#[test]
fn the_quantized_expert_path_matches_the_reference_loop() {
    // SAFETY: the only test in this binary, before any other thread or kernel runs.
    unsafe { std::env::set_var("MISTRALRS_FORCE_AVX2", "1") };
    let d = tempfile::tempdir().unwrap();
    // (label, model, bit-identical expected, MoE layers). The fixture's widths (hidden 64,
    // expert width 32) take no k-quant: its q4_k file has q5_0 experts, whose dot products
    // candle's matmul runs unrepacked, so they must agree bit for bit as q8_0 does.
    let mut cases = Vec::new();
    for f in [QuantFormat::Q8_0, QuantFormat::Q4K] {
        let dir = d.path().join(f.name());
        synth::write_dir(&dir, Like::Tiny, Some(2), 7, Output::Gguf(f), &mut |_| {}).unwrap();
        cases.push((f.name().to_string(), dir, f == QuantFormat::Q8_0, 1));
    }
    let q5 = d.path().join("fixture-q5_0");
    draftscope::model::quantize::quantize_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llada2-tiny"),
        QuantFormat::Q4K,
        &q5,
    )
    .unwrap();
    cases.push(("fixture q5_0".to_string(), q5, true, 2));
    for (label, dir, bitwise, want_moe) in cases {
        let mut m = LoadedModel::load_dir("m", &dir, DeviceKind::Cpu, DtypeKind::F32).unwrap().model;
        for salt in 0..6u32 {
            // 64 tokens × top-2 over 16 experts: most experts get several rows.
            let ids: Vec<u32> = (0..64u32).map(|i| (i * 37 + 11 + salt) % 500).collect();
            let mut run = |reference: bool| {
                let mut moe_layers = 0;
                for l in &mut m.layers {
                    if let FeedForward::Moe(moe) = &mut l.mlp {
                        assert!(draftscope::model::moe_cpu::applies(&moe.experts), "{label}");
                        moe.reference_path = reference;
                        moe_layers += 1;
                    }
                }
                assert_eq!(moe_layers, want_moe);
                let collect = Collect { hidden_states: true, router: true };
                let out =
                    m.forward_window(&ids, MaskKind::GenerateBias { block_length: 16 }, &collect).unwrap();
                let chosen: Vec<Vec<Vec<usize>>> = out.router.iter().map(|(_, c)| c.clone()).collect();
                let last = out.hidden_states.last().unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (last, chosen)
            };
            let (fast, fast_chosen) = run(false);
            let (reference, ref_chosen) = run(true);
            let name = format!("{label} input {salt}");
            assert_eq!(fast_chosen, ref_chosen, "{name}: routing differs");
            let scale = reference.iter().fold(0f32, |a, x| a.max(x.abs()));
            let err = fast.iter().zip(&reference).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            eprintln!("{name}: max |Δhidden| {err:e} (max |hidden| {scale})");
            if bitwise {
                assert!(fast == reference, "{name}: max |Δhidden| {err}");
            } else {
                assert!(err <= 1e-2 * scale, "{name}: max |Δhidden| {err} of {scale}");
            }
        }
    }
}
