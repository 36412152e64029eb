//! The quantized MoE expert path (route once, rows grouped per expert, experts spread over
//! the pool, one output buffer, dot products on the stored blocks) against the reference
//! per-expert tensor loop (candle's quantized matmul per expert, `index_select` + sum).
//!
//! One test in its own binary: it pins candle's x86 kernel tier to AVX2 before any kernel
//! runs (`MISTRALRS_FORCE_AVX2`, read once per process). At that tier candle's q8_0 matmul is
//! its generic kernel — the dot products the expert path calls — and its repacked q4_k
//! kernel quantizes activations and sums exactly as the generic one, so both formats must
//! agree bit for bit. (At candle's AVX512-VNNI tier its tile kernels quantize q8_0 activations to
//! q8_K and order q4_k sums differently, so the paths then differ by that rounding.)

use draftscope::model::llada2::FeedForward;
use draftscope::model::quant::QuantFormat;
use draftscope::model::synth::{self, Like, Output};
use draftscope::model::{Collect, DeviceKind, DtypeKind, LoadedModel, MaskKind};

#[test]
fn the_quantized_expert_path_matches_the_reference_loop() {
    // SAFETY: the only test in this binary, before any other thread or kernel runs.
    unsafe { std::env::set_var("MISTRALRS_FORCE_AVX2", "1") };
    let d = tempfile::tempdir().unwrap();
    for f in [QuantFormat::Q8_0, QuantFormat::Q4K] {
        let dir = d.path().join(f.name());
        synth::write_dir(&dir, Like::Tiny, Some(3), 7, Output::Gguf(f), &mut |_| {}).unwrap();
        let mut m = LoadedModel::load_dir("m", &dir, DeviceKind::Cpu, DtypeKind::F32).unwrap().model;
        // 64 tokens × top-2 over 16 experts: most experts get several rows.
        let ids: Vec<u32> = (0..64u32).map(|i| (i * 37 + 11) % 500).collect();
        let mut run = |reference: bool| {
            let mut moe_layers = 0;
            for l in &mut m.layers {
                if let FeedForward::Moe(moe) = &mut l.mlp {
                    assert!(draftscope::model::moe_cpu::applies(&moe.experts), "{}", f.name());
                    moe.reference_path = reference;
                    moe_layers += 1;
                }
            }
            assert_eq!(moe_layers, 2);
            let collect = Collect { hidden_states: false, router: true };
            let out = m.forward_window(&ids, MaskKind::GenerateBias { block_length: 16 }, &collect).unwrap();
            let chosen: Vec<Vec<Vec<usize>>> = out.router.iter().map(|(_, c)| c.clone()).collect();
            let logits: Vec<f32> = out.logits.unwrap().flatten_all().unwrap().to_vec1().unwrap();
            (logits, chosen)
        };
        let (fast, fast_chosen) = run(false);
        let (reference, ref_chosen) = run(true);
        assert_eq!(fast_chosen, ref_chosen, "{}: routing differs", f.name());
        let scale = reference.iter().fold(0f32, |a, x| a.max(x.abs()));
        let err = fast.iter().zip(&reference).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        eprintln!("{}: max |Δlogit| {err:e} (max |logit| {scale})", f.name());
        assert!(fast == reference, "{}: max |Δlogit| {err}", f.name());
    }
}
