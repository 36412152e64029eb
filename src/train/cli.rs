//! `draftscope pretrain`, `train`, `merge` and `bench-train`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use candle_core::Tensor;
use clap::Args;

use super::objective::{DraftMode, NoiseConfig, Objective};
use super::optim::AdamWConfig;
use super::run::{DataSpec, KindDefaults, ResumeChanges, RunConfig, RunKind, Status, Trainer, write_hf_dir};
use crate::model::lora::{self, AdapterConfig, DEFAULT_TARGETS};
use crate::model::{Config, DeviceKind, DtypeKind, LoadedModel, source};

/// Flags shared by `pretrain` and `train`. Defaults that differ per command are noted.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Corpus: text (documents separated by blank lines) or JSONL (field `text`).
    /// Default: the embedded world's training split.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// tokenizer.json (default: the base model's, or the embedded model's for pretraining).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Seed of the world corpus (when no --data).
    #[arg(long, default_value_t = crate::world::DEFAULT_SEED)]
    pub world_seed: u64,
    /// Which world corpus (when no --data): base (two-digit arithmetic and the facts) or long
    /// (half the arithmetic from the 3–4 digit families; the embedded model's stage-2 corpus).
    /// Default: long for train, base for pretrain.
    #[arg(long, value_enum, conflicts_with = "data")]
    pub world_corpus: Option<crate::world::WorldCorpus>,
    /// Use only the first N documents.
    #[arg(long)]
    pub max_docs: Option<usize>,
    /// Total optimizer steps of the run (pretrain: 3000, train: 300).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Peak learning rate (pretrain: 3e-3, train: 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warmup steps (default: 5% of --steps).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Cosine decay floor as a fraction of the peak.
    #[arg(long, default_value_t = 0.1)]
    pub min_lr_ratio: f64,
    /// Sequences per micro-batch (pretrain: 16, train: 8).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Tokens per packed sequence (a multiple of --block-length).
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// Diffusion block length (hard block-causal attention between blocks).
    #[arg(long, default_value_t = 32)]
    pub block_length: usize,
    /// Seed of noise, data order and initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Gradient clipping: max global L2 norm (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// AdamW decoupled weight decay (matrices only).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f64,
    #[arg(long, default_value_t = 0.95)]
    pub beta2: f64,
    /// Smallest mask ratio t (t ~ U(t_min, t_max)).
    #[arg(long, default_value_t = 0.001)]
    pub t_min: f64,
    /// Largest mask ratio t.
    #[arg(long, default_value_t = 1.0)]
    pub t_max: f64,
    /// Draw one mask ratio per sequence instead of one per block.
    #[arg(long)]
    pub per_sequence: bool,
    /// Weight of the M2T loss (masked positions).
    #[arg(long, default_value_t = 1.0)]
    pub w_m2t: f64,
    /// Weight of the T2T loss (random-token and draft positions).
    #[arg(long, default_value_t = 1.0)]
    pub w_t2t: f64,
    /// Weight of a loss on untouched visible positions (0 = not trained).
    #[arg(long, default_value_t = 0.0)]
    pub w_keep: f64,
    /// Probability that a sequence's chat prompts (up to `<role>ASSISTANT</role>`) stay clean,
    /// as decoding sees them (SFT-style); 0 = noise on every position. Default 1: the embedded
    /// model was pretrained with clean prompts, and LoRA runs at 0.5 spent their steps learning
    /// to fill in masked questions (arith −10 to −33 points in the measured runs).
    #[arg(long, default_value_t = 1.0)]
    pub prompt_clean: f64,
    /// Noise the whole sequence so each block sees noisy earlier blocks (the older layout).
    /// Default: each block is denoised against a clean copy of the blocks before it, as at
    /// inference (input `[noisy ; clean]`, twice the tokens per forward).
    #[arg(long)]
    pub noisy_context: bool,
    /// Checkpoint every K steps (and always at the end and on SIGINT/SIGTERM).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Checkpoints kept (the oldest are deleted).
    #[arg(long, default_value_t = 3)]
    pub keep_checkpoints: usize,
    /// Compute device: cpu, cuda (the first GPU) or cuda:K (needs a `--features cuda` build).
    #[arg(long, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    /// Print one JSON line per step instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// CPU threads for candle (ignored when RAYON_NUM_THREADS is set). candle's CPU pool
    /// spin-waits, so on a small or shared machine one thread is fastest (3× on 2 busy cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Data-parallel workers: each micro-batch's sequences are split across N threads, each
    /// running candle single-threaded (use with --threads 1). On 2 idle cores, 2 workers nearly
    /// double the tokens per second. Changes only the order of float sums, not the run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
}

