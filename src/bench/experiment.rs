//! `draftscope experiment`: a declared grid — the base model plus training arms × seeds —
//! trained and benchmarked by ordinary `draftscope train` / `draftscope bench` commands, then
//! compared with paired statistics ([`super::experiment_report`]).
//!
//! The grid is a list of independent jobs with dependencies (train → bench → report; with
//! `shards` > 1, train → bench shards → merge → report), so the
//! same plan runs here one job at a time (`experiment`), or under any scheduler
//! (`experiment --plan` prints one line per job). Every job writes into the experiment
//! directory and is done when its output exists, so a killed experiment continues where it
//! stopped, whichever machine ran which job.
//!
//! ```text
//! OUT/experiment.json          the spec (a resumed experiment must match it)
//! OUT/runs/<arm>-s<seed>/      training runs (run.json, adapter/)
//! OUT/bench/<model>-<mode>[-<policy>].json  bench metrics (its run_id keys the records)
//! OUT/shards/<model>-<mode>[-<policy>]/<i>/  one bench shard's store and bench.json (merged
//!                              into OUT/sessions by the merge job)
//! OUT/sessions/results.jsonl   every bench record, per item (the results pane reads it)
//! OUT/report.md, report.json   the comparison
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::decode::{AttentionMode, Mode};
use crate::train::Objective;

/// One training arm: an objective and the flags that make its recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// Label in paths and tables (`self`, `random`, `self-decode2`, …).
    pub name: String,
    pub objective: Objective,
    /// Extra `draftscope train` flags of this arm (e.g. `["--draft-mode", "decode"]`).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Pass-1 forwards per step (the self objective's drafts), for equal-FLOPs grids and the
    /// compute table; absent: 0 for `random`, `--draft-steps` (default 1) for `self`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_forwards: Option<usize>,
    /// Optimizer steps of this arm in place of the grid's `steps` (a recipe sweep's steps
    /// axis); only in an equal-steps grid, where each arm's budget is its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
}

impl Arm {
    /// An arm named after its objective, with no extra flags.
    pub fn plain(objective: Objective) -> Self {
        Self {
            name: objective_label(objective).into(),
            objective,
            flags: Vec::new(),
            draft_forwards: None,
            steps: None,
        }
    }

    fn drafts_per_step(&self) -> usize {
        self.draft_forwards.unwrap_or(match self.objective {
            Objective::Random => 0,
            Objective::SelfDraft => {
                let decode = self.flags.windows(2).any(|w| w[0] == "--draft-mode" && w[1] == "decode");
                let steps =
                    self.flags.windows(2).find(|w| w[0] == "--draft-steps").and_then(|w| w[1].parse().ok());
                if decode { steps.unwrap_or(1) } else { 1 }
            }
        })
    }
}

/// A decode policy the grid benchmarks every model under (T2T by default; T2M strategies
/// through their `bench` flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// `draftscope bench` flags, e.g. `["--edit-policy", "t2m", "--remask-strategy", "low_prob"]`.
    #[serde(default)]
    pub flags: Vec<String>,
}

/// The name of the default policy (the official T2T editor).
pub const T2T: &str = "t2t";

fn default_policies() -> Vec<Policy> {
    vec![Policy { name: T2T.into(), flags: Vec::new() }]
}

/// How arms are made comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compute {
    /// Every arm trains `steps` optimizer steps (wall time and forward FLOPs are reported).
    #[default]
    Steps,
    /// Every arm spends the forward FLOPs of the most expensive arm's `steps`: a training step
    /// costs ~3 forwards (forward + backward), each draft forward one more.
    Flops,
}

/// The grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub arms: Vec<Arm>,
    pub seeds: Vec<u64>,
    pub steps: usize,
    #[serde(default)]
    pub compute: Compute,
    /// Flags every training run gets.
    #[serde(default)]
    pub train_flags: Vec<String>,
    /// Base model (`--base` / `--model`); the embedded model when absent.
    #[serde(default)]
    pub base: Option<String>,
    pub suites: Vec<String>,
    pub modes: Vec<Mode>,
    /// Edit policies (a grid axis); `t2t` alone by default.
    #[serde(default = "default_policies")]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub attention: AttentionMode,
    /// First N items per suite (all when absent).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Data-parallel training workers and bench decode threads per job.
    #[serde(default = "two")]
    pub threads: usize,
    /// Bench jobs per model and setting: with N > 1 each scores the shard `bench --shard i/N`
    /// into its own store, and a merge job joins them (so a scheduler can spread one
    /// model's benchmark over N GPUs or nodes). Not written when 1, so older grids read the same.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub shards: usize,
    /// Device of every training and bench job (`--device`). Under a scheduler that gives each
    /// task its own GPU (SLURM `--gres`, Kubernetes `nvidia.com/gpu`), that GPU is `cuda`.
    #[serde(default, skip_serializing_if = "is_cpu")]
    pub device: crate::model::DeviceKind,
}

