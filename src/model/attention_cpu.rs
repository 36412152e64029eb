//! Attention's core — scores, mask, softmax, weighted values — for f32 CPU inference, as
//! candle's pool work items: one per (batch, head, chunk of query rows).
//!
//! Composed of candle ops, the core ran on the calling thread, with its matmuls and softmax
//! on rayon's pool: a second pool beside candle's, whose worker kept spinning for the same
//! cores meanwhile. `perf` of an `hf` decode at 2 threads put a third of candle's worker in
//! that spin. Here the core is plain slices on candle's pool, the scores go through the
//! `f32_avx2` kernel, the softmax is candle's own row reductions, and the output lands in
//! `[b, n, heads · d]` order, the dense projection's input, with no transpose copy. Each row
//! is computed in one fixed order, so results do not depend on the thread count.

use candle_core::cpu::kernels::VecOps;
use candle_core::{DType, Result, Tensor};

use std::sync::atomic::{AtomicBool, Ordering};

use super::cpu_f32::{DisjointOut, fill_new, for_ranges};
use super::f32_avx2;

/// Query rows per work item.
const QUERY_CHUNK: usize = 32;
/// Below this many multiply-adds per call the core stays on the calling thread.
const POOL_MIN_MACS: usize = 1 << 16;

/// `softmax(q·kᵀ·scale + bias)·v` per head, as `[b, nq, hq·d]`, or None where this path does
/// not apply (not f32 on the CPU, no AVX2, a graph to record, shapes it does not take); the
/// caller then runs candle's ops.
///
/// `q`: `[b, hq, nq, d]`. `keys`/`values`: the key rows in order as consecutive segments
/// (the cached prefix, then this call's rows), each `[b, hkv, len, d]`; query head `h` reads
/// key head `h / (hq / hkv)`. `bias`: `[nq, kl]`, added after scaling.
pub(crate) fn run(
    q: &Tensor,
    keys: &[&Tensor],
    values: &[&Tensor],
    bias: Option<&Tensor>,
    scale: f64,
) -> Result<Option<Tensor>> {
    let mut tensors = vec![q];
    tensors.extend(keys);
    tensors.extend(values);
    tensors.extend(bias);
    if !f32_avx2::available()
        || keys.is_empty()
        || keys.len() != values.len()
        || tensors.iter().any(|t| t.dtype() != DType::F32 || !t.device().is_cpu() || t.track_op())
    {
        return Ok(None);
    }
    let (b, hq, nq, d) = q.dims4()?;
    let Ok((_, hkv, _, _)) = keys[0].dims4() else {
        return Ok(None);
    };
    let mut lens = Vec::with_capacity(keys.len());
    for (k, v) in keys.iter().zip(values) {
        let (kb, kh, kl, kd) = k.dims4()?;
        if (kb, kh, kd) != (b, hkv, d) || v.dims4()? != (kb, kh, kl, kd) {
            return Ok(None);
        }
        lens.push(kl);
    }
    let kl: usize = lens.iter().sum();
    if hkv == 0 || !hq.is_multiple_of(hkv) || !d.is_multiple_of(8) || kl == 0 || nq == 0 {
        return Ok(None);
    }
    if let Some(m) = bias
        && m.dims() != [nq, kl]
    {
        return Ok(None);
    }
    let shape = Shape { hq, hkv, nq, kl, d, scale: scale as f32 };
    let chunks = nq.div_ceil(QUERY_CHUNK);
    let done = fill_new(&tensors, &[b, nq, hq * d], |s, dst| {
        let (qs, rest) = s.split_first().expect("q is first");
        let (ks, rest) = rest.split_at(keys.len());
        let (vs, rest) = rest.split_at(values.len());
        let segs = Segments { keys: ks, values: vs, lens: &lens };
        let bias = rest.first().copied();
        let refused = AtomicBool::new(false);
        let items = b * hq * chunks;
        for_ranges(items, nq * kl * d * hq * b, POOL_MIN_MACS, |range| {
            for i in range {
                let (head, chunk) = (i / chunks, i % chunks);
                let rows = chunk * QUERY_CHUNK..nq.min((chunk + 1) * QUERY_CHUNK);
                // SAFETY: AVX2/FMA checked above; every item writes only its own (batch, head,
                // rows) block of `dst`.
                if !unsafe { head_rows(&shape, qs, &segs, bias, head, rows, dst) } {
                    refused.store(true, Ordering::Relaxed);
                }
            }
        });
        !refused.into_inner()
    })?;
    match done {
        Some((out, true)) => Ok(Some(out)),
        Some((_, false)) => candle_core::bail!("attention: the f32 kernel refused checked shapes"),
        None => Ok(None),
    }
}

