//! HF `config.json` of `LLaDA2MoeModelLM`, parsed and checked before any weight is read.
//!
//! Every architectural number the forward pass uses comes from here; nothing is hard-coded
//! to the fixture or the released mini model.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Mask token of the released LLaDA2.1 models; the official config class does not store it.
pub const DEFAULT_MASK_TOKEN_ID: u32 = 156_895;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "one")]
    pub partial_rotary_factor: f64,
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    pub rms_norm_eps: f64,
    pub intermediate_size: usize,
    #[serde(default)]
    pub first_k_dense_replace: usize,
    /// `None` means a dense model (every layer uses the dense MLP).
    #[serde(default)]
    pub num_experts: Option<usize>,
    #[serde(default = "one_usize")]
    pub num_experts_per_tok: usize,
    #[serde(default = "one_usize")]
    pub n_group: usize,
    #[serde(default = "one_usize")]
    pub topk_group: usize,
    #[serde(default = "one")]
    pub routed_scaling_factor: f64,
    pub moe_intermediate_size: usize,
    #[serde(default)]
    pub num_shared_experts: Option<usize>,
    #[serde(default = "yes")]
    pub use_qk_norm: bool,
    #[serde(default)]
    pub use_qkv_bias: bool,
    #[serde(default)]
    pub use_bias: bool,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub eos_token_id: u32,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_mask")]
    pub mask_token_id: u32,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_max_pos() -> usize {
    32_768
}
fn default_act() -> String {
    "silu".into()
}
fn default_mask() -> u32 {
    DEFAULT_MASK_TOKEN_ID
}

/// Upper bounds on config sizes: far above any released LLaDA2 model (mini: vocab 157184,
/// hidden 2048, 20 layers, 256 experts), far below what would overflow an allocation.
const MAX_VOCAB: usize = 1 << 24;
const MAX_WIDTH: usize = 1 << 20;
const MAX_LAYERS: usize = 1 << 12;
const MAX_HEADS: usize = 1 << 12;
const MAX_EXPERTS: usize = 1 << 16;
const MAX_POSITIONS: usize = 1 << 24;
const MAX_PARAMETERS: f64 = 2e12;

