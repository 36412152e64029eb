//! `draftscope speed`: throughput figures for the forward pass and the decoder (benchmarks
//! live here, not in timed tests: machines are shared and noisy).

use std::ops::ControlFlow;
use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};
use clap::{Args, ValueEnum};

use crate::decode::{AttentionMode, DecodeParams, Decoder, Mode};
use crate::model::weights::InitWeights;
use crate::model::{Collect, Config, KvCache, Llada2, MaskKind};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SpeedConfig {
    /// The reference fixture's config (hidden 64, 3 layers, 16 experts).
    Fixture,
    /// hidden 512, 8 layers, 32 experts top-4, vocab 8192.
    Mid,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SpeedWhat {
    Forward,
    Decode,
    Record,
    /// A model directory (`--model`): load time, peak RSS, seconds per 32-token step.
    Model,
    /// candle's q8_0 matmul against draftscope's AVX2 kernel on LLaDA2.1-mini's lm_head shape.
    Q8Head,
    /// candle's f32 matmul against draftscope's AVX2 kernel on the mid config's linear shapes.
    F32Linear,
}

#[derive(Debug, Args)]
pub struct SpeedArgs {
    #[arg(long, value_enum, default_value = "forward")]
    pub what: SpeedWhat,
    #[arg(long, value_enum, default_value = "mid")]
    pub config: SpeedConfig,
    /// Window lengths (forward) or generation lengths (decode), comma-separated.
    #[arg(long)]
    pub lengths: Option<String>,
    /// Repetitions per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// `--what model`: the model directory (e.g. from `draftscope synth`).
    #[arg(long)]
    pub model: Option<String>,
    /// `--what model`: compute dtype for non-quantized weights.
    #[arg(long, value_enum, default_value_t = crate::model::DtypeKind::F32)]
    pub dtype: crate::model::DtypeKind,
    /// `--what model`: the full depth to extrapolate to (e.g. 20 for LLaDA2.1-mini).
    #[arg(long)]
    pub full_layers: Option<usize>,
    /// `--what model`: also time the same step on the reference MoE path (the per-expert
    /// tensor loop; for quantized experts, candle's quantized matmul) and print the ratio.
    #[arg(long)]
    pub compare_moe: bool,
    /// `--what model`: also time each step on one thread of the pool, interleaved with the
    /// step on all `--threads`, and print the speed-up per pair (needs `--threads` ≥ 2).
    #[arg(long)]
    pub scaling: bool,
    /// Compute threads (0 = candle's default: every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn config(which: SpeedConfig) -> Config {
    let (h, layers, experts, topk, groups, topk_group, vocab, heads, kv, hd, inter, moe_inter) = match which {
        SpeedConfig::Fixture => (64, 3, 16, 2, 4, 2, 512, 4, 2, 16, 128, 32),
        SpeedConfig::Mid => (512, 8, 32, 4, 4, 2, 8192, 8, 2, 64, 1408, 256),
    };
    Config::from_json_str(
        &serde_json::json!({
            "vocab_size": vocab, "hidden_size": h, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd,
            "partial_rotary_factor": 0.5, "rope_theta": 600000.0, "rms_norm_eps": 1e-6,
            "intermediate_size": inter, "first_k_dense_replace": 1, "num_experts": experts,
            "num_experts_per_tok": topk, "n_group": groups, "topk_group": topk_group,
            "routed_scaling_factor": 2.5, "moe_intermediate_size": moe_inter, "num_shared_experts": 1,
            "max_position_embeddings": 8192, "eos_token_id": vocab - 4, "mask_token_id": vocab - 1,
        })
        .to_string(),
    )
    .expect("built-in config is valid")
}

/// A randomly initialised model of the given config (weights are irrelevant to speed).
pub fn random_model(cfg: &Config) -> Result<Llada2> {
    let ws = InitWeights::new(7, 0.02, &Device::Cpu);
    let mut m = Llada2::new(cfg, &ws)?;
    m.fused = true;
    Ok(m)
}

fn median(v: Vec<f64>) -> f64 {
    crate::bench::stats::median(&v)
}

fn lengths(arg: &Option<String>, default: &[usize]) -> Result<Vec<usize>> {
    match arg {
        Some(s) => Ok(crate::cli::parse_ids(s, "--lengths")?.into_iter().map(|x| x as usize).collect()),
        None => Ok(default.to_vec()),
    }
}

pub fn run(args: SpeedArgs) -> Result<()> {
    if args.what != SpeedWhat::Model && (args.scaling || args.compare_moe || args.full_layers.is_some()) {
        anyhow::bail!("--scaling, --compare-moe and --full-layers apply to --what model only");
    }
    if args.what == SpeedWhat::Model {
        let Some(dir) = &args.model else { anyhow::bail!("--what model needs --model DIR") };
        if args.scaling && candle_core::utils::get_num_threads() < 2 {
            anyhow::bail!(
                "--scaling compares one thread with all of them: give --threads 2 or more (now {})",
                candle_core::utils::get_num_threads()
            );
        }
        if args.reps == 0 {
            anyhow::bail!("--reps must be at least 1");
        }
        let opts = super::speed_model::Options {
            reps: args.reps,
            full_layers: args.full_layers,
            compare_moe: args.compare_moe,
            scaling: args.scaling,
        };
        return super::speed_model::run(dir, args.dtype, opts);
    }
    if args.what == SpeedWhat::Q8Head {
        return super::speed_q8::run(args.reps);
    }
    if args.what == SpeedWhat::F32Linear {
        return super::speed_f32::run(args.reps);
    }
    let cfg = config(args.config);
    let model = random_model(&cfg)?;
    let reps = args.reps.max(1);
    match args.what {
        SpeedWhat::Forward => forward(&model, &lengths(&args.lengths, &[64, 128, 256, 512, 1024])?, reps),
        SpeedWhat::Decode => decode(&model, &lengths(&args.lengths, &[256, 1024, 2048])?, reps),
        SpeedWhat::Record => record(&model, &lengths(&args.lengths, &[256])?, reps),
        SpeedWhat::Model | SpeedWhat::Q8Head | SpeedWhat::F32Linear => Ok(()), // handled above, before building the random model
    }
}

/// One step of a 32-token block at the end of a window: `hf` recomputes the whole window;
/// `block-causal` runs only the block against a cached prefix.
fn forward(model: &Llada2, lens: &[usize], reps: usize) -> Result<()> {
    let b = 32;
    let dev = Device::Cpu;
    println!("window  hf_full_ms  cached_step_ms  hf_tok/s  cached_tok/s  speedup");
    for &w in lens {
        let w = w.div_ceil(b) * b;
        let ids: Vec<u32> = (0..w as u32).map(|i| (i * 7919) % (model.cfg.vocab_size as u32 - 8)).collect();
        let mut full = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            model.forward_window(&ids, MaskKind::GenerateBias { block_length: b }, &Collect::default())?;
            full.push(t.elapsed().as_secs_f64());
        }
        // Build the cache once (not timed: it is paid once per block, not per step).
        let mut cache = KvCache::default();
        let start = w - b;
        if start > 0 {
            let prefix = Tensor::new(&ids[..start], &dev)?.unsqueeze(0)?;
            let bias = MaskKind::BlockCausal { block_length: b }.bias(0, start, start, &dev)?;
            let out = model.forward(&prefix, 0, bias.as_ref(), None, start, &Collect::default())?;
            cache.extend(out.new_kv)?;
        }
        let block = Tensor::new(&ids[start..], &dev)?.unsqueeze(0)?;
        let mut step = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            model.forward(&block, start, None, Some(&cache), 0, &Collect::default())?;
            step.push(t.elapsed().as_secs_f64());
        }
        let (f, s) = (median(full), median(step));
        println!(
            "{w:>6}  {:>10.2}  {:>14.2}  {:>8.0}  {:>12.0}  {:>6.1}x",
            f * 1e3,
            s * 1e3,
            b as f64 / f,
            b as f64 / s,
            f / s
        );
    }
    Ok(())
}

