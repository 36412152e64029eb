//! `draftscope bench` and `draftscope results`.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::record::{RunRecord, SuiteMetrics};
use super::results::{self, ComparisonRow, ResultsStore};
use super::run::{RunContext, RunOptions, bench_suites, load_suites};
use super::suite::Format;
use crate::decode::DecodeSpec;
use crate::decode::session::{self, ModelArgs};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Suites, comma-separated: names (the world's `arith`, `facts`; any `<name>.jsonl` in
    /// --bench-dir, `<sessions>/benchmarks` or `assets/benchmarks`) or paths to .jsonl files.
    #[arg(long, required = true, value_delimiter = ',')]
    pub suite: Vec<String>,
    /// Format of the suite files (auto: from the file name, then the fields).
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub spec: DecodeSpec,
    /// Only the first N items of each suite.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Score only shard I of N (0-based) of each suite: items I, I+N, I+2N, … (after --limit),
    /// so separate processes or machines can split a suite; `draftscope results merge` joins
    /// their stores.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<super::shard::Shard>,
    /// Items decoded in parallel (threads sharing the model).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Write the per-suite metrics here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Session data directory (results file, traces); default: DRAFTSCOPE_SESSIONS or the
    /// platform data directory.
    #[arg(long)]
    pub sessions: Option<PathBuf>,
    /// Extra folders to look up suite names in (searched first).
    #[arg(long)]
    pub bench_dir: Vec<PathBuf>,
    /// Give prompts to the model as is, without the chat template.
    #[arg(long)]
    pub no_chat: bool,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub run_id: String,
    pub time: String,
    pub model: String,
    pub adapter: Option<String>,
    pub checkpoint_step: Option<u64>,
    pub mode: crate::decode::Mode,
    pub attention: crate::decode::AttentionMode,
    pub params: crate::decode::DecodeParams,
    pub results_file: PathBuf,
    pub traces_dir: PathBuf,
    pub suites: Vec<SuiteMetrics>,
}

impl BenchReport {
    /// The summary of one bench run (all its suites' records), as `bench` and `results merge`
    /// both write it: one constructor, so a merged run's document has the same shape.
    pub fn of_records(records: &[RunRecord], data_dir: &std::path::Path) -> Result<Self> {
        let Some(first) = records.first() else { bail!("no records to summarise") };
        if let Some(r) = records.iter().find(|r| r.run_id != first.run_id) {
            bail!("records of two runs ({} and {}) cannot share one --json summary", first.run_id, r.run_id);
        }
        Ok(BenchReport {
            run_id: first.run_id.clone(),
            time: first.time.clone(),
            model: first.model.clone(),
            adapter: first.adapter.clone(),
            checkpoint_step: first.checkpoint_step,
            mode: first.mode,
            attention: first.attention,
            params: first.params.clone(),
            results_file: ResultsStore::open(data_dir).path(),
            traces_dir: data_dir.join("bench").join(&first.run_id),
            suites: records.iter().map(|r| r.metrics.clone()).collect(),
        })
    }

    pub fn write(&self, out: &std::path::Path) -> Result<()> {
        crate::session::atomic_write(out, &serde_json::to_vec_pretty(self)?)?;
        eprintln!("metrics written to {}", out.display());
        Ok(())
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let data_dir = crate::session::data_dir(args.sessions.as_deref());
    // Bad input fails before the model loads.
    let suites = load_suites(&args.suite, args.format, &args.bench_dir, &data_dir)?;
    for s in &suites {
        for k in s.skipped.iter().take(20) {
            eprintln!("warning: {}:{}: {} (line skipped)", s.path.display(), k.line, k.error);
        }
        if s.skipped.len() > 20 {
            eprintln!("warning: {}: {} more malformed lines skipped", s.path.display(), s.skipped.len() - 20);
        }
    }

    let lm = session::load(&args.model)?;
    let params = args.spec.params(lm.model.cfg.eos_token_id, lm.model.cfg.mask_token_id);
    params.validate(lm.model.cfg.vocab_size)?;
    let opts = RunOptions { params, attention: args.spec.attention, jobs: args.jobs, chat: !args.no_chat };
    // The adapter's training step; without an adapter, a pretraining checkpoint's.
    let checkpoint_step = match (&args.model.adapter, &args.model.model) {
        (Some(a), _) => results::checkpoint_step(a),
        (None, Some(m)) if std::path::Path::new(m).is_dir() => {
            results::checkpoint_step(std::path::Path::new(m))
        }
        _ => None,
    };
    let mode = args.spec.mode;
    let mut ctx = RunContext::new(&data_dir, mode, checkpoint_step, args.limit);
    ctx.shard = args.shard;

    let total: usize =
        suites.iter().map(|s| args.limit.map_or(s.items.len(), |l| l.min(s.items.len()))).sum();
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} items · {msg} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let tally = Mutex::new((String::new(), 0usize, 0usize));
    let records = bench_suites((&lm).into(), &suites, &opts, &ctx, &|s, o| {
        let mut t = tally.lock().unwrap();
        if t.0 != s.name {
            *t = (s.name.clone(), 0, 0);
            bar.set_prefix(s.name.clone());
        }
        t.1 += usize::from(o.correct);
        t.2 += 1;
        bar.set_message(format!("{}/{} right", t.1, t.2));
        bar.inc(1);
    })?;
    bar.finish_and_clear();

