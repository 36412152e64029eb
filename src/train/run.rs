//! One training run, pretraining or LoRA: the run directory, the step loop, checkpoints and
//! exact resume.
//!
//! ```text
//! DIR/run.json          config, status (running|finished|failed|cancelled), pid, device, versions
//! DIR/metrics.jsonl     one line per step
//! DIR/checkpoints/step-N/   weights (HF model dir | adapter/), optimizer.safetensors, state.json
//! DIR/model/            pretraining result in HF layout (config.json, model.safetensors, tokenizer)
//! DIR/adapter/          LoRA result in PEFT layout
//! ```
//!
//! Everything is written atomically (temp file + rename; a checkpoint is built in a temp
//! directory and renamed into place), so after `kill -9` a resume starts from the last complete
//! checkpoint. Randomness is a ChaCha8 stream per (seed, step, micro-batch), and data are
//! addressed by a cursor, so a resumed run computes exactly what a straight run would.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Tensor, Var};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::data::{self, Loader, Specials};
use super::objective::{self, NoiseConfig};
use super::optim::{AdamW, AdamWConfig, Schedule, clip_grad_norm, save_tensors_atomic};
use crate::model::lora::{self, AdapterConfig};
use crate::model::weights::InitWeights;
use crate::model::{Config, DeviceKind, DtypeKind, Llada2, LoadedModel};
use crate::session::{RunDir, atomic_write};

/// Where the documents come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Text or JSONL corpus; `None` = the embedded world's training split.
    pub file: Option<PathBuf>,
    /// World seed when `file` is `None`.
    pub world_seed: u64,
    /// Which world corpus when `file` is `None`.
    #[serde(default, skip_serializing_if = "crate::world::WorldCorpus::is_base")]
    pub world_corpus: crate::world::WorldCorpus,
    pub tokenizer: PathBuf,
    /// Use only the first N documents.
    pub max_docs: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RunKind {
    /// Full-parameter pretraining of a model with this config: from scratch, or (continued
    /// pretraining) from the weights of `init_from`, a model directory with this config.
    Pretrain {
        model: Config,
        init_std: f64,
        bias_update_rate: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init_from: Option<PathBuf>,
    },
    /// LoRA on a frozen base.
    Lora { base: Option<String>, adapter: AdapterConfig },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub run: RunKind,
    pub noise: NoiseConfig,
    /// Total optimizer steps of the run.
    pub steps: usize,
    pub lr: f64,
    pub warmup: usize,
    pub min_lr_ratio: f64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub seq_len: usize,
    pub seed: u64,
    pub clip: f64,
    pub adamw: AdamWConfig,
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    pub eval_every: usize,
    /// Suites for `eval_every` (names or paths, as `draftscope bench --suite`).
    #[serde(default = "default_eval_suites")]
    pub eval_suites: Vec<String>,
    /// First N items of each suite per evaluation (`None` = all).
    #[serde(default)]
    pub eval_limit: Option<usize>,
    pub device: DeviceKind,
    pub data: DataSpec,
}

fn default_eval_suites() -> Vec<String> {
    KindDefaults::LORA.eval_suites.iter().map(|s| s.to_string()).collect()
}

/// The defaults that differ between the two kinds of run; every other default is a flag's.
/// The CLI, `bench-train` and the workbench's training form all read these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindDefaults {
    pub steps: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub checkpoint_every: usize,
    /// Benchmark the model every K steps (0 = never): evaluation is opt-in, as it costs
    /// decoding time and adds records to the session's results store.
    pub eval_every: usize,
    /// Suites for `eval_every`.
    pub eval_suites: &'static [&'static str],
    /// Items per suite for each evaluation.
    pub eval_limit: usize,
    /// The world corpus when no file is given.
    pub world_corpus: crate::world::WorldCorpus,
}

impl KindDefaults {
    /// Block-diffusion pretraining from scratch.
    pub const PRETRAIN: Self = Self {
        steps: 3500,
        lr: 3e-3,
        batch_size: 16,
        checkpoint_every: 250,
        eval_every: 0,
        eval_suites: &["arith", "facts"],
        eval_limit: 40,
        world_corpus: crate::world::WorldCorpus::Base,
    };
    /// LoRA continued pretraining on a frozen base. The long corpus: the embedded model's own
    /// (stage 2) corpus; measured in README, "Self-generated T2T on the editing testbed".
    pub const LORA: Self = Self {
        steps: 300,
        lr: 1e-3,
        batch_size: 8,
        checkpoint_every: 50,
        eval_every: 0,
        eval_suites: &["arith", "facts"],
        eval_limit: 40,
        world_corpus: crate::world::WorldCorpus::Long,
    };
}