struct Shape {
    hq: usize,
    hkv: usize,
    nq: usize,
    kl: usize,
    d: usize,
    scale: f32,
}

struct Segments<'a> {
    keys: &'a [&'a [f32]],
    values: &'a [&'a [f32]],
    lens: &'a [usize],
}

/// Query rows `rows` of head `head` (batch-major: `batch · hq + h`). False when the kernel
/// refuses a shape (it cannot, after `run`'s checks).
///
/// Compiled for AVX2 so the row loops take 8 lanes; Rust never contracts `a + p · v` into an
/// FMA, so that changes no result.
///
/// # Safety
/// The CPU has AVX2 and FMA (`f32_avx2::available`); `dst` holds `[b, nq, hq · d]` and no
/// other caller writes this head's `rows`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn head_rows(
    s: &Shape,
    q: &[f32],
    segs: &Segments,
    bias: Option<&[f32]>,
    head: usize,
    rows: std::ops::Range<usize>,
    dst: &DisjointOut,
) -> bool {
    let (bi, h) = (head / s.hq, head % s.hq);
    let kh = h / (s.hq / s.hkv);
    let (d, kl, r) = (s.d, s.kl, rows.len());
    let qrows = &q[((bi * s.hq + h) * s.nq + rows.start) * d..][..r * d];
    let mut scores = vec![0f32; r * kl];
    let mut seg_scores = Vec::new();
    let mut off = 0;
    for (keys, &len) in segs.keys.iter().zip(segs.lens) {
        let kseg = &keys[(bi * s.hkv + kh) * len * d..][..len * d];
        if segs.lens.len() == 1 {
            if super::cpu_f32::serial(|| f32_avx2::matmul((r, d, len), qrows, kseg, &mut scores)).is_none() {
                return false;
            }
        } else {
            seg_scores.clear();
            seg_scores.resize(r * len, 0f32);
            if super::cpu_f32::serial(|| f32_avx2::matmul((r, d, len), qrows, kseg, &mut seg_scores))
                .is_none()
            {
                return false;
            }
            for (row, part) in scores.chunks_exact_mut(kl).zip(seg_scores.chunks_exact(len)) {
                row[off..off + len].copy_from_slice(part);
            }
        }
        off += len;
    }
    let mut acc = vec![0f32; d];
    for (i, row) in scores.chunks_exact_mut(kl).enumerate() {
        // As candle: `scores · scale`, plus the bias, then softmax_last_dim's row reductions.
        match bias {
            Some(m) => {
                for (x, &mb) in row.iter_mut().zip(&m[(rows.start + i) * kl..][..kl]) {
                    *x = *x * s.scale + mb;
                }
            }
            None => row.iter_mut().for_each(|x| *x *= s.scale),
        }
        let mut max = f32::NEG_INFINITY;
        // SAFETY: `row` holds `kl` values.
        unsafe { f32::vec_reduce_max(row.as_ptr(), &mut max, kl) };
        row.iter_mut().for_each(|x| *x = (*x - max).exp());
        let mut sum = 0f32;
        // SAFETY: as above.
        unsafe { f32::vec_reduce_sum(row.as_ptr(), &mut sum, kl) };
        row.iter_mut().for_each(|x| *x /= sum);
        acc.iter_mut().for_each(|a| *a = 0.0);
        let mut j = 0;
        for (values, &len) in segs.values.iter().zip(segs.lens) {
            let vseg = &values[(bi * s.hkv + kh) * len * d..][..len * d];
            for vrow in vseg.chunks_exact(d) {
                let p = row[j];
                acc.iter_mut().zip(vrow).for_each(|(a, &v)| *a += p * v);
                j += 1;
            }
        }
        // SAFETY: row `rows.start + i` of batch `bi`, head `h`'s `d` columns lie inside `dst`
        // (`[b, nq, hq · d]`), written by this call only.
        unsafe {
            let o = dst.0.add(((bi * s.nq + rows.start + i) * s.hq + h) * d);
            std::ptr::copy_nonoverlapping(acc.as_ptr(), o, d);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Tensor};

    fn det(n: usize, salt: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| {
                let x = (i.wrapping_mul(2654435761).wrapping_add(salt * 97)) % 1000;
                x as f32 / 500.0 - 1.0
            })
            .collect()
    }

    /// candle's composed core, the reference (as `Attention::forward` runs it otherwise).
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>, scale: f64) -> Tensor {
        let (b, hq, nq, d) = q.dims4().unwrap();
        let hkv = k.dim(1).unwrap();
        let kl = k.dim(2).unwrap();
        let rep = hq / hkv;
        let expand = |t: &Tensor| {
            t.unsqueeze(2).unwrap().expand((b, hkv, rep, kl, d)).unwrap().reshape((b, hq, kl, d)).unwrap()
        };
        let (k, v) = (expand(k), expand(v));
        let mut s = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
        if let Some(m) = bias {
            s = s.broadcast_add(m).unwrap();
        }
        let a = candle_nn::ops::softmax_last_dim(&s).unwrap();
        a.matmul(&v.contiguous().unwrap()).unwrap().transpose(1, 2).unwrap().reshape((b, nq, hq * d)).unwrap()
    }

    fn t(v: Vec<f32>, s: (usize, usize, usize, usize)) -> Tensor {
        Tensor::from_vec(v, s, &Device::Cpu).unwrap()
    }

    #[test]
    fn matches_candles_ops_with_gqa_a_cached_prefix_and_a_hard_mask() {
        if !super::f32_avx2::available() {
            return;
        }
        let (b, hq, hkv, nq, past, d) = (2, 4, 2, 37, 19, 16);
        let kl = past + nq;
        let q = t(det(b * hq * nq * d, 1), (b, hq, nq, d));
        let pk = t(det(b * hkv * past * d, 2), (b, hkv, past, d));
        let pv = t(det(b * hkv * past * d, 3), (b, hkv, past, d));
        let k = t(det(b * hkv * nq * d, 4), (b, hkv, nq, d));
        let v = t(det(b * hkv * nq * d, 5), (b, hkv, nq, d));
        // Hard block-causal over blocks of 8 keys, −∞ on later blocks.
        let bias: Vec<f32> = (0..nq * kl)
            .map(|i| if (i % kl) / 8 <= (past + i / kl) / 8 { 0.0 } else { f32::NEG_INFINITY })
            .collect();
        let bias = Tensor::from_vec(bias, (nq, kl), &Device::Cpu).unwrap();
        let scale = (d as f64).powf(-0.5);
        let got = super::run(&q, &[&pk, &k], &[&pv, &v], Some(&bias), scale).unwrap().unwrap();
        let kall = Tensor::cat(&[&pk, &k], 2).unwrap();
        let vall = Tensor::cat(&[&pv, &v], 2).unwrap();
        let want = reference(&q, &kall, &vall, Some(&bias), scale);
        let diff = (got - want).unwrap().abs().unwrap().max(D::Minus1).unwrap().max_all().unwrap();
        let diff = diff.to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "max |diff| {diff}");
        // One segment and no bias, the `hf` mode's shape.
        let got = super::run(&q, &[&k], &[&v], None, scale).unwrap().unwrap();
        let want = reference(&q, &k, &v, None, scale);
        let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }

    /// A row does not depend on the pool, nor on the other rows of its call.
    #[test]
    fn rows_do_not_depend_on_the_pool_or_the_batch() {
        if !super::f32_avx2::available() {
            return;
        }
        let (b, hq, nq, d) = (1, 8, 70, 32);
        let q = t(det(b * hq * nq * d, 7), (b, hq, nq, d));
        let k = t(det(b * hq * nq * d, 8), (b, hq, nq, d));
        let v = t(det(b * hq * nq * d, 9), (b, hq, nq, d));
        let run = |q: &Tensor| super::run(q, &[&k], &[&v], None, 0.125).unwrap().unwrap();
        let pooled = run(&q).to_vec3::<f32>().unwrap();
        let alone = super::super::cpu_f32::serial(|| run(&q)).to_vec3::<f32>().unwrap();
        assert_eq!(pooled, alone);
        for i in [0, 33, 69] {
            let one = run(&q.narrow(2, i, 1).unwrap().contiguous().unwrap()).to_vec3::<f32>().unwrap();
            assert_eq!(one[0][0], pooled[0][i], "row {i}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_take() {
        let q = t(det(2 * 3 * 4, 1), (1, 1, 2, 12)); // d = 12: not a multiple of 8
        assert!(super::run(&q, &[&q], &[&q], None, 1.0).unwrap().is_none());
        let q = t(det(16, 1), (1, 1, 2, 8)).to_dtype(candle_core::DType::F16).unwrap();
        assert!(super::run(&q, &[&q], &[&q], None, 1.0).unwrap().is_none());
    }
}
