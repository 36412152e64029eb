//! The world's tokenizer: byte-level BPE trained (tokenizers crate) on the world's text, with
//! every digit a token of its own and the special tokens LLaDA2-style decoding needs.
//!
//! Why these choices: single-digit tokens make a wrong digit a wrong *token* (what the
//! final-digit classifier and the token inspector look at); byte-level BPE encodes any text a
//! user types (no `<unk>`); training on the world's words keeps words whole in a small vocab.
//!
//! Pre-tokenization splits digits first, then applies the GPT-2 byte-level regex, so a space
//! before a number is its own token: `has 47` → `Ġhas`, `Ġ`, `4`, `7`. The byte-level decoder
//! turns `Ġ` back into a space, so decoded ids read as the original text.

use std::collections::HashSet;

use anyhow::{Result, anyhow};
use serde::Serialize;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::World;

pub const EOS_TOKEN: &str = "<|endoftext|>";
pub const MASK_TOKEN: &str = "<|mask|>";
pub const BOS_TOKEN: &str = "<|startoftext|>";
pub const PAD_TOKEN: &str = "<|pad|>";

/// Special tokens in id order: they take ids 0.. so the ids never depend on the corpus.
/// Whole role tags are single tokens (short prompts); bare `<role>`/`</role>` cover other roles.
pub const SPECIAL_TOKENS: &[&str] = &[
    EOS_TOKEN,
    MASK_TOKEN,
    BOS_TOKEN,
    PAD_TOKEN,
    "<role>HUMAN</role>",
    "<role>ASSISTANT</role>",
    "<role>SYSTEM</role>",
    "<role>",
    "</role>",
];

/// Upper bound on the vocabulary; training stops earlier when every world word is whole.
pub const MAX_VOCAB: usize = 1024;
/// Documents the tokenizer is trained on.
const TRAIN_DOCS: usize = 20_000;

/// Ling-style chat template (same as draftscope's built-in fallback), stored in
/// `tokenizer_config.json`: `<role>HUMAN</role>{content}<role>ASSISTANT</role>`.
/// Ling-style role tags; HF-style `user` messages map to `HUMAN`, as in LLaDA2.1's template.
pub const CHAT_TEMPLATE: &str = "{% for m in messages %}{% set role = m.role | lower %}{% if role == 'user' %}{% set role = 'human' %}{% endif %}<role>{{ role | upper }}</role>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<role>ASSISTANT</role>{% endif %}";

/// Ids the pretrainer and decoder need, plus the vocabulary size (specials included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpecialIds {
    pub eos: u32,
    pub mask: u32,
    pub bos: u32,
    pub pad: u32,
    pub human: u32,
    pub assistant: u32,
    pub vocab_size: usize,
}

impl SpecialIds {
    /// Looks the special tokens up in `tok` (fails if one is missing).
    pub fn of(tok: &Tokenizer) -> Result<Self> {
        let id = |t: &str| tok.token_to_id(t).ok_or_else(|| anyhow!("tokenizer has no {t} token"));
        Ok(Self {
            eos: id(EOS_TOKEN)?,
            mask: id(MASK_TOKEN)?,
            bos: id(BOS_TOKEN)?,
            pad: id(PAD_TOKEN)?,
            human: id(SPECIAL_TOKENS[4])?,
            assistant: id(SPECIAL_TOKENS[5])?,
            vocab_size: tok.get_vocab_size(true),
        })
    }
}

/// Trains the tokenizer on the world's training text (prompts and answers, without role tags:
/// those are special tokens, added whole).
pub fn train(world: &World) -> Result<Tokenizer> {
    let docs = world.training_docs(TRAIN_DOCS, 0);
    train_on(docs.iter().flat_map(|d| [d.prompt.as_str(), d.answer.as_str()]))
}

/// Trains on arbitrary texts with the world tokenizer's settings.
pub fn train_on<'a>(texts: impl Iterator<Item = &'a str> + Send) -> Result<Tokenizer> {
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tok.with_decoder(Some(ByteLevel::default()));
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let trainer = BpeTrainer::builder()
        .show_progress(false)
        .vocab_size(MAX_VOCAB)
        .min_frequency(2)
        .initial_alphabet(alphabet)
        .special_tokens(SPECIAL_TOKENS.iter().map(|s| AddedToken::from(*s, true)).collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    tok.train(&mut trainer, texts).map_err(|e| anyhow!("tokenizer training: {e}"))?;
    Ok(tok)
}

/// `tokenizer.json` text (pretty JSON, final newline).
pub fn tokenizer_json(tok: &Tokenizer) -> Result<String> {
    let mut s = tok.to_string(true).map_err(|e| anyhow!("tokenizer to JSON: {e}"))?;
    s.push('\n');
    Ok(s)
}

#[derive(Serialize)]
struct TokenizerConfig<'a> {
    tokenizer_class: &'a str,
    bos_token: &'a str,
    eos_token: &'a str,
    pad_token: &'a str,
    mask_token: &'a str,
    add_bos_token: bool,
    add_eos_token: bool,
    clean_up_tokenization_spaces: bool,
    model_max_length: usize,
    chat_template: &'a str,
}

/// `tokenizer_config.json` text: special token strings and the chat template.
pub fn tokenizer_config_json() -> String {
    let cfg = TokenizerConfig {
        tokenizer_class: "PreTrainedTokenizerFast",
        bos_token: BOS_TOKEN,
        eos_token: EOS_TOKEN,
        pad_token: PAD_TOKEN,
        mask_token: MASK_TOKEN,
        add_bos_token: false,
        add_eos_token: false,
        clean_up_tokenization_spaces: false,
        model_max_length: 512,
        chat_template: CHAT_TEMPLATE,
    };
    let mut s = serde_json::to_string_pretty(&cfg).expect("config serialises");
    s.push('\n');
    s
}
