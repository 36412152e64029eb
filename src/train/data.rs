//! Training data: documents → token ids → block-aligned packed sequences → batches addressed
//! by a cursor (so a resumed run reads exactly the batches it would have read).
//!
//! Packing: each document is followed by EOS and padded with EOS to the next block boundary,
//! so every document starts on a block boundary as a prompt does when decoding; documents are
//! packed greedily into sequences of `seq_len` tokens (the rest filled with EOS), and a
//! document longer than a sequence is split.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Documents of a corpus file: JSONL (one object per line, field `text`) when the file ends
/// in `.jsonl` or its first non-empty line is a JSON object; otherwise plain text with
/// documents separated by blank lines.
pub fn load_texts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let jsonl = path.extension().is_some_and(|e| e == "jsonl") || first.trim_start().starts_with('{');
    let mut docs = Vec::new();
    if jsonl {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| anyhow::anyhow!("{}:{}: not a JSON object ({e})", path.display(), i + 1))?;
            let t = v
                .get("text")
                .and_then(|t| t.as_str())
                .with_context(|| format!("{}:{}: missing string field `text`", path.display(), i + 1))?;
            docs.push(t.to_string());
        }
    } else {
        for d in text.split("\n\n") {
            let d = d.trim_matches('\n');
            if !d.trim().is_empty() {
                docs.push(d.to_string());
            }
        }
    }
    if docs.is_empty() {
        bail!("{}: no documents", path.display());
    }
    Ok(docs)
}

/// Special token ids the objectives need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Specials {
    pub eos: u32,
    pub mask: u32,
    /// Ids `< first_regular` or listed here are never used as random replacement tokens.
    pub vocab_size: usize,
}

const EOS_NAMES: [&str; 5] = ["<|endoftext|>", "<|eos|>", "</s>", "<eos>", "[EOS]"];
const MASK_NAMES: [&str; 4] = ["<|mask|>", "<mask>", "[MASK]", "<|MASK|>"];

fn config_token(cfg: &serde_json::Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        v => v.get("content").and_then(|c| c.as_str()).map(String::from),
    }
}

/// Finds EOS and mask ids: `tokenizer_config.json`'s `eos_token` / `mask_token` next to the
/// tokenizer when present, else common names.
pub fn find_specials(tok: &tokenizers::Tokenizer, tokenizer_path: &Path) -> Result<Specials> {
    let cfg_path = tokenizer_path.with_file_name("tokenizer_config.json");
    let cfg: serde_json::Value = std::fs::read_to_string(&cfg_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let find = |key: &str, names: &[&str]| -> Option<u32> {
        if let Some(n) = config_token(&cfg, key)
            && let Some(id) = tok.token_to_id(&n)
        {
            return Some(id);
        }
        names.iter().find_map(|n| tok.token_to_id(n))
    };
    let eos = find("eos_token", &EOS_NAMES)
        .with_context(|| format!("{}: no EOS token (looked for {EOS_NAMES:?})", tokenizer_path.display()))?;
    let mask = find("mask_token", &MASK_NAMES).with_context(|| {
        format!("{}: no mask token (looked for {MASK_NAMES:?})", tokenizer_path.display())
    })?;
    Ok(Specials { eos, mask, vocab_size: tok.get_vocab_size(true) })
}

pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot load tokenizer ({e})", path.display()))
}

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

