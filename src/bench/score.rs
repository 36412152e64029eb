//! Answer extraction and scoring, after OpenCompass's post-processors (see `docs/bench.md`):
//! the last `\boxed{}` or the last number for math, the value after a fixed answer marker for
//! the embedded world's arithmetic, the first option letter for multiple choice, and
//! normalised exact match / token F1 over aliases for short factual answers.

use serde::{Deserialize, Serialize};

/// The world's answer marker: worked steps, then `Answer: 85`.
pub const ANSWER_MARKER: &str = "Answer:";

/// How an item's generated text is turned into a prediction and scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Scorer {
    /// Numeric answer: the first number after the last `marker` (none without a marker), as
    /// the world's arithmetic is scored.
    MarkerNumber { marker: String },
    /// Numeric answer in the last `\boxed{}`; the last number when there is none (OpenCompass
    /// `math_postprocess_v2` then `gsm8k_postprocess`).
    BoxedNumber,
    /// Short text answer: first line, after `answer is` / the marker, normalised; exact match
    /// against any alias, with token F1 (OpenCompass TriviaQA evaluator).
    Text,
    /// One of `options` (letters), as OpenCompass `first_option_postprocess`.
    Choice { options: String },
    /// The generated text starts with the answer (items given as ids, for models without a
    /// tokenizer, whose text reads `<12><7>`).
    Prefix,
}

/// Where a prediction came from in the generated text.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Normalised prediction (numbers without thousands separators).
    pub value: String,
    /// Char-boundary byte range of the prediction in the text.
    pub start: usize,
    pub end: usize,
}

/// The score of one generated text.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub correct: bool,
    pub predicted: Option<String>,
    /// Token F1 (text answers only).
    pub f1: Option<f64>,
}

impl Scorer {
    pub fn extract(&self, text: &str) -> Option<Extracted> {
        match self {
            Scorer::MarkerNumber { marker } => extract_after_marker(text, marker),
            Scorer::BoxedNumber => extract_boxed(text).or_else(|| last_number(text)),
            Scorer::Text => Some(extract_text(text)),
            Scorer::Choice { options } => extract_option(text, options),
            Scorer::Prefix => {
                let t = text.trim_start();
                Some(Extracted {
                    value: t.trim_end().to_string(),
                    start: text.len() - t.len(),
                    end: text.trim_end().len(),
                })
            }
        }
    }

    /// Scores `text` against the gold answer and its aliases.
    pub fn score(&self, text: &str, gold: &str, aliases: &[String]) -> Score {
        let ex = self.extract(text);
        match self {
            Scorer::MarkerNumber { .. } | Scorer::BoxedNumber => {
                let correct = ex.as_ref().is_some_and(|e| {
                    std::iter::once(gold)
                        .chain(aliases.iter().map(String::as_str))
                        .any(|g| numbers_equal(&e.value, g))
                });
                Score { correct, predicted: ex.map(|e| e.value), f1: None }
            }
            Scorer::Text => {
                let pred = ex.map(|e| e.value).unwrap_or_default();
                let golds: Vec<&str> =
                    std::iter::once(gold).chain(aliases.iter().map(String::as_str)).collect();
                let correct = !pred.is_empty() && golds.iter().any(|g| normalize_answer(g) == pred);
                let f1 = golds.iter().map(|g| token_f1(&pred, &normalize_answer(g))).fold(0.0, f64::max);
                Score { correct, predicted: Some(pred), f1: Some(f1) }
            }
            Scorer::Choice { .. } => {
                let correct = ex.as_ref().is_some_and(|e| e.value.eq_ignore_ascii_case(gold.trim()));
                Score { correct, predicted: ex.map(|e| e.value), f1: None }
            }
            Scorer::Prefix => {
                let t = text.trim();
                let correct = std::iter::once(gold)
                    .chain(aliases.iter().map(String::as_str))
                    .any(|g| !g.trim().is_empty() && t.starts_with(g.trim()));
                Score { correct, predicted: Some(t.to_string()), f1: None }
            }
        }
    }

    /// Occurrences of this scorer's answer marker in `text` (`\boxed{` for boxed answers).
    pub fn marker_count(&self, text: &str) -> Option<usize> {
        match self {
            Scorer::MarkerNumber { marker } => Some(find_all_ci(text, marker).len()),
            Scorer::BoxedNumber => Some(text.matches("\\boxed{").count()),
            _ => None,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Scorer::MarkerNumber { .. } | Scorer::BoxedNumber)
    }
}

