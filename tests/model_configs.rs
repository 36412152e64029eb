//! The code follows the config, not the fixture's numbers: other shapes of the architecture
//! load, run, and keep the KV-cache identity.

use std::ops::ControlFlow;

use candle_core::{Device, Tensor};
use draftscope::decode::{AttentionMode, DecodeParams, Decoder, Mode};
use draftscope::model::weights::InitWeights;
use draftscope::model::{Collect, Config, KvCache, Llada2, MaskKind};

fn cfg(overrides: serde_json::Value) -> Config {
    let mut base = serde_json::json!({
        "vocab_size": 96, "hidden_size": 48, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 20,
        "partial_rotary_factor": 0.5, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
        "intermediate_size": 64, "first_k_dense_replace": 1, "num_experts": 12,
        "num_experts_per_tok": 3, "n_group": 3, "topk_group": 2, "routed_scaling_factor": 1.5,
        "moe_intermediate_size": 16, "num_shared_experts": 2, "max_position_embeddings": 512,
        "eos_token_id": 90, "mask_token_id": 95
    });
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    Config::from_json_str(&base.to_string()).unwrap()
}

fn model(c: &Config) -> Llada2 {
    // std 0.3 gives peaked, input-dependent logits.
    Llada2::new(c, &InitWeights::new(3, 0.3, &Device::Cpu)).unwrap()
}

fn cached_equals_full(c: &Config) {
    let m = model(c);
    let b = 4;
    let ids: Vec<u32> = (0..20u32).map(|i| (i * 37 + 5) % 90).collect();
    let full =
        m.forward_window(&ids, MaskKind::BlockCausal { block_length: b }, &Collect::default()).unwrap();
    let full = full.logits.unwrap();
    let dev = Device::Cpu;
    let mut cache = KvCache::default();
    let bias = MaskKind::BlockCausal { block_length: b }.bias(0, 16, 16, &dev).unwrap();
    let pre = Tensor::new(&ids[..16], &dev).unwrap().unsqueeze(0).unwrap();
    cache.extend(m.forward(&pre, 0, bias.as_ref(), None, 16, &Collect::default()).unwrap().new_kv).unwrap();
    let blk = Tensor::new(&ids[16..], &dev).unwrap().unsqueeze(0).unwrap();
    let step = m.forward(&blk, 16, None, Some(&cache), 0, &Collect::default()).unwrap().logits.unwrap();
    let d = (step - full.narrow(1, 16, 4).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-4, "{d}");
}

#[test]
fn head_dim_unlike_hidden_over_heads_runs_and_caches_exactly() {
    cached_equals_full(&cfg(serde_json::json!({})));
}

#[test]
fn full_rotary_single_group_no_shared_experts() {
    cached_equals_full(&cfg(serde_json::json!({
        "partial_rotary_factor": 1.0, "n_group": 1, "topk_group": 1, "num_shared_experts": null
    })));
}

#[test]
fn all_moe_layers_and_mha_and_top1_routing() {
    cached_equals_full(&cfg(serde_json::json!({
        "first_k_dense_replace": 0, "num_key_value_heads": 4, "num_experts_per_tok": 1
    })));
}

#[test]
fn dense_model_without_experts() {
    cached_equals_full(&cfg(serde_json::json!({ "num_experts": null })));
}

#[test]
fn tied_embeddings_need_no_lm_head() {
    let c = cfg(serde_json::json!({ "tie_word_embeddings": true }));
    let m = model(&c);
    assert_eq!(m.lm_head.weight.dims(), m.word_embeddings.dims());
}

#[test]
fn cached_and_uncached_block_causal_decodes_agree() {
    let c = cfg(serde_json::json!({}));
    let m = model(&c);
    let mut p = DecodeParams::preset(Mode::S, c.eos_token_id, c.mask_token_id);
    p.block_length = 4;
    p.gen_length = 12;
    let run = |att| {
        Decoder::new(&m, p.clone(), att).unwrap().run(&[1, 2, 3], &mut |_| ControlFlow::Continue(())).unwrap()
    };
    let (a, b) = (run(AttentionMode::BlockCausal), run(AttentionMode::BlockCausalNoCache));
    assert_eq!(a.final_canvas, b.final_canvas);
    assert_eq!(a.forward_calls, b.forward_calls);
}

#[test]
fn invalid_group_layout_is_rejected_with_the_field() {
    let err = Config::from_json_str(
        &serde_json::json!({
            "vocab_size": 96, "hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rope_theta": 1e4, "rms_norm_eps": 1e-6, "intermediate_size": 8,
            "num_experts": 10, "n_group": 3, "moe_intermediate_size": 4, "eos_token_id": 1
        })
        .to_string(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("n_group"), "{err:#}");
}

#[test]
fn clean_context_bias_lets_noisy_blocks_see_only_clean_earlier_blocks() {
    let bias = draftscope::model::clean_context_bias(4, 2, &Device::Cpu).unwrap();
    let rows: Vec<Vec<f32>> = bias.to_vec2().unwrap();
    let vis = |q: usize, k: usize| rows[q][k] == 0.0;
    // noisy block 1 (rows 2,3): itself and clean block 0 (cols 4,5) only
    assert!(vis(2, 2) && vis(2, 3) && vis(2, 4) && vis(2, 5));
    assert!(!vis(2, 0) && !vis(2, 6) && !vis(2, 7));
    // noisy block 0 sees only itself
    assert!(vis(0, 1) && !vis(0, 4));
    // clean rows never see noisy ones; clean block 1 sees clean blocks 0 and 1
    assert!(!vis(6, 2) && vis(6, 4) && vis(6, 7) && !vis(4, 6));
}