/// Tokenizes documents, reusing `cache_dir/tokens-<hash>.bin` when the same documents were
/// tokenized with the same tokenizer before.
pub fn tokenize_cached(
    docs: &[String],
    tok: &tokenizers::Tokenizer,
    tokenizer_path: &Path,
    cache_dir: Option<&Path>,
) -> Result<Vec<Vec<u32>>> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv1a(&mut h, &std::fs::read(tokenizer_path).unwrap_or_default());
    for d in docs {
        fnv1a(&mut h, d.as_bytes());
        fnv1a(&mut h, &[0xff]);
    }
    let cache: Option<PathBuf> = cache_dir.map(|d| d.join(format!("tokens-{h:016x}.bin")));
    if let Some(p) = &cache
        && let Ok(bytes) = std::fs::read(p)
        && let Some(out) = decode_cache(&bytes, docs.len())
    {
        return Ok(out);
    }
    let enc = tok
        .encode_batch(docs.iter().map(|d| d.as_str()).collect::<Vec<_>>(), false)
        .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
    let out: Vec<Vec<u32>> = enc.iter().map(|e| e.get_ids().to_vec()).collect();
    if let Some(p) = &cache {
        let mut bytes = Vec::new();
        for d in &out {
            bytes.extend_from_slice(&(d.len() as u32).to_le_bytes());
            for &id in d {
                bytes.extend_from_slice(&id.to_le_bytes());
            }
        }
        crate::session::atomic_write(p, &bytes)?;
    }
    Ok(out)
}

fn decode_cache(bytes: &[u8], n_docs: usize) -> Option<Vec<Vec<u32>>> {
    let words: Vec<u32> =
        bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut out = Vec::with_capacity(n_docs);
    let mut i = 0;
    while i < words.len() {
        let n = words[i] as usize;
        out.push(words.get(i + 1..i + 1 + n)?.to_vec());
        i += 1 + n;
    }
    (out.len() == n_docs).then_some(out)
}

/// Block-aligned greedy packing (see the module docs).
pub fn pack(docs: &[Vec<u32>], seq_len: usize, block: usize, eos: u32) -> Vec<Vec<u32>> {
    pack_with_prompts(docs, &[], seq_len, block, eos).0
}

/// [`pack`], also marking each sequence's prompt positions: the first `prompt_lens[i]` tokens
/// of document `i` (missing lengths count as 0).
pub fn pack_with_prompts(
    docs: &[Vec<u32>],
    prompt_lens: &[usize],
    seq_len: usize,
    block: usize,
    eos: u32,
) -> (Vec<Vec<u32>>, Vec<Vec<bool>>) {
    assert!(block > 0 && seq_len.is_multiple_of(block), "seq_len must be a multiple of block_length");
    let mut seqs = Vec::new();
    let mut masks = Vec::new();
    let mut cur: Vec<u32> = Vec::with_capacity(seq_len);
    let mut cur_m: Vec<bool> = Vec::with_capacity(seq_len);
    for (di, d) in docs.iter().enumerate() {
        let mut piece = d.clone();
        piece.push(eos);
        let padded = piece.len().div_ceil(block) * block;
        piece.resize(padded, eos);
        let pl = prompt_lens.get(di).copied().unwrap_or(0);
        let pm: Vec<bool> = (0..padded).map(|i| i < pl).collect();
        for (chunk, mchunk) in piece.chunks(seq_len).zip(pm.chunks(seq_len)) {
            if cur.len() + chunk.len() > seq_len {
                cur.resize(seq_len, eos);
                cur_m.resize(seq_len, false);
                seqs.push(std::mem::replace(&mut cur, Vec::with_capacity(seq_len)));
                masks.push(std::mem::replace(&mut cur_m, Vec::with_capacity(seq_len)));
            }
            cur.extend_from_slice(chunk);
            cur_m.extend_from_slice(mchunk);
        }
    }
    if !cur.is_empty() {
        cur.resize(seq_len, eos);
        cur_m.resize(seq_len, false);
        seqs.push(cur);
        masks.push(cur_m);
    }
    (seqs, masks)
}

/// Prompt length of a chat document: everything up to and including the last `tag` token
/// (the assistant role tag); 0 when the tag does not occur.
pub fn prompt_len(doc: &[u32], tag: Option<u32>) -> usize {
    tag.and_then(|t| doc.iter().rposition(|&x| x == t)).map_or(0, |i| i + 1)
}

