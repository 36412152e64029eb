//! The experiment's comparison: per suite and decode mode, each adapter against the base and
//! the arms against each other on the same items — Wilson intervals on accuracies and on the
//! failure-mode rates, exact McNemar tests with a Holm correction over the whole report, and a
//! paired bootstrap interval on the edit-intensity difference. Written as Markdown and JSON.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use serde::Serialize;

use super::experiment::{Layout, Spec, T2T, cost_per_step, mode_label, model_name};
use super::record::ItemOutcome;
use super::results::ResultsStore;
use super::stats::{Z95, holm, mcnemar_exact, paired_bootstrap_rate_diff, wilson};

/// One model's numbers on one suite in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub model: String,
    pub arm: Option<String>,
    pub seed: Option<u64>,
    pub n: usize,
    pub accuracy: f64,
    pub accuracy_ci: [f64; 2],
    /// Points against the base, with its McNemar test (raw and Holm-adjusted p).
    pub delta_vs_base: Option<f64>,
    pub p_vs_base: Option<f64>,
    pub p_vs_base_holm: Option<f64>,
    pub edits_per_100: f64,
    /// T2M remasks per 100 generated tokens (0 under T2T).
    pub remasks_per_100: f64,
    /// Edit intensity minus the base's, with a 95% paired-bootstrap interval.
    pub edits_delta_vs_base: Option<(f64, [f64; 2])>,
    pub final_digit_errors: usize,
    pub final_digit_ci: [f64; 2],
    pub over_corrected: usize,
    pub over_corrected_ci: [f64; 2],
}

/// Two models (arms on the same seed), or one model under T2T and under another policy.
#[derive(Debug, Clone, Serialize)]
pub struct PairRow {
    pub a: String,
    pub b: String,
    pub seed: Option<u64>,
    /// Accuracy of b minus a, in points.
    pub delta: f64,
    pub p: f64,
    pub p_holm: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub suite: String,
    pub mode: String,
    pub policy: String,
    pub rows: Vec<ModelRow>,
    pub pairs: Vec<PairRow>,
}

/// What training cost, per arm and seed.
#[derive(Debug, Clone, Serialize)]
pub struct ComputeRow {
    pub model: String,
    pub steps: usize,
    pub forward_equivalents: usize,
    pub wall_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub spec: Spec,
    pub sections: Vec<Section>,
    pub compute: Vec<ComputeRow>,
}

/// Per-item outcomes of one bench job, by suite (keyed by item id).
type Outcomes = BTreeMap<String, HashMap<String, ItemOutcome>>;

fn load_outcomes(
    layout: &Layout,
    store_records: &[super::RunRecord],
    model: &str,
    mode: crate::decode::Mode,
    policy: &str,
) -> Result<Outcomes> {
    let p = layout.bench(model, mode, policy);
    let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    let run_id = v["run_id"].as_str().with_context(|| format!("{}: no run_id", p.display()))?;
    let mut out = Outcomes::new();
    for r in store_records.iter().filter(|r| r.run_id == run_id) {
        let items = r.items.iter().filter(|o| o.error.is_none()).map(|o| (o.id.clone(), o.clone())).collect();
        out.insert(r.suite.clone(), items);
    }
    if out.is_empty() {
        anyhow::bail!(
            "{}: run {run_id} has no records in {}",
            p.display(),
            layout.sessions().join("results.jsonl").display()
        );
    }
    Ok(out)
}

fn rate_ci(k: usize, n: usize) -> [f64; 2] {
    wilson(k, n, Z95)
}

fn row_of(
    model: &str,
    arm: Option<&str>,
    seed: Option<u64>,
    items: &HashMap<String, ItemOutcome>,
) -> ModelRow {
    let n = items.len();
    let correct = items.values().filter(|o| o.correct).count();
    let edits: usize = items.values().map(|o| o.edits).sum();
    let tokens: usize = items.values().map(|o| o.tokens).sum();
    let remasks: usize = items.values().map(|o| o.remasks).sum();
    let fde = items.values().filter(|o| o.final_digit.is_some()).count();
    let over = items.values().filter(|o| o.over_corrected).count();
    ModelRow {
        model: model.to_string(),
        arm: arm.map(String::from),
        seed,
        n,
        accuracy: if n == 0 { 0.0 } else { correct as f64 / n as f64 },
        accuracy_ci: rate_ci(correct, n),
        delta_vs_base: None,
        p_vs_base: None,
        p_vs_base_holm: None,
        edits_per_100: if tokens == 0 { 0.0 } else { 100.0 * edits as f64 / tokens as f64 },
        remasks_per_100: if tokens == 0 { 0.0 } else { 100.0 * remasks as f64 / tokens as f64 },
        edits_delta_vs_base: None,
        final_digit_errors: fde,
        final_digit_ci: rate_ci(fde, n),
        over_corrected: over,
        over_corrected_ci: rate_ci(over, n),
    }
}

