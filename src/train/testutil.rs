//! Small self-contained fixtures for the training tests: a word-level tokenizer, a corpus
//! and a tiny LLaDA2 MoE base model directory.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::Tensor;

use super::run::write_hf_dir;
use crate::model::Config;

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|mask|>", "<unk>"];
const WORDS: [&str; 22] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "=", "capital", "of", "is", "Arden", "Belo",
    "Cyr", "Dunmore", "Elk", "Fenwick", "Answer",
];

/// Writes `tokenizer.json` (word level, whitespace split) and `tokenizer_config.json` into `dir`;
/// returns the vocabulary size. EOS is id 0, mask id 1.
pub fn write_tokenizer(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut vocab = serde_json::Map::new();
    for (i, t) in SPECIALS.iter().chain(WORDS.iter()).enumerate() {
        vocab.insert(t.to_string(), serde_json::json!(i));
    }
    let added: Vec<serde_json::Value> = SPECIALS[..2]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tok = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_string(&tok)?)?;
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"eos_token": "<|endoftext|>", "mask_token": "<|mask|>"}"#,
    )?;
    Ok(SPECIALS.len() + WORDS.len())
}

/// A JSONL corpus of `n` tiny documents (single-digit sums and capitals).
pub fn write_corpus(path: &Path, n: usize) -> Result<()> {
    let names = ["Arden", "Belo", "Cyr", "Dunmore", "Elk", "Fenwick"];
    let mut out = String::new();
    for i in 0..n {
        let text = if i % 2 == 0 {
            let (a, b) = (i % 5, (i / 2) % 5);
            format!("{a} + {b} = {} Answer {}", a + b, a + b)
        } else {
            let c = (i / 2) % 6;
            format!("capital of {} is {}", names[c], names[(c + 1) % 6])
        };
        out.push_str(&serde_json::json!({ "text": text }).to_string());
        out.push('\n');
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// A tiny MoE config (2 layers: dense then MoE with 4 experts, top-2, shared expert).
pub fn tiny_config(vocab: usize) -> Config {
    let v = serde_json::json!({
        "vocab_size": vocab, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 16, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6, "intermediate_size": 64, "first_k_dense_replace": 1, "num_experts": 4,
        "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "routed_scaling_factor": 1.0,
        "moe_intermediate_size": 16, "num_shared_experts": 1, "eos_token_id": 0, "mask_token_id": 1,
        "max_position_embeddings": 512
    });
    Config::from_json_str(&v.to_string()).expect("valid tiny config")
}

/// Writes a tiny base model (HF layout, with tokenizer) into `dir`: randomly initialised, then
/// pretrained for a few steps on [`write_corpus`] so that it never predicts the mask token
/// (an untrained model may, and a decoder then never fills that mask).
pub fn write_base(dir: &Path, seed: u64) -> Result<Config> {
    let work = tempfile::tempdir()?;
    let vocab = write_tokenizer(&work.path().join("tok"))?;
    let cfg = tiny_config(vocab);
    let corpus = work.path().join("corpus.jsonl");
    write_corpus(&corpus, 60)?;
    let run = super::RunKind::Pretrain {
        model: cfg.clone(),
        init_std: 0.1,
        bias_update_rate: 1e-3,
        init_from: None,
    };
    let mut rc =
        run_config(run, super::Objective::Random, &corpus, &work.path().join("tok/tokenizer.json"), 20);
    rc.seed = seed;
    let mut t = super::Trainer::create(&work.path().join("run"), rc)?;
    t.quiet = true;
    for _ in 0..20 {
        t.step()?;
    }
    let map: HashMap<String, Tensor> =
        t.saved.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    write_hf_dir(dir, &cfg, &map, &work.path().join("tok/tokenizer.json"))?;
    Ok(cfg)
}

/// Noise settings for tests: per-block t in [0.2, 0.8], 20% random tokens.
pub fn noise(objective: super::Objective) -> super::NoiseConfig {
    super::NoiseConfig {
        objective,
        block_length: 8,
        t_min: 0.2,
        t_max: 0.8,
        per_block: true,
        random_frac: 0.2,
        draft_frac: 0.7,
        gate: 0.0,
        random_mix: 0.1,
        w_m2t: 1.0,
        w_t2t: 1.0,
        w_keep: 0.0,
        clean_context: true,
        prompt_clean: 0.0,
        draft_mode: Default::default(),
        draft_steps: 1,
        draft_threshold: 0.7,
    }
}

/// A small run config over `corpus` (JSONL) with the tokenizer at `tokenizer`.
pub fn run_config(
    run: super::RunKind,
    objective: super::Objective,
    corpus: &Path,
    tokenizer: &Path,
    steps: usize,
) -> super::RunConfig {
    super::RunConfig {
        run,
        noise: noise(objective),
        steps,
        lr: 1e-2,
        warmup: 2,
        min_lr_ratio: 0.1,
        batch_size: 4,
        grad_accum: 1,
        seq_len: 32,
        seed: 11,
        clip: 1.0,
        adamw: super::optim::AdamWConfig::default(),
        checkpoint_every: 0,
        keep_checkpoints: 2,
        eval_every: 0,
        eval_suites: Vec::new(),
        eval_limit: None,
        device: crate::model::DeviceKind::Cpu,
        data: super::run::DataSpec {
            file: Some(corpus.to_path_buf()),
            world_seed: 0,
            world_corpus: Default::default(),
            tokenizer: tokenizer.to_path_buf(),
            max_docs: None,
        },
    }
}
