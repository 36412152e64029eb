//! The CPU inference path of a MoE layer whose routed experts are quantized (GGUF).
//!
//! Why not candle's quantized matmul per expert: on x86 without AVX512-VNNI, candle's q4_k
//! `QTensor` matmul lazily builds a *repacked* copy of the weight (16-row tiles with
//! pre-unpacked f32 scales, 0.75 bytes/weight) the first time it runs, and keeps it next to
//! the q4_k blocks (0.5625 bytes/weight) for the life of the tensor: 2.3× the stored size.
//! For LLaDA2.1-mini's 256×3 experts per layer that is 1.06 GB resident per MoE layer for
//! 0.45 GB stored. Here the experts' dot products run straight on the stored blocks with
//! candle's public k-quant dot kernels (`GgmlType::vec_dot_4`, the kernels of candle's own
//! non-repacked `k_quants::matmul`), so each weight is held once.
//!
//! The layer is routed once; each token row is quantized once (shared by every expert's
//! gate and up projections); the experts with tokens are spread over candle's CPU thread
//! pool (one expert = gate, up, SiLU, down for all its rows, with no tensor allocations);
//! each (token, slot) output is written to one preallocated buffer, then summed per token
//! in ascending expert order — the order of the reference loop, so with equal expert
//! outputs the result is bit-identical.

use candle_core::quantized::GgmlDType;
use candle_core::quantized::k_quants::{BlockQ4K, BlockQ5_0, BlockQ8_0, GgmlType};
use candle_core::{DType, Result, Tensor};

use super::cpu_f32::{DisjointOut, for_ranges};
use super::mlp::Mlp;
use super::pooled_ops::POOL_MIN_ELEMENTS;
use super::quant_cpu::blocks;

/// `dst[c] = dot(W[c], x)` for every row `c` of `w` (`n` rows of `k` values each), on the
/// kernels of candle's generic quantized matmul (column quads, then the tail).
fn gemv<T: GgmlType>(w: &[T], n: usize, k: usize, x: &[T::VecDotType], dst: &mut [f32]) {
    let kb = k / T::BLCK_SIZE;
    let row = |c: usize| &w[c * kb..(c + 1) * kb];
    let quads = n & !3;
    let mut c = 0;
    while c < quads {
        let (a, b, cc, d) = T::vec_dot_4(k, row(c), row(c + 1), row(c + 2), row(c + 3), x);
        dst[c] = a;
        dst[c + 1] = b;
        dst[c + 2] = cc;
        dst[c + 3] = d;
        c += 4;
    }
    if n - quads >= 2 {
        let (a, b) = T::vec_dot_2(k, row(quads), row(quads + 1), x);
        dst[quads] = a;
        dst[quads + 1] = b;
    }
    if (n - quads) & 1 == 1 {
        dst[n - 1] = T::vec_dot(k, row(n - 1), x);
    }
}

/// Rows of activations a weight quad is streamed against before the next quad (as in
/// candle's generic quantized matmul), so an expert with many tokens reads its weights once
/// per tile of rows instead of once per row.
const ROW_TILE: usize = 16;

/// `dst[i·n + c] = dot(W[c], x_i)` for `m` activation rows `x` (`m·k/T::BLCK_SIZE` blocks):
/// [`gemv`]'s dot products for every row, weight-quad-major within row tiles.
fn gemm_rows<T: GgmlType>(w: &[T], n: usize, k: usize, x: &[T::VecDotType], m: usize, dst: &mut [f32]) {
    if m == 1 {
        return gemv(w, n, k, x, dst);
    }
    let kb = k / T::BLCK_SIZE;
    let row = |c: usize| &w[c * kb..(c + 1) * kb];
    let quads = n & !3;
    for t0 in (0..m).step_by(ROW_TILE) {
        let t1 = m.min(t0 + ROW_TILE);
        let mut c = 0;
        while c < quads {
            for i in t0..t1 {
                let xi = &x[i * kb..(i + 1) * kb];
                let (a, b, cc, d) = T::vec_dot_4(k, row(c), row(c + 1), row(c + 2), row(c + 3), xi);
                let o = &mut dst[i * n + c..i * n + c + 4];
                o.copy_from_slice(&[a, b, cc, d]);
            }
            c += 4;
        }
        for i in t0..t1 {
            let xi = &x[i * kb..(i + 1) * kb];
            if n - quads >= 2 {
                let (a, b) = T::vec_dot_2(k, row(quads), row(quads + 1), xi);
                dst[i * n + quads] = a;
                dst[i * n + quads + 1] = b;
            }
            if (n - quads) & 1 == 1 {
                dst[i * n + n - 1] = T::vec_dot(k, row(n - 1), xi);
            }
        }
    }
}

