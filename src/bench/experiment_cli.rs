//! `draftscope experiment`: flags → a grid spec, then plan, run and report
//! ([`super::experiment`], [`super::experiment_report`]).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::experiment::{self, Arm, Compute, Layout, Spec};
use crate::decode::{AttentionMode, Mode};
use crate::train::Objective;

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// Experiment directory (runs, bench results, report).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the experiment in DIR where it stopped (its experiment.json is the grid).
    #[arg(long, conflicts_with_all = ["out", "spec"])]
    pub resume: Option<PathBuf>,
    /// The grid as a JSON file (arms with their own flags, seeds, steps, suites, modes, …);
    /// the grid flags below build a simple one.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Training arms, each named after its objective.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Objective::SelfDraft, Objective::Random])]
    pub arms: Vec<Objective>,
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 2, 3, 4])]
    pub seeds: Vec<u64>,
    /// Optimizer steps of each run (of the most expensive arm with `--compute flops`).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// `steps`: equal optimizer steps; `flops`: equal forward FLOPs (cheaper arms get more steps).
    #[arg(long, value_enum, default_value_t = Compute::Steps)]
    pub compute: Compute,
    #[arg(long, value_delimiter = ',', default_values_t = ["arith".to_string(), "facts".to_string()])]
    pub suites: Vec<String>,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Mode::Q, Mode::S])]
    pub modes: Vec<Mode>,
    #[arg(long, value_enum, default_value_t = AttentionMode::BlockCausal)]
    pub attention: AttentionMode,
    /// First N items per suite.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Base model (default: the embedded model).
    #[arg(long)]
    pub base: Option<String>,
    /// Training workers and bench decode threads of each job.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Split each model's benchmark into N shard jobs plus a merge job (for N GPUs or nodes
    /// under a scheduler; the report is the same as with 1). Default 1, or the spec's.
    #[arg(long, conflicts_with = "resume")]
    pub shards: Option<usize>,
    /// Device of every job: cpu, cuda or cuda:K (overrides the spec's). Under SLURM or
    /// Kubernetes the launchers then ask for one GPU per task, which the task sees as `cuda`.
    #[arg(long, conflicts_with = "resume")]
    pub device: Option<crate::model::DeviceKind>,
    /// Print the jobs (id, dependencies, command; tab-separated) for a scheduler, write them
    /// by stage with SLURM, GNU parallel and Kubernetes launchers into DIR/plan/, and exit.
    #[arg(long)]
    pub plan: bool,
    /// Only build the report from the finished jobs.
    #[arg(long)]
    pub report_only: bool,
}

fn spec_of(a: &ExperimentArgs) -> Result<Spec> {
    if let Some(p) = &a.spec {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read --spec {}", p.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let mut spec: Spec = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("--spec {}: field `{}`: {}", p.display(), e.path(), e.inner()))?;
        if let Some(n) = a.shards {
            spec.shards = n;
        }
        if let Some(d) = a.device {
            spec.device = d;
        }
        return Ok(spec);
    }
    Ok(Spec {
        arms: a.arms.iter().map(|&o| Arm::plain(o)).collect(),
        seeds: a.seeds.clone(),
        steps: a.steps,
        compute: a.compute,
        train_flags: Vec::new(),
        base: a.base.clone(),
        suites: a.suites.clone(),
        modes: a.modes.clone(),
        policies: vec![experiment::Policy { name: experiment::T2T.into(), flags: Vec::new() }],
        attention: a.attention,
        limit: a.limit,
        threads: a.threads,
        shards: a.shards.unwrap_or(1),
        device: a.device.unwrap_or_default(),
    })
}

pub fn run(a: ExperimentArgs) -> Result<()> {
    let (root, spec) = match &a.resume {
        Some(dir) => {
            let layout = Layout { root: dir.clone() };
            (dir.clone(), experiment::read_spec(&layout)?)
        }
        None => {
            let root = a.out.clone().context("--out DIR is required")?;
            let layout = Layout { root: root.clone() };
            let spec = if a.report_only && a.spec.is_none() && layout.spec().exists() {
                experiment::read_spec(&layout)?
            } else {
                spec_of(&a)?
            };
            (root, spec)
        }
    };
    spec.validate()?;
    // Absolute, so the planned commands run from any directory a scheduler starts them in.
    let root = std::path::absolute(&root).with_context(|| format!("--out {}", root.display()))?;
    let layout = Layout { root };
    experiment::pin_spec(&spec, &layout)?;
    let exe = std::env::current_exe().context("cannot find the draftscope executable")?;
    let jobs = experiment::plan(&spec, &layout);
    if a.plan {
        let exe = exe.display().to_string();
        print!("{}", experiment::plan_text(&jobs, &exe));
        let dir = layout.root.join("plan");
        super::launchers::write(&dir, &jobs, &exe, &layout.root, spec.device.is_cuda())?;
        eprintln!(
            "plan: {}/stage-*.txt (one command a line, stage by stage), slurm.sh, parallel.sh, k8s-job.yaml",
            dir.display()
        );
        return Ok(());
    }
    if !a.report_only {
        experiment::execute(&jobs, &layout, &exe)?;
    } else if let Some(j) = jobs
        .iter()
        .find(|j| !matches!(j.kind, experiment::JobKind::Report) && !experiment::is_done(j, &layout))
    {
        bail!(
            "job {} has not finished: run it (see --plan) or `draftscope experiment --resume {}`",
            j.id,
            layout.root.display()
        );
    }
    let report = super::experiment_report::build(&spec, &layout)?;
    let command = format!("draftscope experiment --resume {}", layout.root.display());
    let md = super::experiment_report::markdown(&report, &command);
    crate::session::atomic_write(&layout.report_json(), serde_json::to_string_pretty(&report)?.as_bytes())?;
    crate::session::atomic_write(&layout.report_md(), md.as_bytes())?;
    println!("{md}");
    eprintln!(
        "report: {} (and report.json); results pane: DRAFTSCOPE_SESSIONS={} draftscope tui",
        layout.report_md().display(),
        layout.sessions().display()
    );
    Ok(())
}
