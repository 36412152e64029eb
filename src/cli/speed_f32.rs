//! `draftscope speed --what f32-linear`: candle's f32 matmul (`x · Wᵀ`, the gemm crate)
//! against draftscope's AVX2 kernel (`model::f32_avx2`) on the mid config's linear shapes,
//! interleaved in one process, with the largest difference between the two printed.

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::model::f32_avx2;

/// (name, token rows, in, out, distinct weights): the mid config (hidden 512, experts 256
/// wide, 32 experts top-4, dense MLP 1408) with the KV cache (one 32-token block) and in `hf`
/// mode (a 160-token window, the mean over a 256-token decode). A shape with many distinct
/// weights cycles through them, so that each call reads its weight from memory, as a decode
/// step reads its layers' experts (128 × 512 KiB, more than the last-level cache).
const SHAPES: &[(&str, usize, usize, usize, usize)] = &[
    ("expert gate/up, cached (4 rows)", 4, 512, 256, 1),
    ("expert gate/up, cached, from memory", 4, 512, 256, 128),
    ("expert down, cached (4 rows)", 4, 256, 512, 1),
    ("expert gate/up, hf (20 rows)", 20, 512, 256, 1),
    ("attention qkv, cached", 32, 512, 768, 1),
    ("dense mlp down, cached", 32, 1408, 512, 1),
    ("lm_head, one block", 32, 512, 8192, 1),
    ("attention qkv, hf (160 rows)", 160, 512, 768, 1),
    ("dense mlp gate, hf (160 rows)", 160, 512, 1408, 1),
];

pub fn run(reps: usize) -> Result<()> {
    if !f32_avx2::available() {
        println!(
            "f32-linear: this CPU has no AVX2/FMA, so candle's matmul runs everywhere; nothing to compare"
        );
        return Ok(());
    }
    println!(
        "threads {}; median of {} reps, each rep enough calls for ~50 ms",
        candle_core::utils::get_num_threads(),
        reps.max(1)
    );
    println!(
        "{:<46} {:>12} {:>12} {:>8} {:>10}",
        "shape (rows x in -> out)", "candle us", "kernel us", "ratio", "max |diff|"
    );
    for &(name, m, k, n, distinct) in SHAPES {
        let xs: Vec<f32> = (0..m * k).map(|i| ((i * 40_503) % 777) as f32 / 388.0 - 1.0).collect();
        let ws: Vec<Vec<f32>> = (0..distinct)
            .map(|d| {
                (0..n * k)
                    .map(|i| (((i + d).wrapping_mul(2_654_435_761)) % 1000) as f32 / 5000.0 - 0.1)
                    .collect()
            })
            .collect();
        let x = Tensor::from_slice(&xs, (m, k), &Device::Cpu)?;
        let w: Vec<Tensor> = ws
            .iter()
            .map(|v| Tensor::from_slice(v, (n, k), &Device::Cpu))
            .collect::<candle_core::Result<_>>()?;
        let calls = (50_000_000 / (2 * m * k * n).max(1)).clamp(distinct, 10_000);
        let mut out = vec![0f32; m * n];
        let (mut tc, mut tk) = (Vec::new(), Vec::new());
        let mut y = x.matmul(&w[0].t()?)?;
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            for c in 0..calls {
                y = x.matmul(&w[c % distinct].t()?)?;
            }
            tc.push(t.elapsed().as_secs_f64() / calls as f64);
            let t = Instant::now();
            for c in 0..calls {
                f32_avx2::matmul((m, k, n), &xs, &ws[c % distinct], &mut out)
                    .ok_or_else(|| anyhow::anyhow!("f32_avx2 refused {m}x{k}x{n}"))?;
            }
            tk.push(t.elapsed().as_secs_f64() / calls as f64);
        }
        // The last call of each side used the same weight.
        let yc: Vec<f32> = y.flatten_all()?.to_vec1()?;
        let diff = yc.iter().zip(&out).fold(0f32, |d, (a, b)| d.max((a - b).abs()));
        let (c, kk) = (crate::bench::stats::median(&tc), crate::bench::stats::median(&tk));
        let label = format!("{name} {m}x{k}->{n}");
        println!("{label:<46} {:>12.1} {:>12.1} {:>7.2}x {diff:>10.2e}", c * 1e6, kk * 1e6, c / kk);
    }
    Ok(())
}
