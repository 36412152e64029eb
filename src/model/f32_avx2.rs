//! f32 `x · Wᵀ` on x86 CPUs with AVX2 and FMA, straight from the weight's stored layout.
//!
//! candle's CPU matmul (the `gemm` crate) packs the transposed weight into panels on every
//! call. That pays off when many token rows share each panel; a LLaDA2 forward with the KV
//! cache runs one 32-token block, whose routed experts each see about `32 · top_k / experts`
//! rows (4 on the mid config), so packing the weight costs as much as multiplying it. `perf`
//! put 37% of a cached f32 decode in gemm's packing and driver and 33% in its microkernel.
//!
//! Here each output is a dot product of a token row with a weight row, both contiguous along
//! `k`: a tile of [`MR`] token rows × [`NR`] weight rows keeps 12 eight-lane accumulators in
//! registers, so every weight element is read once per tile of token rows and never copied.
//! Each output is summed in the same order (8 lanes along `k`, then one horizontal sum)
//! whatever the tile, the row count or the thread, so results do not depend on how many
//! tokens share the call or how many threads run it. They differ from gemm's in the last
//! bits (another order of the same f32 sum).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::cpu_f32::{DisjointOut, for_ranges};

/// Token rows per tile.
const MR: usize = 4;
/// Weight rows per tile (MR·NR = 12 accumulators + NR weight vectors + 1 token vector fit the
/// 16 AVX2 registers).
const NR: usize = 3;
/// Weight rows per work item of the pool (a multiple of [`NR`]).
const ROWS_PER_ITEM: usize = 48;
/// Below this many multiply-adds a call runs on the calling thread: the pool's wake-up
/// costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// True when this CPU runs the kernel (AVX2 and FMA).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE
            .get_or_init(|| std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dst[m, n] = x[m, k] · wᵀ` for a row-major `w` of `n` rows of `k`. None when this CPU has
/// no kernel, `k` is not a multiple of 8 or the slices do not match the shape; the caller
/// then takes candle's path.
pub fn matmul(mkn: (usize, usize, usize), x: &[f32], w: &[f32], dst: &mut [f32]) -> Option<()> {
    let (m, k, n) = mkn;
    if !available()
        || k == 0
        || !k.is_multiple_of(8)
        || x.len() != m * k
        || w.len() != n * k
        || dst.len() != m * n
    {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let out = DisjointOut(dst.as_mut_ptr());
        let run = |rows: std::ops::Range<usize>| {
            // SAFETY: the CPU has AVX2/FMA (`available`); the shapes were checked above; each
            // (token, weight row) of `dst` is written by the one call owning that weight row.
            unsafe { rows_kernel(x, w, m, k, n, rows, &out) }
        };
        for_ranges(n.div_ceil(ROWS_PER_ITEM), m * k * n, PARALLEL_MIN_MACS, |items| {
            run(items.start * ROWS_PER_ITEM..n.min(items.end * ROWS_PER_ITEM));
        });
        Some(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Every token row against weight rows `rows`: weight-row tiles outermost, so a tile's
/// `NR` rows stay in L1 while all token tiles stream past them.
#[cfg(target_arch = "x86_64")]
unsafe fn rows_kernel(
    x: &[f32],
    w: &[f32],
    m: usize,
    k: usize,
    n: usize,
    rows: std::ops::Range<usize>,
    out: &DisjointOut,
) {
    let mut j = rows.start;
    while j < rows.end {
        let nr = NR.min(rows.end - j);
        let mut i = 0;
        while i < m {
            let mr = MR.min(m - i);
            let xp = x[i * k..].as_ptr();
            let wp = w[j * k..].as_ptr();
            // SAFETY: rows i..i+mr of x and j..j+nr of w are in bounds (k each); the output
            // block (i..i+mr) × (j..j+nr) lies inside dst (m × n).
            unsafe {
                let op = out.0.add(i * n + j);
                match (mr, nr) {
                    (4, 3) => tile::<4, 3>(xp, wp, k, op, n),
                    (4, 2) => tile::<4, 2>(xp, wp, k, op, n),
                    (4, _) => tile::<4, 1>(xp, wp, k, op, n),
                    (3, 3) => tile::<3, 3>(xp, wp, k, op, n),
                    (3, 2) => tile::<3, 2>(xp, wp, k, op, n),
                    (3, _) => tile::<3, 1>(xp, wp, k, op, n),
                    (2, 3) => tile::<2, 3>(xp, wp, k, op, n),
                    (2, 2) => tile::<2, 2>(xp, wp, k, op, n),
                    (2, _) => tile::<2, 1>(xp, wp, k, op, n),
                    (_, 3) => tile::<1, 3>(xp, wp, k, op, n),
                    (_, 2) => tile::<1, 2>(xp, wp, k, op, n),
                    _ => tile::<1, 1>(xp, wp, k, op, n),
                }
            }
            i += mr;
        }
        j += nr;
    }
}

/// `R` token rows (`x`, stride `k`) against `C` weight rows (`w`, stride `k`); the dot
/// products go to `out[r · ldo + c]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const C: usize>(
    x: *const f32,
    w: *const f32,
    k: usize,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    let mut p = 0;
    while p < k {
        if p % 16 == 0 {
            // The weight rows two tiles on follow these `C` rows in memory: ask for them now,
            // one cache line per row per 16 lanes, so that a weight streamed from memory (a
            // decode step's experts) arrives while this tile computes. A prefetch never faults,
            // past the end of the weight included.
            for c in 0..C {
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add((2 * C + c) * k + p).cast::<i8>());
            }
        }
        let mut wv = [_mm256_setzero_ps(); C];
        for (c, v) in wv.iter_mut().enumerate() {
            // SAFETY: p + 8 <= k (k is a multiple of 8); row c of C is in bounds (caller).
            *v = unsafe { _mm256_loadu_ps(w.add(c * k + p)) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: as above, for row r of R.
            let xv = unsafe { _mm256_loadu_ps(x.add(r * k + p)) };
            for (a, v) in row.iter_mut().zip(&wv) {
                *a = _mm256_fmadd_ps(xv, *v, *a);
            }
        }
        p += 8;
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, a) in row.iter().enumerate() {
            // SAFETY: the output block is in bounds (caller).
            unsafe { *out.add(r * ldo + c) = hsum(*a) };
        }
    }
}