/// Sets candle's CPU thread count (it reads RAYON_NUM_THREADS once, on first use).
pub fn set_threads(n: usize) {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() && n > 0 {
        // SAFETY: called at command start, before any thread of ours or candle's exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

/// Flags `--resume` applies to a run (the rest of its configuration is fixed in run.json).
const RESUMABLE: [&str; 10] = [
    "resume",
    "steps",
    "lr",
    "checkpoint_every",
    "keep_checkpoints",
    "eval_every",
    "device",
    "threads",
    "workers",
    "json",
];

/// What `--resume` may change, from the flags given on the command line (`given`: clap ids);
/// any other given flag is refused, since the run continues with its recorded configuration.
fn resume_changes(c: &CommonArgs, eval_every: Option<usize>, given: &[String]) -> Result<ResumeChanges> {
    if let Some(id) = given.iter().find(|id| !RESUMABLE.contains(&id.as_str())) {
        anyhow::bail!(
            "--{} cannot change when resuming: the run continues with the configuration in its run.json (resume accepts --steps, --lr, --checkpoint-every, --keep-checkpoints, --eval-every, --device, --threads, --workers, --json); start a new run with --out to change it",
            id.replace('_', "-")
        );
    }
    let has = |id: &str| given.iter().any(|g| g == id);
    Ok(ResumeChanges {
        steps: c.steps,
        lr: c.lr,
        checkpoint_every: c.checkpoint_every,
        keep_checkpoints: has("keep_checkpoints").then_some(c.keep_checkpoints),
        eval_every: if has("eval_every") { eval_every } else { None },
        device: has("device").then_some(c.device),
    })
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// Flags given on the command line (clap ids), filled in by `main`; `--resume` uses it.
    #[arg(skip)]
    pub given: Vec<String>,
    /// Run directory (the model lands in DIR/model/).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint (--steps sets a new total).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Continued pretraining: start from the weights of this model directory (its
    /// `config.json` and `model.safetensors`, e.g. `assets/model`) instead of a random
    /// initialisation; the model shape comes from it, so the size flags are refused.
    #[arg(long, conflicts_with_all = ["hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate",
        "moe_intermediate", "experts", "experts_per_tok", "n_group", "topk_group", "shared_experts",
        "first_dense", "routed_scaling", "partial_rotary", "rope_theta"])]
    pub init: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Probability that a visible position is replaced by a random token (T2T).
    #[arg(long, default_value_t = 0.1)]
    pub random_frac: f64,
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    #[arg(long, default_value_t = 4)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 2)]
    pub kv_heads: usize,
    #[arg(long, default_value_t = 32)]
    pub head_dim: usize,
    /// Width of the dense MLP (first layers).
    #[arg(long, default_value_t = 384)]
    pub intermediate: usize,
    /// Width of each expert (and of each shared expert).
    #[arg(long, default_value_t = 64)]
    pub moe_intermediate: usize,
    #[arg(long, default_value_t = 16)]
    pub experts: usize,
    #[arg(long, default_value_t = 2)]
    pub experts_per_tok: usize,
    #[arg(long, default_value_t = 4)]
    pub n_group: usize,
    #[arg(long, default_value_t = 2)]
    pub topk_group: usize,
    #[arg(long, default_value_t = 1)]
    pub shared_experts: usize,
    /// Leading layers with a dense MLP (the rest are MoE).
    #[arg(long, default_value_t = 1)]
    pub first_dense: usize,
    #[arg(long, default_value_t = 1.0)]
    pub routed_scaling: f64,
    #[arg(long, default_value_t = 0.5)]
    pub partial_rotary: f64,
    #[arg(long, default_value_t = 10_000.0)]
    pub rope_theta: f64,
    /// Std of the normal initialisation (HF `initializer_range`).
    #[arg(long, default_value_t = 0.02)]
    pub init_std: f64,
    /// Auxiliary-loss-free balancing: expert-bias step per update (0 = off).
    #[arg(long, default_value_t = 1e-3)]
    pub bias_update_rate: f64,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Flags given on the command line (clap ids), filled in by `main`; `--resume` uses it.
    #[arg(skip)]
    pub given: Vec<String>,
    /// `random` (mask + random tokens) or `self` (mask + the model's own drafts).
    #[arg(long, value_enum, required_unless_present_any = ["resume", "config"])]
    pub objective: Option<Objective>,
    /// Run config file: a LoRA run's `RunConfig`, as the `config` of a run's run.json (the
    /// workbench writes one into the run directory). Flags given on the command line override
    /// its fields.
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Base model: directory, HF repo id, or the embedded model (default).
    #[arg(long)]
    pub base: Option<String>,
    /// Run directory (the adapter lands in DIR/adapter/).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint (--steps sets a new total).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (scale = alpha / rank).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// LoRA dropout (exact resume needs 0: candle's CPU dropout cannot be seeded).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
    /// Module-name suffixes to adapt.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_TARGETS.map(String::from))]
    pub targets: Vec<String>,
    /// Also adapt routed experts.
    #[arg(long)]
    pub include_experts: bool,
    /// random: probability that a visible position gets a random token.
    #[arg(long, default_value_t = 0.1)]
    pub random_frac: f64,
    /// self: share of masked positions filled with a draft (the rest stay masked, M2T).
    #[arg(long, default_value_t = 0.5)]
    pub draft_frac: f64,
    /// self: draft only where p(argmax) > GATE (0 = draft always). The default, 0.5, is the
    /// best variant of the recipe sweep on the development split whose adapters do no harm on
    /// the old suites (5 seeds, Q and S): gate 0 scored higher on dev but cost facts 7.3
    /// points (README, "The recipe, chosen on the development split").
    #[arg(long, default_value_t = 0.5)]
    pub gate: f64,
    /// self: how pass 1 drafts — `argmax` (one forward; --draft-frac of the masks, gated by
    /// --gate) or `decode` (--draft-steps steps of the decoder's M2T rule at
    /// --draft-threshold, so the drafts are what decoding would commit).
    #[arg(long, value_enum, default_value_t = DraftMode::Argmax)]
    pub draft_mode: DraftMode,
    /// self, `--draft-mode decode`: decoder steps of pass 1 (each one more forward).
    #[arg(long, default_value_t = 1)]
    pub draft_steps: usize,
    /// self, `--draft-mode decode`: the M2T commit threshold (0.7 = Q-Mode, 0.5 = S-Mode).
    #[arg(long, default_value_t = 0.7)]
    pub draft_threshold: f64,
    /// self: probability that a visible position gets a random token.
    #[arg(long, default_value_t = 0.05)]
    pub random_mix: f64,
    /// Run the benchmark suites every K steps (0 = never); results go to the session results
    /// store (results pane) and to run.json `evals`.
    #[arg(long, default_value_t = KindDefaults::LORA.eval_every)]
    pub eval_every: usize,
    /// Suites for --eval-every (names or paths, as `bench --suite`).
    #[arg(long, value_delimiter = ',', default_values_t = KindDefaults::LORA.eval_suites.iter().map(|s| s.to_string()))]
    pub eval_suites: Vec<String>,
    /// Items per suite for each evaluation (0 = all).
    #[arg(long, default_value_t = KindDefaults::LORA.eval_limit)]
    pub eval_limit: usize,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// PEFT adapter directory.
    #[arg(long)]
    pub adapter: PathBuf,
    /// Base model (default: the adapter's `base_model_name_or_path`, else the embedded model).
    #[arg(long)]
    pub base: Option<String>,
    /// Output model directory (HF layout).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Base model (default: embedded).
    #[arg(long)]
    pub base: Option<String>,
    /// Corpus (default: the embedded world).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Timed steps per objective (after one warm-up step).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// Compute device: cpu, cuda (the first GPU) or cuda:K (needs a `--features cuda` build).
    #[arg(long, default_value_t = DeviceKind::Cpu)]
    pub device: DeviceKind,
    /// Also time a full-parameter pretraining step of the default pretrain config.
    #[arg(long)]
    pub pretrain: bool,
    /// CPU threads (see `train --threads`).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Also time each case with this many data-parallel workers (see `train --workers`) and
    /// print the speed-up over one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
}