fn is_cpu(d: &crate::model::DeviceKind) -> bool {
    *d == crate::model::DeviceKind::Cpu
}

fn two() -> usize {
    2
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Spec {
    pub fn validate(&self) -> Result<()> {
        if (!self.arms.is_empty() && self.seeds.is_empty())
            || self.suites.is_empty()
            || self.modes.is_empty()
            || self.policies.is_empty()
        {
            bail!("experiment: give at least one suite, mode and policy, and seeds for the arms");
        }
        let mut pnames: Vec<&str> = self.policies.iter().map(|p| p.name.as_str()).collect();
        pnames.sort_unstable();
        if pnames.windows(2).any(|w| w[0] == w[1]) || !pnames.iter().all(|n| safe_name(n)) {
            bail!("experiment: policy names must be distinct and use only letters, digits, `-` and `_`");
        }
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        if self.threads == 0 || self.threads > 64 {
            bail!("--threads must be in 1..=64");
        }
        let mut names: Vec<&str> = self.arms.iter().map(|a| a.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) || names.contains(&"base") {
            bail!("experiment: arm names must be distinct and not `base`");
        }
        if let Some(bad) = self.arms.iter().find(|a| !safe_name(&a.name)) {
            bail!("experiment: arm name {:?} may use only letters, digits, `-` and `_`", bad.name);
        }
        let grid_owned = ["--steps", "--seed", "--objective", "--out", "--workers", "--json", "--base"];
        for arm in &self.arms {
            if let Some(f) =
                arm.flags.iter().chain(&self.train_flags).find(|f| grid_owned.contains(&f.as_str()))
            {
                bail!(
                    "experiment: arm {:?}: {f} is set by the grid (use the arm's \"steps\" field for its steps)",
                    arm.name
                );
            }
            match arm.steps {
                Some(0) => bail!("experiment: arm {:?}: \"steps\" must be at least 1", arm.name),
                Some(_) if self.compute != Compute::Steps => bail!(
                    "experiment: arm {:?}: per-arm \"steps\" needs \"compute\": \"steps\" (equal-FLOPs grids derive every arm's steps)",
                    arm.name
                ),
                _ => {}
            }
        }
        if self.limit == Some(0) {
            bail!("--limit must be at least 1");
        }
        if self.shards == 0 || self.shards > MAX_SHARDS {
            bail!("--shards must be in 1..={MAX_SHARDS}");
        }
        Ok(())
    }

    /// `--device D` for the jobs' commands; nothing on the CPU (the commands' default).
    pub fn device_flag(&self) -> Vec<String> {
        if is_cpu(&self.device) { Vec::new() } else { vec!["--device".into(), self.device.to_string()] }
    }

    /// Optimizer steps of an arm (equal steps, or equal forward FLOPs).
    pub fn steps_of(&self, arm: &Arm) -> usize {
        match self.compute {
            Compute::Steps => arm.steps.unwrap_or(self.steps),
            Compute::Flops => {
                let dearest = self.arms.iter().map(cost_per_step).max().unwrap_or(3);
                (self.steps * dearest).div_ceil(cost_per_step(arm))
            }
        }
    }
}

/// More shards than this is a typo, not a cluster.
pub const MAX_SHARDS: usize = 4096;

fn safe_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Forward-pass equivalents of one training step of `arm` (forward + backward ≈ 3 forwards).
pub fn cost_per_step(arm: &Arm) -> usize {
    3 + arm.drafts_per_step()
}

/// What a job is.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    Train {
        arm: String,
        seed: u64,
    },
    /// A whole benchmark of one model in one setting (the grid's `shards` is 1).
    Bench {
        model: String,
        mode: Mode,
        policy: String,
    },
    /// Shard `index` of that benchmark (`bench --shard index/shards`), into its own store.
    BenchShard {
        model: String,
        mode: Mode,
        policy: String,
        index: usize,
    },
    /// `results merge` of a benchmark's shards into the experiment's store.
    Merge {
        model: String,
        mode: Mode,
        policy: String,
    },
    Report,
}