/// Items both models scored, in a fixed order.
fn common_ids(a: &HashMap<String, ItemOutcome>, b: &HashMap<String, ItemOutcome>) -> Vec<String> {
    let mut ids: Vec<String> = a.keys().filter(|k| b.contains_key(*k)).cloned().collect();
    ids.sort();
    ids
}

/// (only a right, only b right) over the common items.
fn discordant(a: &HashMap<String, ItemOutcome>, b: &HashMap<String, ItemOutcome>) -> (usize, usize, usize) {
    let ids = common_ids(a, b);
    let only_a = ids.iter().filter(|i| a[*i].correct && !b[*i].correct).count();
    let only_b = ids.iter().filter(|i| !a[*i].correct && b[*i].correct).count();
    (only_a, only_b, ids.len())
}

fn last_elapsed(run: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    serde_json::from_str::<serde_json::Value>(line).ok()?["elapsed_s"].as_f64()
}

/// Builds the report from the experiment directory (every bench job must be done).
pub fn build(spec: &Spec, layout: &Layout) -> Result<Report> {
    let store = ResultsStore::open(&layout.sessions());
    let records = store.load()?.records;
    let mut sections = Vec::new();
    // Every McNemar p of the report, to correct together: (section, row or pair, is_pair).
    let mut tests: Vec<(usize, usize, bool, f64)> = Vec::new();
    let settings: Vec<_> =
        spec.modes.iter().flat_map(|&m| spec.policies.iter().map(move |p| (m, p))).collect();
    for (mode, policy) in settings {
        let pol = policy.name.as_str();
        let base = load_outcomes(layout, &records, "base", mode, pol)?;
        // The same models under T2T, for the policy comparison (when T2T is in the grid).
        // Loaded once per model and setting, not once per suite.
        let compare_t2t = pol != T2T && spec.policies.iter().any(|p| p.name == T2T);
        let mut t2t_cache: HashMap<String, Option<Outcomes>> = HashMap::new();
        let mut t2t_of = |model: &str| -> Option<Outcomes> {
            if !compare_t2t {
                return None;
            }
            t2t_cache
                .entry(model.to_string())
                .or_insert_with(|| load_outcomes(layout, &records, model, mode, T2T).ok())
                .clone()
        };
        let mut adapters = Vec::new();
        for arm in &spec.arms {
            for &seed in &spec.seeds {
                let name = model_name(&arm.name, seed);
                adapters.push((
                    arm.name.clone(),
                    seed,
                    name.clone(),
                    load_outcomes(layout, &records, &name, mode, pol)?,
                ));
            }
        }
        for suite in base.keys() {
            let b = &base[suite];
            let base_row = row_of("base", None, None, b);
            let si = sections.len();
            let mut rows = vec![base_row.clone()];
            for (arm, seed, name, out) in &adapters {
                let Some(a) = out.get(suite) else { continue };
                let mut r = row_of(name, Some(arm), Some(*seed), a);
                let (only_base, only_adapter, _) = discordant(b, a);
                let p = mcnemar_exact(only_base, only_adapter);
                r.delta_vs_base = Some(100.0 * (r.accuracy - base_row.accuracy));
                r.p_vs_base = Some(p);
                let ids = common_ids(b, a);
                let pa: Vec<(f64, f64)> =
                    ids.iter().map(|i| (b[i].edits as f64, b[i].tokens as f64)).collect();
                let pb: Vec<(f64, f64)> =
                    ids.iter().map(|i| (a[i].edits as f64, a[i].tokens as f64)).collect();
                r.edits_delta_vs_base = Some(paired_bootstrap_rate_diff(&pa, &pb, 100.0, 2000, 7));
                tests.push((si, rows.len(), false, p));
                rows.push(r);
            }
            let mut pairs = Vec::new();
            for (i, x) in spec.arms.iter().enumerate() {
                for y in spec.arms.iter().skip(i + 1) {
                    for &seed in &spec.seeds {
                        let find = |arm: &str| {
                            adapters
                                .iter()
                                .find(|(a, s, _, _)| a == arm && *s == seed)
                                .and_then(|t| t.3.get(suite))
                        };
                        let (Some(xa), Some(ya)) = (find(&x.name), find(&y.name)) else { continue };
                        let (only_x, only_y, n) = discordant(xa, ya);
                        let p = mcnemar_exact(only_x, only_y);
                        let delta =
                            if n == 0 { 0.0 } else { 100.0 * (only_y as f64 - only_x as f64) / n as f64 };
                        tests.push((si, pairs.len(), true, p));
                        pairs.push(PairRow {
                            a: x.name.clone(),
                            b: y.name.clone(),
                            seed: Some(seed),
                            delta,
                            p,
                            p_holm: p,
                        });
                    }
                }
            }
            // Each model under T2T vs under this policy, on the same items.
            let models = std::iter::once(("base".to_string(), None, &base))
                .chain(adapters.iter().map(|(_, seed, name, out)| (name.clone(), Some(*seed), out)));
            for (name, seed, out) in models {
                let (Some(t2t), Some(now)) = (t2t_of(&name), out.get(suite)) else { continue };
                let Some(before) = t2t.get(suite) else { continue };
                let (only_t2t, only_now, n) = discordant(before, now);
                let p = mcnemar_exact(only_t2t, only_now);
                let delta = if n == 0 { 0.0 } else { 100.0 * (only_now as f64 - only_t2t as f64) / n as f64 };
                tests.push((si, pairs.len(), true, p));
                pairs.push(PairRow {
                    a: format!("{name} · {T2T}"),
                    b: format!("{name} · {pol}"),
                    seed,
                    delta,
                    p,
                    p_holm: p,
                });
            }
            sections.push(Section {
                suite: suite.clone(),
                mode: mode_label(mode).into(),
                policy: pol.into(),
                rows,
                pairs,
            });
        }
    }
    let adjusted = holm(&tests.iter().map(|t| t.3).collect::<Vec<_>>());
    for ((si, idx, is_pair, _), adj) in tests.iter().zip(adjusted) {
        if *is_pair {
            sections[*si].pairs[*idx].p_holm = adj;
        } else {
            sections[*si].rows[*idx].p_vs_base_holm = Some(adj);
        }
    }
    let compute = spec
        .arms
        .iter()
        .flat_map(|arm| spec.seeds.iter().map(move |&s| (arm, s)))
        .map(|(arm, seed)| {
            let name = model_name(&arm.name, seed);
            let steps = spec.steps_of(arm);
            ComputeRow {
                wall_s: last_elapsed(&layout.run(&name)),
                steps,
                forward_equivalents: steps * cost_per_step(arm),
                model: name,
            }
        })
        .collect();
    Ok(Report { spec: spec.clone(), sections, compute })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn ci(c: [f64; 2]) -> String {
    format!("[{:.1}, {:.1}]", 100.0 * c[0], 100.0 * c[1])
}

fn p_text(p: f64, holm: f64) -> String {
    let mark = if holm < 0.05 { " ✓" } else { "" };
    format!("{p:.3} ({holm:.3}){mark}")
}

/// Mean and range over seeds of each arm's accuracy and Δbase in a section.
fn arm_summary(s: &Section, arm: &str) -> Option<String> {
    let rows: Vec<&ModelRow> = s.rows.iter().filter(|r| r.arm.as_deref() == Some(arm)).collect();
    if rows.is_empty() {
        return None;
    }
    let acc: Vec<f64> = rows.iter().map(|r| 100.0 * r.accuracy).collect();
    let d: Vec<f64> = rows.iter().filter_map(|r| r.delta_vs_base).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.1}…{hi:.1}")
    };
    Some(format!(
        "| {arm} (mean of {}) | {:.1}% ({}) | {:+.1} ({}) |",
        rows.len(),
        mean(&acc),
        range(&acc),
        mean(&d),
        range(&d)
    ))
}

