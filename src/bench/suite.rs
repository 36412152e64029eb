//! Benchmark suites: the embedded world's (`assets/benchmarks/<suite>.jsonl`) and local files of
//! public benchmarks in their usual formats (GSM8K, CMATH, TriviaQA, PIQA, AIME), each turned
//! into items with an OpenCompass-style prompt and answer scorer. Templates: `docs/bench.md`.
//!
//! A malformed line is skipped with a message naming the file and line; the rest still load.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::score::{ANSWER_MARKER, Scorer};

/// File formats `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detect from the file name, then from the first line's fields.
    #[default]
    Auto,
    /// draftscope's own items: `id, task, prompt, answer, aliases` (+ optional `prompt_ids`).
    World,
    /// `question`, `answer` ending in `#### n`.
    Gsm8k,
    /// `question`, `golden`.
    Cmath,
    /// `question`, `answer` {`value`, `aliases`} (or a list / `answers`).
    Triviaqa,
    /// `goal`, `sol1`, `sol2`, `label` (or a `<name>-labels.lst` file beside it).
    Piqa,
    /// `problem`/`question`, `answer` (a number, or a solution with `\boxed{}`).
    Aime,
}

impl Format {
    pub const PUBLIC: [Format; 5] =
        [Format::Gsm8k, Format::Cmath, Format::Triviaqa, Format::Piqa, Format::Aime];

    pub fn label(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::World => "world",
            Format::Gsm8k => "gsm8k",
            Format::Cmath => "cmath",
            Format::Triviaqa => "triviaqa",
            Format::Piqa => "piqa",
            Format::Aime => "aime",
        }
    }

    /// A public format named by the start of a file or suite name (`gsm8k_test`, `aime2024`).
    pub fn from_name(name: &str) -> Option<Format> {
        let n = name.to_ascii_lowercase();
        Format::PUBLIC.into_iter().find(|f| n.starts_with(f.label()))
    }

    /// Guesses the format from one parsed line.
    pub fn detect(v: &Value) -> Option<Format> {
        let has = |k: &str| v.get(k).is_some();
        if has("goal") && has("sol1") {
            Some(Format::Piqa)
        } else if has("golden") {
            Some(Format::Cmath)
        } else if has("task") && has("prompt") && has("answer") {
            Some(Format::World)
        } else if has("question")
            && v.get("answer").and_then(Value::as_str).is_some_and(|a| a.contains("####"))
        {
            Some(Format::Gsm8k)
        } else if has("question")
            && (v.get("answer").is_some_and(|a| a.is_object() || a.is_array()) || has("answers"))
        {
            Some(Format::Triviaqa)
        } else if has("problem") || has("Problem") || (has("question") && has("answer")) {
            Some(Format::Aime)
        } else {
            None
        }
    }
}

/// One benchmark item, ready to prompt and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    /// 1-based line in the source file.
    pub line: usize,
    /// The user message (the chat template is applied at decode time).
    pub prompt: String,
    /// Prompt given as ids (models without a tokenizer); used as is.
    pub prompt_ids: Option<Vec<u32>>,
    pub answer: String,
    pub aliases: Vec<String>,
    pub scorer: Scorer,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedLine {
    pub line: usize,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
    pub items: Vec<Item>,
    pub skipped: Vec<SkippedLine>,
}

/// The world's benchmark folder: `assets/benchmarks` (`DRAFTSCOPE_ASSETS` overrides `assets`).
pub fn assets_benchmarks_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DRAFTSCOPE_ASSETS") {
        return PathBuf::from(dir).join("benchmarks");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join("benchmarks")
}

/// Folders searched for `<name>.jsonl`, in order: `extra`, `<data dir>/benchmarks`, the assets.
pub fn search_dirs(extra: &[PathBuf], data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = extra.to_vec();
    dirs.push(data_dir.join("benchmarks"));
    dirs.push(assets_benchmarks_dir());
    dirs
}

