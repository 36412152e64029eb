//! LoRA adapters in the PEFT layout (`adapter_config.json` + `adapter_model.safetensors` with
//! keys `base_model.model.<module path>.lora_A.weight` / `lora_B.weight`), so adapters move
//! between draftscope and Python PEFT in both directions.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Tensor, Var};
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use super::linear::Lora;
use super::{Llada2, LoadedModel};

/// Module-name suffixes adapted by default: attention, dense MLPs and shared experts.
pub const DEFAULT_TARGETS: [&str; 5] = ["query_key_value", "dense", "gate_proj", "up_proj", "down_proj"];

/// The subset of PEFT's `adapter_config.json` we read and write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub peft_type: String,
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f32,
    pub target_modules: Vec<String>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default = "default_bias")]
    pub bias: String,
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default)]
    pub inference_mode: bool,
    /// PEFT's rank-stabilised scaling: alpha / sqrt(r) instead of alpha / r.
    #[serde(default)]
    pub use_rslora: bool,
    /// PEFT's module exclusion. `target_modules` suffixes (`gate_proj`, …) also match the
    /// routed experts, which draftscope adapts only with `--include-experts`; otherwise we
    /// write [`EXPERTS_EXCLUDED`] here so PEFT wraps exactly the modules we trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_modules: Option<serde_json::Value>,
    /// Per-module ranks and alphas (PEFT); draftscope refuses non-empty ones on load.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub rank_pattern: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub alpha_pattern: serde_json::Map<String, serde_json::Value>,
    /// Written by older draftscope versions instead of `exclude_modules`; read, never written.
    #[serde(default, rename = "include_experts", skip_serializing)]
    pub legacy_include_experts: Option<bool>,
}

/// The `exclude_modules` regex (PEFT matches it against the whole module name) that keeps
/// the routed experts out of an adapter.
pub const EXPERTS_EXCLUDED: &str = r".*\.mlp\.experts\..*";

fn default_bias() -> String {
    "none".into()
}

impl AdapterConfig {
    pub fn new(
        r: usize,
        alpha: f64,
        dropout: f32,
        targets: &[String],
        include_experts: bool,
        base: &str,
    ) -> Self {
        Self {
            peft_type: "LORA".into(),
            r,
            lora_alpha: alpha,
            lora_dropout: dropout,
            target_modules: targets.to_vec(),
            base_model_name_or_path: Some(base.to_string()),
            bias: "none".into(),
            task_type: None,
            fan_in_fan_out: false,
            inference_mode: true,
            use_rslora: false,
            exclude_modules: (!include_experts).then(|| serde_json::Value::from(EXPERTS_EXCLUDED)),
            rank_pattern: Default::default(),
            alpha_pattern: Default::default(),
            legacy_include_experts: None,
        }
    }

    /// Whether routed experts are adapted: an older draftscope's explicit key, else PEFT's
    /// rule (targets match experts unless `exclude_modules` keeps them out).
    pub fn include_experts(&self) -> bool {
        self.legacy_include_experts.unwrap_or(self.exclude_modules.is_none())
    }

    /// alpha / r, or alpha / sqrt(r) with `use_rslora` (as PEFT).
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// What draftscope cannot honour is refused, never silently ignored.
    fn check_supported(&self, file: &Path) -> Result<()> {
        let f = file.display();
        for (field, map) in [("rank_pattern", &self.rank_pattern), ("alpha_pattern", &self.alpha_pattern)] {
            if !map.is_empty() {
                bail!(
                    "{f}: field `{field}` sets per-module values ({} entries); draftscope supports one `r` and `lora_alpha` for all modules",
                    map.len()
                );
            }
        }
        match &self.exclude_modules {
            None => {}
            Some(serde_json::Value::String(r)) if r == EXPERTS_EXCLUDED => {}
            Some(serde_json::Value::Array(a)) if a.is_empty() => {}
            Some(other) => bail!(
                "{f}: field `exclude_modules` is {other}; draftscope understands only {EXPERTS_EXCLUDED:?} (routed experts excluded)"
            ),
        }
        Ok(())
    }

    /// PEFT matching: a module is targeted when its path ends with `.<target>` (or equals it).
    pub fn targets(&self, path: &str) -> bool {
        if path == "lm_head" && !self.target_modules.iter().any(|t| t == "lm_head") {
            return false;
        }
        if !self.include_experts() && super::quant::is_routed_expert(path) {
            return false;
        }
        self.target_modules.iter().any(|t| path == t || path.ends_with(&format!(".{t}")))
    }
}

fn peft_key(path: &str, ab: &str) -> String {
    format!("base_model.model.{path}.lora_{ab}.weight")
}

/// Attaches fresh trainable adapters (A ~ Kaiming-uniform as PEFT, B = 0) and returns the
/// variables by PEFT key.
pub fn attach_new(model: &mut Llada2, cfg: &AdapterConfig, seed: u64) -> Result<BTreeMap<String, Var>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dev = model.device().clone();
    let mut vars = BTreeMap::new();
    for (path, lin) in model.linears_mut() {
        if !cfg.targets(&path) {
            continue;
        }
        let (out, inp) = (lin.out_features(), lin.in_features());
        let bound = (1.0 / inp as f32).sqrt();
        let dist = Uniform::new(-bound, bound)?;
        let a: Vec<f32> = (0..cfg.r * inp).map(|_| dist.sample(&mut rng)).collect();
        let a = Var::from_tensor(&Tensor::from_vec(a, (cfg.r, inp), &dev)?)?;
        let b = Var::from_tensor(&Tensor::zeros((out, cfg.r), DType::F32, &dev)?)?;
        lin.lora = Some(Lora {
            a: a.as_tensor().clone(),
            b: b.as_tensor().clone(),
            scale: cfg.scale(),
            dropout: cfg.lora_dropout,
        });
        vars.insert(peft_key(&path, "A"), a);
        vars.insert(peft_key(&path, "B"), b);
    }
    if vars.is_empty() {
        bail!("LoRA targets {:?} match no module of the model", cfg.target_modules);
    }
    Ok(vars)
}

/// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (atomically).
pub fn save_adapter(dir: &Path, cfg: &AdapterConfig, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let map: HashMap<String, Tensor> = tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    crate::session::atomic_write_with(&dir.join("adapter_model.safetensors"), |tmp, _| {
        Ok(candle_core::safetensors::save(&map, tmp)?)
    })?;
    crate::session::atomic_write(
        &dir.join("adapter_config.json"),
        serde_json::to_string_pretty(cfg)?.as_bytes(),
    )?;
    Ok(())
}

pub fn read_config(dir: &Path) -> Result<AdapterConfig> {
    let p = dir.join("adapter_config.json");
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read adapter config {}", p.display()))?;
    let cfg: AdapterConfig =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    if cfg.peft_type != "LORA" {
        bail!("{}: field `peft_type` is {:?}, only \"LORA\" is supported", p.display(), cfg.peft_type);
    }
    if cfg.r == 0 {
        bail!("{}: field `r` must be positive", p.display());
    }
    if !(cfg.lora_alpha.is_finite() && cfg.lora_alpha > 0.0) {
        bail!("{}: field `lora_alpha` must be a finite number > 0, got {}", p.display(), cfg.lora_alpha);
    }
    cfg.check_supported(&p)?;
    Ok(cfg)
}

/// Loads a PEFT adapter from `dir` onto the model (frozen, for decoding and benchmarks).
pub fn load_adapter(model: &mut Llada2, dir: &Path) -> Result<AdapterConfig> {
    let cfg = read_config(dir)?;
    let wpath = dir.join("adapter_model.safetensors");
    super::weights::check_safetensors_header(&wpath)?;
    let tensors = candle_core::safetensors::load(&wpath, model.device())
        .map_err(|e| anyhow::anyhow!("{}: corrupt safetensors ({e})", wpath.display()))?;
    let dtype = model.dtype();
    let mut used = 0usize;
    for (path, lin) in model.linears_mut() {
        let (ka, kb) = (peft_key(&path, "A"), peft_key(&path, "B"));
        let (Some(a), Some(b)) = (tensors.get(&ka), tensors.get(&kb)) else { continue };
        let (out, inp) = (lin.out_features(), lin.in_features());
        if a.dims() != [cfg.r, inp] || b.dims() != [out, cfg.r] {
            bail!(
                "{}: `{ka}` / `{kb}` have shapes {:?} / {:?}, expected [{}, {inp}] / [{out}, {}]",
                wpath.display(),
                a.dims(),
                b.dims(),
                cfg.r,
                cfg.r
            );
        }
        lin.lora =
            Some(Lora { a: a.to_dtype(dtype)?, b: b.to_dtype(dtype)?, scale: cfg.scale(), dropout: 0.0 });
        used += 2;
    }
    if used == 0 {
        bail!("{}: no lora_A/lora_B tensor matches a module of this model", wpath.display());
    }
    if used < tensors.len() {
        bail!(
            "{}: {} adapter tensors match no module of this model (was it trained on another base?)",
            wpath.display(),
            tensors.len() - used
        );
    }
    Ok(cfg)
}

/// Folds every attached adapter into its base weight (`W += scale · B A`) and drops it.
pub fn merge(model: &mut Llada2) -> Result<usize> {
    let mut n = 0;
    for (path, lin) in model.linears_mut() {
        if lin.quant.is_some() && lin.lora.is_some() {
            bail!(
                "`{path}` has a quantized base: merge the adapter into the full-precision model, then run `draftscope quantize`"
            );
        }
        if let Some(l) = lin.lora.take() {
            let delta = (l.b.matmul(&l.a)? * l.scale)?.to_dtype(lin.weight.dtype())?;
            lin.weight = (&lin.weight + delta)?;
            n += 1;
        }
    }
    Ok(n)
}

/// `LoadedModel` convenience used by `--adapter`.
pub fn apply(lm: &mut LoadedModel, dir: &Path) -> Result<()> {
    load_adapter(&mut lm.model, dir)?;
    lm.adapter = Some(dir.display().to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rslora_scales_by_the_square_root_of_the_rank() {
        let mut c = AdapterConfig::new(16, 32.0, 0.0, &["dense".to_string()], false, "m");
        assert_eq!(c.scale(), 2.0);
        c.use_rslora = true;
        assert_eq!(c.scale(), 8.0);
    }

    #[test]
    fn written_config_round_trips_the_expert_exclusion() {
        for include in [false, true] {
            let c = AdapterConfig::new(4, 8.0, 0.0, &["dense".to_string()], include, "m");
            let back: AdapterConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
            assert_eq!(back.include_experts(), include);
            assert_eq!(back.targets("model.layers.1.mlp.experts.3.dense"), include);
        }
    }

    #[test]
    fn older_configs_with_include_experts_still_read() {
        let text = r#"{"peft_type":"LORA","r":4,"lora_alpha":8.0,"target_modules":["dense"],"include_experts":false}"#;
        let c: AdapterConfig = serde_json::from_str(text).unwrap();
        assert!(!c.include_experts());
    }
}
