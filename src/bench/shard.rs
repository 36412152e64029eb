//! Benchmarks split across machines by an existing scheduler: `bench --shard i/N` scores an
//! interleaved, deterministic share of each suite (item k goes to shard k mod N), and
//! `results merge` joins the shard stores back into one record per suite — after checking
//! that the shards belong together and that every item was scored exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::record::{RunRecord, ShardInfo, SuiteMetrics, trace_file_name};
use super::results::ResultsStore;
use super::suite::Item;

/// `i/N`: this process scores shard `i` (0-based) of `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not i/N with 0 <= i < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || index >= count || count > 1 << 20 {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// This shard's items: every N-th, starting at i (balanced to within one item).
    pub fn take<'a>(&self, items: &'a [Item]) -> Vec<&'a Item> {
        items.iter().enumerate().filter(|(k, _)| k % self.count == self.index).map(|(_, it)| it).collect()
    }
}

/// 64-bit FNV-1a: a fingerprint, not a security hash.
fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.into_iter().flatten() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Fingerprint of a suite's items: their ids, prompts and answers, separated.
pub fn suite_hash(items: &[Item]) -> String {
    let parts = items.iter().flat_map(|it| {
        [it.id.as_bytes(), b"\x1f".as_slice(), it.prompt.as_bytes(), b"\x1f", it.answer.as_bytes(), b"\x1e"]
    });
    format!("{:016x}", fnv1a(parts))
}

/// What a merge did.
#[derive(Debug, Default)]
pub struct MergeReport {
    /// (suite, model label, merged run id, items) of each record written.
    pub merged: Vec<(String, String, String, usize)>,
    /// Records already in the target store (a repeated merge).
    pub already: usize,
    /// The merged records, written now or found from an earlier merge.
    pub records: Vec<RunRecord>,
}

/// The identity shards must share to merge: model, adapter, decode spec, suite and its hash.
fn group_key(r: &RunRecord, s: &ShardInfo) -> String {
    serde_json::json!([
        r.model,
        r.adapter,
        r.mode,
        r.attention,
        r.params,
        r.suite,
        r.format,
        r.chat,
        r.limit,
        s.count,
        s.suite_items,
        s.suite_hash
    ])
    .to_string()
}

fn model_label(r: &RunRecord) -> String {
    match &r.adapter {
        Some(a) => format!("{} + {a}", r.model),
        None => r.model.clone(),
    }
}

