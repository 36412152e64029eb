//! Row-wise f32 CPU inference ops — RMSNorm and `silu(g) · u` — on candle's pool.
//!
//! candle's RMSNorm op spreads rows over rayon's pool, a second pool whose threads then
//! compete for the cores with candle's own spinning worker; a SwiGLU over a whole window ran
//! on the calling thread alone. Both are plain per-element or per-row arithmetic, so here they
//! are chunks of candle's pool, computing every value exactly as the op they replace.

use candle_core::{DType, Result, Tensor};

use super::cpu_f32::{fill_new, for_ranges};

/// Below this many elements a call stays on the calling thread (the pool's wake-up costs
/// more than it saves).
pub(crate) const POOL_MIN_ELEMENTS: usize = 1 << 15;

fn applies(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32 && t.device().is_cpu() && !t.track_op())
}

/// `x / sqrt(mean(x²) + eps) · alpha` over the last dimension, as candle_nn's `rms_norm`
/// computes each row (bit-identical). None when this does not apply.
pub(crate) fn rms_norm(x: &Tensor, alpha: &Tensor, eps: f32) -> Result<Option<Tensor>> {
    let dim = x.dims().last().copied().unwrap_or(0);
    if !applies(&[x, alpha]) || dim == 0 || alpha.dims() != [dim] {
        return Ok(None);
    }
    let n = x.elem_count();
    let done = fill_new(&[x, alpha], x.dims(), |s, dst| {
        let (src, alpha) = (s[0], s[1]);
        for_ranges(n / dim, n, POOL_MIN_ELEMENTS, |rows| {
            for r in rows {
                let row = &src[r * dim..(r + 1) * dim];
                let sum2 = row.iter().map(|&v| v * v).sum::<f32>();
                let m = (sum2 / dim as f32 + eps).sqrt();
                // SAFETY: row `r` of `dst` (`n` elements) is written by this range only.
                let o = unsafe { dst.slice(r * dim, dim) };
                for ((d, &v), &a) in o.iter_mut().zip(row).zip(alpha) {
                    *d = v / m * a;
                }
            }
        });
    })?;
    Ok(done.map(|(t, ())| t))
}

/// `silu(g) · u` for one element, as the composed form computes it (candle's sigmoid is
/// `1 / (e^-g + 1)`).
pub(crate) fn silu_mul(g: f32, u: f32) -> f32 {
    let s = ((-g).exp() + 1.0).recip();
    (g * s) * u
}

/// Elements per chunk of [`swiglu`].
const SWIGLU_CHUNK: usize = 1 << 13;

/// `silu(g) · u` per element ([`silu_mul`], bit-identical to the composed form). None when
/// this does not apply.
pub(crate) fn swiglu(g: &Tensor, u: &Tensor) -> Result<Option<Tensor>> {
    if !applies(&[g, u]) || g.dims() != u.dims() {
        return Ok(None);
    }
    let n = g.elem_count();
    let done = fill_new(&[g, u], g.dims(), |s, dst| {
        let (g, u) = (s[0], s[1]);
        for_ranges(n.div_ceil(SWIGLU_CHUNK), n, POOL_MIN_ELEMENTS, |chunks| {
            let range = chunks.start * SWIGLU_CHUNK..n.min(chunks.end * SWIGLU_CHUNK);
            // SAFETY: this range of `dst` is written by this call only.
            let o = unsafe { dst.slice(range.start, range.len()) };
            for ((d, &gv), &uv) in o.iter_mut().zip(&g[range.clone()]).zip(&u[range]) {
                *d = silu_mul(gv, uv);
            }
        });
    })?;
    Ok(done.map(|(t, ())| t))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    fn det(n: usize, salt: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ salt) % 2001) as f32 / 500.0 - 2.0).collect()
    }

    #[test]
    fn rms_norm_is_candles_op_bit_for_bit() {
        for (rows, dim) in [(3, 64), (300, 256)] {
            let x = Tensor::from_vec(det(rows * dim, 1), (1, rows, dim), &Device::Cpu).unwrap();
            let a = Tensor::from_vec(det(dim, 2), dim, &Device::Cpu).unwrap();
            let ours = super::rms_norm(&x, &a, 1e-6).unwrap().expect("applies");
            let theirs = candle_nn::ops::rms_norm(&x, &a, 1e-6).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let (o, t): (Vec<f32>, Vec<f32>) = (
                ours.flatten_all().unwrap().to_vec1().unwrap(),
                theirs.flatten_all().unwrap().to_vec1().unwrap(),
            );
            assert!(o.iter().zip(&t).all(|(a, b)| a.to_bits() == b.to_bits()), "{rows}x{dim}");
        }
    }

    /// Pooled (over `POOL_MIN_ELEMENTS`), with large and negative gates.
    #[test]
    fn swiglu_is_the_composed_form_bit_for_bit() {
        let n = 5 * super::SWIGLU_CHUNK + 17;
        let g: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2001) as f32 / 50.0 - 20.0).collect();
        let g = Tensor::from_vec(g, (1, n), &Device::Cpu).unwrap();
        let u = Tensor::from_vec(det(n, 4), (1, n), &Device::Cpu).unwrap();
        let ours: Vec<f32> =
            super::swiglu(&g, &u).unwrap().expect("applies").flatten_all().unwrap().to_vec1().unwrap();
        let composed = (candle_nn::ops::sigmoid(&g).unwrap() * &g).unwrap();
        let composed: Vec<f32> = (composed * &u).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(ours.iter().zip(&composed).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn refuses_what_it_does_not_take() {
        let x = Tensor::from_vec(det(8, 1), (2, 4), &Device::Cpu).unwrap();
        assert!(super::rms_norm(&x, &x, 1e-6).unwrap().is_none());
        let h = x.to_dtype(candle_core::DType::F16).unwrap();
        assert!(super::swiglu(&h, &h).unwrap().is_none());
        let xt = x.t().unwrap();
        assert!(super::swiglu(&xt, &xt).unwrap().is_none(), "not contiguous");
    }
}