fn noise(c: &CommonArgs, objective: Objective) -> NoiseConfig {
    NoiseConfig {
        objective,
        block_length: c.block_length,
        t_min: c.t_min,
        t_max: c.t_max,
        per_block: !c.per_sequence,
        random_frac: 0.1,
        draft_frac: 0.5,
        gate: 0.0,
        random_mix: 0.05,
        w_m2t: c.w_m2t,
        w_t2t: c.w_t2t,
        w_keep: c.w_keep,
        clean_context: !c.noisy_context,
        prompt_clean: c.prompt_clean,
        draft_mode: Default::default(),
        draft_steps: 1,
        draft_threshold: 0.7,
    }
}

/// A run's configuration: the flags, with the kind's defaults where a flag was not given.
fn run_config(
    c: &CommonArgs,
    run: RunKind,
    noise: NoiseConfig,
    d: KindDefaults,
    tokenizer: PathBuf,
) -> RunConfig {
    let steps = c.steps.unwrap_or(d.steps);
    RunConfig {
        run,
        noise,
        steps,
        lr: c.lr.unwrap_or(d.lr),
        warmup: c.warmup.unwrap_or(steps / 20),
        min_lr_ratio: c.min_lr_ratio,
        batch_size: c.batch_size.unwrap_or(d.batch_size),
        grad_accum: c.grad_accum,
        seq_len: c.seq_len,
        seed: c.seed,
        clip: c.clip,
        adamw: AdamWConfig { beta1: c.beta1, beta2: c.beta2, eps: 1e-8, weight_decay: c.weight_decay },
        checkpoint_every: c.checkpoint_every.unwrap_or(d.checkpoint_every),
        keep_checkpoints: c.keep_checkpoints,
        eval_every: d.eval_every,
        eval_suites: d.eval_suites.iter().map(|s| s.to_string()).collect(),
        eval_limit: Some(d.eval_limit),
        device: c.device,
        data: DataSpec {
            file: c.data.clone(),
            world_seed: c.world_seed,
            world_corpus: c.world_corpus.unwrap_or(d.world_corpus),
            tokenizer,
            max_docs: c.max_docs,
        },
    }
}

