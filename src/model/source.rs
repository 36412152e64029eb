//! Resolving `--model` to a directory in HF layout: the embedded default, a local directory,
//! or a Hugging Face repo id (local cache first; downloaded only when online).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the embedded default model lives: `assets/model` next to the crate. The path is fixed
/// at build time so `cargo run` works from any directory; `DRAFTSCOPE_ASSETS` overrides it for
/// a moved binary.
pub fn embedded_model_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DRAFTSCOPE_ASSETS") {
        return PathBuf::from(dir).join("model");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join("model")
}

/// The id shown in traces and results for the embedded model.
pub const EMBEDDED_ID: &str = "embedded:draftscope-tiny";

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// As the user named it (or [`EMBEDDED_ID`]).
    pub id: String,
    pub dir: PathBuf,
}

/// Files a model directory may hold besides weights.
const SIDE_FILES: [&str; 3] = ["config.json", "tokenizer.json", "tokenizer_config.json"];

pub fn resolve(spec: Option<&str>) -> Result<ResolvedModel> {
    let Some(spec) = spec else {
        let dir = embedded_model_dir();
        if !dir.join("config.json").exists() {
            bail!(
                "embedded model not found at {} (set DRAFTSCOPE_ASSETS to the repository's assets/ folder, or pass --model DIR)",
                dir.display()
            );
        }
        return Ok(ResolvedModel { id: EMBEDDED_ID.into(), dir });
    };
    let path = expand_home(spec);
    if path.is_dir() {
        if !path.join("config.json").exists() {
            bail!("{}: not a model directory (config.json is missing)", path.display());
        }
        return Ok(ResolvedModel { id: spec.to_string(), dir: path });
    }
    if is_path_only(spec) || !looks_like_repo_id(spec) {
        bail!(
            "model {spec}: no directory at that path (a model is a directory with config.json, or a Hugging Face repo id owner/name)"
        );
    }
    resolve_hub(spec)
}

/// `~/x` is the home directory's `x` (a quoted `~` reaches us unexpanded).
fn expand_home(spec: &str) -> PathBuf {
    if let Some(rest) = spec.strip_prefix("~/")
        && let Some(home) = directories::BaseDirs::new()
    {
        return home.home_dir().join(rest);
    }
    PathBuf::from(spec)
}

/// A reference that can only mean a path: it is never sent to the hub.
fn is_path_only(s: &str) -> bool {
    s.starts_with('.') || s.starts_with('/') || s.starts_with('~') || s.matches('/').count() > 1
}

fn looks_like_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && !p.starts_with('.')) && !s.contains('\\')
}

fn offline() -> bool {
    matches!(std::env::var("HF_HUB_OFFLINE").as_deref(), Ok("1") | Ok("true") | Ok("TRUE") | Ok("yes"))
}

fn resolve_hub(repo_id: &str) -> Result<ResolvedModel> {
    let cache = hf_hub::Cache::from_env();
    let repo = cache.repo(hf_hub::Repo::model(repo_id.to_string()));
    if let Some(cfg) = repo.get("config.json") {
        let dir = cfg.parent().context("cache path has no parent")?.to_path_buf();
        let has_weights =
            dir.join("model.safetensors").exists() || dir.join("model.safetensors.index.json").exists();
        if has_weights {
            return Ok(ResolvedModel { id: repo_id.to_string(), dir });
        }
    }
    if offline() {
        bail!(
            "model {repo_id}: no directory at that path, and no such repo in the Hugging Face cache ({}); HF_HUB_OFFLINE is set, so nothing was downloaded",
            cache.path().display()
        );
    }
    download(repo_id).map_err(|e| {
        anyhow::anyhow!(
            "model {repo_id}: no directory at that path, no such repo in the Hugging Face cache ({}), and the download failed: {e:#}",
            cache.path().display()
        )
    })
}

fn download(repo_id: &str) -> Result<ResolvedModel> {
    let api = hf_hub::api::sync::ApiBuilder::from_env().with_progress(true).build()?;
    let repo = api.model(repo_id.to_string());
    let cfg = repo.get("config.json")?;
    for f in SIDE_FILES.iter().skip(1) {
        let _ = repo.get(f);
    }
    if let Ok(index) = repo.get("model.safetensors.index.json") {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index)?)?;
        let mut shards: Vec<String> = v["weight_map"]
            .as_object()
            .map(|m| m.values().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        shards.sort();
        shards.dedup();
        for s in shards {
            repo.get(&s)?;
        }
    } else {
        repo.get("model.safetensors")?;
    }
    let dir = cfg.parent().context("cache path has no parent")?.to_path_buf();
    Ok(ResolvedModel { id: repo_id.to_string(), dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_owner_slash_name() {
        assert!(looks_like_repo_id("inclusionAI/LLaDA2.1-mini"));
        assert!(!looks_like_repo_id("a/b/c"));
        assert!(!looks_like_repo_id("plain"));
    }

    #[test]
    fn path_like_references_never_reach_the_hub() {
        for spec in ["./models/mine", "/nowhere/model", "~/models/x", "models/mine/v2", "../m"] {
            assert!(is_path_only(spec), "{spec}");
            let err = resolve(Some(spec)).unwrap_err().to_string();
            assert!(err.contains("no directory at that path") && !err.contains("cache"), "{err}");
        }
        assert!(!is_path_only("inclusionAI/LLaDA2.1-mini"));
    }
}
