//! Seeded random-weight checkpoints at real widths (`draftscope synth`), so memory and speed
//! can be checked before a 32 GB download, and tests get real shapes without real weights.
//!
//! Weights are generated one tensor at a time, in row chunks, from a per-tensor seed (the
//! run seed hashed with the tensor name): any tensor can be regenerated alone, and writing
//! never holds more than one chunk. Scales keep activations sane at any depth:
//! - embeddings ~ U with std 1; input projections std 1/√fan_in;
//! - output projections (`attention.dense`, `down_proj`) std `OUT_GAIN`/√(fan_in·layers),
//!   so the residual stream's random part grows to about `OUT_GAIN` × the embedding at any
//!   depth cut;
//! - `lm_head` = (β/√hidden)·(γ·E + R): aligned with the input embeddings `E` (an unmasked
//!   token leans to predicting itself, like a trained MLM) plus a random part `R`, so context
//!   can outvote it (T2T edits happen); the mask token's row is zero, so it is never predicted;
//! - router std 1/√hidden (sigmoid scores spread around 0.5) and a small random `expert_bias`.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use rand::{RngCore, SeedableRng};

use super::config::Config;

/// Residual gain of the output projections (see the module doc).
const OUT_GAIN: f32 = 1.0;
/// lm_head temperature: sharp enough that confident commits happen.
const LM_BETA: f32 = 12.0;
/// Weight of the input-embedding part of lm_head against its random part, at hidden 256.
const LM_GAMMA: f32 = 0.35;

/// Configs `synth` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Like {
    /// inclusionAI/LLaDA2.1-mini: 16.26B parameters, hidden 2048, 20 layers, 256 experts top-8.
    #[value(name = "llada2.1-mini")]
    Mini,
    /// A tiny model of the same architecture whose matmul widths are multiples of 256, so
    /// every linear takes k-quants (the fixture and the embedded model are too narrow).
    #[value(name = "tiny")]
    Tiny,
}

/// The config of `like`, its depth cut to `layers` (None = the full depth).
///
/// LLaDA2.1-mini: the widths named in DESIGN.md §5 (hidden 2048, 20 layers, 16/4 heads × 128,
/// 256 experts top-8, vocab 157184, EOS 156892, mask 156895); the rest is the config of its
/// base, Ling-mini-2.0 (BailingMoeV2): intermediate 5120, expert width 512, one shared expert,
/// first layer dense, 8 groups keep 4, routed scaling 2.5, partial rotary 0.5, θ 600000.
/// These give 16.26B parameters, the published size.
pub fn config(like: Like, layers: Option<usize>) -> Result<Config> {
    let (v, full_layers) = match like {
        Like::Mini => (
            serde_json::json!({
                "vocab_size": 157184, "hidden_size": 2048, "num_attention_heads": 16,
                "num_key_value_heads": 4, "head_dim": 128, "partial_rotary_factor": 0.5,
                "rope_theta": 600000.0, "rms_norm_eps": 1e-6, "intermediate_size": 5120,
                "first_k_dense_replace": 1, "num_experts": 256, "num_experts_per_tok": 8,
                "n_group": 8, "topk_group": 4, "routed_scaling_factor": 2.5,
                "moe_intermediate_size": 512, "num_shared_experts": 1,
                "max_position_embeddings": 32768, "eos_token_id": 156892, "pad_token_id": 156892,
                "mask_token_id": 156895, "use_qk_norm": true, "tie_word_embeddings": false,
            }),
            20,
        ),
        Like::Tiny => (
            serde_json::json!({
                "vocab_size": 512, "hidden_size": 256, "num_attention_heads": 4,
                "num_key_value_heads": 2, "head_dim": 64, "partial_rotary_factor": 0.5,
                "rope_theta": 600000.0, "rms_norm_eps": 1e-6, "intermediate_size": 512,
                "first_k_dense_replace": 1, "num_experts": 16, "num_experts_per_tok": 2,
                "n_group": 4, "topk_group": 2, "routed_scaling_factor": 2.5,
                "moe_intermediate_size": 256, "num_shared_experts": 1,
                "max_position_embeddings": 4096, "eos_token_id": 508, "pad_token_id": 508,
                "mask_token_id": 511, "use_qk_norm": true, "tie_word_embeddings": false,
            }),
            3,
        ),
    };
    let n = layers.unwrap_or(full_layers);
    if n == 0 || n > full_layers {
        bail!("--layers {n}: must be in 1..={full_layers} for this config");
    }
    let mut v = v;
    v["num_hidden_layers"] = n.into();
    Config::from_json_str(&v.to_string())
}

