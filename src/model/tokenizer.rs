//! Text ↔ ids. A model directory may lack a tokenizer (the reference fixtures do); then
//! prompts must be given as ids and tokens print as `<id>`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Ling-style role tags (`user` → `HUMAN`), used when `tokenizer_config.json` has no template.
const FALLBACK_TEMPLATE: &str = "{% for m in messages %}{% set role = m.role | lower %}{% if role == 'user' %}{% set role = 'human' %}{% endif %}<role>{{ role | upper }}</role>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<role>ASSISTANT</role>{% endif %}";

pub struct TextCodec {
    tokenizer: Option<tokenizers::Tokenizer>,
    chat_template: Option<String>,
    dir: PathBuf,
    /// Bytes of the longest vocabulary entry: a text of n bytes needs at least
    /// n / max_token_bytes tokens, a bound known before tokenising.
    max_token_bytes: usize,
}

fn max_token_bytes(tok: Option<&tokenizers::Tokenizer>) -> usize {
    tok.and_then(|t| t.get_vocab(true).keys().map(String::len).max()).unwrap_or(1).max(1)
}

/// `chat_template` as HF writes it: a string, or a list of `{name, template}` of which the one
/// named `default` is the chat template.
fn read_chat_template(v: &serde_json::Value, path: &Path) -> Result<Option<String>> {
    match v.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(t)) => Ok(Some(t.clone())),
        Some(serde_json::Value::Array(list)) => {
            let named = |n: &str| list.iter().find(|e| e.get("name").and_then(|x| x.as_str()) == Some(n));
            let entry = named("default").or_else(|| list.first());
            match entry.and_then(|e| e.get("template")).and_then(|t| t.as_str()) {
                Some(t) => Ok(Some(t.to_string())),
                None => bail!(
                    "{}: field `chat_template` is a list without a `default` entry holding a string `template`",
                    path.display()
                ),
            }
        }
        Some(other) => bail!(
            "{}: field `chat_template` must be a string or a list of {{name, template}}, got {}",
            path.display(),
            other
        ),
    }
}

