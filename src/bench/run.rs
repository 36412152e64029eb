//! Running a suite through the decoder: prompt, decode, score, classify, save the trace; items
//! in parallel on `jobs` threads sharing the read-only model. Results do not depend on `jobs`:
//! every item decodes independently with the same parameters and outcomes keep item order.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

use super::classify::{analyse_trace, canvas_text, final_digit_error};
use super::record::{
    AdapterCheckpoint, ItemOutcome, RESULTS_VERSION, RunRecord, ShardInfo, SuiteMetrics, rfc3339,
    trace_file_name,
};
use super::suite::{Format, Item, Suite};
use crate::decode::{AttentionMode, DecodeParams, Mode};
use crate::model::LoadedModel;

// The model is shared by reference across worker threads.
const _: fn() = || {
    fn sync<T: Sync>() {}
    sync::<LoadedModel>();
};

pub use crate::decode::session::ModelRef;

/// How to run items.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub params: DecodeParams,
    pub attention: AttentionMode,
    /// Worker threads (1 = sequential).
    pub jobs: usize,
    /// Render text prompts with the model's chat template.
    pub chat: bool,
}

/// Identity of one bench invocation, shared by the records of its suites.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Session data directory: traces go to `bench/<run id>/<suite>/` in it.
    pub data_dir: PathBuf,
    pub run_id: String,
    pub unix_time: u64,
    /// The threshold preset the run started from.
    pub mode: Mode,
    /// Adapter checkpoint step ([`super::results::checkpoint_step`]).
    pub checkpoint_step: Option<u64>,
    /// Only the first N items of each suite.
    pub limit: Option<usize>,
    /// Only this shard of each (limited) suite.
    pub shard: Option<super::shard::Shard>,
}

impl RunContext {
    /// A context with a fresh run id from the clock.
    pub fn new(data_dir: &Path, mode: Mode, checkpoint_step: Option<u64>, limit: Option<usize>) -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            data_dir: data_dir.to_path_buf(),
            run_id: new_run_id(d.as_secs(), d.subsec_nanos()),
            unix_time: d.as_secs(),
            mode,
            checkpoint_step,
            limit,
            shard: None,
        }
    }
}

/// `20260421-141012-3fa9`: UTC time, then 16 bits from the clock's nanoseconds and the pid.
pub fn new_run_id(unix: u64, nanos: u32) -> String {
    let compact: String = rfc3339(unix).chars().filter(|c| c.is_ascii_digit()).collect();
    let tag = ((nanos >> 10) ^ std::process::id().wrapping_mul(2_654_435_761)) & 0xffff;
    format!("{}-{}-{tag:04x}", &compact[..8], &compact[8..14])
}

/// Resolves and loads `--suite` entries (names or paths). Malformed lines stay in each suite's
/// `skipped`; a suite with no usable item, or an unknown name, is an error. Repeated names get
/// a `~N` suffix so their traces and records stay apart.
pub fn load_suites(
    specs: &[String],
    format: Format,
    extra_dirs: &[PathBuf],
    data_dir: &Path,
) -> Result<Vec<Suite>> {
    let dirs = super::suite::search_dirs(extra_dirs, data_dir);
    let mut suites: Vec<Suite> = Vec::new();
    for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let path = super::suite::resolve(spec, &dirs)?;
        let s = super::suite::load(&path, format)?;
        if s.items.is_empty() {
            let first = s.skipped.first().map(|k| format!(" ({}:{}: {})", path.display(), k.line, k.error));
            bail!("suite {}: no usable items in {}{}", s.name, path.display(), first.unwrap_or_default());
        }
        suites.push(s);
    }
    if suites.is_empty() {
        bail!("--suite: give at least one suite");
    }
    let mut names = std::collections::HashSet::new();
    for (i, s) in suites.iter_mut().enumerate() {
        if !names.insert(s.name.clone()) {
            s.name = format!("{}~{}", s.name, i + 1);
            names.insert(s.name.clone());
        }
    }
    Ok(suites)
}