/// How a tensor is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    Ones,
    Zeros,
    /// Uniform with this standard deviation.
    Uniform(f32),
    /// lm_head: (β/√h)·(γ·E + R), mask row zero.
    LmHead,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub shape: Vec<usize>,
    pub fill: Fill,
}

/// Every tensor of a LLaDA2 checkpoint of `cfg`, in checkpoint order, with its init.
pub fn specs(cfg: &Config) -> Vec<Spec> {
    let h = cfg.hidden_size;
    let d = cfg.head_dim();
    let (hq, hkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
    let depth = cfg.num_hidden_layers as f32;
    let inp = |fan: usize| Fill::Uniform(1.0 / (fan as f32).sqrt());
    let out = |fan: usize| Fill::Uniform(OUT_GAIN / (fan as f32 * depth).sqrt());
    let mut v = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, fill: Fill| v.push(Spec { name, shape, fill });
    push("model.word_embeddings.weight".into(), vec![cfg.vocab_size, h], Fill::Uniform(1.0));
    let mlp = |push: &mut dyn FnMut(String, Vec<usize>, Fill), p: String, w: usize| {
        push(format!("{p}.gate_proj.weight"), vec![w, h], inp(h));
        push(format!("{p}.up_proj.weight"), vec![w, h], inp(h));
        push(format!("{p}.down_proj.weight"), vec![h, w], out(w));
    };
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        push(format!("{p}.input_layernorm.weight"), vec![h], Fill::Ones);
        push(format!("{p}.attention.query_key_value.weight"), vec![(hq + 2 * hkv) * d, h], inp(h));
        if cfg.use_qkv_bias {
            push(format!("{p}.attention.query_key_value.bias"), vec![(hq + 2 * hkv) * d], Fill::Zeros);
        }
        if cfg.use_qk_norm {
            push(format!("{p}.attention.query_layernorm.weight"), vec![d], Fill::Ones);
            push(format!("{p}.attention.key_layernorm.weight"), vec![d], Fill::Ones);
        }
        push(format!("{p}.attention.dense.weight"), vec![h, hq * d], out(hq * d));
        if cfg.use_bias {
            push(format!("{p}.attention.dense.bias"), vec![h], Fill::Zeros);
        }
        push(format!("{p}.post_attention_layernorm.weight"), vec![h], Fill::Ones);
        if cfg.is_moe_layer(i) {
            let e = cfg.num_experts.unwrap_or(0);
            push(format!("{p}.mlp.gate.weight"), vec![e, h], inp(h));
            push(format!("{p}.mlp.gate.expert_bias"), vec![e], Fill::Uniform(0.03));
            for x in 0..e {
                mlp(&mut push, format!("{p}.mlp.experts.{x}"), cfg.moe_intermediate_size);
            }
            if let Some(w) = cfg.shared_intermediate_size().filter(|&w| w > 0) {
                mlp(&mut push, format!("{p}.mlp.shared_experts"), w);
            }
        } else {
            mlp(&mut push, format!("{p}.mlp"), cfg.intermediate_size);
        }
    }
    push("model.norm.weight".into(), vec![h], Fill::Ones);
    if !cfg.tie_word_embeddings {
        push("lm_head.weight".into(), vec![cfg.vocab_size, h], Fill::LmHead);
    }
    v
}

/// FNV-1a of the seed and a name: each tensor's own stream.
fn stream_seed(seed: u64, name: &str) -> u64 {
    let mut x = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in name.bytes() {
        x ^= b as u64;
        x = x.wrapping_mul(0x0100_0000_01b3);
    }
    x
}

/// Uniform samples with standard deviation `std` from one stream.
struct Stream(rand_chacha::ChaCha8Rng);

impl Stream {
    fn new(seed: u64, name: &str) -> Self {
        Self(rand_chacha::ChaCha8Rng::seed_from_u64(stream_seed(seed, name)))
    }

    fn fill(&mut self, out: &mut [f32], std: f32) {
        // U(-a, a) has std a/√3.
        let a = std * 3f32.sqrt();
        let k = 2.0 * a / (1u32 << 24) as f32;
        for x in out {
            *x = (self.0.next_u32() >> 8) as f32 * k - a;
        }
    }
}