impl JobKind {
    /// What kind of work it is, for progress and ETAs (jobs of one label cost alike).
    pub fn label(&self) -> &'static str {
        match self {
            JobKind::Train { .. } => "train",
            JobKind::Bench { .. } => "bench",
            JobKind::BenchShard { .. } => "bench shard",
            JobKind::Merge { .. } => "merge",
            JobKind::Report => "report",
        }
    }
}

/// One job of the plan: an id, the ids it waits for, and the command that does it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub deps: Vec<String>,
    pub kind: JobKind,
    pub args: Vec<String>,
}

/// The experiment directory's layout (one place for every path).
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn spec(&self) -> PathBuf {
        self.root.join("experiment.json")
    }
    pub fn run(&self, model: &str) -> PathBuf {
        self.root.join("runs").join(model)
    }
    pub fn bench(&self, model: &str, mode: Mode, policy: &str) -> PathBuf {
        self.root.join("bench").join(format!("{model}-{}.json", setting_label(mode, policy)))
    }
    pub fn sessions(&self) -> PathBuf {
        self.root.join("sessions")
    }
    /// The store one bench shard writes (a store per shard: no two jobs share one on
    /// network storage until the merge).
    pub fn shard_sessions(&self, model: &str, mode: Mode, policy: &str, index: usize) -> PathBuf {
        self.root
            .join("shards")
            .join(format!("{model}-{}", setting_label(mode, policy)))
            .join(index.to_string())
    }
    /// The `--json` summary of one bench shard (its presence marks the shard done).
    pub fn shard_json(&self, model: &str, mode: Mode, policy: &str, index: usize) -> PathBuf {
        self.shard_sessions(model, mode, policy, index).join("bench.json")
    }
    pub fn report_md(&self) -> PathBuf {
        self.root.join("report.md")
    }
    pub fn report_json(&self) -> PathBuf {
        self.root.join("report.json")
    }
}

/// `q`, or `q-<policy>` for a policy other than T2T (so T2T-only grids keep short names).
pub fn setting_label(mode: Mode, policy: &str) -> String {
    if policy == T2T { mode_label(mode).to_string() } else { format!("{}-{policy}", mode_label(mode)) }
}

pub fn mode_label(m: Mode) -> &'static str {
    match m {
        Mode::Q => "q",
        Mode::S => "s",
        Mode::Default => "default",
    }
}