/// SIGINT / SIGTERM set the returned flag; the loop checkpoints and exits cleanly.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag)).context("cannot install a signal handler")?;
    }
    Ok(flag)
}

fn drive(mut t: Trainer, json: bool, workers: u64) -> Result<()> {
    t.workers = workers as usize;
    if json {
        t.quiet = true;
    }
    let stop = stop_flag()?;
    match t.run(&stop, None) {
        Ok(super::Outcome::Finished) => {
            eprintln!("finished: {} steps; result in {}", t.state.step, t.dir.display());
            Ok(())
        }
        Ok(super::Outcome::Stopped) => {
            eprintln!(
                "cancelled at step {}; checkpoint written; resume with --resume {}",
                t.state.step,
                t.dir.display()
            );
            Ok(())
        }
        Err(e) => {
            t.write_run_file(Status::Failed, Some(format!("{e:#}"))).ok();
            Err(e)
        }
    }
}

/// The model config `pretrain` builds from its flags and the tokenizer.
pub fn pretrain_model_config(a: &PretrainArgs, tokenizer: &Path) -> Result<Config> {
    let tok = super::data::load_tokenizer(tokenizer)?;
    let sp = super::data::find_specials(&tok, tokenizer)?;
    let pad = ["<|pad|>", "<pad>", "[PAD]"].iter().find_map(|n| tok.token_to_id(n));
    let cfg = Config {
        vocab_size: sp.vocab_size,
        hidden_size: a.hidden,
        num_hidden_layers: a.layers,
        num_attention_heads: a.heads,
        num_key_value_heads: a.kv_heads,
        head_dim: Some(a.head_dim),
        partial_rotary_factor: a.partial_rotary,
        rope_theta: a.rope_theta,
        rope_scaling: None,
        rms_norm_eps: 1e-6,
        intermediate_size: a.intermediate,
        first_k_dense_replace: a.first_dense,
        num_experts: Some(a.experts),
        num_experts_per_tok: a.experts_per_tok,
        n_group: a.n_group,
        topk_group: a.topk_group,
        routed_scaling_factor: a.routed_scaling,
        moe_intermediate_size: a.moe_intermediate,
        num_shared_experts: Some(a.shared_experts),
        use_qk_norm: true,
        use_qkv_bias: false,
        use_bias: false,
        tie_word_embeddings: false,
        max_position_embeddings: 4096,
        hidden_act: "silu".into(),
        eos_token_id: sp.eos,
        pad_token_id: Some(pad.unwrap_or(sp.eos)),
        mask_token_id: sp.mask,
        model_type: Some("llada2_moe".into()),
    };
    // The same checks a config.json read from disk gets (sizes, ratios, finite floats).
    cfg.validate()?;
    Ok(cfg)
}

