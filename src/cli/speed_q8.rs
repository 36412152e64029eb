//! `draftscope speed --what q8-head`: candle's q8_0 matmul against draftscope's AVX2 kernel
//! (`model::q8_avx2`) on LLaDA2.1-mini's `lm_head` shape, interleaved in one process, with
//! the outputs checked bit for bit; and candle's own `QTensor` matmul, which on a VNNI CPU
//! takes its repacked tiles (activations rounded to q8_K, so not bit-identical): the speed
//! draftscope gives up for q8_0 activations (`model/quant_cpu.rs`).

use std::time::Instant;

use anyhow::Result;
use candle_core::quantized::k_quants::{self, BlockQ8_0, GgmlType};
use candle_core::quantized::{QStorage, QTensor};
use candle_core::{Device, Tensor};

use crate::model::q8_avx2;

/// `rows` token rows against a `vocab × hidden` q8_0 weight (deterministic values).
pub fn run(reps: usize) -> Result<()> {
    let (n, k, m) = (157_184usize, 2048usize, 32usize);
    if !q8_avx2::available() {
        println!(
            "q8-head: this CPU takes candle's own q8_0 kernel (no AVX2/FMA/F16C, or AVX512-VNNI); nothing to compare"
        );
        return Ok(());
    }
    let mut w = vec![BlockQ8_0::zeros(); n * k / 32];
    let mut row = vec![0f32; k];
    for (r, blocks) in w.chunks_exact_mut(k / 32).enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = (((r * k + j).wrapping_mul(2_654_435_761)) % 1000) as f32 / 500.0 - 1.0;
        }
        BlockQ8_0::from_float(&row, blocks);
    }
    let x: Vec<f32> = (0..m * k).map(|i| ((i * 40_503) % 777) as f32 / 388.0 - 1.0).collect();
    let (mut a, mut b) = (vec![0f32; m * n], vec![0f32; m * n]);
    let (mut tc, mut tk, mut tq) = (Vec::new(), Vec::new(), Vec::new());
    let qt = QTensor::new(QStorage::Cpu(Box::new(w.clone())), (n, k))?;
    let xt = Tensor::from_slice(&x, (m, k), &Device::Cpu)?;
    xt.apply_op1_no_bwd(&qt)?; // candle builds its tiles (if any) on first use: not timed.
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        k_quants::matmul((m, k, n), &x, &w, &mut a)?;
        tc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        q8_avx2::matmul((m, k, n), &x, &w, &mut b)
            .ok_or_else(|| anyhow::anyhow!("q8_avx2 refused the shape"))?;
        tk.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        xt.apply_op1_no_bwd(&qt)?;
        tq.push(t.elapsed().as_secs_f64());
    }
    let same = a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits());
    let med = |v: &[f64]| crate::bench::stats::median(v);
    let (c, kk, q) = (med(&tc), med(&tk), med(&tq));
    println!(
        "q8-head {n}x{k}, {m} rows, threads {}: candle {c:.3} s, draftscope avx2 {kk:.3} s ({:.2}x), outputs bit-identical: {same}; candle QTensor (tiles on VNNI CPUs) {q:.3} s ({:.2}x the kernel's time)",
        candle_core::utils::get_num_threads(),
        c / kk,
        kk / q
    );
    if !same {
        anyhow::bail!("q8-head: the kernels disagree");
    }
    Ok(())
}
