//! The gated MLP (SwiGLU) of dense layers, shared experts and routed experts: one type that
//! the model and the CPU expert path (`moe_cpu`) both build on, so neither names the other.

use candle_core::{Result, Tensor};

use super::linear::Linear;
use super::weights::WeightSource;

fn silu(x: &Tensor) -> Result<Tensor> {
    // Composed form: x · σ(x), differentiable.
    x.mul(&candle_nn::ops::sigmoid(x)?)
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
        let h = match super::pooled_ops::swiglu(&g, &u)? {
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