/// Suite names found in `dirs` (file stems of `*.jsonl`), sorted, without duplicates.
pub fn known_suites(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            (p.extension().and_then(|x| x.to_str()) == Some("jsonl"))
                .then(|| p.file_stem().and_then(|s| s.to_str()).map(String::from))
                .flatten()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Resolves `--suite` entries: a path to a file, or a name looked up in `dirs`.
pub fn resolve(spec: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    if spec.contains('/') || spec.contains('\\') || spec.ends_with(".jsonl") || spec.ends_with(".json") {
        bail!("--suite {spec}: no such file");
    }
    for d in dirs {
        let f = d.join(format!("{spec}.jsonl"));
        if f.is_file() {
            return Ok(f);
        }
    }
    let known = known_suites(dirs);
    let known = if known.is_empty() { "none found".to_string() } else { known.join(", ") };
    bail!(
        "unknown suite `{spec}`; known suites: {known} (searched {}); or give a .jsonl path with --format {}",
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        ["auto", "world", "gsm8k", "cmath", "triviaqa", "piqa", "aime"].join("|")
    )
}

/// Loads a suite file. Malformed lines are kept in `skipped` with the reason.
pub fn load(path: &Path, format: Format) -> Result<Suite> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read suite {}", path.display()))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("suite").to_string();
    let mut format = format;
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut piqa_labels: Option<Vec<String>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                skipped.push(SkippedLine { line, error: format!("not valid JSON ({e})") });
                continue;
            }
        };
        if format == Format::Auto {
            match Format::from_name(&name).or_else(|| Format::detect(&v)) {
                Some(f) => format = f,
                None => {
                    skipped.push(SkippedLine {
                        line,
                        error: "cannot tell the format from this line's fields (give --format)".into(),
                    });
                    continue;
                }
            }
        }
        if format == Format::Piqa && piqa_labels.is_none() {
            piqa_labels = Some(read_piqa_labels(path));
        }
        match item_from(&v, format, line, piqa_labels.as_deref()) {
            Ok(it) => items.push(it),
            Err(e) => skipped.push(SkippedLine { line, error: format!("{e:#}") }),
        }
    }
    Ok(Suite { name, path: path.to_path_buf(), format, items, skipped })
}

/// `<stem>-labels.lst` beside a PIQA file (the original release keeps labels apart).
fn read_piqa_labels(path: &Path) -> Vec<String> {
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { return Vec::new() };
    let f = path.with_file_name(format!("{stem}-labels.lst"));
    std::fs::read_to_string(f).map(|t| t.lines().map(|l| l.trim().to_string()).collect()).unwrap_or_default()
}

fn str_field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| v.get(*k)).filter(|x| !x.is_null())
}

/// A string or number field as text.
fn text_field(v: &Value, keys: &[&str]) -> Result<String> {
    match str_field(v, keys) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => bail!("field `{}` should be a string, got {other}", keys[0]),
        None => bail!("field `{}` is missing", keys.join("`/`")),
    }
}

fn id_or(v: &Value, keys: &[&str], fallback: String) -> String {
    text_field(v, keys).unwrap_or(fallback)
}

/// OpenCompass's 0-shot math instruction (`gsm8k_0shot_v2`, `aime2024_gen`).
pub const MATH_SUFFIX: &str = "\nPlease reason step by step, and put your final answer within \\boxed{}.";
/// The same instruction in Chinese, for CMATH.
pub const MATH_SUFFIX_ZH: &str = "\n请逐步推理，并把最终答案放在 \\boxed{} 中。";
/// OpenCompass `triviaqa_gen` (0-shot) instruction.
pub const TRIVIAQA_PREFIX: &str = "Answer these questions, your answer should be as simple as possible, start your answer with the prompt 'The answer is '.\nQ: ";

