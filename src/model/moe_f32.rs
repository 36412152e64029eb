//! A MoE layer's routed experts in f32 CPU inference, on the AVX2 kernel and candle's pool.
//!
//! `Moe::combine_into` otherwise runs each expert as candle ops on scoped threads of its
//! own. With candle's pool also alive (every other linear of the forward uses it), its
//! worker spins for a while after each call, so on 2 cores the expert threads shared them
//! with a spinning worker: `perf` put 23% of a 2-thread cached decode in that spin. Here
//! the experts are the pool's work items instead. An expert is plain slices and the
//! kernel (gather its rows, gate and up, `silu(gate)·up`, down), no candle op: an op that
//! called the pool from inside it would wait on itself.

use std::sync::OnceLock;

use candle_core::{DType, Result, Tensor};

use super::f32_avx2;
use super::linear::Linear;
use super::mlp::Mlp;
use super::pooled_ops::silu_mul;

/// A weight the kernel takes, with nothing added to its product (no bias, no adapter).
fn plain(l: &Linear) -> bool {
    l.frozen_f32_cpu() && l.bias.is_none() && l.lora.is_none()
}

/// Each active expert's output rows (`rows_of[e]`, in that order, `[rows, hidden]`), or None
/// when this path does not apply (one thread, no AVX2, other dtypes, adapters, widths the
/// kernel refuses, a graph to record); the caller then takes candle's ops.
pub(crate) fn run(
    experts: &[Mlp],
    flat: &Tensor,
    active: &[usize],
    rows_of: &[Vec<u32>],
) -> Result<Option<Vec<Vec<f32>>>> {
    // On one thread there is no pool to share: `Mlp::forward` picks gemm or the kernel per
    // expert by its row count, which is faster for the experts that draw many rows.
    if active.is_empty()
        || candle_core::utils::get_num_threads() < 2
        || !f32_avx2::available()
        || flat.dtype() != DType::F32
        || !flat.device().is_cpu()
        || flat.track_op()
    {
        return Ok(None);
    }
    let (_, h) = flat.dims2()?;
    let mut inter = Vec::with_capacity(active.len());
    for &e in active {
        let m = &experts[e];
        if ![&m.gate_proj, &m.up_proj, &m.down_proj].into_iter().all(plain) {
            return Ok(None);
        }
        let (i, hg) = m.gate_proj.weight.dims2()?;
        if hg != h
            || m.up_proj.weight.dims2()? != (i, h)
            || m.down_proj.weight.dims2()? != (h, i)
            || !h.is_multiple_of(8)
            || !i.is_multiple_of(8)
        {
            return Ok(None);
        }
        inter.push(i);
    }
    let flat = flat.contiguous()?;
    let mut tensors: Vec<&Tensor> = vec![&flat];
    for &e in active {
        let m = &experts[e];
        tensors.extend([&m.gate_proj.weight, &m.up_proj.weight, &m.down_proj.weight]);
    }
    let outs = super::cpu_f32::with_slices(&tensors, |s| {
        let (x, ws) = (s[0], &s[1..]);
        let outs: Vec<OnceLock<Option<Vec<f32>>>> = (0..active.len()).map(|_| OnceLock::new()).collect();
        candle_core::utils::barrier_pool().execute_chunked(active.len(), |range| {
            for i in range {
                let w = &ws[3 * i..3 * i + 3];
                let out = super::cpu_f32::serial(|| expert(x, h, inter[i], &rows_of[active[i]], w));
                let _ = outs[i].set(out);
            }
        });
        outs
    });
    let Some(outs) = outs else {
        return Ok(None);
    };
    outs.into_iter()
        .zip(active)
        .map(|(o, e)| match o.into_inner() {
            Some(Some(v)) => Ok(v),
            _ => candle_core::bail!("expert {e}: the f32 kernel refused its shapes"),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// One expert on its gathered rows: `down(silu(gate(x)) · up(x))`, as `Mlp::forward`.
fn expert(x: &[f32], h: usize, inter: usize, rows: &[u32], w: &[&[f32]]) -> Option<Vec<f32>> {
    let r = rows.len();
    let mut xe = Vec::with_capacity(r * h);
    for &row in rows {
        xe.extend_from_slice(x.get(row as usize * h..(row as usize + 1) * h)?);
    }
    let mut g = vec![0f32; r * inter];
    let mut u = vec![0f32; r * inter];
    f32_avx2::matmul((r, h, inter), &xe, w[0], &mut g)?;
    f32_avx2::matmul((r, h, inter), &xe, w[1], &mut u)?;
    for (gv, &uv) in g.iter_mut().zip(&u) {
        *gv = silu_mul(*gv, uv);
    }
    let mut out = vec![0f32; r * h];
    f32_avx2::matmul((r, inter, h), &g, w[2], &mut out)?;
    Some(out)
}
