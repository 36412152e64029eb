//! q8_0 × q8_0 matmul for x86 CPUs with AVX2.
//!
//! candle's generic q8_0 matmul makes every output one `vec_dot_q8_0_q8_0` call, which converts
//! both f16 block scales through an out-of-line `half` call per block. For LLaDA2.1-mini's q8_0
//! `lm_head` (157184 × 2048) that was about 1.4 s of a 32-token step on an AVX2 CPU, more than
//! all 20 layers together. (With AVX512-VNNI candle has tiles for q8_0, but they round the
//! activations to q8_K; `quant_cpu` says why q8_0 does not take them.)
//!
//! This kernel computes exactly what candle's does — the same q8_0 quantization of the
//! activations (candle's own `from_float`), per block the same integer dot, scale product and
//! fused multiply-add into an 8-lane accumulator, the same horizontal sum — so its results are
//! bit-identical to `k_quants::matmul` (tested). What changes is the schedule: one weight
//! block is loaded and its absolute value taken once for up to 8 token rows, the scales are
//! converted inline (F16C), and rows are spread over candle's CPU pool.

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};

#[cfg(target_arch = "x86_64")]
use super::cpu_f32::DisjointOut;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// candle's `BlockQ8_0` (`#[repr(C)] { d: f16, qs: [i8; 32] }`), whose fields are private.
#[repr(C)]
#[derive(Clone, Copy)]
struct Q8Block {
    d: u16,
    qs: [i8; 32],
}

const _: () = assert!(std::mem::size_of::<Q8Block>() == std::mem::size_of::<BlockQ8_0>());
const _: () = assert!(std::mem::align_of::<Q8Block>() == std::mem::align_of::<BlockQ8_0>());

/// Token rows that share one pass over a weight row (8 accumulators fit the 16 AVX2 registers
/// next to the weight block and the temporaries).
const TILE: usize = 8;

/// Weight rows per work item of the pool.
const ROWS_PER_ITEM: usize = 16;