/// `line` is 1-based; PIQA's labels file has one label per data line.
fn item_from(v: &Value, format: Format, line: usize, piqa_labels: Option<&[String]>) -> Result<Item> {
    if !v.is_object() {
        bail!("expected a JSON object");
    }
    let fallback_id = format!("{}-{:04}", format.label(), line);
    let item = match format {
        Format::World | Format::Auto => {
            let task = text_field(v, &["task"]).unwrap_or_default();
            let prompt_ids = match v.get("prompt_ids") {
                None | Some(Value::Null) => None,
                Some(x) => Some(serde_json::from_value::<Vec<u32>>(x.clone()).map_err(|e| {
                    anyhow::anyhow!("field `prompt_ids` should be a list of token ids ({e})")
                })?),
            };
            let prompt = if prompt_ids.is_some() {
                text_field(v, &["prompt"]).unwrap_or_default()
            } else {
                text_field(v, &["prompt"])?
            };
            let answer = text_field(v, &["answer"])?;
            let aliases = match v.get("aliases") {
                None | Some(Value::Null) => Vec::new(),
                Some(x) => serde_json::from_value::<Vec<String>>(x.clone())
                    .map_err(|e| anyhow::anyhow!("field `aliases` should be a list of strings ({e})"))?,
            };
            Item {
                id: id_or(v, &["id"], fallback_id),
                line,
                prompt,
                prompt_ids,
                scorer: world_scorer(&task, &answer),
                answer,
                aliases,
            }
        }
        Format::Gsm8k => {
            let q = text_field(v, &["question"])?;
            let a = text_field(v, &["answer"])?;
            let Some((_, gold)) = a.rsplit_once("####") else {
                bail!("field `answer` has no `#### n` final answer")
            };
            Item {
                id: id_or(v, &["id"], fallback_id),
                line,
                prompt: format!("{q}{MATH_SUFFIX}"),
                prompt_ids: None,
                answer: gold.trim().replace(',', ""),
                aliases: Vec::new(),
                scorer: Scorer::BoxedNumber,
            }
        }
        Format::Cmath => {
            let q = text_field(v, &["question"])?;
            Item {
                id: id_or(v, &["id"], fallback_id),
                line,
                prompt: format!("{q}{MATH_SUFFIX_ZH}"),
                prompt_ids: None,
                answer: text_field(v, &["golden"])?.trim().to_string(),
                aliases: Vec::new(),
                scorer: Scorer::BoxedNumber,
            }
        }
        Format::Triviaqa => {
            let q = text_field(v, &["question", "Question"])?;
            let (answer, aliases) = trivia_answers(v)?;
            let q = q.trim().trim_end_matches('?');
            Item {
                id: id_or(v, &["question_id", "id"], fallback_id),
                line,
                prompt: format!("{TRIVIAQA_PREFIX}{q}?"),
                prompt_ids: None,
                answer,
                aliases,
                scorer: Scorer::Text,
            }
        }
        Format::Piqa => {
            let goal = text_field(v, &["goal"])?;
            let sol1 = text_field(v, &["sol1"])?;
            let sol2 = text_field(v, &["sol2"])?;
            let label = match text_field(v, &["label"]) {
                Ok(l) => l,
                Err(_) => match piqa_labels.and_then(|l| l.get(line - 1)) {
                    Some(l) => l.clone(),
                    None => bail!("field `label` is missing (and no -labels.lst file beside the suite)"),
                },
            };
            let answer = match label.trim() {
                "0" | "A" => "A",
                "1" | "B" => "B",
                other => bail!("field `label` should be 0 or 1, got {other}"),
            };
            Item {
                id: id_or(v, &["id"], fallback_id),
                line,
                prompt: format!("{goal}\nA. {sol1}\nB. {sol2}\nAnswer:"),
                prompt_ids: None,
                answer: answer.into(),
                aliases: Vec::new(),
                scorer: Scorer::Choice { options: "AB".into() },
            }
        }
        Format::Aime => {
            let q = text_field(v, &["problem", "question", "Problem", "Question"])?;
            let a = text_field(v, &["answer", "Answer", "solution"])?;
            let gold =
                super::score::extract_boxed(&a).map(|e| e.value).unwrap_or_else(|| a.trim().to_string());
            let gold = match gold.parse::<i64>() {
                Ok(n) => n.to_string(),
                Err(_) => gold,
            };
            Item {
                id: id_or(v, &["id", "ID"], fallback_id),
                line,
                prompt: format!("{}{MATH_SUFFIX}", q.trim()),
                prompt_ids: None,
                answer: gold,
                aliases: Vec::new(),
                scorer: Scorer::BoxedNumber,
            }
        }
    };
    if item.answer.trim().is_empty() {
        bail!("the gold answer is empty");
    }
    Ok(item)
}

/// The world's scorer by task: `arith` → number after `Answer:`; `facts` → normalised text;
/// `prefix` → the output starts with the answer (id-only models); otherwise by the answer's
/// shape.
pub fn world_scorer(task: &str, answer: &str) -> Scorer {
    match task {
        "arith" => Scorer::MarkerNumber { marker: ANSWER_MARKER.into() },
        "facts" => Scorer::Text,
        "prefix" => Scorer::Prefix,
        _ if super::score::parse_number(answer).is_some() => {
            Scorer::MarkerNumber { marker: ANSWER_MARKER.into() }
        }
        _ => Scorer::Text,
    }
}

