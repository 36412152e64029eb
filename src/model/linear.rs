//! Linear layers whose frozen base weight never receives a gradient, with an optional LoRA
//! adapter on top.
//!
//! candle's matmul backward always computes the gradient of both operands, so a frozen
//! weight would still cost a full weight-gradient matmul (and its memory) per layer. On CPU
//! we route the frozen product through [`FrozenMatmul`], a custom op whose backward returns
//! only the input gradient.
//!
//! A base loaded from GGUF stays quantized ([`QuantBase`]): on the CPU the product runs
//! through [`FrozenQMatmul`] (q8_0 against q8_0 activations, k-quants on candle's kernels),
//! whose backward dequantizes for `dx` only. A LoRA adapter on top stays f32.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor};

/// Rows of a bf16 weight widened at a time by [`Linear::forward`] on the CPU (8192 × 2048
/// f32 = 64 MiB for LLaDA2.1-mini's lm_head).
pub const BF16_BLOCK_ROWS: usize = 8192;

/// Token rows up to which one thread takes [`super::f32_avx2`] over candle's gemm
/// (`draftscope speed --what f32-linear --threads 1`: 1.36× at 32 rows, 0.93× at 160 on an
/// AVX2 EPYC; 1.07–1.44× and 0.80–0.96× on an AVX-512 one).
pub const F32_KERNEL_MAX_ROWS: usize = 64;

/// `x · wᵀ` for f32 inference on an x86 CPU with AVX2/FMA (`w`: `[out, in]`, f32, CPU), for
/// calls of few token rows, where candle's gemm spends as long packing the weight as
/// multiplying it (see [`super::f32_avx2`]); with more than one thread, for every call (gemm
/// splits these shapes poorly: at 2 threads it was slower than at 1). None when this does
/// not apply; the caller then takes candle's matmul.
pub(crate) fn f32_kernel(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype() != DType::F32
        || w.dtype() != DType::F32
        || !w.device().is_cpu()
        || x.track_op()
        || !super::f32_avx2::available()
    {
        return Ok(None);
    }
    let (n, k) = w.dims2()?;
    let dims = x.dims().to_vec();
    let m: usize = dims[..dims.len() - 1].iter().product();
    if dims.last() != Some(&k) || (m > F32_KERNEL_MAX_ROWS && candle_core::utils::get_num_threads() == 1) {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let mut shape = dims;
    *shape.last_mut().unwrap() = n;
    let done = super::cpu_f32::fill_new(&[&x, w], &shape, |s, dst| {
        // SAFETY: the whole `m · n` buffer, lent to this one call.
        super::f32_avx2::matmul((m, k, n), s[0], s[1], unsafe { dst.slice(0, m * n) })
    })?;
    Ok(match done {
        Some((out, Some(()))) => Some(out),
        _ => None,
    })
}

/// A frozen quantized base weight `[out, in]`.
#[derive(Clone)]
pub struct QuantBase {
    pub q: Arc<QTensor>,
}

impl std::fmt::Debug for QuantBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QuantBase({:?}, {:?})", self.q.dtype(), self.q.shape())
    }
}

impl QuantBase {
    pub fn dtype(&self) -> GgmlDType {
        self.q.dtype()
    }
}

/// Low-rank adapter: `y += scale · dropout(x) Aᵀ Bᵀ` (PEFT convention, `scale = alpha / r`).
#[derive(Debug, Clone)]
pub struct Lora {
    /// `[r, in]`
    pub a: Tensor,
    /// `[out, r]`
    pub b: Tensor,
    pub scale: f64,
    pub dropout: f32,
}