/// The config of `--init DIR` (its `config.json`), checked against the tokenizer's vocabulary.
fn init_model_config(dir: &Path, tokenizer: &Path) -> Result<Config> {
    let file = dir.join("config.json");
    let cfg = Config::from_file(&file).with_context(|| format!("--init {}", dir.display()))?;
    let tok = super::data::load_tokenizer(tokenizer)?;
    let sp = super::data::find_specials(&tok, tokenizer)?;
    if sp.vocab_size != cfg.vocab_size {
        bail!(
            "--init {}: its vocabulary is {} but --tokenizer {} has {}; pass the tokenizer it was trained with",
            dir.display(),
            cfg.vocab_size,
            tokenizer.display(),
            sp.vocab_size
        );
    }
    Ok(cfg)
}

pub fn pretrain(a: PretrainArgs) -> Result<()> {
    set_threads(a.common.threads);
    if let Some(dir) = &a.resume {
        let changes = resume_changes(&a.common, None, &a.given)?;
        return drive(Trainer::resume(dir, &changes)?, a.common.json, a.common.workers);
    }
    let out = a.out.clone().context("--out DIR is required")?;
    let tokenizer =
        a.common.tokenizer.clone().unwrap_or_else(|| source::embedded_model_dir().join("tokenizer.json"));
    let cfg = match &a.init {
        Some(dir) => init_model_config(dir, &tokenizer)?,
        None => pretrain_model_config(&a, &tokenizer)?,
    };
    let mut nz = noise(&a.common, Objective::Random);
    nz.random_frac = a.random_frac;
    let run = RunKind::Pretrain {
        model: cfg,
        init_std: a.init_std,
        bias_update_rate: a.bias_update_rate,
        init_from: a.init.clone(),
    };
    let rc = run_config(&a.common, run, nz, KindDefaults::PRETRAIN, tokenizer);
    drive(Trainer::create(&out, rc)?, a.common.json, a.common.workers)
}

pub fn train(a: TrainArgs) -> Result<()> {
    set_threads(a.common.threads);
    if let Some(dir) = &a.resume {
        let changes = resume_changes(&a.common, Some(a.eval_every), &a.given)?;
        return drive(Trainer::resume(dir, &changes)?, a.common.json, a.common.workers);
    }
    let out = a.out.clone().context("--out DIR is required")?;
    let rc = match &a.config {
        Some(file) => {
            let mut rc = read_run_config(file)?;
            apply_flags(&mut rc, &a, &a.given).with_context(|| format!("--config {}", file.display()))?;
            rc.validate().with_context(|| format!("--config {}", file.display()))?;
            rc
        }
        None => lora_run_config(&a)?,
    };
    drive(Trainer::create(&out, rc)?, a.common.json, a.common.workers)
}

/// A LoRA run's configuration from `train`'s flags (defaults where a flag was not given).
pub fn lora_run_config(a: &TrainArgs) -> Result<RunConfig> {
    let objective = a.objective.context("--objective is required")?;
    let resolved = source::resolve(a.base.as_deref())?;
    let tokenizer = a.common.tokenizer.clone().unwrap_or_else(|| resolved.dir.join("tokenizer.json"));
    let adapter = AdapterConfig::new(a.rank, a.alpha, a.dropout, &a.targets, a.include_experts, &resolved.id);
    let mut nz = noise(&a.common, objective);
    nz.random_frac = a.random_frac;
    nz.draft_frac = a.draft_frac;
    nz.gate = a.gate;
    nz.draft_mode = a.draft_mode;
    nz.draft_steps = a.draft_steps;
    nz.draft_threshold = a.draft_threshold;
    nz.random_mix = a.random_mix;
    let run = RunKind::Lora { base: a.base.clone(), adapter };
    let mut rc = run_config(&a.common, run, nz, KindDefaults::LORA, tokenizer);
    rc.eval_every = a.eval_every;
    rc.eval_suites = a.eval_suites.clone();
    rc.eval_limit = (a.eval_limit > 0).then_some(a.eval_limit);
    Ok(rc)
}