/// TriviaQA answers: `{value, aliases, normalized_aliases}`, a list, a string, or `answers`.
fn trivia_answers(v: &Value) -> Result<(String, Vec<String>)> {
    let strings = |x: &Value| -> Vec<String> {
        x.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let a = str_field(v, &["answer", "answers", "Answer"]).context("field `answer` is missing")?;
    let (value, mut aliases) = match a {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Array(_) => {
            let all = strings(a);
            let Some(first) = all.first().cloned() else { bail!("field `answer` is an empty list") };
            (first, all[1..].to_vec())
        }
        Value::Object(o) => {
            let value = o.get("value").and_then(Value::as_str).map(String::from);
            let mut aliases = o.get("aliases").map(strings).unwrap_or_default();
            aliases.extend(o.get("normalized_aliases").map(strings).unwrap_or_default());
            let value =
                value.or_else(|| aliases.first().cloned()).context("field `answer` has no `value`")?;
            (value, aliases)
        }
        other => bail!("field `answer` should be a string, a list or an object, got {other}"),
    };
    aliases.retain(|x| x != &value);
    aliases.dedup();
    Ok((value, aliases))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn gsm8k_takes_the_number_after_hashes_and_asks_for_boxed() {
        let d = tempfile::tempdir().unwrap();
        let p =
            write(d.path(), "gsm8k_test.jsonl", "{\"question\":\"Q?\",\"answer\":\"a<<1>>\\n#### 1,024\"}\n");
        let s = load(&p, Format::Auto).unwrap();
        assert_eq!(s.format, Format::Gsm8k);
        assert_eq!(s.items[0].answer, "1024");
        assert_eq!(s.items[0].prompt, format!("Q?{MATH_SUFFIX}"));
        assert_eq!(s.items[0].id, "gsm8k-0001");
    }

    #[test]
    fn malformed_lines_are_skipped_with_their_line_numbers() {
        let d = tempfile::tempdir().unwrap();
        let text = "{\"id\":\"a\",\"task\":\"arith\",\"prompt\":\"p\",\"answer\":\"5\",\"aliases\":[]}\n\
                    {not json\n\n\
                    {\"id\":\"c\",\"task\":\"facts\",\"prompt\":\"p\"}\n\
                    {\"id\":\"d\",\"task\":\"facts\",\"prompt\":\"p\",\"answer\":\"Ilsa\",\"aliases\":[\"ilsa\"]}\n";
        let p = write(d.path(), "mine.jsonl", text);
        let s = load(&p, Format::Auto).unwrap();
        assert_eq!(s.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a", "d"]);
        assert_eq!(s.skipped.iter().map(|k| k.line).collect::<Vec<_>>(), [2, 4]);
        assert!(s.skipped[1].error.contains("`answer` is missing"));
        assert_eq!(s.items[0].scorer, Scorer::MarkerNumber { marker: ANSWER_MARKER.into() });
        assert_eq!(s.items[1].scorer, Scorer::Text);
    }

    #[test]
    fn triviaqa_piqa_cmath_aime_lines_load() {
        let d = tempfile::tempdir().unwrap();
        let t = write(
            d.path(),
            "tqa.jsonl",
            "{\"question\":\"Who?\",\"question_id\":\"tc_1\",\"answer\":{\"value\":\"The Beatles\",\"aliases\":[\"Beatles\",\"The Beatles\"]}}\n",
        );
        let s = load(&t, Format::Auto).unwrap();
        assert_eq!(s.format, Format::Triviaqa);
        assert_eq!((s.items[0].id.as_str(), s.items[0].answer.as_str()), ("tc_1", "The Beatles"));
        assert_eq!(s.items[0].aliases, ["Beatles"]);

        let p = write(d.path(), "valid.jsonl", "{\"goal\":\"g\",\"sol1\":\"x\",\"sol2\":\"y\"}\n");
        write(d.path(), "valid-labels.lst", "1\n");
        let s = load(&p, Format::Piqa).unwrap();
        assert_eq!(s.items[0].answer, "B");
        assert_eq!(s.items[0].prompt, "g\nA. x\nB. y\nAnswer:");

        let c = write(d.path(), "c.jsonl", "{\"id\":\"1\",\"question\":\"几个?\",\"golden\":\"12\"}\n");
        let s = load(&c, Format::Auto).unwrap();
        assert_eq!((s.format, s.items[0].answer.as_str()), (Format::Cmath, "12"));

        let a =
            write(d.path(), "aime2024.jsonl", "{\"id\":7,\"problem\":\"P\",\"answer\":\"\\\\boxed{033}\"}\n");
        let s = load(&a, Format::Auto).unwrap();
        assert_eq!((s.format, s.items[0].id.as_str(), s.items[0].answer.as_str()), (Format::Aime, "7", "33"));
    }

    #[test]
    fn unknown_suite_lists_the_known_ones() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "arith.jsonl", "");
        write(d.path(), "facts.jsonl", "");
        let e = resolve("nope", &[d.path().to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("unknown suite `nope`; known suites: arith, facts"), "{e}");
        assert_eq!(resolve("facts", &[d.path().to_path_buf()]).unwrap(), d.path().join("facts.jsonl"));
    }
}