/// An arm as the report's header names it: `name` (objective, its flags, its own steps).
fn arm_label(a: &super::experiment::Arm) -> String {
    let mut extra = String::new();
    if !a.flags.is_empty() {
        extra.push(' ');
        extra.push_str(&a.flags.join(" "));
    }
    if let Some(n) = a.steps {
        extra.push_str(&format!(", {n} steps"));
    }
    format!("`{}` ({}{extra})", a.name, super::experiment::objective_label(a.objective))
}

/// The Markdown report.
pub fn markdown(r: &Report, command: &str) -> String {
    let mut s = String::from("# Experiment report\n\n");
    s.push_str(&format!(
        "Reproduce: `{command}`\n\nArms: {}; seeds {:?}; {} steps ({}); suites {}; modes {}; attention {}.\n\n",
        r.spec.arms.iter().map(arm_label).collect::<Vec<_>>().join(", "),
        r.spec.seeds,
        r.spec.steps,
        match r.spec.compute { super::experiment::Compute::Steps => "equal optimizer steps", super::experiment::Compute::Flops => "equal forward FLOPs" },
        r.spec.suites.join(", "),
        r.spec.modes.iter().map(|m| mode_label(*m)).collect::<Vec<_>>().join(", "),
        r.spec.attention.label(),
    ));
    s.push_str("Accuracy with 95% Wilson intervals; Δ in points against the base on the same items with the exact McNemar p (Holm-adjusted over every test in this report in parentheses; ✓ = survives at 0.05); edit intensity = T2T edits per 100 generated tokens, its Δ with a 95% paired-bootstrap interval (2000 resamples); final-digit errors and over-corrected items as counts with the Wilson interval of their rate.\n\n");
    for sec in &r.sections {
        s.push_str(&format!("## {} — {}-mode, {}\n\n", sec.suite, sec.mode, sec.policy));
        s.push_str("| model | n | accuracy | 95% CI | Δ base | p (Holm) | edits/100 | Δ edits/100 [95% CI] | remasks/100 | final-digit errors | over-corrected |\n");
        s.push_str("| --- | ---: | ---: | --- | ---: | --- | ---: | --- | ---: | --- | --- |\n");
        for row in &sec.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.2} | {} {} | {} {} |\n",
                row.model,
                row.n,
                pct(row.accuracy),
                ci(row.accuracy_ci),
                row.delta_vs_base.map_or("—".into(), |d| format!("{d:+.1}")),
                match (row.p_vs_base, row.p_vs_base_holm) {
                    (Some(p), Some(h)) => p_text(p, h),
                    _ => "—".into(),
                },
                row.edits_per_100,
                row.edits_delta_vs_base
                    .map_or("—".into(), |(d, c)| format!("{d:+.2} [{:+.2}, {:+.2}]", c[0], c[1])),
                row.remasks_per_100,
                row.final_digit_errors,
                ci(row.final_digit_ci),
                row.over_corrected,
                ci(row.over_corrected_ci),
            ));
        }
        s.push_str(
            "\n| arm | accuracy, mean (range over seeds) | Δ base, mean (range) |\n| --- | --- | --- |\n",
        );
        for arm in &r.spec.arms {
            if let Some(line) = arm_summary(sec, &arm.name) {
                s.push_str(&line);
                s.push('\n');
            }
        }
        if !sec.pairs.is_empty() {
            s.push_str("\n| comparison | seed | Δ (points, second − first) | p (Holm) |\n| --- | ---: | ---: | --- |\n");
            for p in &sec.pairs {
                s.push_str(&format!(
                    "| {} vs {} | {} | {:+.1} | {} |\n",
                    p.a,
                    p.b,
                    p.seed.map_or("—".into(), |s| s.to_string()),
                    p.delta,
                    p_text(p.p, p.p_holm)
                ));
            }
        }
        s.push('\n');
    }
    s.push_str("## Training compute\n\n| run | steps | forward-pass equivalents | wall time |\n| --- | ---: | ---: | ---: |\n");
    for c in &r.compute {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.model,
            c.steps,
            c.forward_equivalents,
            c.wall_s.map_or("—".into(), |w| format!("{:.0} s", w))
        ));
    }
    s.push_str("\nA training step counts as 3 forward passes (forward + backward); each no-gradient draft forward of the `self` objective as one more. Wall times come from each run's metrics and depend on what else the machine ran.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, correct: bool, edits: usize) -> ItemOutcome {
        serde_json::from_value(serde_json::json!({
            "id": id, "line": 1, "correct": correct, "predicted": null, "gold": "1",
            "edits": edits, "tokens": 10, "forwards": 1, "wall_ms": 1.0, "trace": "t"
        }))
        .unwrap()
    }

    #[test]
    fn discordant_pairs_count_only_the_common_items() {
        let a: HashMap<String, ItemOutcome> = [("1", true), ("2", true), ("3", false)]
            .iter()
            .map(|&(i, c)| (i.to_string(), item(i, c, 0)))
            .collect();
        let b: HashMap<String, ItemOutcome> = [("1", false), ("2", true), ("3", true), ("4", true)]
            .iter()
            .map(|&(i, c)| (i.to_string(), item(i, c, 0)))
            .collect();
        assert_eq!(discordant(&a, &b), (1, 1, 3));
    }

    #[test]
    fn rows_report_rates_with_intervals() {
        let a: HashMap<String, ItemOutcome> =
            (0..10).map(|i| (i.to_string(), item(&i.to_string(), i < 7, 1))).collect();
        let r = row_of("m", None, None, &a);
        assert_eq!((r.n, r.accuracy, r.edits_per_100), (10, 0.7, 10.0));
        assert_eq!(r.accuracy_ci, wilson(7, 10, Z95));
    }
}