/// A number found in text.
#[derive(Debug, Clone, PartialEq)]
pub struct NumSpan {
    /// Without thousands separators, e.g. `-1234.5`.
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// Every number in `text`: an optional `-`, digits with optional `,ddd` groups, an optional
/// decimal part.
pub fn numbers(text: &str) -> Vec<NumSpan> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut start = i;
        if start > 0 && b[start - 1] == b'-' && (start < 2 || !b[start - 2].is_ascii_alphanumeric()) {
            start -= 1;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        // Thousands groups: `,` followed by exactly three digits.
        while j + 3 < b.len()
            && b[j] == b','
            && b[j + 1..j + 4].iter().all(u8::is_ascii_digit)
            && (j + 4 == b.len() || !b[j + 4].is_ascii_digit())
        {
            j += 4;
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        let value = text[start..j].replace(',', "");
        out.push(NumSpan { value, start, end: j });
        i = j;
    }
    out
}

pub fn last_number(text: &str) -> Option<Extracted> {
    numbers(text).pop().map(|n| Extracted { value: n.value, start: n.start, end: n.end })
}

/// Byte offsets of every case-insensitive occurrence of `needle` (ASCII case folding).
pub fn find_all_ci(text: &str, needle: &str) -> Vec<usize> {
    if needle.is_empty() {
        return Vec::new();
    }
    let hay = text.to_ascii_lowercase();
    let n = needle.to_ascii_lowercase();
    hay.match_indices(&n).map(|(i, _)| i).collect()
}

/// The first number after the last `marker`, if one follows it.
pub fn extract_after_marker(text: &str, marker: &str) -> Option<Extracted> {
    let at = *find_all_ci(text, marker).last()?;
    let from = at + marker.len();
    let n = numbers(&text[from..]).into_iter().next()?;
    Some(Extracted { value: n.value, start: from + n.start, end: from + n.end })
}

/// The content of the last `\boxed{…}` (braces balanced), normalised: `$`, spaces, `\!`,
/// `\%`, `%`, a trailing `.` and `\text{…}` wrappers removed; a single number inside wins.
pub fn extract_boxed(text: &str) -> Option<Extracted> {
    let at = text.rfind("\\boxed{")?;
    let open = at + "\\boxed{".len();
    let mut depth = 1usize;
    let mut close = None;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let inner = &text[open..close];
    let mut v = inner.replace(['$', ' '], "").replace("\\!", "").replace("\\%", "").replace('%', "");
    if let Some(t) = v.strip_prefix("\\text{").and_then(|t| t.strip_suffix('}')) {
        v = t.to_string();
    }
    v = v.trim().trim_end_matches('.').to_string();
    let nums = numbers(&v);
    if nums.len() == 1 && !v.contains('/') && !v.contains("frac") {
        v = nums[0].value.clone();
    }
    if v.is_empty() {
        return None;
    }
    Some(Extracted { value: v, start: open, end: close })
}

/// TriviaQA-style text prediction: the first line, after the last `answer is` or answer
/// marker, cut at the first `.`/`,`, normalised.
pub fn extract_text(text: &str) -> Extracted {
    let first = text.trim().lines().next().unwrap_or("");
    let lower = first.to_lowercase();
    let mut rest = lower.as_str();
    if let Some(i) = rest.rfind("answer is") {
        rest = &rest[i + "answer is".len()..];
    } else if let Some(i) = rest.rfind(&ANSWER_MARKER.to_lowercase()) {
        rest = &rest[i + ANSWER_MARKER.len()..];
    }
    let cut = rest.find(['.', ',', '\n']).map(|i| &rest[..i]).unwrap_or(rest);
    Extracted { value: normalize_answer(cut), start: 0, end: first.len() }
}

/// SQuAD/OpenCompass normalisation: lower case, punctuation removed, articles removed,
/// whitespace collapsed.
pub fn normalize_answer(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String =
        lower.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '_').collect();
    no_punct.split_whitespace().filter(|w| !matches!(*w, "a" | "an" | "the")).collect::<Vec<_>>().join(" ")
}