#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`, the checkpoint's layout. Empty (`[0]`) when `quant` holds the base.
    pub weight: Tensor,
    /// The base as a quantized tensor (GGUF); then `weight` is an empty placeholder.
    pub quant: Option<QuantBase>,
    pub bias: Option<Tensor>,
    pub lora: Option<Lora>,
    /// True when the base weight is trainable (full pretraining): use the plain matmul so
    /// it gets a gradient.
    pub trainable: bool,
    /// Dropout is applied only while training.
    pub training: bool,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias, quant: None, lora: None, trainable: false, training: false }
    }

    /// A frozen linear whose base is quantized.
    pub fn quantized(q: QTensor, device: &candle_core::Device) -> Result<Self> {
        let mut l = Self::new(Tensor::zeros(0, DType::F32, device)?, None);
        l.quant = Some(QuantBase { q: Arc::new(q) });
        Ok(l)
    }

    pub fn out_features(&self) -> usize {
        match &self.quant {
            Some(q) => q.q.shape().dims().first().copied().unwrap_or(0),
            None => self.weight.dim(0).unwrap_or(0),
        }
    }

    pub fn in_features(&self) -> usize {
        match &self.quant {
            Some(q) => q.q.shape().dims().get(1).copied().unwrap_or(0),
            None => self.weight.dim(1).unwrap_or(0),
        }
    }

    /// The base weight as a dense tensor (dequantized to f32 when quantized).
    pub fn dense_weight(&self) -> Result<Tensor> {
        match &self.quant {
            Some(q) => q.q.dequantize(&self.weight.device().clone()),
            None => Ok(self.weight.clone()),
        }
    }

    fn quant_forward(&self, q: &QuantBase, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        let op = FrozenQMatmul { q: q.q.clone() };
        if x.track_op() {
            x.apply_op1(op)
        } else if x.device().is_cpu() {
            x.apply_op1_no_bwd(&op)
        } else {
            x.apply_op1_no_bwd(q.q.as_ref())
        }
    }

    /// bf16 inference on the CPU for a large weight: candle's CPU bf16 matmul widens the
    /// *whole* weight storage to f32 on every call (it has no bf16 gemm), 1.29 GB per forward
    /// for LLaDA2.1-mini's lm_head. Here the weight is widened [`BF16_BLOCK_ROWS`] rows at a
    /// time and each block multiplied in f32 (what candle computes), so the transient is one
    /// block. None when this does not apply.
    fn bf16_row_blocks(&self, x: &Tensor) -> Result<Option<Tensor>> {
        let w = &self.weight;
        if w.dtype() != DType::BF16
            || x.dtype() != DType::BF16
            || self.trainable
            || x.track_op()
            || !x.device().is_cpu()
            || w.rank() != 2
            || w.elem_count() <= BF16_BLOCK_ROWS * w.dim(1)?
        {
            return Ok(None);
        }
        let (n, k) = w.dims2()?;
        let (storage, layout) = w.storage_and_layout();
        let (Storage::Cpu(CpuStorage::BF16(v)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        else {
            return Ok(None);
        };
        let v = &v[start..end];
        let dims = x.dims().to_vec();
        let m: usize = dims[..dims.len() - 1].iter().product();
        let x32 = x.contiguous()?.reshape((m, k))?.to_dtype(DType::F32)?;
        let mut parts = Vec::with_capacity(n.div_ceil(BF16_BLOCK_ROWS));
        for r in (0..n).step_by(BF16_BLOCK_ROWS) {
            let rows = BF16_BLOCK_ROWS.min(n - r);
            let block: Vec<f32> = v[r * k..(r + rows) * k].iter().map(|b| b.to_f32()).collect();
            let wb = Tensor::from_vec(block, (rows, k), x.device())?;
            parts.push(x32.matmul(&wb.t()?)?);
        }
        drop(storage);
        let y = Tensor::cat(&parts, 1)?.to_dtype(DType::BF16)?;
        let mut out = dims;
        *out.last_mut().unwrap() = n;
        Ok(Some(y.reshape(out)?))
    }

    /// A frozen, unquantized f32 `[out, in]` base weight on the CPU: what the f32 kernel
    /// computes on (the bias and adapter, if any, are added after the base product).
    pub(crate) fn frozen_f32_cpu(&self) -> bool {
        let w = &self.weight;
        self.quant.is_none()
            && !self.trainable
            && w.dtype() == DType::F32
            && w.rank() == 2
            && w.device().is_cpu()
    }

    /// [`f32_kernel`] on this layer's base weight, when it is a frozen f32 CPU weight.
    fn f32_kernel(&self, x: &Tensor) -> Result<Option<Tensor>> {
        if !self.frozen_f32_cpu() {
            return Ok(None);
        }
        f32_kernel(x, &self.weight)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Inference (no graph) and trainable weights take candle's matmul; a frozen weight
        // inside a graph takes the op that skips its gradient.
        let base = if let Some(q) = &self.quant {
            self.quant_forward(q, x)?
        } else if let Some(y) = self.bf16_row_blocks(x)? {
            y
        } else if let Some(y) = self.f32_kernel(x)? {
            y
        } else if self.trainable || !x.track_op() || !x.device().is_cpu() {
            x.broadcast_matmul(&self.weight.t()?)?
        } else {
            let dims = x.dims().to_vec();
            let (lead, inner) = dims.split_at(dims.len() - 1);
            let rows: usize = lead.iter().product();
            let x2 = x.contiguous()?.reshape((rows, inner[0]))?;
            let y = x2.apply_op1(FrozenMatmul { weight: self.weight.clone() })?;
            let mut out_dims = lead.to_vec();
            out_dims.push(self.out_features());
            y.reshape(out_dims)?
        };
        let mut y = match &self.bias {
            Some(b) => base.broadcast_add(b)?,
            None => base,
        };
        if let Some(l) = &self.lora {
            let xin = if self.training && l.dropout > 0.0 {
                candle_nn::ops::dropout(x, l.dropout)?
            } else {
                x.clone()
            };
            let h = xin.broadcast_matmul(&l.a.t()?)?;
            let d = h.broadcast_matmul(&l.b.t()?)?;
            y = (y + (d * l.scale)?)?;
        }
        Ok(y)
    }
}

/// `x · Wᵀ` for a constant `W`: the backward gives `dx = dy · W` and nothing for `W`.
struct FrozenMatmul {
    weight: Tensor,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("frozen-matmul needs a contiguous input".into()))?;
        let shape = layout.shape().clone();
        let x = match storage {
            CpuStorage::F32(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
            CpuStorage::BF16(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
            CpuStorage::F16(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
            CpuStorage::F64(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
            _ => candle_core::bail!("frozen-matmul: unsupported dtype"),
        };
        let w = if self.weight.dtype() == x.dtype() {
            self.weight.clone()
        } else {
            self.weight.to_dtype(x.dtype())?
        };
        let y = x.matmul(&w.t()?)?.contiguous()?;
        let out_shape = y.shape().clone();
        let (s, _) = y.storage_and_layout();
        match &*s {
            Storage::Cpu(c) => Ok((c.clone(), out_shape)),
            _ => candle_core::bail!("frozen-matmul: expected a CPU tensor"),
        }
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let w = if self.weight.dtype() == grad_res.dtype() {
            self.weight.clone()
        } else {
            self.weight.to_dtype(grad_res.dtype())?
        };
        Ok(Some(grad_res.matmul(&w)?))
    }
}

/// `x · Wᵀ` for a constant quantized `W` on the CPU (inference, and frozen bases inside a
/// training graph): q8_0 through `quant_cpu`, other types through candle's quantized matmul;
/// the backward gives `dx = dy · W` (W dequantized for that product) and nothing for `W`.
struct FrozenQMatmul {
    q: Arc<QTensor>,
}

impl CustomOp1 for FrozenQMatmul {
    fn name(&self) -> &'static str {
        "frozen-qmatmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        // q8_0 against q8_0 activations on every CPU (see `quant_cpu`); the rest is candle's.
        match super::quant_cpu::q8_0_matmul(&self.q, storage, layout)? {
            Some(out) => Ok(out),
            None => self.q.as_ref().cpu_fwd(storage, layout),
        }
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let w = self.q.dequantize(grad_res.device())?.to_dtype(grad_res.dtype())?;
        Ok(Some(grad_res.broadcast_matmul(&w)?))
    }
}

/// Converts a weight to the compute dtype only when needed.
pub fn to_dtype(t: Tensor, dtype: DType) -> Result<Tensor> {
    if t.dtype() == dtype { Ok(t) } else { t.to_dtype(dtype) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// q8_0 computes against q8_0 activations — candle's generic q8_0 matmul, bit for bit —
    /// also at widths where candle would tile it (out a multiple of 16, in of 256) and round
    /// the activations to q8_K instead; f32 and bf16 inputs, inference and inside a graph.
    #[test]
    fn q8_0_weights_compute_against_q8_0_activations() {
        use candle_core::quantized::k_quants::{self, BlockQ8_0, GgmlType};
        let dev = Device::Cpu;
        let (m, k, n) = (5, 512, 48);
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let wv: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
        let mut blocks = vec![BlockQ8_0::zeros(); n * k / 32];
        BlockQ8_0::from_float(&wv, &mut blocks);
        let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let mut want = vec![0f32; m * n];
        k_quants::matmul((m, k, n), &xv, &blocks, &mut want).unwrap();
        let l = Linear::quantized(q, &dev).unwrap();
        let got: Vec<f32> = l.forward(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()), "inference");
        let var = candle_core::Var::from_tensor(&x).unwrap();
        let g: Vec<f32> = l.forward(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(want.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()), "in a graph");
        // bf16 input: widened, multiplied the same way, rounded once to bf16.
        let xb = x.to_dtype(DType::BF16).unwrap();
        let xbv: Vec<f32> = xb.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        k_quants::matmul((m, k, n), &xbv, &blocks, &mut want).unwrap();
        let yb = l.forward(&xb).unwrap();
        assert_eq!(yb.dtype(), DType::BF16);
        let gb: Vec<f32> = yb.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let wb: Vec<f32> = want.iter().map(|v| half::bf16::from_f32(*v).to_f32()).collect();
        assert_eq!(gb, wb, "bf16");
    }

    #[test]
    fn bf16_row_blocks_compute_what_candles_bf16_matmul_computes() {
        let dev = Device::Cpu;
        let n = BF16_BLOCK_ROWS * 2 + 77;
        let w = Tensor::randn(0f32, 1.0, (n, 64), &dev).unwrap().to_dtype(DType::BF16).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 5, 64), &dev).unwrap().to_dtype(DType::BF16).unwrap();
        let l = Linear::new(w.clone(), None);
        let blocked = l.bf16_row_blocks(&x).unwrap().expect("applies to a large bf16 weight");
        let plain = x.broadcast_matmul(&w.t().unwrap()).unwrap();
        assert_eq!(blocked.dims(), plain.dims());
        let a: Vec<f32> = blocked.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = plain.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1().unwrap();
        // Both multiply the widened values in f32 and round once to bf16; gemm's blocking may
        // order a sum differently, which can move a result by one bf16 ulp.
        let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs() / y.abs().max(1.0)));
        assert!(worst <= 1.0 / 128.0, "{worst}");
        assert!(l.bf16_row_blocks(&x.to_dtype(DType::F32).unwrap()).unwrap().is_none());
    }
}