/// Merges the shard records found in `dirs` (session data directories) into `into`: one record
/// per suite and configuration, traces copied. Refuses a set with a missing or duplicated
/// shard, or an item scored twice. Running it again adds nothing. With `one_run`, shards of
/// more than one bench run are refused before anything is written.
pub fn merge(dirs: &[PathBuf], into: &Path, one_run: bool) -> Result<MergeReport> {
    let mut groups: BTreeMap<String, Vec<(PathBuf, RunRecord, ShardInfo)>> = BTreeMap::new();
    for d in dirs {
        let loaded = ResultsStore::open(d).load()?;
        if let Some(b) = loaded.bad_lines.first() {
            bail!("{b}: unreadable record; fix or remove it before merging");
        }
        let mut found = 0;
        for r in loaded.records {
            let Some(s) = r.shard.clone() else { continue };
            found += 1;
            groups.entry(group_key(&r, &s)).or_default().push((d.clone(), r, s));
        }
        if found == 0 {
            bail!(
                "{}: no shard records (run `draftscope bench --shard i/N --sessions {}`)",
                d.display(),
                d.display()
            );
        }
    }
    if one_run {
        let runs: BTreeSet<String> = groups.values().map(|g| merged_id(g)).collect();
        if runs.len() > 1 {
            bail!(
                "--json: the shards hold {} different bench runs (models, adapters or settings); merge one run's shards at a time to get its summary",
                runs.len()
            );
        }
    }
    let target = ResultsStore::open(into);
    let existing: HashMap<(String, String), RunRecord> =
        target.load()?.records.into_iter().map(|r| ((r.run_id.clone(), r.suite.clone()), r)).collect();
    let mut report = MergeReport::default();
    let mut out = Vec::new();
    for shards in groups.values() {
        let (_, first, info) = &shards[0];
        let what = format!("suite {} of {}", first.suite, model_label(first));
        let run_id = merged_id(shards);
        let mut by_index: BTreeMap<usize, &RunRecord> = BTreeMap::new();
        for (_, r, s) in shards {
            if let Some(prev) = by_index.insert(s.index, r) {
                bail!(
                    "{what}: shard {}/{} appears twice (runs {} and {})",
                    s.index,
                    s.count,
                    prev.run_id,
                    r.run_id
                );
            }
        }
        let missing: Vec<String> = (0..info.count)
            .filter(|i| !by_index.contains_key(i))
            .map(|i| format!("{i}/{}", info.count))
            .collect();
        if !missing.is_empty() {
            bail!("{what}: shard(s) {} missing; merge needs all {} shards", missing.join(", "), info.count);
        }
        let mut ids = HashSet::new();
        for (_, r, _) in shards {
            for o in &r.items {
                if !ids.insert(o.id.as_str()) {
                    bail!("{what}: item {} was scored twice (in run {})", o.id, r.run_id);
                }
            }
        }
        if ids.len() != info.suite_items {
            bail!("{what}: the shards hold {} items, the suite has {}", ids.len(), info.suite_items);
        }
        if let Some(r) = existing.get(&(run_id.clone(), first.suite.clone())) {
            report.already += 1;
            report.records.push(r.clone());
            continue;
        }
        let mut items = Vec::new();
        for (dir, r, _) in shards {
            for o in &r.items {
                let mut o = o.clone();
                o.trace = copy_trace(dir, &o.trace, into, &run_id, &first.suite)?;
                items.push(o);
            }
        }
        items.sort_by_key(|o| o.line);
        let wall: f64 = shards.iter().map(|(_, r, _)| r.metrics.wall_s).sum();
        let latest = shards.iter().map(|(_, r, _)| r).max_by_key(|r| r.unix_time).unwrap_or(first);
        let metrics =
            SuiteMetrics::from_outcomes(&first.suite, first.format, first.metrics.skipped, &items, wall);
        report.merged.push((first.suite.clone(), model_label(first), run_id.clone(), items.len()));
        out.push(RunRecord {
            run_id: run_id.clone(),
            time: latest.time.clone(),
            unix_time: latest.unix_time,
            traces: format!("bench/{run_id}/{}", trace_dir(&first.suite)),
            metrics,
            items,
            shard: None,
            ..first.clone()
        });
    }
    if !out.is_empty() {
        target.append(&out)?;
    }
    report.records.extend(out);
    Ok(report)
}

/// The merged record's run id: derived from its shards' run ids, so merging again finds it.
fn merged_id(shards: &[(PathBuf, RunRecord, ShardInfo)]) -> String {
    let mut runs: Vec<&str> = shards.iter().map(|(_, r, _)| r.run_id.as_str()).collect();
    runs.sort_unstable();
    let h = fnv1a([runs.join(",").as_bytes()]);
    format!("merged-{:012x}", h & 0xffff_ffff_ffff)
}

fn trace_dir(suite: &str) -> String {
    trace_file_name(suite).trim_end_matches(".json").to_string()
}

/// Copies one item's trace into the merged run's folder; returns its new relative path.
fn copy_trace(from_dir: &Path, rel: &str, into: &Path, run_id: &str, suite: &str) -> Result<String> {
    let name = Path::new(rel).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let new_rel = format!("bench/{run_id}/{}/{name}", trace_dir(suite));
    let src = from_dir.join(rel);
    if src.exists() {
        let bytes = std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        crate::session::atomic_write(&into.join(&new_rel), &bytes)?;
    }
    Ok(new_rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_refuse_out_of_range() {
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard { index: 1, count: 3 });
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_interleave_and_partition_the_items() {
        let items: Vec<Item> = (0..10)
            .map(|i| Item {
                id: i.to_string(),
                line: i + 1,
                prompt: String::new(),
                prompt_ids: None,
                answer: String::new(),
                aliases: Vec::new(),
                scorer: crate::bench::suite::world_scorer("arith", "1"),
            })
            .collect();
        let parts: Vec<Vec<String>> = (0..3)
            .map(|i| Shard { index: i, count: 3 }.take(&items).iter().map(|it| it.id.clone()).collect())
            .collect();
        assert_eq!(parts[0], ["0", "3", "6", "9"]);
        assert_eq!(parts[1], ["1", "4", "7"]);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 10);
    }
}