/// Name of an adapter model in the grid.
pub fn model_name(arm: &str, seed: u64) -> String {
    format!("{arm}-s{seed}")
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// The jobs of `spec` in dependency order.
pub fn plan(spec: &Spec, layout: &Layout) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut models = vec![("base".to_string(), None)];
    for arm in &spec.arms {
        for &seed in &spec.seeds {
            let name = model_name(&arm.name, seed);
            let mut args: Vec<String> = vec![
                "train".into(),
                "--objective".into(),
                objective_label(arm.objective).into(),
                "--seed".into(),
                seed.to_string(),
                "--steps".into(),
                spec.steps_of(arm).to_string(),
                "--workers".into(),
                spec.threads.to_string(),
                "--json".into(),
                "--out".into(),
                path_arg(&layout.run(&name)),
            ];
            if let Some(b) = &spec.base {
                args.extend(["--base".into(), b.clone()]);
            }
            args.extend(spec.device_flag());
            args.extend(spec.train_flags.iter().cloned());
            args.extend(arm.flags.iter().cloned());
            let id = format!("train:{name}");
            jobs.push(Job {
                id: id.clone(),
                deps: Vec::new(),
                kind: JobKind::Train { arm: arm.name.clone(), seed },
                args,
            });
            models.push((name, Some(id)));
        }
    }
    let mut bench_ids = Vec::new();
    let settings: Vec<(Mode, &Policy)> =
        spec.modes.iter().flat_map(|&m| spec.policies.iter().map(move |p| (m, p))).collect();
    for (model, train) in &models {
        for &(mode, policy) in &settings {
            let head: Vec<String> = vec![
                "bench".into(),
                "--suite".into(),
                spec.suites.join(","),
                "--mode".into(),
                mode_label(mode).into(),
                "--attention".into(),
                spec.attention.label().into(),
                "--jobs".into(),
                spec.threads.to_string(),
            ];
            let mut tail: Vec<String> = spec.device_flag();
            tail.extend(policy.flags.iter().cloned());
            if let Some(b) = &spec.base {
                tail.extend(["--model".into(), b.clone()]);
            }
            if train.is_some() {
                tail.extend(["--adapter".into(), path_arg(&layout.run(model).join("adapter"))]);
            }
            if let Some(l) = spec.limit {
                tail.extend(["--limit".into(), l.to_string()]);
            }
            // One bench command: where it stores, then the shared flags.
            let bench = |store: &Path, json: &Path| -> Vec<String> {
                let mut a = head.clone();
                a.extend(["--sessions".into(), path_arg(store), "--json".into(), path_arg(json)]);
                a.extend(tail.iter().cloned());
                a
            };
            let id = format!("bench:{model}:{}", setting_label(mode, &policy.name).replace('-', ":"));
            let (model, policy_name) = (model.clone(), policy.name.clone());
            if spec.shards == 1 {
                let args = bench(&layout.sessions(), &layout.bench(&model, mode, &policy_name));
                bench_ids.push(id.clone());
                jobs.push(Job {
                    id,
                    deps: train.iter().cloned().collect(),
                    kind: JobKind::Bench { model, mode, policy: policy_name },
                    args,
                });
                continue;
            }
            let mut shard_ids = Vec::new();
            let mut merge_args: Vec<String> = vec!["results".into(), "merge".into()];
            for index in 0..spec.shards {
                let store = layout.shard_sessions(&model, mode, &policy_name, index);
                let mut a = bench(&store, &layout.shard_json(&model, mode, &policy_name, index));
                a.extend(["--shard".into(), format!("{index}/{}", spec.shards)]);
                merge_args.push(path_arg(&store));
                let sid = format!("{id}:shard{index}");
                shard_ids.push(sid.clone());
                jobs.push(Job {
                    id: sid,
                    deps: train.iter().cloned().collect(),
                    kind: JobKind::BenchShard {
                        model: model.clone(),
                        mode,
                        policy: policy_name.clone(),
                        index,
                    },
                    args: a,
                });
            }
            merge_args.extend([
                "--into".into(),
                path_arg(&layout.sessions()),
                "--json".into(),
                path_arg(&layout.bench(&model, mode, &policy_name)),
            ]);
            let mid = id.replacen("bench:", "merge:", 1);
            bench_ids.push(mid.clone());
            jobs.push(Job {
                id: mid,
                deps: shard_ids,
                kind: JobKind::Merge { model, mode, policy: policy_name },
                args: merge_args,
            });
        }
    }
    jobs.push(Job {
        id: "report".into(),
        deps: bench_ids,
        kind: JobKind::Report,
        args: vec!["experiment".into(), "--report-only".into(), "--out".into(), path_arg(&layout.root)],
    });
    jobs
}

pub fn objective_label(o: Objective) -> &'static str {
    match o {
        Objective::Random => "random",
        Objective::SelfDraft => "self",
    }
}

/// Whether a job's output is there (so a resumed experiment skips it).
pub fn is_done(job: &Job, layout: &Layout) -> bool {
    match &job.kind {
        JobKind::Train { arm, seed } => {
            crate::train::run::read_run_file(&layout.run(&model_name(arm, *seed)))
                .is_ok_and(|rf| rf.status == crate::train::Status::Finished)
        }
        JobKind::Bench { model, mode, policy } | JobKind::Merge { model, mode, policy } => {
            layout.bench(model, *mode, policy).exists()
        }
        JobKind::BenchShard { model, mode, policy, index } => {
            layout.shard_json(model, *mode, policy, *index).exists()
        }
        JobKind::Report => layout.report_md().exists() && layout.report_json().exists(),
    }
}