/// Runs the suites one after another; one record per suite, ready for
/// [`super::ResultsStore::append`]. `on_item` sees every finished item (from worker threads).
pub fn bench_suites(
    lm: ModelRef<'_>,
    suites: &[Suite],
    opts: &RunOptions,
    ctx: &RunContext,
    on_item: &(dyn Fn(&Suite, &ItemOutcome) + Sync),
) -> Result<Vec<RunRecord>> {
    let time = rfc3339(ctx.unix_time);
    let mut records = Vec::new();
    for s in suites {
        let limited = &s.items[..ctx.limit.map_or(s.items.len(), |l| l.min(s.items.len()))];
        let shard = ctx.shard.map(|sh| ShardInfo {
            index: sh.index,
            count: sh.count,
            suite_items: limited.len(),
            suite_hash: super::shard::suite_hash(limited),
        });
        let owned: Vec<Item>;
        let items = match ctx.shard {
            Some(sh) => {
                owned = sh.take(limited).into_iter().cloned().collect();
                &owned[..]
            }
            None => limited,
        };
        let rel_dir = format!("bench/{}/{}", ctx.run_id, trace_file_name(&s.name).trim_end_matches(".json"));
        let t0 = Instant::now();
        let outcomes = run_suite(lm, s, items, opts, &ctx.data_dir, &rel_dir, &|o| on_item(s, o))?;
        let metrics = SuiteMetrics::from_outcomes(
            &s.name,
            s.format,
            s.skipped.len(),
            &outcomes,
            t0.elapsed().as_secs_f64(),
        );
        records.push(RunRecord {
            version: RESULTS_VERSION,
            run_id: ctx.run_id.clone(),
            time: time.clone(),
            unix_time: ctx.unix_time,
            model: lm.id.to_string(),
            adapter: lm.adapter.map(String::from),
            checkpoint_step: ctx.checkpoint_step,
            adapter_checkpoint: lm
                .adapter
                .and_then(|a| AdapterCheckpoint::of(Path::new(a), ctx.checkpoint_step)),
            mode: ctx.mode,
            params: opts.params.clone(),
            attention: opts.attention,
            suite: s.name.clone(),
            source: s.path.display().to_string(),
            format: s.format,
            chat: opts.chat,
            limit: ctx.limit,
            metrics,
            items: outcomes,
            traces: rel_dir,
            shard,
        });
    }
    Ok(records)
}

/// Runs every item of `suite`; traces go to `data_dir/rel_dir/<item>.json`. `on_item` is called
/// once per finished item (from worker threads).
pub fn run_suite(
    lm: ModelRef<'_>,
    suite: &Suite,
    items: &[Item],
    opts: &RunOptions,
    data_dir: &Path,
    rel_dir: &str,
    on_item: &(dyn Fn(&ItemOutcome) + Sync),
) -> Result<Vec<ItemOutcome>> {
    if !lm.codec.has_tokenizer() && items.iter().any(|i| i.prompt_ids.is_none()) {
        bail!(
            "suite {}: the model {} has no tokenizer, so text prompts cannot be encoded (give items with `prompt_ids`)",
            suite.name,
            lm.id
        );
    }
    // Unique trace names, even for repeated ids.
    let mut names = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for it in items {
        let mut name = trace_file_name(&it.id);
        if !seen.insert(name.clone()) {
            name = format!("{}~{}.json", name.trim_end_matches(".json"), it.line);
            seen.insert(name.clone());
        }
        names.push(format!("{rel_dir}/{name}"));
    }
    let slots: Vec<Mutex<Option<ItemOutcome>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= items.len() {
                break;
            }
            let out = run_item(lm, &items[i], opts, data_dir, &names[i]);
            on_item(&out);
            *slots[i].lock().unwrap() = Some(out);
        }
    };
    let jobs = opts.jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(work);
            }
        });
    }
    Ok(slots.into_iter().map(|m| m.into_inner().unwrap().expect("every item ran")).collect())
}

/// Decodes, scores and classifies one item and saves its trace. Errors become outcomes.
pub fn run_item(
    lm: ModelRef<'_>,
    item: &Item,
    opts: &RunOptions,
    data_dir: &Path,
    rel_trace: &str,
) -> ItemOutcome {
    let t0 = Instant::now();
    let mut out = ItemOutcome {
        id: item.id.clone(),
        line: item.line,
        correct: false,
        predicted: None,
        gold: item.answer.clone(),
        f1: None,
        final_digit: None,
        over_corrected: false,
        first_right: None,
        harmful_edits: 0,
        helpful_edits: 0,
        churn: 0,
        edits: 0,
        answer_edits: None,
        remasks: 0,
        tokens: 0,
        forwards: 0,
        wall_ms: 0.0,
        trace: rel_trace.to_string(),
        error: None,
        aliases: item.aliases.clone(),
        scorer: Some(item.scorer.clone()),
    };
    if let Err(e) = decode_item(lm, item, opts, &data_dir.join(rel_trace), &mut out) {
        out.error = Some(format!("{e:#}"));
    }
    out.wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    out
}