    // A suite where no item could be scored has no accuracy: it is not stored (it would show
    // as a "0.0%" result) and the command fails after reporting the others.
    let (records, unscored): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| r.metrics.n > 0);
    let unscored_msg = unscored.first().map(|r| {
        let first = r.items.iter().find_map(|o| o.error.clone()).unwrap_or_default();
        format!(
            "suite {}: none of its {} items could be scored, so nothing was stored for it (first error: {first})",
            r.suite,
            r.items.len()
        )
    });
    if records.is_empty() {
        bail!("{}", unscored_msg.unwrap_or_else(|| "no suite had items to score".into()));
    }
    for r in &records {
        for o in r.items.iter().filter(|o| o.error.is_some()).take(10) {
            eprintln!("warning: {} item {}: {}", r.suite, o.id, o.error.as_deref().unwrap_or(""));
        }
    }

    let store = ResultsStore::open(&data_dir);
    store.append(&records)?;
    println!(
        "{}{} · {}-mode · {} · {} · run {}",
        lm.id,
        lm.adapter.as_deref().map(|a| format!(" + {a}")).unwrap_or_default(),
        mode,
        opts.params.policy_label(),
        opts.attention.label(),
        ctx.run_id
    );
    let metrics: Vec<SuiteMetrics> = records.iter().map(|r| r.metrics.clone()).collect();
    for m in &metrics {
        println!();
        print!("{}", suite_table(m));
    }
    if metrics.len() > 1 {
        println!();
        print!("{}", summary_table(&metrics));
    }
    let traces_dir = data_dir.join("bench").join(&ctx.run_id);
    eprintln!("traces: {}", traces_dir.display());
    eprintln!("results: {}", store.path().display());
    if let Some(out) = &args.json {
        BenchReport::of_records(&records, &data_dir)?.write(out)?;
    }
    match unscored_msg {
        Some(m) => bail!("{m}"),
        None => Ok(()),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The per-suite block `bench` prints.
pub fn suite_table(m: &SuiteMetrics) -> String {
    let f = &m.final_digit_errors;
    let mut s = format!(
        "{} — {} items{}{}\n",
        m.suite,
        m.n,
        if m.skipped > 0 { format!(", {} malformed lines skipped", m.skipped) } else { String::new() },
        if m.failed > 0 { format!(", {} items failed to decode", m.failed) } else { String::new() },
    );
    let mut row = |k: &str, v: String| s.push_str(&format!("  {k:<22}{v}\n"));
    row(
        "accuracy",
        format!(
            "{}  95% CI [{}, {}]  ({}/{})",
            pct(m.accuracy),
            pct(m.accuracy_ci[0]),
            pct(m.accuracy_ci[1]),
            m.correct,
            m.n
        ),
    );
    if let Some(f1) = m.f1 {
        row("F1", format!("{:.1}", 100.0 * f1));
    }
    row(
        "edit intensity",
        format!("{:.2} edits / 100 tokens  ({} edits, {} tokens)", m.edit_intensity, m.edits, m.tokens),
    );
    if let Some(e) = &m.edit_split {
        row(
            "  where",
            format!(
                "{:.2} in the answer + {:.2} in the EOS padding; per-item median {:.2}; {:.2} edits per sample",
                e.answer_per_100, e.padding_per_100, e.answer_median_per_100, e.edits_per_sample
            ),
        );
    }
    if m.remasks > 0 || m.remask_intensity > 0.0 {
        row(
            "remask intensity",
            format!(
                "{:.2} remasks / 100 tokens  ({} remasks, {} tokens)",
                m.remask_intensity, m.remasks, m.tokens
            ),
        );
    }
    row("tokens per forward", format!("{:.2}  ({} forwards)", m.tpf, m.forwards));
    row(
        "final-digit errors",
        format!(
            "{}  (substituted {}, extra {}, dropped {}, marker {}, other {})",
            f.total, f.substituted, f.extra, f.dropped, f.marker, f.other
        ),
    );
    row("over-corrected items", m.over_corrected.to_string());
    row("edits harmful/helpful", format!("{} / {}", m.harmful_edits, m.helpful_edits));
    row("churn (A→B→A)", m.churn.to_string());
    row("wall time", format!("{:.1} s", m.wall_s));
    s
}

/// One line per suite, when several ran.
pub fn summary_table(ms: &[SuiteMetrics]) -> String {
    let mut s = format!(
        "{:<12} {:>5} {:>7} {:>17} {:>8} {:>8} {:>6} {:>5} {:>5} {:>9} {:>5} {:>8}\n",
        "suite",
        "n",
        "acc",
        "95% CI",
        "edit/100",
        "rmsk/100",
        "TPF",
        "FDE",
        "over",
        "harm/help",
        "churn",
        "wall s"
    );
    for m in ms {
        s.push_str(&format!(
            "{:<12} {:>5} {:>7} {:>17} {:>8.2} {:>8.2} {:>6.2} {:>5} {:>5} {:>9} {:>5} {:>8.1}\n",
            m.suite,
            m.n,
            pct(m.accuracy),
            format!("[{}, {}]", pct(m.accuracy_ci[0]), pct(m.accuracy_ci[1])),
            m.edit_intensity,
            m.remask_intensity,
            m.tpf,
            m.final_digit_errors.total,
            m.over_corrected,
            format!("{}/{}", m.harmful_edits, m.helpful_edits),
            m.churn,
            m.wall_s
        ));
    }
    s
}

#[derive(Debug, clap::Subcommand)]
pub enum ResultsCommand {
    /// Join the stores of `bench --shard i/N` runs into one record per suite (traces copied),
    /// after checking the shards belong together and every item was scored exactly once.
    Merge {
        /// Session data directories of the shards.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Session data directory to write the merged records into.
        #[arg(long)]
        into: PathBuf,
        /// Also write the merged run's summary, as `bench --json` writes an unsharded run's
        /// (the shards must be of one bench run configuration).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ResultsArgs {
    #[command(subcommand)]
    pub command: Option<ResultsCommand>,
    /// Session data directory (default: DRAFTSCOPE_SESSIONS or the platform data directory).
    #[arg(long)]
    pub sessions: Option<PathBuf>,
    /// Only this suite.
    #[arg(long)]
    pub suite: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List runs (newest first) instead of comparing configurations.
    #[arg(long)]
    pub runs: bool,
    /// List the items run RUN_ID got wrong, with their trace files (needs --suite when the run
    /// has several suites).
    #[arg(long, value_name = "RUN_ID")]
    pub failing: Option<String>,
}

pub fn results(args: ResultsArgs) -> Result<()> {
    if let Some(ResultsCommand::Merge { dirs, into, json }) = &args.command {
        let rep = super::shard::merge(dirs, into, json.is_some())?;
        for (suite, model, run, n) in &rep.merged {
            println!("merged {suite} of {model}: {n} items as run {run}");
        }
        if rep.already > 0 {
            println!("{} merged record(s) were already in {}", rep.already, into.display());
        }
        eprintln!("results: {}", ResultsStore::open(into).path().display());
        if let Some(out) = json {
            BenchReport::of_records(&rep.records, into)?.write(out)?;
        }
        return Ok(());
    }
    let data_dir = crate::session::data_dir(args.sessions.as_deref());
    let store = ResultsStore::open(&data_dir);
    let loaded = store.load()?;
    for b in &loaded.bad_lines {
        eprintln!("warning: {b} (line skipped)");
    }
    let records = &loaded.records;
    if let Some(run_id) = &args.failing {
        let suites: Vec<&RunRecord> = records
            .iter()
            .filter(|r| &r.run_id == run_id && args.suite.as_ref().is_none_or(|s| s == &r.suite))
            .collect();
        if suites.is_empty() {
            bail!(
                "no run {run_id}{} in {}",
                args.suite.as_ref().map(|s| format!(" with suite {s}")).unwrap_or_default(),
                store.path().display()
            );
        }
        let all: Vec<(String, Vec<results::FailingItem>)> =
            suites.iter().map(|r| (r.suite.clone(), store.failing_items(r))).collect();
        if args.json {
            let v: Vec<serde_json::Value> =
                all.iter().map(|(s, f)| serde_json::json!({"suite": s, "failing": f})).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            for (s, f) in &all {
                println!("{s}: {} failing", f.len());
                for it in f {
                    let tags = [
                        it.final_digit.map(|d| format!("final-digit:{}", d.label())),
                        it.over_corrected.then(|| "over-corrected".to_string()),
                        (it.harmful_edits > 0).then(|| format!("harmful:{}", it.harmful_edits)),
                        it.error.as_ref().map(|e| format!("error: {e}")),
                    ];
                    let tags: Vec<String> = tags.into_iter().flatten().collect();
                    println!(
                        "  {:<24} got {:<12} want {:<12} {}  {}",
                        it.id,
                        it.predicted.as_deref().unwrap_or("—"),
                        it.gold,
                        tags.join(" "),
                        it.trace_path.display()
                    );
                }
            }
        }
        return Ok(());
    }
    if args.runs {
        let runs = results::list_runs(records);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&runs)?);
        } else {
            for r in runs {
                let suites: Vec<String> =
                    r.suites.iter().map(|(s, a, n)| format!("{s} {} (n={n})", pct(*a))).collect();
                println!(
                    "{}  {}  {}{}  {}-mode {}  {}",
                    r.run_id,
                    r.time,
                    r.model,
                    r.adapter.map(|a| format!(" + {a}")).unwrap_or_default(),
                    r.mode,
                    r.attention.label(),
                    suites.join(", ")
                );
            }
        }
        return Ok(());
    }
    let rows = results::compare(records, args.suite.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "rows": rows }))?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no results yet in {} (run `draftscope bench --suite …`)", store.path().display());
        return Ok(());
    }
    print!("{}", comparison_table(&rows));
    Ok(())
}