/// The LoRA run config that `draftscope train ARGS` would use (`ARGS` without `train` and
/// `--out`, which is not part of a run's config): the workbench's form builds its run this
/// way, then writes it for `train --config FILE`.
pub fn lora_run_config_from_args(args: &[String]) -> Result<RunConfig> {
    #[derive(clap::Parser)]
    #[command(name = "train", no_binary_name = true)]
    struct Train {
        #[command(flatten)]
        a: TrainArgs,
    }
    let args = args.iter().map(String::as_str).chain(["--out", "."]);
    let t = <Train as clap::Parser>::try_parse_from(args).map_err(|e| {
        let text = e.to_string();
        let text: Vec<&str> =
            text.lines().map(str::trim).take_while(|l| !l.is_empty() && !l.starts_with("Usage")).collect();
        anyhow::anyhow!("{}", text.join(" ").trim_start_matches("error: "))
    })?;
    lora_run_config(&t.a)
}

/// Reads a run config file (`train --config FILE`): a [`RunConfig`] in JSON, the format of
/// run.json's `config`. A bad file is one line naming it and the field.
pub fn read_run_config(file: &Path) -> Result<RunConfig> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("--config {}: cannot read", file.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let rc: RunConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        if field == "." {
            anyhow::anyhow!("--config {}: {}", file.display(), e.inner())
        } else {
            anyhow::anyhow!("--config {}: field `{field}`: {}", file.display(), e.inner())
        }
    })?;
    if !matches!(rc.run, RunKind::Lora { .. }) {
        anyhow::bail!(
            "--config {}: field `run.kind`: a pretraining run; `train` takes a LoRA run (`lora`)",
            file.display()
        );
    }
    Ok(rc)
}

