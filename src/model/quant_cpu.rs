//! CPU compute on the stored blocks of quantized weights: the block view kernels read, and
//! the q8_0 matmul.
//!
//! Why q8_0 does not take candle's `QTensor` matmul on every CPU: with AVX512-VNNI, candle
//! multiplies q8_0 weights through its repacked tiles, which quantize the activations to
//! q8_K — one scale per 256 values — where ggml (and candle's own generic path) quantize them
//! to q8_0, one scale per 32. On the trained `llada2-kquant` fixture that coarser rounding took
//! argmax agreement with f32 from 99.12% to 98.44% (q8_0) and from 98.73% to 97.95%
//! (q4_k_moe); the mean |logit error| from 0.051 to 0.068 (`tests/quant_parity.rs`). Here
//! q8_0 always computes against q8_0 activations, so a q8_0 model gives the same numbers on
//! every CPU: [`super::q8_avx2`] where the CPU has AVX2 (bit-identical to candle's generic
//! q8_0 matmul), that generic matmul elsewhere. The tiles are also a second copy of the weight
//! (0.34 GB for LLaDA2.1-mini's `lm_head`), which this path does not build.

use candle_core::quantized::k_quants::{self, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, Layout, Result, Shape};

/// Raw blocks of a quantized weight `[out, in]`, borrowed from its `QTensor`.
pub(crate) fn blocks<T: GgmlType>(q: &QTensor) -> Result<&[T]> {
    if q.dtype() != T::DTYPE {
        candle_core::bail!("internal: expected {:?} blocks, found {:?}", T::DTYPE, q.dtype());
    }
    let data = q.data()?;
    let std::borrow::Cow::Borrowed(bytes) = data else {
        candle_core::bail!("internal: quantized weight is not in CPU memory");
    };
    let size = std::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size)
        || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
    {
        candle_core::bail!("internal: quantized weight bytes do not form whole aligned blocks");
    }
    // SAFETY: `bytes` is the CPU storage of a QTensor of dtype T (a Vec<T>), so it is a valid,
    // aligned sequence of T blocks that lives as long as `q`.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) })
}

/// `dst[m, n] = lhs[m, k] · wᵀ` on q8_0 blocks against q8_0 activations: the AVX2 kernel where
/// the CPU has it, candle's generic matmul (the same bits) elsewhere. Every q8_0 product on the
/// CPU comes here.
pub(crate) fn q8_0_blocks_matmul(
    mkn: (usize, usize, usize),
    lhs: &[f32],
    w: &[BlockQ8_0],
    dst: &mut [f32],
) -> Result<()> {
    if super::q8_avx2::matmul(mkn, lhs, w, dst).is_none() {
        k_quants::matmul(mkn, lhs, w, dst)?;
    }
    Ok(())
}

/// `x · Wᵀ` for a q8_0 weight `q` `[n, k]` and a contiguous f32 or bf16 input `[.., k]` (the
/// result in the input's dtype), against q8_0 activations. None for any other weight type or
/// input dtype: the caller takes candle's matmul.
pub(crate) fn q8_0_matmul(
    q: &QTensor,
    storage: &CpuStorage,
    layout: &Layout,
) -> Result<Option<(CpuStorage, Shape)>> {
    if q.dtype() != GgmlDType::Q8_0 {
        return Ok(None);
    }
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Ok(None);
    };
    let widened: Vec<f32>;
    let lhs: &[f32] = match storage {
        CpuStorage::F32(v) => &v[start..end],
        CpuStorage::BF16(v) => {
            widened = v[start..end].iter().map(|b| b.to_f32()).collect();
            &widened
        }
        _ => return Ok(None),
    };
    let (n, k) = q.shape().dims2()?;
    let dims = layout.shape().dims();
    if dims.last() != Some(&k) {
        candle_core::bail!("q8_0 matmul: input {dims:?} does not end in the weight's {k} columns");
    }
    let m = lhs.len() / k;
    let w = blocks::<BlockQ8_0>(q)?;
    let mut dst = vec![0f32; m * n];
    q8_0_blocks_matmul((m, k, n), lhs, w, &mut dst)?;
    let mut out = dims.to_vec();
    *out.last_mut().expect("rank checked above") = n;
    let out = Shape::from(out);
    Ok(Some(match storage {
        CpuStorage::BF16(_) => (CpuStorage::BF16(dst.into_iter().map(half::bf16::from_f32).collect()), out),
        _ => (CpuStorage::F32(dst), out),
    }))
}