/// The `results` table: base vs adapters by checkpoint, per suite.
pub fn comparison_table(rows: &[ComparisonRow]) -> String {
    let mut s = format!(
        "{:<10} {:<26} {:<24} {:>6} {:<4} {:<12} {:<17} {:>5} {:>7} {:>15} {:>7} {:>8} {:>8} {:>5} {:>4} {:>4} {:>9} {:>5}  {}\n",
        "suite",
        "model",
        "adapter run",
        "step",
        "mode",
        "attention",
        "policy",
        "n",
        "acc",
        "95% CI",
        "Δ base",
        "edit/100",
        "rmsk/100",
        "TPF",
        "FDE",
        "over",
        "harm/help",
        "churn",
        "run"
    );
    let cut = |x: &str, w: usize| {
        if x.chars().count() <= w {
            x.to_string()
        } else {
            format!("…{}", x.chars().skip(x.chars().count() + 1 - w).collect::<String>())
        }
    };
    for r in rows {
        s.push_str(&format!(
            "{:<10} {:<26} {:<24} {:>6} {:<4} {:<12} {:<17} {:>5} {:>7} {:>15} {:>7} {:>8.2} {:>8.2} {:>5.2} {:>4} {:>4} {:>9} {:>5}  {}\n",
            cut(&r.suite, 10),
            cut(&r.model, 26),
            // The run's folder name (`self`, `random-0421`), as the results pane labels rows;
            // the adapter's full path is in `--json`.
            cut(&r.adapter_run.as_deref().map(results::short_run).unwrap_or_else(|| "(base)".into()), 24),
            r.checkpoint_step.map(|s| s.to_string()).unwrap_or_else(|| "—".into()),
            r.mode,
            r.attention.label(),
            r.policy,
            r.n,
            pct(r.accuracy),
            format!("[{:.1}, {:.1}]", 100.0 * r.accuracy_ci[0], 100.0 * r.accuracy_ci[1]),
            r.delta_vs_base.map(|d| format!("{:+.1}", 100.0 * d)).unwrap_or_else(|| "—".into()),
            r.edit_intensity,
            r.remask_intensity,
            r.tpf,
            r.final_digit_errors,
            r.over_corrected,
            format!("{}/{}", r.harmful_edits, r.helpful_edits),
            r.churn,
            r.run_id
        ));
    }
    s
}