/// Token-overlap F1 of two normalised strings.
pub fn token_f1(pred: &str, gold: &str) -> f64 {
    let p: Vec<&str> = pred.split_whitespace().collect();
    let g: Vec<&str> = gold.split_whitespace().collect();
    if p.is_empty() || g.is_empty() {
        return if p.is_empty() && g.is_empty() { 1.0 } else { 0.0 };
    }
    let mut remaining = g.clone();
    let mut common = 0usize;
    for t in &p {
        if let Some(i) = remaining.iter().position(|x| x == t) {
            remaining.swap_remove(i);
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / p.len() as f64;
    let recall = common as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// OpenCompass `first_option_postprocess`, simplified: `answer is (X)` / `answer: X` /
/// `答案是X` first, then a reply that starts with the letter, then the first standalone letter.
pub fn extract_option(text: &str, options: &str) -> Option<Extracted> {
    let is_opt = |c: char| options.contains(c);
    let lower = text.to_lowercase();
    for pat in ["answer is", "answer:", "答案是", "答案为", "答案："] {
        if let Some(i) = lower.find(pat) {
            // `to_lowercase` keeps byte offsets for ASCII patterns and CJK text.
            let from = i + pat.len();
            if from <= text.len() && text.is_char_boundary(from) {
                let rest = &text[from..];
                let skip = rest.len() - rest.trim_start_matches([' ', '(', ':', '*', '：']).len();
                if let Some(c) = rest[skip..].chars().next()
                    && is_opt(c)
                {
                    return Some(Extracted {
                        value: c.to_string(),
                        start: from + skip,
                        end: from + skip + c.len_utf8(),
                    });
                }
            }
        }
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        if !is_opt(c) {
            continue;
        }
        let prev_ok = k == 0 || !chars[k - 1].1.is_ascii_alphanumeric();
        let next_ok = k + 1 == chars.len() || !chars[k + 1].1.is_ascii_alphanumeric();
        if prev_ok && next_ok {
            return Some(Extracted { value: c.to_string(), start: i, end: i + c.len_utf8() });
        }
    }
    None
}

/// Parses `12`, `-3.5`, `1,234`, `3/4`, `\frac{3}{4}`, `50%`.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim().trim_end_matches('.').replace([',', '$', ' '], "");
    let t = t.trim_end_matches('%').trim_end_matches("\\%");
    if let Some(rest) = t.strip_prefix("\\frac{").or_else(|| t.strip_prefix("\\dfrac{")) {
        let (a, b) = rest.split_once("}{")?;
        let b = b.strip_suffix('}')?;
        return Some(a.parse::<f64>().ok()? / b.parse::<f64>().ok()?);
    }
    if let Some((a, b)) = t.split_once('/') {
        return Some(a.parse::<f64>().ok()? / b.parse::<f64>().ok()?);
    }
    t.parse::<f64>().ok()
}

/// Numeric equality with a relative tolerance of 1e-6; falls back to string equality.
pub fn numbers_equal(pred: &str, gold: &str) -> bool {
    match (parse_number(pred), parse_number(gold)) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        _ => pred.trim() == gold.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_handles_signs_groups_and_decimals() {
        let v: Vec<String> = numbers("x -3 a-1 1,234 and 5.25, 7,").into_iter().map(|n| n.value).collect();
        assert_eq!(v, ["-3", "1", "1234", "5.25", "7"]);
    }

    #[test]
    fn marker_takes_the_number_after_the_last_marker() {
        let s = Scorer::MarkerNumber { marker: ANSWER_MARKER.into() };
        let t = "3 + 4 = 7. 7 * 12 = 84. answer: 83 Answer: 85";
        assert_eq!(s.extract(t).unwrap().value, "85");
        assert!(s.score(t, "85", &[]).correct);
        assert_eq!(s.extract("so 12 then 13"), None);
    }

    #[test]
    fn boxed_beats_last_number() {
        let s = Scorer::BoxedNumber;
        assert_eq!(s.extract("so \\boxed{1,024} and then 7").unwrap().value, "1024");
        assert_eq!(s.extract("\\boxed{\\frac{3}{4}}").unwrap().value, "\\frac{3}{4}");
        assert!(s.score("\\boxed{\\frac{3}{4}}", "0.75", &[]).correct);
        assert!(numbers_equal("0.75", "3/4"));
        assert_eq!(s.extract("the total is 18 dollars").unwrap().value, "18");
        assert!(s.score("\\boxed{18.0}", "18", &[]).correct);
    }

    #[test]
    fn text_answers_use_normalised_exact_match_and_f1() {
        let s = Scorer::Text;
        let sc = s.score("The answer is The Beatles.\nmore", "Beatles", &[]);
        assert!(sc.correct);
        assert_eq!(sc.f1, Some(1.0));
        let sc = s.score("Paris France", "Paris", &["City of Light".into()]);
        assert!(!sc.correct);
        assert!((sc.f1.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn option_letters_follow_first_option_postprocess() {
        assert_eq!(extract_option("The answer is (B).", "AB").unwrap().value, "B");
        assert_eq!(extract_option("A. use a spoon", "AB").unwrap().value, "A");
        assert_eq!(extract_option("Both work but B is safer", "AB").unwrap().value, "B");
        assert!(extract_option("neither", "AB").is_none());
    }
}