/// True when this CPU runs the kernel: AVX2, FMA and F16C.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dst[m, n] = lhs[m, k] · wᵀ` for a q8_0 weight `w` of `n` rows of `k`. None when this CPU
/// has no kernel (see [`available`]) or `k` is not whole blocks; the caller then takes
/// candle's path.
pub fn matmul(mkn: (usize, usize, usize), lhs: &[f32], w: &[BlockQ8_0], dst: &mut [f32]) -> Option<()> {
    let (m, k, n) = mkn;
    if !available()
        || k == 0
        || !k.is_multiple_of(32)
        || lhs.len() != m * k
        || w.len() != n * (k / 32)
        || dst.len() < m * n
    {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let kb = k / 32;
        let mut xq = vec![BlockQ8_0::zeros(); m * kb];
        for (row, q) in lhs.chunks_exact(k).zip(xq.chunks_exact_mut(kb)) {
            BlockQ8_0::from_float(row, q);
        }
        // SAFETY: Q8Block has BlockQ8_0's size, alignment and field layout (asserted above).
        let xq: &[Q8Block] = unsafe { std::slice::from_raw_parts(xq.as_ptr() as *const Q8Block, xq.len()) };
        let w: &[Q8Block] = unsafe { std::slice::from_raw_parts(w.as_ptr() as *const Q8Block, w.len()) };
        // Token scales, widened once instead of once per (row, token, block).
        let dy: Vec<f32> = xq.iter().map(|b| half::f16::from_bits(b.d).to_f32()).collect();
        let out = DisjointOut(dst.as_mut_ptr());
        let items = n.div_ceil(ROWS_PER_ITEM);
        candle_core::utils::barrier_pool().execute_chunked(items, |range| {
            for item in range {
                let rows = item * ROWS_PER_ITEM..n.min((item + 1) * ROWS_PER_ITEM);
                for r in rows {
                    let wr = &w[r * kb..(r + 1) * kb];
                    let mut t0 = 0;
                    while t0 < m {
                        let nt = TILE.min(m - t0);
                        let x = &xq[t0 * kb..(t0 + nt) * kb];
                        let d = &dy[t0 * kb..(t0 + nt) * kb];
                        // SAFETY: the CPU has AVX2/FMA/F16C (`available`); every (token, row)
                        // of `dst` is written by exactly one work item.
                        unsafe { tile_dispatch(nt, wr, x, d, kb, &out, t0, n, r) };
                        t0 += nt;
                    }
                }
            }
        });
        Some(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_dispatch(
    nt: usize,
    w: &[Q8Block],
    x: &[Q8Block],
    dy: &[f32],
    kb: usize,
    out: &DisjointOut,
    t0: usize,
    n: usize,
    r: usize,
) {
    let mut sums = [0f32; TILE];
    // SAFETY: forwarded from the caller (CPU features checked by `available`).
    unsafe {
        match nt {
            8 => tile::<8>(w, x, dy, kb, &mut sums),
            7 => tile::<7>(w, x, dy, kb, &mut sums),
            6 => tile::<6>(w, x, dy, kb, &mut sums),
            5 => tile::<5>(w, x, dy, kb, &mut sums),
            4 => tile::<4>(w, x, dy, kb, &mut sums),
            3 => tile::<3>(w, x, dy, kb, &mut sums),
            2 => tile::<2>(w, x, dy, kb, &mut sums),
            _ => tile::<1>(w, x, dy, kb, &mut sums),
        }
        for (t, s) in sums.iter().take(nt).enumerate() {
            *out.0.add((t0 + t) * n + r) = *s;
        }
    }
}

/// One weight row `w` (kb blocks) against `N` quantized token rows `x` (row-major, kb blocks
/// each) with their widened scales `dy`; the dot products go to `sums[..N]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn tile<const N: usize>(w: &[Q8Block], x: &[Q8Block], dy: &[f32], kb: usize, sums: &mut [f32; TILE]) {
    debug_assert!(w.len() == kb && x.len() == N * kb && dy.len() == N * kb);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); N];
    for b in 0..kb {
        let wb = &w[b];
        // SAFETY: `qs` is 32 readable bytes; unaligned loads.
        let wq = unsafe { _mm256_loadu_si256(wb.qs.as_ptr() as *const __m256i) };
        let aw = _mm256_sign_epi8(wq, wq);
        let dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(wb.d as i32)));
        for t in 0..N {
            let xb = &x[t * kb + b];
            // SAFETY: as above.
            let y = unsafe { _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i) };
            let sy = _mm256_sign_epi8(y, wq);
            let q = _mm256_cvtepi32_ps(_mm256_madd_epi16(ones, _mm256_maddubs_epi16(aw, sy)));
            let d = _mm256_set1_ps(dw * dy[t * kb + b]);
            acc[t] = _mm256_fmadd_ps(d, q, acc[t]);
        }
    }
    for t in 0..N {
        sums[t] = hsum(acc[t]);
    }
}

/// candle's `hsum_float_8`, same order of additions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(x: __m256) -> f32 {
    let res = _mm256_extractf128_ps(x, 1);
    let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    let res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::k_quants;

    fn det(i: usize, salt: u64) -> f32 {
        let mut h = (i as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
        ((h % 20001) as f32 / 10000.0 - 1.0) * if i.is_multiple_of(37) { 9.0 } else { 1.0 }
    }

    /// Bit-identical to candle's q8_0 matmul for every tile width and a row tail.
    #[test]
    fn matches_candle_bit_for_bit() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX2/FMA/F16C");
            return;
        }
        let shapes = [(1, 32, 1), (3, 64, 5), (8, 256, 17), (13, 96, 33), (32, 512, 70), (17, 2048, 40)];
        for &(m, k, n) in &shapes {
            let wf: Vec<f32> = (0..n * k).map(|i| det(i, 7)).collect();
            let mut w = vec![BlockQ8_0::zeros(); n * k / 32];
            BlockQ8_0::from_float(&wf, &mut w);
            let lhs: Vec<f32> = (0..m * k).map(|i| det(i, 99)).collect();
            let mut want = vec![0f32; m * n];
            k_quants::matmul((m, k, n), &lhs, &w, &mut want).unwrap();
            let mut got = vec![f32::NAN; m * n];
            matmul((m, k, n), &lhs, &w, &mut got).expect("kernel available");
            let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "m={m} k={k} n={n}: {want:?} vs {got:?}");
        }
    }

    #[test]
    fn refuses_partial_blocks() {
        let w = vec![BlockQ8_0::zeros(); 2];
        let mut dst = vec![0f32; 2];
        assert!(matmul((1, 48, 1), &[0.0; 48], &w, &mut dst).is_none());
    }
}