/// Applies the flags given on the command line (`given`: clap ids) to a run config read from
/// a file: each one sets its field. Flags of the process, not the run (`--json`, `--threads`,
/// `--workers`, `--out`, `--config`), change nothing here.
pub fn apply_flags(rc: &mut RunConfig, a: &TrainArgs, given: &[String]) -> Result<()> {
    let c = &a.common;
    let RunKind::Lora { base, adapter } = &mut rc.run else {
        anyhow::bail!("field `run`: not a LoRA run");
    };
    let nz = &mut rc.noise;
    for id in given {
        match id.as_str() {
            "objective" => nz.objective = a.objective.context("--objective")?,
            "base" => {
                let resolved = source::resolve(a.base.as_deref())?;
                *base = a.base.clone();
                adapter.base_model_name_or_path = Some(resolved.id);
                if !given.iter().any(|g| g == "tokenizer") {
                    rc.data.tokenizer = resolved.dir.join("tokenizer.json");
                }
            }
            "rank" => adapter.r = a.rank,
            "alpha" => adapter.lora_alpha = a.alpha,
            "dropout" => adapter.lora_dropout = a.dropout,
            "targets" => adapter.target_modules = a.targets.clone(),
            "include_experts" => {
                let fresh = AdapterConfig::new(a.rank, a.alpha, a.dropout, &a.targets, a.include_experts, "");
                adapter.exclude_modules = fresh.exclude_modules;
            }
            "random_frac" => nz.random_frac = a.random_frac,
            "draft_frac" => nz.draft_frac = a.draft_frac,
            "gate" => nz.gate = a.gate,
            "draft_mode" => nz.draft_mode = a.draft_mode,
            "draft_steps" => nz.draft_steps = a.draft_steps,
            "draft_threshold" => nz.draft_threshold = a.draft_threshold,
            "random_mix" => nz.random_mix = a.random_mix,
            "eval_every" => rc.eval_every = a.eval_every,
            "eval_suites" => rc.eval_suites = a.eval_suites.clone(),
            "eval_limit" => rc.eval_limit = (a.eval_limit > 0).then_some(a.eval_limit),
            "data" => rc.data.file = c.data.clone(),
            "tokenizer" => rc.data.tokenizer = c.tokenizer.clone().context("--tokenizer")?,
            "world_seed" => rc.data.world_seed = c.world_seed,
            "world_corpus" => rc.data.world_corpus = c.world_corpus.context("--world-corpus")?,
            "max_docs" => rc.data.max_docs = c.max_docs,
            "steps" => rc.steps = c.steps.context("--steps")?,
            "lr" => rc.lr = c.lr.context("--lr")?,
            "warmup" => rc.warmup = c.warmup.context("--warmup")?,
            "min_lr_ratio" => rc.min_lr_ratio = c.min_lr_ratio,
            "batch_size" => rc.batch_size = c.batch_size.context("--batch-size")?,
            "grad_accum" => rc.grad_accum = c.grad_accum,
            "seq_len" => rc.seq_len = c.seq_len,
            "block_length" => nz.block_length = c.block_length,
            "seed" => rc.seed = c.seed,
            "clip" => rc.clip = c.clip,
            "weight_decay" => rc.adamw.weight_decay = c.weight_decay,
            "beta1" => rc.adamw.beta1 = c.beta1,
            "beta2" => rc.adamw.beta2 = c.beta2,
            "t_min" => nz.t_min = c.t_min,
            "t_max" => nz.t_max = c.t_max,
            "per_sequence" => nz.per_block = !c.per_sequence,
            "w_m2t" => nz.w_m2t = c.w_m2t,
            "w_t2t" => nz.w_t2t = c.w_t2t,
            "w_keep" => nz.w_keep = c.w_keep,
            "prompt_clean" => nz.prompt_clean = c.prompt_clean,
            "noisy_context" => nz.clean_context = !c.noisy_context,
            "checkpoint_every" => rc.checkpoint_every = c.checkpoint_every.context("--checkpoint-every")?,
            "keep_checkpoints" => rc.keep_checkpoints = c.keep_checkpoints,
            "device" => rc.device = c.device,
            "json" | "threads" | "workers" | "out" | "config" => {}
            other => anyhow::bail!("--{}: not a field of a LoRA run config", other.replace('_', "-")),
        }
    }
    Ok(())
}

/// Folds an adapter into its base and writes a full model directory.
pub fn merge(a: MergeArgs) -> Result<()> {
    let acfg = lora::read_config(&a.adapter)?;
    let base = a
        .base
        .clone()
        .or_else(|| acfg.base_model_name_or_path.clone().filter(|b| b.as_str() != source::EMBEDDED_ID));
    let resolved = source::resolve(base.as_deref())?;
    for (what, dir) in [("base model", &resolved.dir), ("adapter", &a.adapter)] {
        if same_dir(&a.out, dir) {
            anyhow::bail!(
                "--out {} is the {what} directory: merge writes a new model, choose another --out",
                a.out.display()
            );
        }
    }
    let mut lm = LoadedModel::load_dir(&resolved.id, &resolved.dir, DeviceKind::Cpu, DtypeKind::F32)?;
    lora::load_adapter(&mut lm.model, &a.adapter)?;
    let n = lora::merge(&mut lm.model)?;
    let mut tensors = load_all_tensors(&resolved.dir)?;
    for (path, lin) in lm.model.linears_mut() {
        let key = format!("{path}.weight");
        if let Some(slot) = tensors.get_mut(&key) {
            *slot = lin.weight.clone();
        }
    }
    let cfg = Config::from_file(&resolved.dir.join("config.json"))?;
    write_hf_dir(&a.out, &cfg, &tensors, &resolved.dir.join("tokenizer.json"))?;
    // Keep the base's own config.json (it may carry fields we do not model).
    crate::session::atomic_write(
        &a.out.join("config.json"),
        &std::fs::read(resolved.dir.join("config.json"))?,
    )?;
    eprintln!("merged {n} adapted modules into {}", a.out.display());
    Ok(())
}

