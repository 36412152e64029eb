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
            v.get("chat_template").and_then(|t| t.as_str()).map(String::from)
        } else {
            None
        };
        Ok(Self { tokenizer, chat_template, dir: dir.to_path_buf() })
    }

    /// A codec with no tokenizer (ids only).
    pub fn ids_only() -> Self {
        Self { tokenizer: None, chat_template: None, dir: PathBuf::new() }
    }

    pub fn from_tokenizer(tokenizer: tokenizers::Tokenizer, chat_template: Option<String>) -> Self {
        Self { tokenizer: Some(tokenizer), chat_template, dir: PathBuf::new() }
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