impl RunConfig {
    pub fn schedule(&self) -> Schedule {
        Schedule { peak: self.lr, warmup: self.warmup, total: self.steps, min_ratio: self.min_lr_ratio }
    }
}

/// Progress saved with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub step: usize,
    /// Sequences consumed so far (the data cursor).
    pub cursor: u64,
    /// RNG: every micro-batch draws from ChaCha8(seed) stream `step·accum + micro`.
    pub rng_seed: u64,
    pub elapsed_s: f64,
    pub tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub step: usize,
    pub loss: f64,
    pub loss_m2t: Option<f64>,
    pub loss_t2t: Option<f64>,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Finished,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub config: RunConfig,
    pub status: Status,
    pub pid: u32,
    pub device: String,
    pub versions: BTreeMap<String, String>,
    pub step: usize,
    #[serde(default)]
    pub error: Option<String>,
    /// Evaluation results recorded by `--eval-every` (empty until the bench lands).
    #[serde(default)]
    pub evals: Vec<serde_json::Value>,
}

pub fn read_run_file(dir: &Path) -> Result<RunFile> {
    let p = RunDir::new(dir).run_file();
    let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let rf: RunFile = serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{}: field `{}`: {}", p.display(), e.path(), e.inner()))?;
    rf.config.validate().with_context(|| format!("{}", p.display()))?;
    Ok(rf)
}

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped by a signal or `stop_after`; a checkpoint was written.
    Stopped,
}

pub struct Trainer {
    pub dir: PathBuf,
    pub rc: RunConfig,
    pub model: Llada2,
    /// What checkpoints save: every model tensor (pretraining) or the adapter (LoRA).
    pub saved: BTreeMap<String, Var>,
    pub opt: AdamW,
    pub loader: Loader,
    pub specials: Specials,
    pub state: State,
    /// Print JSON lines instead of a progress bar.
    pub quiet: bool,
    /// Data-parallel CPU workers: each micro-batch's rows are split across this many threads
    /// (see [`Trainer::step`]). A runtime choice, not part of the run: it changes only the order
    /// of float sums.
    pub workers: usize,
    /// Held for the trainer's life: a second writer of this run directory is refused.
    _lock: crate::session::DirLock,
}

/// Token of the assistant role tag: chat documents' prompts end with it.
pub const ASSISTANT_TAG: &str = "<role>ASSISTANT</role>";

fn load_docs(
    spec: &DataSpec,
    tok: &tokenizers::Tokenizer,
    cache_dir: Option<&Path>,
) -> Result<(Vec<Vec<u32>>, Vec<usize>)> {
    let tag = tok.token_to_id(ASSISTANT_TAG);
    let mut texts = match &spec.file {
        // A resumed run reads the file its run.json names (`config.data.file`): say so, since
        // the file may be a generated corpus that no longer exists on this machine.
        Some(f) => data::load_texts(f).context("the training corpus (run.json: config.data.file)")?,
        None => spec.world_corpus.texts(spec.world_seed),
    };
    if let Some(m) = spec.max_docs {
        texts.truncate(m);
    }
    let docs = data::tokenize_cached(&texts, tok, &spec.tokenizer, cache_dir)?;
    let prompt_lens = docs.iter().map(|d| data::prompt_len(d, tag)).collect();
    Ok((docs, prompt_lens))
}

/// The config of the model a run trains: the pretraining config, or the LoRA base's
/// `config.json` (read without loading weights).
fn model_config(rc: &RunConfig) -> Result<Config> {
    match &rc.run {
        RunKind::Pretrain { model, .. } => Ok(model.clone()),
        RunKind::Lora { base, .. } => {
            let resolved = crate::model::source::resolve(base.as_deref())?;
            Config::from_file(&resolved.dir.join("config.json"))
        }
    }
}

