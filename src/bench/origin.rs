//! Where a failed arithmetic answer first goes wrong, and what wrote that token.
//!
//! The final-digit and over-correction counts see only the answer. A worked answer can go
//! wrong anywhere: a miscopied operand, a column step, the assembled value, the answer line.
//! For a failed world arithmetic item this rebuilds the gold worked solution (for the equation
//! the model wrote, when it restated the right problem, so `38+47` for `47+38` is not an
//! error), finds the first character where the output departs from it, and replays the trace
//! to say which step last wrote the token there: a T2T edit or an M2T commit (above the
//! threshold, or the top-1 fallback), and whether a token that agreed with the gold solution
//! stood there before (an edit that destroyed a right token). Reads traces only: no model.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decode::trace::{CommitKind, Trace};
use crate::world::arith::{self, ANSWER_MARKER, Op};
use crate::world::{ASSISTANT_TAG, HUMAN_TAG};

/// The part of the worked solution the first wrong character falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// `47+38`: the operands restated from the question.
    Equation,
    /// `7+8=15, 4+3+1=8`.
    ColumnStep,
    /// `so 85`.
    WorkedValue,
    /// `. Answer: 85`.
    AnswerLine,
}

impl Place {
    pub fn label(self) -> &'static str {
        match self {
            Place::Equation => "equation",
            Place::ColumnStep => "column step",
            Place::WorkedValue => "worked value",
            Place::AnswerLine => "answer line",
        }
    }
}

/// What last wrote the first wrong token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Writer {
    /// A T2T edit.
    Edit,
    /// An M2T commit whose confidence cleared the threshold.
    Commit,
    /// An M2T commit by the top-1 fallback (no mask cleared the threshold).
    Fallback,
    /// No token: the output ends before the gold solution does.
    EndsEarly,
}

impl Writer {
    pub fn label(self) -> &'static str {
        match self {
            Writer::Edit => "T2T edit",
            Writer::Commit => "M2T commit (above the threshold)",
            Writer::Fallback => "M2T commit (top-1 fallback)",
            Writer::EndsEarly => "nothing (the output ends early)",
        }
    }
}

/// The first wrong token of one failed item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    pub place: Place,
    pub writer: Writer,
    /// A token that agreed with the gold solution stood at that position before.
    pub destroyed: bool,
    /// Canvas position and the `(block, step)` that last wrote it (none when the output ends early).
    pub pos: Option<usize>,
    pub step: Option<(usize, usize)>,
    /// The gold solution the output was compared with.
    pub gold: String,
}

/// What a trace is, for this analysis.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The prompt is not a world arithmetic problem (facts, free text).
    NotArithmetic,
    /// The answer line holds the right value.
    Right,
    Failed(Origin),
}

/// Judges one trace (see the module doc).
pub fn judge(trace: &Trace) -> Verdict {
    let Some(asked) = trace.prompt.as_deref().map(question).and_then(arith::parse_prompt) else {
        return Verdict::NotArithmetic;
    };
    let p = &trace.params;
    let prompt_len = trace.prompt_ids.len();
    // (position, token text) of the output, up to the first EOS or mask.
    let out: Vec<(usize, String)> = trace
        .final_canvas
        .iter()
        .enumerate()
        .skip(prompt_len)
        .take_while(|&(_, &t)| t != p.eos_id && t != p.mask_id)
        .map(|(pos, &t)| (pos, trace.text_of(t)))
        .collect();
    let text: String = out.iter().map(|(_, s)| s.as_str()).collect();
    if answered_right(&text, asked.value()) {
        return Verdict::Right;
    }
    let body = text.trim_start();
    let lead = text.len() - body.len();
    // The model's own restatement counts as gold when it is the asked problem (up to operand
    // order for addition); any other equation is compared with the asked one.
    let gold_problem = match arith::parse_equation(body) {
        Some((w, _)) if w == asked || (w.op == Op::Add && w.unordered_key() == asked.unordered_key()) => w,
        _ => asked,
    };
    let gold = gold_problem.solution();
    let i = body.bytes().zip(gold.bytes()).take_while(|(a, b)| a == b).count();
    if i == gold.len() && body.len() == gold.len() {
        return Verdict::Right; // unreachable for a wrong answer line; kept total
    }
    let place = place_of(&gold, i.min(gold.len() - 1));

    // The output token covering byte `lead + i`, and where it starts.
    let mut acc = 0;
    let mut hit = None;
    for (pos, s) in &out {
        if acc + s.len() > lead + i {
            hit = Some(*pos);
            break;
        }
        acc += s.len();
    }
    let ends_early = |gold: String| {
        Verdict::Failed(Origin {
            place,
            writer: Writer::EndsEarly,
            destroyed: false,
            pos: None,
            step: None,
            gold,
        })
    };
    let Some(pos) = hit else { return ends_early(gold) };
    // Replay: who last wrote `pos`, and every token it held.
    let mut last: Option<(Writer, (usize, usize))> = None;
    let mut held: Vec<u32> = Vec::new();
    for b in &trace.blocks {
        for s in &b.steps {
            for c in s.commits.iter().filter(|c| c.pos == pos) {
                let w = if c.kind == CommitKind::Fallback { Writer::Fallback } else { Writer::Commit };
                last = Some((w, (b.block, s.step)));
                held.push(c.token);
            }
            for e in s.edits.iter().filter(|e| e.pos == pos) {
                last = Some((Writer::Edit, (b.block, s.step)));
                held.push(e.to);
            }
        }
    }
    // A position no step wrote is not in a generated block: the trace is inconsistent with
    // its own canvas, which `Trace::load` rules out; treat it as the output ending there.
    let Some((writer, step)) = last else { return ends_early(gold) };
    let destroyed = acc >= lead && {
        let rest = &gold[(acc - lead).min(gold.len())..];
        held[..held.len() - 1].iter().any(|&t| {
            let s = trace.text_of(t);
            !s.is_empty() && rest.starts_with(&s)
        })
    };
    Verdict::Failed(Origin { place, writer, destroyed, pos: Some(pos), step: Some(step), gold })
}