/// One quantized expert's weights.
struct ExpertBlocks<'a, G: GgmlType, D: GgmlType> {
    gate: &'a [G],
    up: &'a [G],
    down: &'a [D],
}

/// What one forward of the routed experts needs besides the weights.
struct Routed<'a> {
    /// Token rows `[t, hidden]`, f32.
    x: &'a [f32],
    hidden: usize,
    /// Per expert, the token rows routed to it and each row's slot (`token·top_k + k`).
    rows_of: &'a [Vec<u32>],
    slot_of: &'a [Vec<u32>],
    /// Routing weights `[t·top_k]` by slot.
    weights: &'a [f32],
    top_k: usize,
}

fn run<'a, G: GgmlType, D: GgmlType>(experts: &'a [Mlp], r: &Routed, inter: usize) -> Result<Vec<f32>> {
    let h = r.hidden;
    let t = r.x.len() / h;
    let mut ws: Vec<ExpertBlocks<G, D>> = Vec::with_capacity(experts.len());
    for m in experts {
        let q = |l: &'a super::linear::Linear| l.quant.as_ref().map(|q| q.q.as_ref());
        let (Some(g), Some(u), Some(d)) = (q(&m.gate_proj), q(&m.up_proj), q(&m.down_proj)) else {
            candle_core::bail!("internal: expert is not quantized");
        };
        ws.push(ExpertBlocks { gate: blocks::<G>(g)?, up: blocks::<G>(u)?, down: blocks::<D>(d)? });
    }
    // Each token row quantized once, for every expert's gate and up; rows spread over the
    // pool (candle's `from_float` is scalar: ~0.2 ms for 32 rows of 2048).
    let hb = h / G::BLCK_SIZE;
    let mut xq: Vec<G::VecDotType> = vec![G::VecDotType::zeros(); t * hb];
    let xq_out = DisjointOut(xq.as_mut_ptr());
    for_ranges(t, t * h, POOL_MIN_ELEMENTS, |rows| {
        for i in rows {
            // SAFETY: row i's blocks, written by this range only.
            G::VecDotType::from_float(&r.x[i * h..(i + 1) * h], unsafe { xq_out.slice(i * hb, hb) });
        }
    });
    let active: Vec<usize> = (0..experts.len()).filter(|&e| !r.rows_of[e].is_empty()).collect();
    // Per-slot expert outputs (unweighted), `[t·top_k, hidden]`.
    let mut slots = vec![0f32; t * r.top_k * h];
    let out = DisjointOut(slots.as_mut_ptr());
    let ib = inter / D::BLCK_SIZE;
    let work = |range: std::ops::Range<usize>| {
        let (mut xs, mut g, mut u, mut aq, mut y) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &e in &active[range] {
            let w = &ws[e];
            let rows = &r.rows_of[e];
            let m = rows.len();
            // This expert's token rows, gathered (already quantized).
            xs.clear();
            for &row in rows {
                xs.extend_from_slice(&xq[row as usize * hb..(row as usize + 1) * hb]);
            }
            g.resize(m * inter, 0f32);
            u.resize(m * inter, 0f32);
            gemm_rows(w.gate, inter, h, &xs, m, &mut g);
            gemm_rows(w.up, inter, h, &xs, m, &mut u);
            // SiLU(gate) · up, as candle's sigmoid op computes it.
            for (gi, &ui) in g.iter_mut().zip(&u) {
                *gi = super::pooled_ops::silu_mul(*gi, ui);
            }
            aq.resize(m * ib, D::VecDotType::zeros());
            for (gr, ar) in g.chunks_exact(inter).zip(aq.chunks_exact_mut(ib)) {
                D::VecDotType::from_float(gr, ar);
            }
            y.resize(m * h, 0f32);
            gemm_rows(w.down, h, inter, &aq, m, &mut y);
            for (yr, &slot) in y.chunks_exact(h).zip(&r.slot_of[e]) {
                // SAFETY: slot rows are disjoint and each slot belongs to exactly one expert.
                unsafe { out.slice(slot as usize * h, h) }.copy_from_slice(yr);
            }
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(active.len(), work);
    // Sum per token in ascending expert order (the reference loop's order), tokens spread
    // over the pool.
    let mut acc = vec![0f32; t * h];
    let mut expert_of_slot = vec![usize::MAX; t * r.top_k];
    for (e, slots_e) in r.slot_of.iter().enumerate() {
        for &s in slots_e {
            expert_of_slot[s as usize] = e;
        }
    }
    let acc_out = DisjointOut(acc.as_mut_ptr());
    for_ranges(t, t * r.top_k * h, POOL_MIN_ELEMENTS, |toks| {
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(r.top_k);
        for tok in toks {
            // SAFETY: token tok's row, written by this range only.
            let dst = unsafe { acc_out.slice(tok * h, h) };
            order.clear();
            for k in 0..r.top_k {
                let s = tok * r.top_k + k;
                if expert_of_slot[s] != usize::MAX {
                    order.push((expert_of_slot[s], s));
                }
            }
            order.sort_unstable();
            for &(_, s) in &order {
                let we = r.weights[s];
                for (d, o) in dst.iter_mut().zip(&slots[s * h..(s + 1) * h]) {
                    *d += we * o;
                }
            }
        }
    });
    Ok(acc)
}

/// The quantized type shared by an expert list's `gate`/`up` and by its `down`, when every
/// expert is quantized the same way with no LoRA or bias and the fast path applies.
fn uniform(experts: &[Mlp]) -> Option<(GgmlDType, GgmlDType)> {
    let ty = |l: &super::linear::Linear| {
        if l.lora.is_some() || l.bias.is_some() { None } else { l.quant.as_ref().map(|q| q.dtype()) }
    };
    let first = experts.first()?;
    let gu = ty(&first.gate_proj)?;
    let dn = ty(&first.down_proj)?;
    let ok = |t: GgmlDType| matches!(t, GgmlDType::Q4K | GgmlDType::Q5_0 | GgmlDType::Q8_0);
    if !ok(gu) || !ok(dn) {
        return None;
    }
    experts
        .iter()
        .all(|m| ty(&m.gate_proj) == Some(gu) && ty(&m.up_proj) == Some(gu) && ty(&m.down_proj) == Some(dn))
        .then_some((gu, dn))
}

/// True when [`forward`] takes the quantized expert path for these experts.
pub fn applies(experts: &[Mlp]) -> bool {
    uniform(experts).is_some()
}

/// The routed experts' weighted sum `[t, hidden]` (f32) on the quantized path, or `None`
/// when the experts are not uniformly quantized (then the caller takes the tensor path).
pub fn forward(experts: &[Mlp], flat: &Tensor, r: &RoutingRef) -> Result<Option<Tensor>> {
    let Some((gu, dn)) = uniform(experts) else {
        return Ok(None);
    };
    let (t, h) = flat.dims2()?;
    let inter = experts[0].gate_proj.out_features();
    if !h.is_multiple_of(gu.block_size()) || !inter.is_multiple_of(dn.block_size()) {
        return Ok(None);
    }
    let x: Vec<f32> = flat.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let routed = Routed {
        x: &x,
        hidden: h,
        rows_of: r.rows_of,
        slot_of: r.slot_of,
        weights: r.weights,
        top_k: r.top_k,
    };
    // Every (gate/up, down) pair of the types `quantize` writes for experts.
    macro_rules! dispatch {
        ($($g:ident => $G:ty),*) => {
            match (gu, dn) {
                $((GgmlDType::$g, GgmlDType::Q4K) => run::<$G, BlockQ4K>(experts, &routed, inter)?,
                  (GgmlDType::$g, GgmlDType::Q5_0) => run::<$G, BlockQ5_0>(experts, &routed, inter)?,
                  (GgmlDType::$g, GgmlDType::Q8_0) => run::<$G, BlockQ8_0>(experts, &routed, inter)?,)*
                _ => return Ok(None),
            }
        };
    }
    let acc = dispatch!(Q4K => BlockQ4K, Q5_0 => BlockQ5_0, Q8_0 => BlockQ8_0);
    Ok(Some(Tensor::from_vec(acc, (t, h), flat.device())?))
}

/// The routing of one layer, as the MoE forward computed it.
pub struct RoutingRef<'a> {
    /// Per expert, the token rows routed to it and each row's slot (`token·top_k + k`).
    pub rows_of: &'a [Vec<u32>],
    pub slot_of: &'a [Vec<u32>],
    /// Routing weights `[t·top_k]` by slot.
    pub weights: &'a [f32],
    pub top_k: usize,
}
