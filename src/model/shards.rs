//! The one reader of a model directory's safetensors layout: `model.safetensors`, or the
//! shards listed in `model.safetensors.index.json` (as the hub ships large models). The
//! loader and `merge` both ask here, so they cannot disagree on which files make a model.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub const SINGLE: &str = "model.safetensors";
pub const INDEX: &str = "model.safetensors.index.json";

/// The safetensors files of `dir`, sorted; an error names the file that is wrong.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join(SINGLE);
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join(INDEX);
    if !index.exists() {
        bail!("{}: no {SINGLE} or {INDEX} in this directory", dir.display());
    }
    let text = std::fs::read_to_string(&index).with_context(|| format!("cannot read {}", index.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", index.display()))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .with_context(|| format!("{}: missing field `weight_map`", index.display()))?;
    let mut files = BTreeSet::new();
    for (name, f) in map {
        let f = f
            .as_str()
            .with_context(|| format!("{}: `weight_map.{name}` is not a string", index.display()))?;
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            bail!("{}: `weight_map.{name}` names {f:?}, not a file in this directory", index.display());
        }
        files.insert(dir.join(f));
    }
    if files.is_empty() {
        bail!("{}: `weight_map` lists no shard", index.display());
    }
    Ok(files.into_iter().collect())
}

/// Writes `model.safetensors.index.json` for `(tensor, shard file name)` pairs.
pub fn write_index(dir: &Path, entries: &[(String, String)], total_bytes: u64) -> Result<()> {
    let map: serde_json::Map<String, serde_json::Value> =
        entries.iter().map(|(t, f)| (t.clone(), serde_json::Value::from(f.clone()))).collect();
    let v = serde_json::json!({ "metadata": { "total_size": total_bytes }, "weight_map": map });
    crate::session::atomic_write(&dir.join(INDEX), serde_json::to_string_pretty(&v)?.as_bytes())
}
