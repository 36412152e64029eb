//! Which tensors of a LLaDA2 checkpoint are quantized, and to what.
//!
//! - Linear layers (attention `query_key_value` / `dense`, dense and shared MLPs, routed
//!   experts): the requested format. These are ~97% of LLaDA2.1-mini's parameters.
//! - `lm_head`: q8_0 for every format. Its argmax *is* the decoder's output; a k-quant's
//!   error there moves commits and edits directly, while q8_0 costs 1.06 bytes/weight.
//! - `word_embeddings`: f16 (a lookup, not a matmul; rows are gathered then widened).
//! - RMSNorm weights, the router `gate.weight` (routing runs in fp32, as the official code)
//!   and `gate.expert_bias`: f32. They are tiny, and routing decides which experts run at all.
//!
//! k-quants pack 256 weights per block along the inner (input) dimension, q5_0 and q8_0 pack
//! 32. A tensor whose inner dimension is not a multiple of its block falls back as llama.cpp's
//! quantizer does: q4_k to q5_0 (the nearest 32-block type, so a narrow model's q4_k file is
//! still a ~5-bit model and its agreement measures a low-bit format, not q8_0), then q8_0, then
//! f16. `quantize` prints the count of each storage type.

use candle_core::quantized::GgmlDType;

/// The quantized formats `quantize` and `synth --quantize` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum QuantFormat {
    #[value(name = "q8_0")]
    #[serde(rename = "q8_0")]
    Q8_0,
    #[value(name = "q4_k")]
    #[serde(rename = "q4_k")]
    Q4K,
    /// q4_k for the routed experts (nearly all of an MoE's weights), q8_0 for the other linears
    /// (attention, dense and shared MLPs), whose error every token meets before routing.
    #[value(name = "q4_k_moe")]
    #[serde(rename = "q4_k_moe")]
    Q4KMoe,
}

impl QuantFormat {
    pub fn name(self) -> &'static str {
        match self {
            QuantFormat::Q8_0 => "q8_0",
            QuantFormat::Q4K => "q4_k",
            QuantFormat::Q4KMoe => "q4_k_moe",
        }
    }

    /// The storage type of the linear weight `name` (before the block-size fallback).
    fn linear_type(self, name: &str) -> GgmlDType {
        match self {
            QuantFormat::Q8_0 => GgmlDType::Q8_0,
            QuantFormat::Q4K => GgmlDType::Q4K,
            QuantFormat::Q4KMoe if is_routed_expert(name) => GgmlDType::Q4K,
            QuantFormat::Q4KMoe => GgmlDType::Q8_0,
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "q8_0" => Some(QuantFormat::Q8_0),
            "q4_k" => Some(QuantFormat::Q4K),
            "q4_k_moe" => Some(QuantFormat::Q4KMoe),
            _ => None,
        }
    }
}

/// True for a tensor of a routed expert (`model.layers.N.mlp.experts.E.…`), which runs on the
/// expert path rather than through candle's matmul.
pub fn is_routed_expert(name: &str) -> bool {
    name.contains(".mlp.experts.")
}

/// True for the weights of linear layers that run through a (quantized) matmul.
pub fn is_linear_weight(name: &str) -> bool {
    const LINEARS: [&str; 5] = ["query_key_value", "attention.dense", "gate_proj", "up_proj", "down_proj"];
    name.ends_with(".weight") && LINEARS.iter().any(|l| name.ends_with(&format!("{l}.weight")))
}

/// The storage type of tensor `name` with `shape` (checkpoint layout, `[out, in]`) in `format`.
pub fn storage_type(name: &str, shape: &[usize], format: QuantFormat) -> GgmlDType {
    let inner = shape.last().copied().unwrap_or(0);
    let fits = |t: GgmlDType| shape.len() == 2 && inner > 0 && inner.is_multiple_of(t.block_size());
    let wanted = if name == "lm_head.weight" {
        GgmlDType::Q8_0
    } else if is_linear_weight(name) {
        format.linear_type(name)
    } else if name == "model.word_embeddings.weight" {
        return GgmlDType::F16;
    } else {
        return GgmlDType::F32;
    };
    let fallback = if wanted == GgmlDType::Q4K { Some(GgmlDType::Q5_0) } else { None };
    [Some(wanted), fallback, Some(GgmlDType::Q8_0)]
        .into_iter()
        .flatten()
        .find(|&t| fits(t))
        .unwrap_or(GgmlDType::F16)
}

/// Bytes a tensor of `elems` elements takes stored as `t`.
pub fn stored_bytes(t: GgmlDType, elems: usize) -> u64 {
    (elems / t.block_size()) as u64 * t.type_size() as u64
}