impl TextCodec {
    pub fn load(dir: &Path) -> Result<Self> {
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = if tok_path.exists() {
            Some(
                tokenizers::Tokenizer::from_file(&tok_path)
                    .map_err(|e| anyhow::anyhow!("{}: cannot load tokenizer ({e})", tok_path.display()))?,
            )
        } else {
            None
        };
        let cfg_path = dir.join("tokenizer_config.json");
        let chat_template = if cfg_path.exists() {
            let text = std::fs::read_to_string(&cfg_path)
                .with_context(|| format!("cannot read {}", cfg_path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not valid JSON ({e})", cfg_path.display()))?;
            read_chat_template(&v, &cfg_path)?
        } else {
            None
        };
        let max_token_bytes = max_token_bytes(tokenizer.as_ref());
        Ok(Self { tokenizer, chat_template, dir: dir.to_path_buf(), max_token_bytes })
    }

    /// A codec with no tokenizer (ids only).
    pub fn ids_only() -> Self {
        Self { tokenizer: None, chat_template: None, dir: PathBuf::new(), max_token_bytes: 1 }
    }

    pub fn from_tokenizer(tokenizer: tokenizers::Tokenizer, chat_template: Option<String>) -> Self {
        let max_token_bytes = max_token_bytes(Some(&tokenizer));
        Self { tokenizer: Some(tokenizer), chat_template, dir: PathBuf::new(), max_token_bytes }
    }

    /// Encodes `text`, refusing before tokenising a text that cannot fit in `max_tokens`
    /// (tokenising a many-megabyte line takes minutes only to be refused afterwards).
    pub fn encode_within(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        let at_least = text.len().div_ceil(self.max_token_bytes);
        if at_least > max_tokens {
            bail!(
                "the prompt is {} bytes, at least {at_least} tokens: more than the model's context of {max_tokens} positions",
                text.len()
            );
        }
        let ids = self.encode(text)?;
        if ids.len() > max_tokens {
            bail!(
                "the prompt is {} tokens: more than the model's context of {max_tokens} positions",
                ids.len()
            );
        }
        Ok(ids)
    }

    /// Prompt ids from text (with the chat template when `chat`) or from a comma-separated
    /// id list; returns the text the ids came from, if any. Flag names in errors are the CLI's.
    pub fn prompt(
        &self,
        text: Option<&str>,
        ids: Option<&str>,
        chat: bool,
    ) -> Result<(Option<String>, Vec<u32>)> {
        match (text, ids) {
            (Some(t), None) => {
                let t = if chat { self.chat_prompt(t)? } else { t.to_string() };
                let ids = self.encode(&t)?;
                if ids.is_empty() {
                    bail!("--prompt encodes to no tokens");
                }
                Ok((Some(t), ids))
            }
            (None, Some(s)) => {
                if chat {
                    bail!("--chat applies to --prompt text, not --prompt-ids");
                }
                Ok((None, parse_ids(s, "--prompt-ids")?))
            }
            _ => bail!("give the prompt as --prompt TEXT or --prompt-ids 1,2,3"),
        }
    }

    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some()
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let Some(tok) = &self.tokenizer else {
            bail!(
                "{}: no tokenizer.json, so text prompts cannot be encoded (use --prompt-ids)",
                self.dir.display()
            );
        };
        let enc = tok.encode(text, false).map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Applies the model's chat template to one user message.
    pub fn chat_prompt(&self, user: &str) -> Result<String> {
        let template = self.chat_template.as_deref().unwrap_or(FALLBACK_TEMPLATE);
        let mut env = minijinja::Environment::new();
        env.add_template("chat", template).map_err(|e| {
            anyhow::anyhow!("{}: bad chat_template ({e})", self.dir.join("tokenizer_config.json").display())
        })?;
        let tmpl = env.get_template("chat")?;
        let out = tmpl
            .render(minijinja::context! {
                messages => vec![minijinja::context!{ role => "user", content => user }],
                add_generation_prompt => true,
            })
            .map_err(|e| anyhow::anyhow!("chat template: {e}"))?;
        Ok(out)
    }

    /// Text of one token, for display (`<id>` when there is no tokenizer).
    pub fn token_text(&self, id: u32) -> String {
        match &self.tokenizer {
            Some(t) => t.id_to_token(id).map(|s| clean_piece(&s)).unwrap_or_else(|| format!("<{id}>")),
            None => format!("<{id}>"),
        }
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.tokenizer {
            Some(t) => t.decode(ids, false).unwrap_or_else(|_| ids_text(ids)),
            None => ids_text(ids),
        }
    }
}

/// Byte-level BPE and metaspace markers shown as the space they stand for.
fn clean_piece(s: &str) -> String {
    s.replace(['Ġ', '▁'], " ").replace('Ċ', "\n")
}

fn ids_text(ids: &[u32]) -> String {
    ids.iter().map(|i| format!("<{i}>")).collect::<Vec<_>>().join("")
}

/// Parses `1,2,3` (spaces allowed) into ids; errors name `flag`.
pub fn parse_ids(s: &str, flag: &str) -> Result<Vec<u32>> {
    let ids: std::result::Result<Vec<u32>, _> =
        s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse::<u32>()).collect();
    let ids = ids.map_err(|e| anyhow::anyhow!("{flag}: not a comma-separated list of token ids ({e})"))?;
    if ids.is_empty() {
        bail!("{flag}: the id list is empty");
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_template_in_hf_list_form_picks_the_default_entry() {
        let v = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D"}
        ]});
        assert_eq!(read_chat_template(&v, Path::new("x")).unwrap().as_deref(), Some("D"));
    }

    #[test]
    fn chat_template_of_another_type_is_refused_with_the_field() {
        let v = serde_json::json!({"chat_template": 7});
        let err = read_chat_template(&v, Path::new("tc.json")).unwrap_err().to_string();
        assert!(err.contains("tc.json") && err.contains("chat_template"), "{err}");
    }
}