/// Sum of the 8 lanes, in a fixed order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum(x: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(i: usize, salt: u64) -> f32 {
        let mut h = (i as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
        (h % 20001) as f32 / 10000.0 - 1.0
    }

    /// Within f32 rounding of an f64 reference, for every tile shape and tail.
    #[test]
    fn matches_an_f64_reference() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX2/FMA");
            return;
        }
        for &(m, k, n) in &[(1, 8, 1), (3, 16, 5), (4, 64, 3), (5, 512, 7), (13, 256, 100), (34, 136, 257)] {
            let x: Vec<f32> = (0..m * k).map(|i| det(i, 3)).collect();
            let w: Vec<f32> = (0..n * k).map(|i| det(i, 11)).collect();
            let mut got = vec![f32::NAN; m * n];
            matmul((m, k, n), &x, &w, &mut got).expect("kernel available");
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|p| x[i * k + p] as f64 * w[j * k + p] as f64).sum();
                    let g = got[i * n + j] as f64;
                    assert!(
                        (g - want).abs() <= 1e-5 * (k as f64).sqrt(),
                        "m={m} k={k} n={n} ({i},{j}): {g} vs {want}"
                    );
                }
            }
        }
    }

    /// An output does not depend on the other rows of the call, nor on the pool.
    #[test]
    fn a_row_is_the_same_alone_or_in_a_batch_and_on_any_thread_count() {
        if !available() {
            return;
        }
        let (m, k, n) = (37, 512, 600);
        let x: Vec<f32> = (0..m * k).map(|i| det(i, 5)).collect();
        let w: Vec<f32> = (0..n * k).map(|i| det(i, 9)).collect();
        let mut pooled = vec![0f32; m * n];
        matmul((m, k, n), &x, &w, &mut pooled).unwrap();
        let mut alone = vec![0f32; m * n];
        super::super::cpu_f32::serial(|| matmul((m, k, n), &x, &w, &mut alone)).unwrap();
        assert!(pooled.iter().zip(&alone).all(|(a, b)| a.to_bits() == b.to_bits()));
        for i in [0, 5, 36] {
            let mut one = vec![0f32; n];
            matmul((1, k, n), &x[i * k..(i + 1) * k], &w, &mut one).unwrap();
            assert!(
                one.iter().zip(&pooled[i * n..(i + 1) * n]).all(|(a, b)| a.to_bits() == b.to_bits()),
                "row {i}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let mut dst = vec![0f32; 2];
        assert!(matmul((1, 12, 2), &[0.0; 12], &[0.0; 24], &mut dst).is_none());
        assert!(matmul((1, 8, 2), &[0.0; 8], &[0.0; 8], &mut dst).is_none());
    }
}
