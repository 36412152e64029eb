//! AdamW with its moments in the open (so they can be checkpointed), a warmup + cosine
//! learning-rate schedule, and global-norm gradient clipping.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only (not norms, biases or vectors).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// AdamW over named variables. `m`/`v` are keyed like the variables.
pub struct AdamW {
    pub cfg: AdamWConfig,
    pub vars: BTreeMap<String, Var>,
    pub m: BTreeMap<String, Tensor>,
    pub v: BTreeMap<String, Tensor>,
    /// Number of updates applied so far (bias correction).
    pub t: u64,
}

impl AdamW {
    pub fn new(vars: BTreeMap<String, Var>, cfg: AdamWConfig) -> Result<Self> {
        let mut m = BTreeMap::new();
        let mut v = BTreeMap::new();
        for (k, var) in &vars {
            m.insert(k.clone(), var.as_tensor().zeros_like()?);
            v.insert(k.clone(), var.as_tensor().zeros_like()?);
        }
        Ok(Self { cfg, vars, m, v, t: 0 })
    }

    /// Gradients of the variables (zeros for a variable the loss does not reach).
    pub fn grads(&self, store: &GradStore) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (k, var) in &self.vars {
            let g = match store.get(var.as_tensor()) {
                Some(g) => g.clone(),
                None => var.as_tensor().zeros_like()?,
            };
            out.insert(k.clone(), g);
        }
        Ok(out)
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, grads: &BTreeMap<String, Tensor>, lr: f64) -> Result<()> {
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (k, var) in &self.vars {
            let Some(g) = grads.get(k) else { continue };
            let m = self.m.get_mut(k).context("optimizer state out of sync")?;
            let v = self.v.get_mut(k).context("optimizer state out of sync")?;
            *m = ((&*m * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&*m / bc1)?;
            let v_hat = (&*v / bc2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let p = var.as_tensor();
            let decayed = if c.weight_decay > 0.0 && p.rank() >= 2 {
                (p * (1.0 - lr * c.weight_decay))?
            } else {
                p.clone()
            };
            var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// Writes `m.<name>` / `v.<name>` tensors and the update count.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (k, t) in &self.m {
            map.insert(format!("m.{k}"), t.clone());
        }
        for (k, t) in &self.v {
            map.insert(format!("v.{k}"), t.clone());
        }
        map.insert("t".into(), Tensor::new(&[self.t as u32], &candle_core::Device::Cpu)?);
        save_tensors_atomic(path, &map)
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        let dev = self.vars.values().next().map(|v| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
        let map = candle_core::safetensors::load(path, &dev)
            .with_context(|| format!("cannot read optimizer state {}", path.display()))?;
        for (k, var) in &self.vars {
            let (Some(m), Some(v)) = (map.get(&format!("m.{k}")), map.get(&format!("v.{k}"))) else {
                bail!("{}: no moments for `{k}`", path.display());
            };
            if m.dims() != var.dims() || v.dims() != var.dims() {
                bail!("{}: moments for `{k}` have the wrong shape", path.display());
            }
            self.m.insert(k.clone(), m.clone());
            self.v.insert(k.clone(), v.clone());
        }
        let t = map.get("t").with_context(|| format!("{}: no update count", path.display()))?;
        self.t = t.to_vec1::<u32>()?[0] as u64;
        Ok(())
    }
}

/// Scales gradients so their global L2 norm is at most `max_norm` (no-op when `max_norm <= 0`).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut BTreeMap<String, Tensor>, max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.values() {
        sq += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = (&*g * s)?;
        }
    }
    Ok(norm)
}

/// Linear warmup to `peak` over `warmup` steps, then cosine decay to `peak·min_ratio` at
/// `total` steps. `step` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
    pub min_ratio: f64,
}

impl Schedule {
    pub fn lr(&self, step: usize) -> f64 {
        if self.warmup > 0 && step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let p = ((step - self.warmup.min(step)) as f64 / span as f64).min(1.0);
        let min = self.peak * self.min_ratio;
        min + (self.peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

/// safetensors written through a temp file and a rename.
pub fn save_tensors_atomic(path: &Path, map: &HashMap<String, Tensor>) -> Result<()> {
    crate::session::atomic_write_with(path, |tmp, _| Ok(candle_core::safetensors::save(map, tmp)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// safetensors replaces the temp file with one of mode 0600; the saved file must get the
    /// mode any file the user creates there gets.
    #[cfg(unix)]
    #[test]
    fn saved_tensors_have_the_ordinary_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let t = Tensor::zeros(3, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let path = d.path().join("t.safetensors");
        save_tensors_atomic(&path, &HashMap::from([("t".to_string(), t)])).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&plain));
    }

    #[test]
    fn schedule_warms_up_then_decays_to_floor() {
        let s = Schedule { peak: 1.0, warmup: 10, total: 110, min_ratio: 0.1 };
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(110) - 0.1).abs() < 1e-12);
        assert!(s.lr(60) < 1.0 && s.lr(60) > 0.1);
    }

    #[test]
    fn adamw_first_step_moves_by_lr() {
        let var =
            Var::from_tensor(&Tensor::new(&[1.0f32, -1.0], &candle_core::Device::Cpu).unwrap()).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("x".to_string(), var.clone());
        let mut opt = AdamW::new(vars, AdamWConfig { weight_decay: 0.0, ..Default::default() }).unwrap();
        let mut g = BTreeMap::new();
        g.insert("x".to_string(), Tensor::new(&[0.5f32, -2.0], &candle_core::Device::Cpu).unwrap());
        opt.step(&g, 0.1).unwrap();
        let x = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!((x[0] - 0.9).abs() < 1e-5 && (x[1] + 0.9).abs() < 1e-5, "{x:?}");
    }
}
