//! The gated MLP (SwiGLU) of dense layers, shared experts and routed experts: one type that
//! the model and the CPU expert path (`moe_cpu`) both build on, so neither names the other.

use candle_core::{DType, Result, Tensor};

use super::linear::Linear;
use super::weights::WeightSource;

fn silu(x: &Tensor) -> Result<Tensor> {
    // Composed form: x · σ(x), differentiable.
    x.mul(&candle_nn::ops::sigmoid(x)?)
}

/// `silu(g) · u` for one element, as the composed form computes it.
pub(crate) fn silu_mul(g: f32, u: f32) -> f32 {
    let s = ((-g).exp() + 1.0).recip();
    (g * s) * u
}

/// `silu(g) · u` in one pass for f32 CPU inference (no graph), where the composed form
/// allocates and walks two temporaries. The same operations in the same order as the composed
/// form (candle's sigmoid is `1 / (e^-g + 1)`), so the result is bit-identical to it. None
/// when this does not apply.
fn silu_mul_cpu(g: &Tensor, u: &Tensor) -> Result<Option<Tensor>> {
    if g.track_op()
        || u.track_op()
        || g.dtype() != DType::F32
        || u.dtype() != DType::F32
        || !g.device().is_cpu()
        || g.dims() != u.dims()
    {
        return Ok(None);
    }
    let Some(out) = super::cpu_f32::with_slices(&[g, u], |s| {
        s[0].iter().zip(s[1]).map(|(&g, &u)| silu_mul(g, u)).collect::<Vec<f32>>()
    }) else {
        return Ok(None);
    };
    Ok(Some(Tensor::from_vec(out, g.dims(), g.device())?))
}

#[derive(Debug, Clone)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    pub(crate) fn new(
        ws: &dyn WeightSource,
        name: &str,
        hidden: usize,
        inter: usize,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            gate_proj: ws.get_linear(&format!("{name}.gate_proj"), inter, hidden)?,
            up_proj: ws.get_linear(&format!("{name}.up_proj"), inter, hidden)?,
            down_proj: ws.get_linear(&format!("{name}.down_proj"), hidden, inter)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate_proj.forward(x)?;
        let u = self.up_proj.forward(x)?;
        let h = match silu_mul_cpu(&g, &u)? {
            Some(h) => h,
            None => (silu(&g)? * u)?,
        };
        self.down_proj.forward(&h)
    }

    pub(crate) fn linears_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<(String, &'a mut Linear)>) {
        let Mlp { gate_proj, up_proj, down_proj } = self;
        out.push((format!("{prefix}.gate_proj"), gate_proj));
        out.push((format!("{prefix}.up_proj"), up_proj));
        out.push((format!("{prefix}.down_proj"), down_proj));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The one-pass form gives the composed form's bits, including large and negative gates.
    #[test]
    fn fused_silu_mul_is_bit_identical_to_the_composed_form() {
        let n = 3 * 257;
        let g: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2001) as f32 / 50.0 - 20.0).collect();
        let u: Vec<f32> = (0..n).map(|i| ((i * 104_729) % 1999) as f32 / 999.0 - 1.0).collect();
        let g = Tensor::from_vec(g, (3, 257), &Device::Cpu).unwrap();
        let u = Tensor::from_vec(u, (3, 257), &Device::Cpu).unwrap();
        let fused: Vec<f32> =
            silu_mul_cpu(&g, &u).unwrap().expect("applies").flatten_all().unwrap().to_vec1().unwrap();
        let composed: Vec<f32> = (silu(&g).unwrap() * &u).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(fused.iter().zip(&composed).all(|(a, b)| a.to_bits() == b.to_bits()));
        // A non-contiguous gate takes the composed form.
        assert!(silu_mul_cpu(&g.t().unwrap(), &u.t().unwrap()).unwrap().is_none());
    }
}