/// Whether two paths name one directory (after resolving links; a missing `a` is not `b`).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn load_all_tensors(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for f in crate::model::shards::safetensors_files(dir)? {
        crate::model::weights::check_safetensors_header(&f)?;
        out.extend(
            candle_core::safetensors::load(&f, &candle_core::Device::Cpu)
                .map_err(|e| anyhow::anyhow!("{}: corrupt safetensors ({e})", f.display()))?,
        );
    }
    Ok(out)
}

/// Training throughput (tokens/s) for LoRA on both objectives, optionally pretraining too.
pub fn bench_train(a: BenchTrainArgs) -> Result<()> {
    set_threads(a.threads);
    let resolved = source::resolve(a.base.as_deref())?;
    let tokenizer = a.tokenizer.clone().unwrap_or_else(|| resolved.dir.join("tokenizer.json"));
    let common = CommonArgs {
        data: a.data.clone(),
        tokenizer: Some(tokenizer.clone()),
        world_seed: crate::world::DEFAULT_SEED,
        world_corpus: None,
        max_docs: Some(2000),
        steps: Some(a.steps + 1),
        lr: Some(1e-3),
        warmup: Some(0),
        min_lr_ratio: 0.1,
        batch_size: Some(a.batch_size),
        grad_accum: 1,
        seq_len: a.seq_len,
        block_length: 32,
        seed: 0,
        clip: 1.0,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.95,
        t_min: 0.001,
        t_max: 1.0,
        per_sequence: false,
        w_m2t: 1.0,
        w_t2t: 1.0,
        w_keep: 0.0,
        noisy_context: false,
        prompt_clean: 1.0,
        checkpoint_every: Some(0),
        keep_checkpoints: 1,
        device: a.device,
        json: true,
        threads: a.threads,
        workers: 1,
    };
    let mut cases: Vec<(String, RunKind, Objective)> = Vec::new();
    for obj in [Objective::Random, Objective::SelfDraft] {
        let adapter = AdapterConfig::new(
            a.rank,
            2.0 * a.rank as f64,
            0.0,
            &DEFAULT_TARGETS.map(String::from),
            false,
            &resolved.id,
        );
        let name = format!("lora r={} {}", a.rank, if obj == Objective::Random { "random" } else { "self" });
        cases.push((name, RunKind::Lora { base: a.base.clone(), adapter }, obj));
    }
    if a.pretrain {
        let pa = PretrainArgs::default_for_bench();
        let cfg = pretrain_model_config(&pa, &tokenizer)?;
        cases.push((
            "pretrain (full)".into(),
            RunKind::Pretrain { model: cfg, init_std: 0.02, bias_update_rate: 1e-3, init_from: None },
            Objective::Random,
        ));
    }
    println!("model {}  batch {}×{} tokens  device {:?}", resolved.id, a.batch_size, a.seq_len, a.device);
    let worker_counts: Vec<usize> = if a.workers > 1 { vec![1, a.workers as usize] } else { vec![1] };
    for (name, run, obj) in cases {
        let mut base_rate = None;
        for &workers in &worker_counts {
            let tmp = tempfile::tempdir()?;
            // Steps, batch and checkpoints come from `common` (all given); the lr is LoRA's.
            let rc =
                run_config(&common, run.clone(), noise(&common, obj), KindDefaults::LORA, tokenizer.clone());
            let mut t = Trainer::create(tmp.path(), rc)?;
            t.workers = workers;
            t.step()?;
            let t0 = std::time::Instant::now();
            for _ in 0..a.steps {
                t.step()?;
            }
            let dt = t0.elapsed().as_secs_f64();
            let tokens = (a.steps * a.batch_size * a.seq_len) as f64;
            let rate = tokens / dt;
            let ratio = base_rate.map(|b: f64| format!("  {:.2}× one worker", rate / b)).unwrap_or_default();
            base_rate.get_or_insert(rate);
            println!(
                "{:<22} {:>9.0} tokens/s  {:>6.2} steps/s  ({} steps in {dt:.1}s){ratio}",
                format!("{name} w={workers}"),
                rate,
                a.steps as f64 / dt,
                a.steps
            );
        }
    }
    Ok(())
}

impl PretrainArgs {
    fn default_for_bench() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: PretrainArgs,
        }
        P::parse_from(["pretrain", "--out", "unused"]).a
    }
}