fn decode_item(
    lm: ModelRef<'_>,
    item: &Item,
    opts: &RunOptions,
    trace_path: &Path,
    out: &mut ItemOutcome,
) -> Result<()> {
    let (prompt, ids) = match &item.prompt_ids {
        Some(ids) => ((!item.prompt.is_empty()).then(|| item.prompt.clone()), ids.clone()),
        None => {
            let text = if opts.chat { lm.codec.chat_prompt(&item.prompt)? } else { item.prompt.clone() };
            let ids = lm.codec.encode_within(&text, lm.model.cfg.max_position_embeddings)?;
            (Some(text), ids)
        }
    };
    let prompt = crate::decode::session::Prompt { text: prompt, ids };
    let trace =
        crate::decode::session::run_params(lm, &prompt, opts.params.clone(), opts.attention, &mut |_| {
            ControlFlow::Continue(())
        })?;
    let p = &trace.params;
    let detok = |ids: &[u32]| lm.codec.decode(ids);
    let text = canvas_text(&trace.output, p.mask_id, p.eos_id, &detok);
    let score = item.scorer.score(&text, &item.answer, &item.aliases);
    let findings =
        analyse_trace(&trace, &detok, &|t| item.scorer.score(t, &item.answer, &item.aliases).correct);
    out.correct = score.correct;
    out.predicted = score.predicted;
    out.f1 = score.f1;
    out.final_digit = if score.correct { None } else { final_digit_error(&item.scorer, &text, &item.answer) };
    out.over_corrected = findings.over_corrected;
    out.first_right = findings.first_right;
    out.harmful_edits = findings.harmful.len();
    out.helpful_edits = findings.helpful.len();
    out.churn = findings.churn.len();
    out.edits = trace.edit_count();
    let answer_end = trace.prompt_ids.len() + trace.output.len();
    out.answer_edits = Some(
        trace
            .blocks
            .iter()
            .flat_map(|b| &b.steps)
            .flat_map(|s| &s.edits)
            .filter(|e| e.pos < answer_end)
            .count(),
    );
    out.remasks = trace.remask_count();
    out.tokens = trace.generated_tokens();
    out.forwards = trace.forward_calls;
    trace.save(trace_path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::classify::DigitError;
    use crate::bench::record::DigitErrorCounts;
    use crate::bench::stats::{Z95, wilson};

    #[test]
    fn edit_intensity_splits_into_answer_span_and_padding() {
        // Three items of 50 tokens with 3 edits each; 1, 0 and 3 of them in the answer span.
        let items: Vec<ItemOutcome> =
            [1, 0, 3].iter().map(|&a| ItemOutcome { answer_edits: Some(a), ..outcome(true) }).collect();
        let m = SuiteMetrics::from_outcomes("s", Format::World, 0, &items, 1.0);
        let e = m.edit_split.unwrap();
        assert_eq!(m.edit_intensity, 6.0);
        assert!((e.answer_per_100 - 100.0 * 4.0 / 150.0).abs() < 1e-12);
        assert!((e.answer_per_100 + e.padding_per_100 - m.edit_intensity).abs() < 1e-12);
        assert_eq!(e.answer_median_per_100, 2.0);
        assert_eq!(e.edits_per_sample, 3.0);
        // A record from before the split has none.
        let old = SuiteMetrics::from_outcomes("s", Format::World, 0, &[outcome(true)], 1.0);
        assert_eq!(old.edit_split, None);
    }

    fn outcome(correct: bool) -> ItemOutcome {
        ItemOutcome {
            id: "x".into(),
            line: 1,
            correct,
            predicted: None,
            gold: "1".into(),
            f1: None,
            final_digit: None,
            over_corrected: false,
            first_right: None,
            harmful_edits: 1,
            helpful_edits: 2,
            churn: 0,
            edits: 3,
            answer_edits: None,
            remasks: 0,
            tokens: 50,
            forwards: 20,
            wall_ms: 1.0,
            trace: "t.json".into(),
            error: None,
            aliases: Vec::new(),
            scorer: None,
        }
    }

    #[test]
    fn metrics_pool_edits_tokens_and_forwards_over_the_suite() {
        let mut items = vec![outcome(true), outcome(false), outcome(true)];
        items[1].final_digit = Some(DigitError::Extra);
        items[1].over_corrected = true;
        items[2].error = Some("boom".into());
        let m = SuiteMetrics::from_outcomes("s", Format::World, 4, &items, 2.5);
        assert_eq!((m.n, m.correct, m.failed, m.skipped), (2, 1, 1, 4));
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.accuracy_ci, wilson(1, 2, Z95));
        assert_eq!(m.edit_intensity, 6.0);
        assert_eq!(m.remask_intensity, 0.0);
        assert_eq!(m.tpf, 2.5);
        assert_eq!(m.final_digit_errors, DigitErrorCounts { total: 1, extra: 1, ..Default::default() });
        assert_eq!((m.over_corrected, m.harmful_edits, m.helpful_edits), (1, 2, 4));
        let v = serde_json::to_value(&m).unwrap();
        for k in [
            "suite",
            "n",
            "skipped",
            "accuracy",
            "accuracy_ci",
            "edit_intensity",
            "tpf",
            "final_digit_errors",
            "over_corrected",
            "harmful_edits",
            "helpful_edits",
            "churn",
            "wall_s",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        for k in ["total", "substituted", "extra", "dropped", "marker"] {
            assert!(v["final_digit_errors"].get(k).is_some(), "missing {k}");
        }
    }

    #[test]
    fn remask_intensity_pools_remasks_per_100_tokens_beside_edits() {
        let mut items = vec![outcome(true), outcome(false)];
        items[0].remasks = 5;
        items[1].remasks = 10;
        let m = SuiteMetrics::from_outcomes("s", Format::World, 0, &items, 1.0);
        assert_eq!((m.remasks, m.remask_intensity, m.edit_intensity), (15, 15.0, 6.0));
    }

    #[test]
    fn trace_names_are_safe_file_names() {
        assert_eq!(trace_file_name("arith-add2-001"), "arith-add2-001.json");
        assert_eq!(trace_file_name("../a b/c"), "_a_b_c.json");
        assert_eq!(trace_file_name(""), "item.json");
    }
}