/// The tokenizer must fit the model: every id inside its vocabulary, and the same mask and EOS
/// ids (the objectives take them from the tokenizer, decoding from the config).
fn check_tokenizer_fits(cfg: &Config, sp: &Specials, tokenizer: &Path) -> Result<()> {
    let t = tokenizer.display();
    if sp.vocab_size > cfg.vocab_size {
        bail!(
            "tokenizer {t} has {} tokens but the model's vocab_size is {}: use the model's own tokenizer (--tokenizer)",
            sp.vocab_size,
            cfg.vocab_size
        );
    }
    if sp.mask != cfg.mask_token_id || sp.eos != cfg.eos_token_id {
        bail!(
            "tokenizer {t} has mask id {} and EOS id {}, the model config says mask_token_id {} and eos_token_id {}: use the model's own tokenizer (--tokenizer)",
            sp.mask,
            sp.eos,
            cfg.mask_token_id,
            cfg.eos_token_id
        );
    }
    Ok(())
}

/// The first line of a run file, written before anything slow, so that a run killed while
/// tokenising or loading still resumes.
fn write_initial_run_file(dir: &Path, rc: &RunConfig) -> Result<()> {
    let rf = RunFile {
        config: rc.clone(),
        status: Status::Running,
        pid: std::process::id(),
        device: rc.device.to_string(),
        versions: versions(),
        step: 0,
        error: None,
        evals: Vec::new(),
    };
    atomic_write(&RunDir::new(dir).run_file(), serde_json::to_string_pretty(&rf)?.as_bytes())
}

/// Flags `--resume` may change, applied to the recorded config (each says what changed).
#[derive(Debug, Clone, Default)]
pub struct ResumeChanges {
    pub steps: Option<usize>,
    pub lr: Option<f64>,
    pub checkpoint_every: Option<usize>,
    pub keep_checkpoints: Option<usize>,
    pub eval_every: Option<usize>,
    pub device: Option<DeviceKind>,
}

impl ResumeChanges {
    /// Applies the changes; returns one line per changed value.
    fn apply(&self, rc: &mut RunConfig) -> Vec<String> {
        let mut said = Vec::new();
        let mut note = |flag: &str, was: String, now: String| {
            if was != now {
                said.push(format!("{flag} {now} (was {was})"));
            }
        };
        if let Some(v) = self.steps {
            note("--steps", rc.steps.to_string(), v.to_string());
            rc.steps = v;
        }
        if let Some(v) = self.lr {
            note("--lr", rc.lr.to_string(), v.to_string());
            rc.lr = v;
        }
        if let Some(v) = self.checkpoint_every {
            note("--checkpoint-every", rc.checkpoint_every.to_string(), v.to_string());
            rc.checkpoint_every = v;
        }
        if let Some(v) = self.keep_checkpoints {
            note("--keep-checkpoints", rc.keep_checkpoints.to_string(), v.to_string());
            rc.keep_checkpoints = v;
        }
        if let Some(v) = self.eval_every {
            note("--eval-every", rc.eval_every.to_string(), v.to_string());
            rc.eval_every = v;
        }
        if let Some(v) = self.device {
            note("--device", rc.device.to_string(), v.to_string());
            rc.device = v;
        }
        said
    }
}

/// The model, the tensors a checkpoint saves, and the trainable subset.
type Built = (Llada2, BTreeMap<String, Var>, BTreeMap<String, Var>);