/// Produces a tensor's values in row chunks of at most `chunk_elems` elements.
pub struct Generator<'a> {
    spec: &'a Spec,
    cfg: &'a Config,
    main: Stream,
    /// lm_head only: the embedding stream (E) replayed alongside.
    emb: Option<Stream>,
    row: usize,
}

impl<'a> Generator<'a> {
    pub fn new(spec: &'a Spec, cfg: &'a Config, seed: u64) -> Self {
        let emb = (spec.fill == Fill::LmHead).then(|| Stream::new(seed, "model.word_embeddings.weight"));
        Self { spec, cfg, main: Stream::new(seed, &spec.name), emb, row: 0 }
    }

    /// A 1-D tensor is one row.
    fn row_len(&self) -> usize {
        if self.spec.shape.len() > 1 { self.spec.shape.iter().skip(1).product() } else { self.spec.shape[0] }
    }

    fn rows(&self) -> usize {
        if self.spec.shape.len() > 1 { self.spec.shape[0] } else { 1 }
    }

    /// The next chunk (whole rows), or None at the end.
    pub fn next_chunk(&mut self, chunk_elems: usize) -> Option<(usize, Vec<f32>)> {
        let (rows, rl) = (self.rows(), self.row_len());
        if self.row >= rows {
            return None;
        }
        let n_rows = (chunk_elems / rl).clamp(1, rows - self.row);
        let mut buf = vec![0f32; n_rows * rl];
        match self.spec.fill {
            Fill::Ones => buf.fill(1.0),
            Fill::Zeros => buf.fill(0.0),
            Fill::Uniform(std) => self.main.fill(&mut buf, std),
            Fill::LmHead => {
                let h = self.cfg.hidden_size as f32;
                let mut e = vec![0f32; buf.len()];
                if let Some(emb) = self.emb.as_mut() {
                    emb.fill(&mut e, 1.0);
                }
                self.main.fill(&mut buf, 1.0);
                // The self logit grows with √h, the best random one does not: scale γ by
                // √(256/h) so the self-vs-context balance is the same at every width.
                let gamma = LM_GAMMA * (256.0 / h).sqrt();
                let s = LM_BETA / h.sqrt() / (1.0 + gamma * gamma).sqrt();
                for (i, (r, e)) in buf.iter_mut().zip(&e).enumerate() {
                    let token = self.row + i / rl;
                    *r = if token == self.cfg.mask_token_id as usize { 0.0 } else { s * (gamma * e + *r) };
                }
            }
        }
        let start = self.row;
        self.row += n_rows;
        Some((start, buf))
    }
}

/// Elements per generated chunk (16 MB of f32).
pub const CHUNK: usize = 1 << 22;

/// Writes `bytes(chunk)` for every chunk of `spec` to `w`; returns the bytes written.
pub fn write_tensor(
    w: &mut dyn Write,
    spec: &Spec,
    cfg: &Config,
    seed: u64,
    mut bytes: impl FnMut(&[f32], &[usize]) -> Result<Vec<u8>>,
) -> Result<u64> {
    let mut g = Generator::new(spec, cfg, seed);
    let mut n = 0u64;
    let row_shape: Vec<usize> = spec.shape.iter().skip(1).copied().collect();
    while let Some((_, chunk)) = g.next_chunk(CHUNK) {
        let mut shape = vec![chunk.len() / row_shape.iter().product::<usize>().max(1)];
        shape.extend(&row_shape);
        if spec.shape.len() == 1 {
            shape = spec.shape.clone();
        }
        let b = bytes(&chunk, &shape)?;
        w.write_all(&b)?;
        n += b.len() as u64;
    }
    Ok(n)
}