impl Config {
    /// Reads and validates `config.json`; errors name the file and the field.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model config {}", path.display()))?;
        Self::from_json_str(&text).with_context(|| format!("invalid model config {}", path.display()))
    }

    pub fn from_json_str(text: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            if field == "." {
                anyhow::anyhow!("{}", e.inner())
            } else {
                anyhow::anyhow!("field `{field}`: {}", e.inner())
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Dimensions of each head that receive RoPE (the rest pass through).
    pub fn rope_dim(&self) -> usize {
        (self.head_dim() as f64 * self.partial_rotary_factor) as usize
    }

    pub fn is_moe_layer(&self, layer: usize) -> bool {
        self.num_experts.is_some() && layer >= self.first_k_dense_replace
    }

    pub fn shared_intermediate_size(&self) -> Option<usize> {
        self.num_shared_experts.map(|n| n * self.moe_intermediate_size)
    }

    /// Parameters the config describes (f64, so absurd sizes cannot overflow).
    pub fn parameter_estimate(&self) -> f64 {
        let h = self.hidden_size as f64;
        let d = self.head_dim() as f64;
        let (hq, hkv) = (self.num_attention_heads as f64, self.num_key_value_heads as f64);
        let attn = h * (hq + 2.0 * hkv) * d + hq * d * h;
        let dense = 3.0 * h * self.intermediate_size as f64;
        let experts = self.num_experts.unwrap_or(0) as f64;
        let moe = 3.0
            * h
            * self.moe_intermediate_size as f64
            * (experts + self.num_shared_experts.unwrap_or(0) as f64)
            + h * experts;
        let layers = self.num_hidden_layers as f64;
        let dense_layers = (self.first_k_dense_replace as f64).min(layers);
        let mlp = if self.num_experts.is_some() {
            dense_layers * dense + (layers - dense_layers) * moe
        } else {
            layers * dense
        };
        2.0 * self.vocab_size as f64 * h + layers * attn + mlp
    }

    /// Bounds and sanity checks, for a config read from disk or built in code.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("field `{name}` must be positive");
            }
        }
        // Sizes are bounded before anything allocates from them: a corrupt or hostile config
        // must get a message, not an allocation abort or a capacity-overflow panic.
        let bounded = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            ("num_key_value_heads", self.num_key_value_heads, MAX_HEADS),
            ("head_dim", self.head_dim.unwrap_or(0), MAX_WIDTH),
            ("intermediate_size", self.intermediate_size, MAX_WIDTH),
            ("moe_intermediate_size", self.moe_intermediate_size, MAX_WIDTH),
            ("num_experts", self.num_experts.unwrap_or(0), MAX_EXPERTS),
            ("num_shared_experts", self.num_shared_experts.unwrap_or(0), MAX_EXPERTS),
            ("first_k_dense_replace", self.first_k_dense_replace, MAX_LAYERS),
            ("max_position_embeddings", self.max_position_embeddings, MAX_POSITIONS),
        ];
        for (name, v, max) in bounded {
            if v > max {
                bail!("field `{name}` is {v}; draftscope supports at most {max}");
            }
        }
        let params = self.parameter_estimate();
        if params > MAX_PARAMETERS {
            bail!(
                "the config describes about {:.1e} parameters; draftscope supports at most {MAX_PARAMETERS:.0e} (check the size fields)",
                params
            );
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            bail!(
                "field `num_attention_heads` ({}) must be a multiple of `num_key_value_heads` ({})",
                self.num_attention_heads,
                self.num_key_value_heads
            );
        }
        if self.head_dim() == 0 {
            bail!("field `head_dim` must be positive");
        }
        for (name, v) in [("rope_theta", self.rope_theta), ("rms_norm_eps", self.rms_norm_eps)] {
            if !(v.is_finite() && v > 0.0) {
                bail!("field `{name}` must be a finite number > 0, got {v}");
            }
        }
        if !self.routed_scaling_factor.is_finite() {
            bail!("field `routed_scaling_factor` must be finite, got {}", self.routed_scaling_factor);
        }
        if !(0.0..=1.0).contains(&self.partial_rotary_factor) {
            bail!("field `partial_rotary_factor` must be in [0, 1], got {}", self.partial_rotary_factor);
        }
        if !self.rope_dim().is_multiple_of(2) {
            bail!("field `partial_rotary_factor`: rotary dims ({}) must be even", self.rope_dim());
        }
        if let Some(scaling) = &self.rope_scaling
            && !scaling.is_null()
        {
            bail!("field `rope_scaling`: only null (default RoPE) is supported, got {scaling}");
        }
        if self.hidden_act != "silu" {
            bail!("field `hidden_act`: only \"silu\" is supported, got {:?}", self.hidden_act);
        }
        if let Some(e) = self.num_experts {
            if e == 0 || self.num_experts_per_tok == 0 || self.num_experts_per_tok > e {
                bail!("field `num_experts_per_tok` ({}) must be in 1..={e}", self.num_experts_per_tok);
            }
            if self.n_group == 0 || !e.is_multiple_of(self.n_group) {
                bail!("field `n_group` ({}) must divide `num_experts` ({e})", self.n_group);
            }
            if self.topk_group == 0 || self.topk_group > self.n_group {
                bail!("field `topk_group` ({}) must be in 1..={}", self.topk_group, self.n_group);
            }
            if self.n_group > 1 && e / self.n_group < 2 {
                bail!("field `n_group`: each group needs at least 2 experts (group ranking sums the top 2)");
            }
            if self.moe_intermediate_size == 0 {
                bail!("field `moe_intermediate_size` must be positive");
            }
        }
        for (name, id) in [("eos_token_id", self.eos_token_id), ("mask_token_id", self.mask_token_id)] {
            if id as usize >= self.vocab_size {
                bail!("field `{name}` ({id}) is outside the vocabulary (vocab_size {})", self.vocab_size);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{"vocab_size": 16, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 16,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "moe_intermediate_size": 8,
        "eos_token_id": 1, "mask_token_id": 2}"#;

    #[test]
    fn huge_layer_count_is_refused_before_allocation() {
        for n in ["2147483648", "18446744073709551615"] {
            let text = TINY.replace("\"num_hidden_layers\": 1", &format!("\"num_hidden_layers\": {n}"));
            let err = format!("{:#}", Config::from_json_str(&text).unwrap_err());
            assert!(err.contains("num_hidden_layers"), "{err}");
        }
    }

    #[test]
    fn type_errors_name_the_field() {
        let text = TINY.replace("\"hidden_size\": 8", "\"hidden_size\": \"eight\"");
        let err = format!("{:#}", Config::from_json_str(&text).unwrap_err());
        assert!(err.contains("field `hidden_size`"), "{err}");
    }

    #[test]
    fn tiny_config_is_accepted() {
        Config::from_json_str(TINY).unwrap();
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = Config::from_json_str(r#"{"vocab_size": 10}"#).unwrap_err();
        assert!(format!("{err:#}").contains("hidden_size"), "{err:#}");
    }
}