fn build_model(rc: &RunConfig) -> Result<Built> {
    let dev = rc.device.device()?;
    match &rc.run {
        RunKind::Pretrain { model: cfg, init_std, init_from, .. } => {
            let iw = InitWeights::new(rc.seed, *init_std, &dev);
            let mut model = Llada2::new(cfg, &iw)?;
            for (_, lin) in model.linears_mut() {
                lin.trainable = true;
            }
            model.fused = false;
            let all = iw.into_vars();
            if let Some(dir) = init_from {
                load_init_weights(dir, &all, &dev)?;
            }
            let trainable: BTreeMap<String, Var> = all
                .iter()
                .filter(|(k, _)| !k.ends_with("expert_bias"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok((model, all, trainable))
        }
        RunKind::Lora { base, adapter } => {
            let lm = LoadedModel::load(base.as_deref(), rc.device, DtypeKind::F32)?;
            let mut model = lm.model;
            let vars = lora::attach_new(&mut model, adapter, rc.seed)?;
            for (_, lin) in model.linears_mut() {
                lin.training = true;
            }
            model.fused = false;
            Ok((model, vars.clone(), vars))
        }
    }
}

/// Sets every variable from `dir/model.safetensors` (continued pretraining): each must be
/// there with its shape, and the file may hold nothing else, so a model of another shape is
/// refused by name rather than half-loaded.
fn load_init_weights(dir: &Path, vars: &BTreeMap<String, Var>, dev: &candle_core::Device) -> Result<()> {
    let file = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&file, dev)
        .with_context(|| format!("--init {}: cannot read {}", dir.display(), file.display()))?;
    for (name, var) in vars {
        let t = tensors.get(name).with_context(|| {
            format!(
                "--init {}: {} has no tensor {name}; is it a model of this config?",
                dir.display(),
                file.display()
            )
        })?;
        if t.dims() != var.dims() {
            bail!(
                "--init {}: tensor {name} in {} has shape {:?}, the config needs {:?}",
                dir.display(),
                file.display(),
                t.dims(),
                var.dims()
            );
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    if let Some(extra) = tensors.keys().find(|k| !vars.contains_key(*k)) {
        bail!("--init {}: {} holds {extra}, which this config does not have", dir.display(), file.display());
    }
    Ok(())
}

fn versions() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("draftscope".into(), env!("CARGO_PKG_VERSION").into());
    v.insert("candle".into(), "0.11.1".into());
    v
}

impl Trainer {
    /// A fresh run in `dir`, which must be new or empty. Everything is checked before the
    /// directory is touched; if setting up fails, what was created is removed again.
    pub fn create(dir: &Path, rc: RunConfig) -> Result<Self> {
        rc.validate()?;
        rc.device.device()?;
        if RunDir::new(dir).has_run() {
            bail!("{} already holds a run (use --resume {} to continue it)", dir.display(), dir.display());
        }
        let existed = dir.exists();
        if existed {
            let mut entries = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .flatten()
                .filter(|e| !RunDir::is_launcher_file(&e.file_name().to_string_lossy()));
            if entries.next().is_some() {
                bail!(
                    "--out {}: the directory is not empty and holds no run; choose a new or empty directory",
                    dir.display()
                );
            }
        }
        let lock = RunDir::new(dir).lock()?;
        let made = write_initial_run_file(dir, &rc)
            .and_then(|()| Self::build(dir, rc, State::default(), lock))
            .and_then(|t| t.write_run_file(Status::Running, None).map(|()| t));
        if made.is_err() {
            // No partial output: leave the directory as we found it (absent or empty).
            if existed {
                // The launcher's log stays: it holds the error for whoever launched us.
                let ours = std::fs::read_dir(dir).into_iter().flatten().flatten();
                for e in
                    ours.filter(|e| e.file_name() != RunDir::LOG_FILE && e.file_name() != RunDir::LAUNCH_FILE)
                {
                    let p = e.path();
                    if p.is_dir() {
                        std::fs::remove_dir_all(&p).ok()
                    } else {
                        std::fs::remove_file(&p).ok()
                    };
                }
            } else {
                std::fs::remove_dir_all(dir).ok();
            }
        }
        made
    }

    fn build(dir: &Path, rc: RunConfig, mut state: State, lock: crate::session::DirLock) -> Result<Self> {
        // Cheap checks first: the model's config against the tokenizer, before the corpus is
        // tokenised or any weight is loaded.
        let tok = data::load_tokenizer(&rc.data.tokenizer)?;
        let specials = data::find_specials(&tok, &rc.data.tokenizer)?;
        check_tokenizer_fits(&model_config(&rc)?, &specials, &rc.data.tokenizer)?;
        let (docs, prompt_lens) = load_docs(&rc.data, &tok, Some(&dir.join("cache")))?;
        let (seqs, prompts) =
            data::pack_with_prompts(&docs, &prompt_lens, rc.seq_len, rc.noise.block_length, specials.eos);
        let loader = Loader::new(seqs, rc.seed)?.with_prompts(prompts);
        let (model, saved, trainable) = build_model(&rc)?;
        let opt = AdamW::new(trainable, rc.adamw)?;
        state.rng_seed = rc.seed;
        Ok(Self {
            dir: dir.to_path_buf(),
            rc,
            model,
            saved,
            opt,
            loader,
            specials,
            state,
            quiet: !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            workers: 1,
            _lock: lock,
        })
    }

    /// Reopens the run in `dir` at its last complete checkpoint (from scratch when it was
    /// killed before the first one), applying `changes` and saying what they changed.
    pub fn resume(dir: &Path, changes: &ResumeChanges) -> Result<Self> {
        if !RunDir::new(dir).has_run() {
            bail!(
                "--resume {}: no run.json there, so it is not a run directory (start a run with --out)",
                dir.display()
            );
        }
        let lock = RunDir::new(dir).lock()?;
        crate::session::remove_temp_litter(dir, 3);
        let rf = read_run_file(dir)?;
        let mut rc = rf.config;
        let said = changes.apply(&mut rc);
        rc.validate().with_context(|| format!("--resume {}", dir.display()))?;
        rc.device.device()?;
        let ck = latest_checkpoint(dir)?;
        let st = match &ck {
            Some((_, p)) => serde_json::from_str::<State>(&std::fs::read_to_string(p.join("state.json"))?)
                .with_context(|| format!("{}: bad state.json", p.display()))?,
            None => State::default(),
        };
        if rc.steps < st.step {
            bail!(
                "--steps {} is below the step the run has reached ({}); give at least {}",
                rc.steps,
                st.step,
                st.step
            );
        }
        if !said.is_empty() {
            eprintln!("resume: {}", said.join(", "));
        }
        let mut t = Self::build(dir, rc, st, lock)?;
        if let Some((_, p)) = &ck {
            t.load_checkpoint(p)?;
        }
        t.trim_metrics()?;
        t.write_run_file(Status::Running, None)?;
        Ok(t)
    }

    fn load_checkpoint(&mut self, p: &Path) -> Result<()> {
        let dev = self.model.device().clone();
        let wpath = match self.rc.run {
            RunKind::Pretrain { .. } => p.join("model.safetensors"),
            RunKind::Lora { .. } => p.join("adapter").join("adapter_model.safetensors"),
        };
        let tensors = candle_core::safetensors::load(&wpath, &dev)
            .with_context(|| format!("cannot read checkpoint {}", wpath.display()))?;
        for (k, var) in &self.saved {
            let t =
                tensors.get(k).with_context(|| format!("{}: tensor `{k}` is missing", wpath.display()))?;
            var.set(t)?;
        }
        self.opt.load(&p.join("optimizer.safetensors"))?;
        Ok(())
    }

    /// Drops metric lines past the checkpoint we resumed from (and any partial last line).
    fn trim_metrics(&self) -> Result<()> {
        let p = RunDir::new(&self.dir).metrics_file();
        let Ok(text) = std::fs::read_to_string(&p) else { return Ok(()) };
        let mut out = String::new();
        for line in text.lines() {
            if let Ok(m) = serde_json::from_str::<Metrics>(line)
                && m.step <= self.state.step
            {
                out.push_str(line);
                out.push('\n');
            }
        }
        atomic_write(&p, out.as_bytes())
    }

    pub fn write_run_file(&self, status: Status, error: Option<String>) -> Result<()> {
        let evals = read_run_file(&self.dir).map(|r| r.evals).unwrap_or_default();
        let rf = RunFile {
            config: self.rc.clone(),
            status,
            pid: std::process::id(),
            device: format!("{:?}", self.model.device().location()),
            versions: versions(),
            step: self.state.step,
            error,
            evals,
        };
        atomic_write(&RunDir::new(&self.dir).run_file(), serde_json::to_string_pretty(&rf)?.as_bytes())
    }

    /// One optimizer step (with gradient accumulation); advances state.
    pub fn step(&mut self) -> Result<Metrics> {
        let t0 = Instant::now();
        let rc = &self.rc;
        let lr = rc.schedule().lr(self.state.step);
        let accum = rc.grad_accum.max(1);
        let mut grads: Option<BTreeMap<String, Tensor>> = None;
        let (mut loss_sum, mut sm, mut nm, mut st, mut nt) = (0f64, 0f64, 0usize, 0f64, 0usize);
        let mut loads: Vec<Vec<usize>> = Vec::new();
        let want_router =
            matches!(rc.run, RunKind::Pretrain { bias_update_rate, .. } if bias_update_rate > 0.0);
        for micro in 0..accum {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.state.rng_seed);
            rng.set_stream((self.state.step * accum + micro) as u64);
            let batch = self.loader.batch(self.state.cursor, rc.batch_size);
            let prompts = self.loader.prompt_batch(self.state.cursor, rc.batch_size);
            self.state.cursor += rc.batch_size as u64;
            let noisy = objective::make_input_with_prompts(
                &self.model,
                &batch,
                &prompts,
                &rc.noise,
                &self.specials,
                &mut rng,
            )?;
            // Each part's loss is its mean over its own loss positions; weighting it by its share
            // of the micro-batch's positions makes the parts sum to the whole batch's mean.
            let total = noisy.loss_positions().max(1);
            let micro_out =
                |part: &objective::Noisy| -> Result<(BTreeMap<String, Tensor>, objective::LossOut, f64)> {
                    let out = objective::loss_collect(&self.model, part, &rc.noise, want_router)?;
                    let share = (out.n_m2t + out.n_t2t).max(1) as f64 / total as f64;
                    let store = (&out.loss * (share / accum as f64))?.backward()?;
                    Ok((self.opt.grads(&store)?, out, share))
                };
            let results: Vec<Result<_>> = if self.workers <= 1 || noisy.b <= 1 {
                vec![micro_out(&noisy)]
            } else {
                // candle runs single-threaded ops inline (no pool lock), so the parts really run
                // in parallel; with a multi-threaded pool they would queue on it.
                let parts = noisy.split_rows(self.workers);
                std::thread::scope(|sc| {
                    let handles: Vec<_> = parts.iter().map(|p| sc.spawn(|| micro_out(p))).collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a training worker panicked")))
                        })
                        .collect()
                })
            };
            for r in results {
                let (g, out, share) = r?;
                grads = Some(match grads {
                    None => g,
                    Some(mut acc) => {
                        for (k, v) in acc.iter_mut() {
                            *v = (&*v + &g[k])?;
                        }
                        acc
                    }
                });
                loss_sum += out.loss.to_scalar::<f32>()? as f64 * share / accum as f64;
                sm += out.sum_m2t;
                nm += out.n_m2t;
                st += out.sum_t2t;
                nt += out.n_t2t;
                for (li, chosen) in out.router.iter().enumerate() {
                    if loads.len() <= li {
                        loads.push(Vec::new());
                    }
                    for row in chosen {
                        for &e in row {
                            if loads[li].len() <= e {
                                loads[li].resize(e + 1, 0);
                            }
                            loads[li][e] += 1;
                        }
                    }
                }
            }
        }
        let mut grads = grads.context("no micro-batch")?;
        let grad_norm = clip_grad_norm(&mut grads, rc.clip)?;
        if !loss_sum.is_finite() || !grad_norm.is_finite() {
            // Stop before the update: the weights (and the last checkpoint) stay good.
            let last = latest_checkpoint(&self.dir)?.map_or(0, |(n, _)| n);
            bail!(
                "training diverged at step {}: loss {loss_sum}, gradient norm {grad_norm}; weights not updated, last checkpoint at step {last}; resume with a lower learning rate: draftscope {} --resume {} --lr {:e}",
                self.state.step + 1,
                if matches!(rc.run, RunKind::Pretrain { .. }) { "pretrain" } else { "train" },
                self.dir.display(),
                rc.lr / 10.0
            );
        }
        self.opt.step(&grads, lr)?;
        if let RunKind::Pretrain { model: cfg, bias_update_rate, .. } = &rc.run
            && *bias_update_rate > 0.0
        {
            update_expert_bias(&self.saved, cfg, &loads, *bias_update_rate)?;
        }
        self.state.step += 1;
        let tokens = (accum * rc.batch_size * rc.seq_len) as u64;
        self.state.tokens += tokens;
        let dt = t0.elapsed().as_secs_f64();
        self.state.elapsed_s += dt;
        Ok(Metrics {
            step: self.state.step,
            loss: loss_sum,
            loss_m2t: (nm > 0).then(|| sm / nm as f64),
            loss_t2t: (nt > 0).then(|| st / nt as f64),
            lr,
            grad_norm,
            tokens_per_s: tokens as f64 / dt.max(1e-9),
            elapsed_s: self.state.elapsed_s,
        })
    }

    /// Writes `checkpoints/step-N/` atomically and prunes old checkpoints.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let fin = RunDir::new(&self.dir).checkpoint(self.state.step);
        let root = RunDir::new(&self.dir).checkpoints_dir();
        std::fs::create_dir_all(&root)?;
        if fin.exists() {
            return Ok(fin);
        }
        let tmp = crate::session::temp_dir_in(&root)?;
        match &self.rc.run {
            RunKind::Pretrain { model: cfg, .. } => {
                // A full HF-layout model directory: `--model DIR/checkpoints/step-N` decodes it.
                let map: HashMap<String, Tensor> =
                    self.saved.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
                write_hf_dir(tmp.path(), cfg, &map, &self.rc.data.tokenizer)?;
            }
            RunKind::Lora { adapter, .. } => {
                let map: BTreeMap<String, Tensor> =
                    self.saved.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
                lora::save_adapter(&tmp.path().join("adapter"), adapter, &map)?;
            }
        }
        self.opt.save(&tmp.path().join("optimizer.safetensors"))?;
        atomic_write(&tmp.path().join("state.json"), serde_json::to_string_pretty(&self.state)?.as_bytes())?;
        let tmp_path = tmp.keep();
        std::fs::rename(&tmp_path, &fin).with_context(|| format!("cannot write {}", fin.display()))?;
        let mut all = list_checkpoints(&self.dir)?;
        let keep = self.rc.keep_checkpoints.max(1);
        while all.len() > keep {
            let (_, p) = all.remove(0);
            std::fs::remove_dir_all(&p).ok();
        }
        Ok(fin)
    }

    /// The run's result: `DIR/model/` (pretraining) or `DIR/adapter/` (LoRA).
    pub fn write_final(&self) -> Result<PathBuf> {
        match &self.rc.run {
            RunKind::Pretrain { model: cfg, .. } => {
                let out = self.dir.join("model");
                let map: HashMap<String, Tensor> =
                    self.saved.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
                write_hf_dir(&out, cfg, &map, &self.rc.data.tokenizer)?;
                Ok(out)
            }
            RunKind::Lora { adapter, .. } => {
                let out = self.dir.join("adapter");
                let map: BTreeMap<String, Tensor> =
                    self.saved.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
                lora::save_adapter(&out, adapter, &map)?;
                Ok(out)
            }
        }
    }

    /// Benchmarks the current model (after checkpointing it, so results point at files that
    /// exist) and records the summaries in `run.json`.
    pub fn run_eval(&self) -> Result<Vec<String>> {
        let ck = self.save_checkpoint()?;
        let codec = crate::model::TextCodec::load(self.rc.data.tokenizer.parent().unwrap_or(Path::new(".")))?;
        let (id, adapter) = match &self.rc.run {
            RunKind::Pretrain { .. } => (ck.display().to_string(), None),
            RunKind::Lora { adapter, .. } => (
                adapter.base_model_name_or_path.clone().unwrap_or_default(),
                Some(ck.join("adapter").display().to_string()),
            ),
        };
        let evals = super::eval::evaluate(
            &self.model,
            &codec,
            &id,
            adapter.as_deref(),
            self.state.step,
            &self.rc.eval_suites,
            self.rc.eval_limit,
        )?;
        let mut rf = read_run_file(&self.dir)?;
        rf.evals.extend(evals.iter().cloned());
        rf.step = self.state.step;
        atomic_write(&RunDir::new(&self.dir).run_file(), serde_json::to_string_pretty(&rf)?.as_bytes())?;
        Ok(evals
            .iter()
            .map(|e| {
                format!(
                    "eval step {} {}: accuracy {:.3} (n={}), edits/100 {:.1}, over-corrected {}",
                    self.state.step,
                    e["suite"].as_str().unwrap_or("?"),
                    e["accuracy"].as_f64().unwrap_or(0.0),
                    e["n"],
                    e["edit_intensity"].as_f64().unwrap_or(0.0),
                    e["over_corrected"]
                )
            })
            .collect())
    }

    fn append_metrics(&self, m: &Metrics) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(RunDir::new(&self.dir).metrics_file())?;
        let mut line = serde_json::to_string(m)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        Ok(())
    }

    /// Runs until the configured total, `stop` becomes true, or `stop_after` steps were done in
    /// this call. Checkpoints every `checkpoint_every` steps and when stopping.
    pub fn run(&mut self, stop: &AtomicBool, stop_after: Option<usize>) -> Result<Outcome> {
        let total = self.rc.steps;
        let start = self.state.step;
        let bar = (!self.quiet).then(|| {
            let pb = indicatif::ProgressBar::new(total as u64);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  eta {eta_precise}  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb.set_position(start as u64);
            pb.reset_eta();
            pb
        });
        let mut done = 0usize;
        while self.state.step < total {
            if stop.load(Ordering::SeqCst) || stop_after.is_some_and(|n| done >= n) {
                self.save_checkpoint()?;
                self.write_run_file(Status::Cancelled, None)?;
                if let Some(pb) = &bar {
                    pb.abandon_with_message(format!(
                        "stopped at step {}; resume with --resume",
                        self.state.step
                    ));
                }
                return Ok(Outcome::Stopped);
            }
            let m = self.step()?;
            done += 1;
            self.append_metrics(&m)?;
            match &bar {
                Some(pb) => {
                    pb.set_position(m.step as u64);
                    pb.set_message(format!(
                        "loss {:.3} (m2t {} t2t {})  lr {:.2e}  {:.0} tok/s",
                        m.loss,
                        m.loss_m2t.map_or("-".into(), |v| format!("{v:.3}")),
                        m.loss_t2t.map_or("-".into(), |v| format!("{v:.3}")),
                        m.lr,
                        m.tokens_per_s
                    ));
                }
                None => println!("{}", serde_json::to_string(&m)?),
            }
            let every = self.rc.checkpoint_every;
            if every > 0 && self.state.step.is_multiple_of(every) && self.state.step < total {
                self.save_checkpoint()?;
                self.write_run_file(Status::Running, None)?;
            }
            let ev = self.rc.eval_every;
            if ev > 0 && self.state.step.is_multiple_of(ev) {
                let msg = match self.run_eval() {
                    Ok(lines) => lines.join("; "),
                    Err(e) => format!("warning: evaluation at step {} failed: {e:#}", self.state.step),
                };
                match &bar {
                    Some(pb) => pb.println(msg),
                    None => eprintln!("{msg}"),
                }
            }
        }
        self.save_checkpoint()?;
        let out = self.write_final()?;
        self.write_run_file(Status::Finished, None)?;
        if let Some(pb) = &bar {
            pb.finish_with_message(format!("done: {}", out.display()));
        }
        Ok(Outcome::Finished)
    }
}