/// A config.json for a synth checkpoint: the HF fields plus where it came from.
pub fn config_json(cfg: &Config, like: Like, seed: u64, torch_dtype: &str) -> Result<String> {
    let mut v = serde_json::to_value(cfg)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("architectures".into(), serde_json::json!(["LLaDA2MoeModelLM"]));
        o.insert("model_type".into(), serde_json::json!("llada2_moe"));
        o.insert("torch_dtype".into(), serde_json::json!(torch_dtype));
        o.insert("score_function".into(), serde_json::json!("sigmoid"));
        o.insert("moe_router_enable_expert_bias".into(), serde_json::json!(true));
        o.insert("norm_topk_prob".into(), serde_json::json!(true));
        o.insert(
            "draftscope_synth".into(),
            serde_json::json!({ "like": format!("{like:?}").to_lowercase(), "seed": seed,
                "note": "random weights from `draftscope synth`; not a trained model" }),
        );
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

/// Writes a safetensors file of `specs` streaming; `dtype` is "F32" or "BF16".
pub fn write_safetensors(path: &Path, specs: &[&Spec], cfg: &Config, seed: u64, dtype: &str) -> Result<u64> {
    let es = if dtype == "BF16" { 2 } else { 4 };
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
    let mut off = 0u64;
    for s in specs {
        let n = s.shape.iter().product::<usize>() as u64 * es;
        header.insert(
            s.name.clone(),
            serde_json::json!({ "dtype": dtype, "shape": s.shape, "data_offsets": [off, off + n] }),
        );
        off += n;
    }
    let mut h = serde_json::to_vec(&header)?;
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    crate::session::atomic_write_with(path, |_, f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(&(h.len() as u64).to_le_bytes())?;
        w.write_all(&h)?;
        for s in specs {
            write_tensor(&mut w, s, cfg, seed, |c, _| {
                Ok(if es == 2 {
                    c.iter().flat_map(|x| bf16_bits(*x).to_le_bytes()).collect()
                } else {
                    c.iter().flat_map(|x| x.to_le_bytes()).collect()
                })
            })?;
        }
        w.flush()?;
        Ok(())
    })?;
    Ok(off)
}

/// f32 → bf16 bits, round to nearest even (the values here are finite).
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// What `synth` writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    /// Sharded safetensors with an index, as the hub ships models; "F32" or "BF16".
    Safetensors(&'static str),
    /// One GGUF file, quantized as it is generated (no full-precision intermediate).
    Gguf(super::quant::QuantFormat),
}

/// Writes a synth checkpoint into `out` (config.json + weights); returns the weight bytes.
pub fn write_dir(
    out: &Path,
    like: Like,
    layers: Option<usize>,
    seed: u64,
    output: Output,
    progress: &mut dyn FnMut(&str),
) -> Result<u64> {
    let cfg = config(like, layers)?;
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let all = specs(&cfg);
    let torch_dtype = match output {
        Output::Safetensors("BF16") => "bfloat16",
        _ => "float32",
    };
    let bytes = match output {
        Output::Safetensors(dtype) => {
            // One shard for the embeddings, one per layer, one for the final norm and head.
            let shard_of = |name: &str| -> usize {
                match name.strip_prefix("model.layers.").and_then(|r| r.split('.').next()) {
                    Some(i) => 1 + i.parse::<usize>().unwrap_or(0),
                    None if name.starts_with("model.word_embeddings") => 0,
                    None => cfg.num_hidden_layers + 1,
                }
            };
            let n_shards = cfg.num_hidden_layers + 2;
            let file = |i: usize| format!("model-{:05}-of-{:05}.safetensors", i + 1, n_shards);
            let mut index = Vec::new();
            let mut total = 0;
            for i in 0..n_shards {
                let group: Vec<&Spec> = all.iter().filter(|s| shard_of(&s.name) == i).collect();
                progress(&format!("shard {}/{n_shards}", i + 1));
                total += write_safetensors(&out.join(file(i)), &group, &cfg, seed, dtype)?;
                index.extend(group.iter().map(|s| (s.name.clone(), file(i))));
            }
            super::shards::write_index(out, &index, total)?;
            total
        }
        Output::Gguf(format) => {
            let plan: Vec<super::gguf::Planned> = all
                .iter()
                .map(|s| super::gguf::Planned {
                    name: s.name.clone(),
                    shape: s.shape.clone(),
                    dtype: super::quant::storage_type(&s.name, &s.shape, format),
                })
                .collect();
            let meta = [
                ("draftscope.config", config_json(&cfg, like, seed, torch_dtype)?),
                ("draftscope.quantization", format.name().to_string()),
            ];
            let layers_total = cfg.num_hidden_layers;
            super::gguf::write_streaming(&out.join("model.gguf"), &meta, &plan, |i, p, w| {
                if let Some(l) = p.name.strip_prefix("model.layers.").and_then(|r| r.split('.').next())
                    && p.name.ends_with("input_layernorm.weight")
                {
                    progress(&format!("layer {}/{layers_total}", l.parse::<usize>().unwrap_or(0) + 1));
                }
                write_tensor(w, &all[i], &cfg, seed, |c, shape| super::gguf::encode(c, shape, p.dtype))
            })?
        }
    };
    crate::session::atomic_write(
        &out.join("config.json"),
        config_json(&cfg, like, seed, torch_dtype)?.as_bytes(),
    )?;
    Ok(bytes)
}