/// Packed sequences read in a seeded order that is reshuffled every epoch. The cursor counts
/// sequences read since the start of the run.
pub struct Loader {
    pub seqs: Vec<Vec<u32>>,
    /// Per sequence, which positions are prompt (empty when unknown).
    pub prompts: Vec<Vec<bool>>,
    seed: u64,
    epoch: Option<(u64, Vec<usize>)>,
}

impl Loader {
    pub fn new(seqs: Vec<Vec<u32>>, seed: u64) -> Result<Self> {
        if seqs.is_empty() {
            bail!("the corpus packs into no sequence");
        }
        Ok(Self { seqs, prompts: Vec::new(), seed, epoch: None })
    }

    pub fn seq_len(&self) -> usize {
        self.seqs[0].len()
    }

    fn order(&mut self, epoch: u64) -> &[usize] {
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut idx: Vec<usize> = (0..self.seqs.len()).collect();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed_da7a);
            rng.set_stream(epoch);
            idx.shuffle(&mut rng);
            self.epoch = Some((epoch, idx));
        }
        &self.epoch.as_ref().expect("set above").1
    }

    /// Index of the sequence at cursor position `c` (epoch `c / len`, shuffled order).
    fn seq_at(&mut self, c: u64) -> usize {
        let len = self.seqs.len() as u64;
        self.order(c / len)[(c % len) as usize]
    }

    /// Marks prompt positions (as [`pack_with_prompts`] returns them).
    pub fn with_prompts(mut self, prompts: Vec<Vec<bool>>) -> Self {
        if prompts.len() == self.seqs.len() {
            self.prompts = prompts;
        }
        self
    }

    /// Prompt masks of the sequences [`Loader::batch`] returns for the same arguments.
    pub fn prompt_batch(&mut self, cursor: u64, n: usize) -> Vec<Vec<bool>> {
        if self.prompts.is_empty() {
            return vec![vec![false; self.seq_len()]; n];
        }
        (0..n as u64)
            .map(|i| {
                let j = self.seq_at(cursor + i);
                self.prompts[j].clone()
            })
            .collect()
    }

    /// `n` sequences starting at `cursor`; the caller advances its cursor by `n`.
    pub fn batch(&mut self, cursor: u64, n: usize) -> Vec<Vec<u32>> {
        (0..n as u64)
            .map(|i| {
                let j = self.seq_at(cursor + i);
                self.seqs[j].clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_aligns_documents_to_blocks() {
        let docs = vec![vec![1, 2, 3], vec![4, 5, 6, 7, 8], vec![9]];
        let seqs = pack(&docs, 8, 4, 0);
        assert_eq!(
            seqs,
            vec![vec![1, 2, 3, 0, 0, 0, 0, 0], vec![4, 5, 6, 7, 8, 0, 0, 0], vec![9, 0, 0, 0, 0, 0, 0, 0]]
        );
        // A document longer than a sequence is split across sequences.
        assert_eq!(pack(&[vec![1; 9]], 8, 4, 0), vec![vec![1; 8], vec![1, 0, 0, 0, 0, 0, 0, 0]]);
    }

    #[test]
    fn prompt_positions_follow_their_documents() {
        let docs = vec![vec![5, 6, 7], vec![8, 9]];
        let (seqs, masks) = pack_with_prompts(&docs, &[prompt_len(&docs[0], Some(6)), 1], 8, 4, 0);
        assert_eq!(seqs, vec![vec![5, 6, 7, 0, 8, 9, 0, 0]]);
        assert_eq!(masks, vec![vec![true, true, false, false, true, false, false, false]]);
        assert_eq!(prompt_len(&[1, 2], None), 0);
    }

    #[test]
    fn loader_batches_depend_only_on_cursor() {
        let seqs: Vec<Vec<u32>> = (0..5).map(|i| vec![i; 4]).collect();
        let mut a = Loader::new(seqs.clone(), 7).unwrap();
        let mut b = Loader::new(seqs, 7).unwrap();
        let x = a.batch(3, 4);
        b.batch(11, 2);
        assert_eq!(b.batch(3, 4), x);
    }
}