/// The user's question in a prompt, with the world's chat tags (when `--chat` added them) cut.
fn question(prompt: &str) -> &str {
    let p = prompt.strip_prefix(HUMAN_TAG).unwrap_or(prompt);
    p.strip_suffix(ASSISTANT_TAG).unwrap_or(p)
}

/// One `Answer: N` line, and N is the value.
fn answered_right(text: &str, value: u32) -> bool {
    let marker = ANSWER_MARKER.trim_end();
    let mut parts = text.split(marker);
    let (Some(_), Some(after), None) = (parts.next(), parts.next(), parts.next()) else { return false };
    let after = after.trim_start();
    let n = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
    after[..n].parse::<u32>() == Ok(value)
}

fn place_of(gold: &str, idx: usize) -> Place {
    let at = |pat: &str| gold.find(pat).unwrap_or(gold.len());
    if idx < at(": ") {
        Place::Equation
    } else if idx < at(", so ") {
        Place::ColumnStep
    } else if idx < at(". Answer: ") {
        Place::WorkedValue
    } else {
        Place::AnswerLine
    }
}

/// Counts over many traces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub traces: usize,
    pub not_arithmetic: usize,
    pub right: usize,
    pub failed: usize,
    /// (writer, destroyed a right token) → failed items.
    pub by_writer: BTreeMap<(Writer, bool), usize>,
    /// (place, writer) → failed items.
    pub by_place: BTreeMap<(Place, Writer), usize>,
}

impl Tally {
    pub fn add(&mut self, v: &Verdict) {
        self.traces += 1;
        match v {
            Verdict::NotArithmetic => self.not_arithmetic += 1,
            Verdict::Right => self.right += 1,
            Verdict::Failed(o) => {
                self.failed += 1;
                *self.by_writer.entry((o.writer, o.destroyed)).or_default() += 1;
                *self.by_place.entry((o.place, o.writer)).or_default() += 1;
            }
        }
    }

    /// Failed items whose first wrong token was last written by `w`.
    pub fn written_by(&self, w: Writer) -> usize {
        self.by_writer.iter().filter(|((x, _), _)| *x == w).map(|(_, n)| n).sum()
    }