/// Parameters that make every block take exactly two forwards (fill all, then a confirming
/// post-step), so the figures measure per-forward cost rather than a random model's luck.
fn speed_params(cfg: &Config, gen_length: usize, record: bool) -> DecodeParams {
    let mut p = DecodeParams::preset(Mode::Q, cfg.eos_token_id, cfg.mask_token_id);
    p.threshold = 0.0;
    p.editing_threshold = 1.0;
    p.gen_length = gen_length;
    p.block_length = 32;
    p.record_positions = record;
    // Never stop at EOS: measure the whole length.
    p.eos_id = cfg.mask_token_id - 1;
    p
}

fn time_decode(model: &Llada2, p: DecodeParams, att: AttentionMode, reps: usize) -> Result<(f64, usize)> {
    let prompt: Vec<u32> = (1..=16).collect();
    let mut times = Vec::new();
    let mut tokens = 0;
    for _ in 0..reps {
        let dec = Decoder::new(model, p.clone(), att)?;
        let t = Instant::now();
        let trace = dec.run(&prompt, &mut |_| ControlFlow::Continue(()))?;
        times.push(t.elapsed().as_secs_f64());
        tokens = trace.final_canvas.len() - prompt.len();
    }
    Ok((median(times), tokens))
}

fn decode(model: &Llada2, lens: &[usize], reps: usize) -> Result<()> {
    println!("gen_len  hf_tok/s  block_causal_nocache_tok/s  block_causal_cached_tok/s  cache_vs_nocache");
    for &g in lens {
        let p = speed_params(&model.cfg, g, true);
        let (hf, n) = time_decode(model, p.clone(), AttentionMode::Hf, reps)?;
        let (nc, _) = time_decode(model, p.clone(), AttentionMode::BlockCausalNoCache, reps)?;
        let (c, _) = time_decode(model, p, AttentionMode::BlockCausal, reps)?;
        let n = n as f64;
        println!("{g:>7}  {:>8.1}  {:>26.1}  {:>25.1}  {:>15.1}x", n / hf, n / nc, n / c, nc / c);
    }
    Ok(())
}

/// Decode time with and without per-position records (argmax, p, p(current), top-k),
/// interleaved so background load hits both alike.
fn record(model: &Llada2, lens: &[usize], reps: usize) -> Result<()> {
    println!("gen_len  without_ms  with_ms  overhead");
    for &g in lens {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            off.push(
                time_decode(model, speed_params(&model.cfg, g, false), AttentionMode::BlockCausal, 1)?.0,
            );
            on.push(time_decode(model, speed_params(&model.cfg, g, true), AttentionMode::BlockCausal, 1)?.0);
        }
        let (off, on) = (median(off), median(on));
        println!("{g:>7}  {:>10.1}  {:>7.1}  {:>7.1}%", off * 1e3, on * 1e3, 100.0 * (on - off) / off);
    }
    Ok(())
}