/// Auxiliary-loss-free balancing (as DeepSeek-V3 / Ling): nudge each expert's selection bias
/// towards the mean load.
fn update_expert_bias(
    saved: &BTreeMap<String, Var>,
    cfg: &Config,
    loads: &[Vec<usize>],
    rate: f64,
) -> Result<()> {
    let e = cfg.num_experts.unwrap_or(0);
    for (j, load) in loads.iter().enumerate() {
        let layer = cfg.first_k_dense_replace + j;
        let Some(var) = saved.get(&format!("model.layers.{layer}.mlp.gate.expert_bias")) else { continue };
        let mut l = load.clone();
        l.resize(e, 0);
        let mean = l.iter().sum::<usize>() as f64 / e.max(1) as f64;
        let delta: Vec<f32> = l.iter().map(|&c| (rate * (mean - c as f64).signum()) as f32).collect();
        let d = Tensor::from_vec(delta, e, var.device())?;
        var.set(&(var.as_tensor() + d)?)?;
    }
    Ok(())
}

/// Writes a model directory in HF layout that `LoadedModel::load_dir` reads.
pub fn write_hf_dir(
    out: &Path,
    cfg: &Config,
    tensors: &HashMap<String, Tensor>,
    tokenizer: &Path,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut v = serde_json::to_value(cfg)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("architectures".into(), serde_json::json!(["LLaDA2MoeModelLM"]));
        o.insert("model_type".into(), serde_json::json!("llada2_moe"));
        o.insert("torch_dtype".into(), serde_json::json!("float32"));
        o.insert("use_cache".into(), serde_json::json!(false));
        o.entry("score_function").or_insert(serde_json::json!("sigmoid"));
        o.entry("moe_router_enable_expert_bias").or_insert(serde_json::json!(true));
        o.entry("norm_topk_prob").or_insert(serde_json::json!(true));
    }
    atomic_write(&out.join("config.json"), serde_json::to_string_pretty(&v)?.as_bytes())?;
    save_tensors_atomic(&out.join("model.safetensors"), tensors)?;
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        let src = tokenizer.with_file_name(f);
        if src.exists() {
            atomic_write(&out.join(f), &std::fs::read(&src)?)?;
        }
    }
    Ok(())
}

/// Finished checkpoints of a run, oldest first ([`RunDir::checkpoints`]).
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    Ok(RunDir::new(dir).checkpoints())
}

pub fn latest_checkpoint(dir: &Path) -> Result<Option<(usize, PathBuf)>> {
    Ok(list_checkpoints(dir)?.pop())
}