    /// The summary `draftscope origin` prints.
    pub fn text(&self) -> String {
        let mut s = format!(
            "traces: {}; arithmetic: {} ({} right, {} failed); not arithmetic: {}\n",
            self.traces,
            self.right + self.failed,
            self.right,
            self.failed,
            self.not_arithmetic
        );
        if self.failed == 0 {
            return s;
        }
        let pct = |n: usize| 100.0 * n as f64 / self.failed as f64;
        let edits = self.written_by(Writer::Edit);
        let commits = self.written_by(Writer::Commit) + self.written_by(Writer::Fallback);
        s += &format!("first wrong token written by a T2T edit: {edits} ({:.1}%)\n", pct(edits));
        s += &format!("first wrong token written by an M2T commit: {commits} ({:.1}%)\n", pct(commits));
        let mut rows: Vec<_> = self.by_writer.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for ((w, destroyed), n) in rows {
            let over = if *destroyed { ", over a right token" } else { "" };
            s += &format!("  {}{over}: {n}\n", w.label());
        }
        s += "where the output first departs from the gold solution:\n";
        let mut rows: Vec<_> = self.by_place.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for ((place, w), n) in rows {
            s += &format!("  {:>12} / {}: {n}\n", place.label(), w.label());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::trace::{BlockEnd, BlockTrace, Commit, Edit, StepTrace};
    use crate::decode::{AttentionMode, DecodeParams, Mode};

    const EOS: u32 = 0;
    const MASK: u32 = 1;

    /// A trace whose tokens are single characters (id = char code + 10) of `answer`, all
    /// committed in step 0; `edits` are (position in the answer, from char, to char) at step 1.
    fn trace(prompt: &str, answer: &str, fallback_at: Option<usize>, edits: &[(usize, char, char)]) -> Trace {
        let id = |c: char| c as u32 + 10;
        let mut params = DecodeParams::preset(Mode::Q, EOS, MASK);
        params.gen_length = 64;
        params.block_length = 64;
        let prompt_ids = vec![5, 6];
        let mut t = Trace::start(params, AttentionMode::BlockCausal, &prompt_ids);
        t.prompt = Some(prompt.to_string());
        let mut first: Vec<char> = answer.chars().collect();
        for &(i, from, _) in edits {
            first[i] = from;
        }
        let commits = first
            .iter()
            .enumerate()
            .map(|(i, &c)| Commit {
                pos: 2 + i,
                token: id(c),
                p: 0.9,
                kind: if fallback_at == Some(i) { CommitKind::Fallback } else { CommitKind::Threshold },
            })
            .collect();
        let mut canvas: Vec<u32> = prompt_ids.clone();
        canvas.extend(answer.chars().map(id));
        canvas.push(EOS);
        let step = |n: usize, commits: Vec<Commit>, edits: Vec<Edit>| StepTrace {
            step: n,
            forward: n,
            post_step_counter: 0,
            before: vec![],
            after: vec![],
            commits,
            edits,
            remasks: vec![],
            positions: vec![],
            forward_ms: 0.0,
        };
        let edits =
            edits.iter().map(|&(i, f, to)| Edit { pos: 2 + i, from: id(f), to: id(to), p: 0.8 }).collect();
        t.blocks.push(BlockTrace {
            block: 0,
            start: 2,
            window_end: 66,
            ended_by: BlockEnd::NoEditAfterFill,
            steps: vec![step(0, commits, vec![]), step(1, vec![], edits)],
        });
        t.final_canvas = canvas;
        for c in answer.chars().chain(first) {
            t.token_text.insert(id(c), c.to_string());
        }
        t
    }

    const Q: &str = "<role>HUMAN</role>What is 47+38?<role>ASSISTANT</role>";

    #[test]
    fn a_right_answer_and_a_facts_prompt_are_not_failures() {
        assert_eq!(judge(&trace(Q, "47+38: 7+8=15, 4+3+1=8, so 85. Answer: 85", None, &[])), Verdict::Right);
        let facts = trace("Which city is the capital of Nerana?", "Melmere", None, &[]);
        assert_eq!(judge(&facts), Verdict::NotArithmetic);
    }

    #[test]
    fn an_edit_over_the_right_digit_is_found_in_the_answer_line() {
        // The answer line's last digit was 5, then edited to 6.
        let a = "47+38: 7+8=15, 4+3+1=8, so 85. Answer: 86";
        let i = a.len() - 1;
        let Verdict::Failed(o) = judge(&trace(Q, a, None, &[(i, '5', '6')])) else { panic!() };
        assert_eq!((o.place, o.writer, o.destroyed), (Place::AnswerLine, Writer::Edit, true));
        assert_eq!((o.pos, o.step), (Some(2 + i), Some((0, 1))));
    }

    #[test]
    fn a_wrong_column_step_committed_by_the_fallback_is_a_commit_origin() {
        let a = "47+38: 7+8=16, 4+3+1=8, so 86. Answer: 86";
        let i = a.find("16").unwrap() + 1;
        let Verdict::Failed(o) = judge(&trace(Q, a, Some(i), &[])) else { panic!() };
        assert_eq!((o.place, o.writer, o.destroyed), (Place::ColumnStep, Writer::Fallback, false));
    }

    #[test]
    fn a_swapped_restatement_of_an_addition_is_not_an_error_but_a_miscopy_is() {
        let a = "38+47: 8+7=15, 3+4+1=8, so 85. Answer: 84";
        let Verdict::Failed(o) = judge(&trace(Q, a, None, &[])) else { panic!() };
        assert_eq!(o.place, Place::AnswerLine);
        let a = "47+39: 7+9=16, 4+3+1=8, so 86. Answer: 86";
        let Verdict::Failed(o) = judge(&trace(Q, a, None, &[])) else { panic!() };
        assert_eq!(o.place, Place::Equation);
    }

    #[test]
    fn an_output_that_stops_short_ends_early() {
        let Verdict::Failed(o) = judge(&trace(Q, "47+38: 7+8=15", None, &[])) else { panic!() };
        assert_eq!((o.writer, o.pos), (Writer::EndsEarly, None));
    }

    #[test]
    fn the_tally_counts_writers_and_places() {
        let mut t = Tally::default();
        let a = "47+38: 7+8=15, 4+3+1=8, so 85. Answer: 86";
        t.add(&judge(&trace(Q, a, None, &[(a.len() - 1, '5', '6')])));
        t.add(&judge(&trace(Q, "47+38: 7+8=15, 4+3+1=8, so 85. Answer: 85", None, &[])));
        t.add(&Verdict::NotArithmetic);
        assert_eq!((t.traces, t.right, t.failed, t.not_arithmetic), (3, 1, 1, 1));
        assert_eq!(t.written_by(Writer::Edit), 1);
        assert!(t.text().contains("first wrong token written by a T2T edit: 1 (100.0%)"), "{}", t.text());
    }
}