/// Bytes of the repacked copy candle keeps beside a quantized `out × inp` weight that goes
/// through its own matmul on this CPU (attention, dense and shared MLPs, `lm_head`; the routed
/// experts run on their stored blocks, `moe_cpu.rs`, and have none). It mirrors candle-core
/// 0.11.1's `quantized/repack_x86.rs`: on x86 with AVX2+FMA or VNNI, a weight whose `out` is a
/// multiple of 16 and `inp` of 256 gets tiles of 0.75 (q4_k) or 1.25 (q6_k) bytes per weight,
/// built on first use and kept for the tensor's life. q8_0 never reaches candle's tiles: it
/// computes on its stored blocks (`quant_cpu.rs`).
pub fn repacked_bytes(dtype: GgmlDType, out: usize, inp: usize) -> u64 {
    if !x86_repacks() {
        return 0;
    }
    if inp == 0 || !out.is_multiple_of(16) || !inp.is_multiple_of(256) {
        return 0;
    }
    let weights = (out * inp) as u64;
    match dtype {
        GgmlDType::Q4K => weights * 3 / 4,
        GgmlDType::Q6K => weights * 5 / 4,
        _ => 0,
    }
}

/// Whether candle repacks on this CPU (AVX512-VNNI, AVX-VNNI, or AVX2 with FMA).
fn x86_repacks() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let force_avx2 = std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1");
        let force_vnni = std::env::var("MISTRALRS_FORCE_AVXVNNI").as_deref() == Ok("1");
        let vnni512 = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni");
        let vnni256 = (force_vnni || is_x86_feature_detected!("avxvnni")) && is_x86_feature_detected!("avx2");
        (!force_avx2 && (vnni512 || vnni256))
            || (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repacked_copies_follow_candles_tile_rule() {
        let q4 = repacked_bytes(GgmlDType::Q4K, 32, 512);
        assert_eq!(q4, if x86_repacks() { 32 * 512 * 3 / 4 } else { 0 });
        // Rows not a multiple of 16, or a width not a multiple of 256: no tiles.
        assert_eq!(repacked_bytes(GgmlDType::Q4K, 24, 512), 0);
        assert_eq!(repacked_bytes(GgmlDType::Q4K, 32, 384), 0);
        // q8_0 computes on its stored blocks (quant_cpu.rs): no copy on any CPU.
        assert_eq!(repacked_bytes(GgmlDType::Q8_0, 32, 512), 0);
        assert_eq!(repacked_bytes(GgmlDType::F16, 32, 512), 0);
    }

    #[test]
    fn experts_take_the_format_and_small_inner_dims_fall_back() {
        let e = "model.layers.1.mlp.experts.3.down_proj.weight";
        assert_eq!(storage_type(e, &[2048, 512], QuantFormat::Q4K), GgmlDType::Q4K);
        assert_eq!(storage_type(e, &[64, 32], QuantFormat::Q4K), GgmlDType::Q5_0);
        assert_eq!(storage_type(e, &[64, 32], QuantFormat::Q8_0), GgmlDType::Q8_0);
        assert_eq!(storage_type(e, &[64, 48], QuantFormat::Q4K), GgmlDType::F16);
        assert_eq!(storage_type("lm_head.weight", &[512, 2048], QuantFormat::Q4K), GgmlDType::Q8_0);
        assert_eq!(storage_type("model.norm.weight", &[2048], QuantFormat::Q4K), GgmlDType::F32);
        assert_eq!(
            storage_type("model.layers.1.mlp.gate.weight", &[256, 2048], QuantFormat::Q8_0),
            GgmlDType::F32
        );
        assert_eq!(
            storage_type("model.word_embeddings.weight", &[512, 2048], QuantFormat::Q8_0),
            GgmlDType::F16
        );
    }

    #[test]
    fn q4_k_moe_keeps_q8_0_outside_the_routed_experts() {
        let f = QuantFormat::Q4KMoe;
        let shape = [2048, 512];
        assert_eq!(storage_type("model.layers.1.mlp.experts.3.down_proj.weight", &shape, f), GgmlDType::Q4K);
        for n in [
            "model.layers.1.attention.query_key_value.weight",
            "model.layers.1.attention.dense.weight",
            "model.layers.1.mlp.shared_experts.up_proj.weight",
            "model.layers.0.mlp.gate_proj.weight",
        ] {
            assert_eq!(storage_type(n, &shape, f), GgmlDType::Q8_0, "{n}");
        }
        assert_eq!(QuantFormat::from_name(f.name()), Some(f));
    }
}