/// The command a job runs now: a training run that started and did not finish resumes.
pub fn command_now(job: &Job, layout: &Layout) -> Vec<String> {
    if let JobKind::Train { arm, seed } = &job.kind {
        let dir = layout.run(&model_name(arm, *seed));
        if dir.join("run.json").exists() {
            return vec!["train".into(), "--resume".into(), path_arg(&dir), "--json".into()];
        }
    }
    job.args.clone()
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The plan as text: `id<TAB>deps (comma-separated, `-` for none)<TAB>command`, one job a line.
pub fn plan_text(jobs: &[Job], exe: &str) -> String {
    let mut out = String::new();
    for j in jobs {
        let deps = if j.deps.is_empty() { "-".to_string() } else { j.deps.join(",") };
        let cmd: Vec<String> =
            std::iter::once(exe.to_string()).chain(j.args.iter().cloned()).map(|a| shell_quote(&a)).collect();
        out.push_str(&format!("{}\t{}\t{}\n", j.id, deps, cmd.join(" ")));
    }
    out
}

/// Writes the spec on the first run; a resumed experiment must declare the same grid.
pub fn pin_spec(spec: &Spec, layout: &Layout) -> Result<()> {
    let p = layout.spec();
    if p.exists() {
        let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let old: Spec = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        if &old != spec {
            bail!(
                "{} holds a different experiment: resume it with `draftscope experiment --resume {}` (no grid flags), or choose another --out",
                p.display(),
                layout.root.display()
            );
        }
        return Ok(());
    }
    crate::session::atomic_write(&p, serde_json::to_string_pretty(spec)?.as_bytes())
}

pub fn read_spec(layout: &Layout) -> Result<Spec> {
    let p = layout.spec();
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!("cannot read {} (is {} an experiment directory?)", p.display(), layout.root.display())
    })?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    spec.validate().with_context(|| p.display().to_string())?;
    Ok(spec)
}

/// Runs the jobs that are not done, one at a time (each uses the spec's threads), printing
/// progress with an ETA from the durations of the jobs this invocation ran.
pub fn execute(jobs: &[Job], layout: &Layout, exe: &Path) -> Result<()> {
    let todo: Vec<&Job> =
        jobs.iter().filter(|j| !matches!(j.kind, JobKind::Report) && !is_done(j, layout)).collect();
    let total = todo.len();
    let skipped = jobs.len() - 1 - total;
    if skipped > 0 {
        eprintln!("experiment: {skipped} job(s) already done, {total} to run");
    }
    let t0 = Instant::now();
    let mut spent = std::collections::HashMap::<&'static str, (f64, usize)>::new();
    for (i, job) in todo.iter().enumerate() {
        let kind = job.kind.label();
        let eta: f64 =
            todo[i..].iter().map(|j| spent.get(j.kind.label()).map_or(0.0, |(s, n)| s / *n as f64)).sum();
        let eta = if spent.is_empty() { "?".to_string() } else { format!("{:.0} min", eta / 60.0) };
        eprintln!(
            "[{}/{}] {}  (elapsed {:.0} min, eta {eta})",
            i + 1,
            total,
            job.id,
            t0.elapsed().as_secs_f64() / 60.0
        );
        let args = command_now(job, layout);
        let started = Instant::now();
        let out = std::process::Command::new(exe)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            bail!(
                "job {} failed ({}): {last}; fix it and run `draftscope experiment --resume {}`",
                job.id,
                out.status,
                layout.root.display()
            );
        }
        let e = spent.entry(kind).or_insert((0.0, 0));
        e.0 += started.elapsed().as_secs_f64();
        e.1 += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            arms: vec![Arm::plain(Objective::SelfDraft), Arm::plain(Objective::Random)],
            seeds: vec![0, 1],
            steps: 300,
            compute: Compute::Steps,
            train_flags: vec![],
            base: None,
            suites: vec!["arith".into(), "facts".into()],
            modes: vec![Mode::Q, Mode::S],
            policies: default_policies(),
            attention: AttentionMode::BlockCausal,
            limit: None,
            threads: 2,
            shards: 1,
            device: Default::default(),
        }
    }

    #[test]
    fn plan_trains_each_arm_and_seed_then_benches_every_model_and_mode_then_reports() {
        let layout = Layout { root: PathBuf::from("/x") };
        let jobs = plan(&spec(), &layout);
        assert_eq!(jobs.len(), 4 + 5 * 2 + 1);
        assert_eq!(jobs[0].id, "train:self-s0");
        let b = jobs.iter().find(|j| j.id == "bench:random-s1:s").unwrap();
        assert_eq!(b.deps, vec!["train:random-s1".to_string()]);
        assert!(b.args.windows(2).any(|w| w == ["--adapter", "/x/runs/random-s1/adapter"]));
        let base = jobs.iter().find(|j| j.id == "bench:base:q").unwrap();
        assert!(base.deps.is_empty() && !base.args.contains(&"--adapter".to_string()));
        assert_eq!(jobs.last().unwrap().deps.len(), 10);
    }

    #[test]
    fn sharded_benches_get_a_job_per_shard_and_a_merge_the_report_waits_for() {
        let mut sp = spec();
        sp.shards = 3;
        let layout = Layout { root: PathBuf::from("/x") };
        let jobs = plan(&sp, &layout);
        let shards: Vec<&Job> =
            jobs.iter().filter(|j| matches!(j.kind, JobKind::BenchShard { .. })).collect();
        let merges: Vec<&Job> = jobs.iter().filter(|j| matches!(j.kind, JobKind::Merge { .. })).collect();
        assert!(!jobs.iter().any(|j| matches!(j.kind, JobKind::Bench { .. })));
        assert_eq!(shards.len(), 3 * merges.len());
        for m in &merges {
            assert_eq!(m.deps.len(), 3, "{m:?}");
            assert_eq!(&m.args[..2], ["results", "merge"]);
            assert!(m.args.iter().any(|a| a == "--json"), "{m:?}");
        }
        let s1 = shards.iter().find(|j| j.id.ends_with(":shard1")).unwrap();
        assert!(s1.args.windows(2).any(|w| w[0] == "--shard" && w[1] == "1/3"), "{s1:?}");
        let report = jobs.last().unwrap();
        assert_eq!(report.deps.len(), merges.len());
        assert!(report.deps.iter().all(|d| d.starts_with("merge:")));
        // Adapter shards wait for their training run.
        assert!(shards.iter().filter(|j| !j.id.contains(":base:")).all(|j| j.deps.len() == 1));
        sp.shards = 0;
        assert!(sp.validate().is_err());
        // Not written when 1, so grids pinned before sharding existed read back equal.
        let text = serde_json::to_string(&spec()).unwrap();
        assert!(!text.contains("shards"), "{text}");
    }

    #[test]
    fn equal_flops_gives_the_cheaper_arm_more_steps() {
        let mut s = spec();
        s.compute = Compute::Flops;
        assert_eq!(s.steps_of(&s.arms[0]), 300);
        assert_eq!(s.steps_of(&s.arms[1]), 400);
    }

    /// A recipe sweep's steps axis: an arm's own steps replace the grid's, in its command too.
    #[test]
    fn an_arm_may_train_its_own_steps() {
        let mut s = spec();
        s.arms[1].steps = Some(600);
        s.validate().unwrap();
        assert_eq!(s.steps_of(&s.arms[0]), 300);
        assert_eq!(s.steps_of(&s.arms[1]), 600);
        let jobs = plan_text(&plan(&s, &Layout { root: PathBuf::from("/x") }), "draftscope");
        assert!(
            jobs.lines().any(|l| l.contains("--objective random") && l.contains("--steps 600")),
            "{jobs}"
        );
        s.compute = Compute::Flops;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("per-arm \"steps\" needs"), "{e}");
        s.compute = Compute::Steps;
        s.arms[1].steps = None;
        s.arms[0].flags = vec!["--steps".into(), "5".into()];
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("--steps is set by the grid"), "{e}");
    }

    #[test]
    fn plan_lines_quote_what_the_shell_would_split() {
        let mut s = spec();
        s.train_flags = vec!["--data".into(), "my corpus.jsonl".into()];
        let text = plan_text(&plan(&s, &Layout { root: PathBuf::from("/x") }), "draftscope");
        assert!(text.lines().next().unwrap().contains("--data 'my corpus.jsonl'"), "{text}");
        assert!(text.lines().next().unwrap().starts_with("train:self-s0\t-\tdraftscope train"), "{text}");
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn policies_are_a_grid_axis_with_t2t_keeping_short_names() {
        let spec = Spec {
            arms: Vec::new(),
            seeds: Vec::new(),
            steps: 1,
            compute: Compute::Steps,
            train_flags: Vec::new(),
            base: None,
            suites: vec!["arith".into()],
            modes: vec![Mode::Q],
            policies: vec![
                Policy { name: T2T.into(), flags: Vec::new() },
                Policy { name: "low_prob".into(), flags: vec!["--edit-policy".into(), "t2m".into()] },
            ],
            attention: AttentionMode::BlockCausal,
            limit: None,
            threads: 1,
            shards: 1,
            device: Default::default(),
        };
        spec.validate().unwrap();
        let layout = Layout { root: PathBuf::from("/x") };
        let jobs = plan(&spec, &layout);
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["bench:base:q", "bench:base:q:low_prob", "report"]);
        assert!(jobs[1].args.ends_with(&["--edit-policy".to_string(), "t2m".to_string()]));
        assert!(jobs[1].args.contains(&"/x/bench/base-q-low_prob.json".to_string()));
    }
}
