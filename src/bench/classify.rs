//! The two failure modes users hunt (DESIGN.md §7):
//!
//! - **final-digit transcription error**: the worked steps reach the gold value but the final
//!   answer differs — by a substituted digit (8728→8729), an extra digit (18→188), a dropped
//!   digit (32→2), or because the answer marker is repeated, garbled or missing;
//! - **over-correction**, read from the trace: an edit that replaced a token matching the gold
//!   answer with a wrong one (*harmful*; the reverse is *helpful*), an item whose answer was
//!   right at some step and wrong at the end, and churn (a position edited back to a token it
//!   held before, A→B→A).
//!
//! Under T2M a committed token changes in two steps: a remask (token → mask) and a later refill
//! (mask → token). A remask whose refill differs counts as one change `from → to`, judged like an
//! edit: *harmful* when the answer was right before the remask and `to` in `from`'s place makes
//! it wrong there, *helpful* when the answer is right after the refill and `from` in its place
//! would make it wrong; a refill back to an earlier token is churn.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::score::{Scorer, numbers, numbers_equal};
use crate::decode::Trace;

/// Subtypes of a final-digit transcription error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigitError {
    /// Same number of digits, some differ (8728→8729).
    Substituted,
    /// One digit too many (18→188).
    Extra,
    /// One digit missing (32→2).
    Dropped,
    /// The answer marker is repeated, garbled or missing.
    Marker,
    /// Any other difference (the steps reached the gold value, the answer is far off).
    Other,
}

impl DigitError {
    pub fn label(self) -> &'static str {
        match self {
            DigitError::Substituted => "substituted",
            DigitError::Extra => "extra",
            DigitError::Dropped => "dropped",
            DigitError::Marker => "marker",
            DigitError::Other => "other",
        }
    }
}

/// Classifies a wrong numeric answer. `None` when the answer is right, the scorer is not
/// numeric, or the worked steps never reach the gold value.
pub fn final_digit_error(scorer: &Scorer, text: &str, gold: &str) -> Option<DigitError> {
    if !scorer.is_numeric() {
        return None;
    }
    let ex = scorer.extract(text);
    if ex.as_ref().is_some_and(|e| numbers_equal(&e.value, gold)) {
        return None;
    }
    // The worked steps: for a marker answer, the text before the first marker, whose last
    // number is the worked-step value (`47+38=85. Answer: 86`); for a boxed answer, any number
    // before the last `\boxed{`.
    let reached = match scorer {
        Scorer::MarkerNumber { marker } => {
            let end = super::score::find_all_ci(text, marker)
                .first()
                .copied()
                .or_else(|| garbled_marker_at(text))
                .unwrap_or(text.len());
            numbers(&text[..end]).last().is_some_and(|n| numbers_equal(&n.value, gold))
        }
        _ => {
            let end = text.rfind("\\boxed{").or(ex.as_ref().map(|e| e.start)).unwrap_or(text.len());
            numbers(&text[..end]).iter().any(|n| numbers_equal(&n.value, gold))
        }
    };
    if !reached {
        return None;
    }
    let Some(ex) = ex else { return Some(DigitError::Marker) };
    if scorer.marker_count(text) != Some(1) || !marker_directly_before(scorer, text, ex.start) {
        return Some(DigitError::Marker);
    }
    Some(digit_diff(&ex.value, gold))
}

/// Where a garbled marker starts: the first word beginning with `ans` (`Answr`, `ANS:`).
fn garbled_marker_at(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    lower
        .match_indices("ans")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric())
}

/// The answer follows its marker with nothing but spaces, `$`, `*` or `{` in between
/// (a garbled marker reads `Answer: is 85` or `Answer: Answer 85`).
fn marker_directly_before(scorer: &Scorer, text: &str, start: usize) -> bool {
    let Scorer::MarkerNumber { marker } = scorer else { return true };
    let Some(&at) = super::score::find_all_ci(text, marker).last() else { return true };
    let from = at + marker.len();
    from <= start && text[from..start].chars().all(|c| c.is_whitespace() || matches!(c, '$' | '*' | '{'))
}

/// Substituted / extra / dropped digit by comparing the digit strings.
pub fn digit_diff(pred: &str, gold: &str) -> DigitError {
    let canon = |s: &str| s.trim().trim_start_matches('-').replace(',', "");
    let (p, g): (Vec<char>, Vec<char>) = (canon(pred).chars().collect(), canon(gold).chars().collect());
    let deletes_to = |long: &[char], short: &[char]| {
        (0..long.len())
            .any(|i| long[..i] == short[..i.min(short.len())] && long[i + 1..] == short[i.min(short.len())..])
    };
    if p.len() == g.len() && p != g {
        DigitError::Substituted
    } else if p.len() == g.len() + 1 && deletes_to(&p, &g) {
        DigitError::Extra
    } else if p.len() + 1 == g.len() && deletes_to(&g, &p) {
        DigitError::Dropped
    } else {
        DigitError::Other
    }
}

/// An edit located in a trace; under T2M, a remask and the different token refilled there
/// (`block`/`step` of the refill).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRef {
    pub block: usize,
    pub step: usize,
    /// Absolute canvas position.
    pub pos: usize,
    pub from: u32,
    pub to: u32,
}

/// A position edited back to a token it held before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnRef {
    pub block: usize,
    pub step: usize,
    pub pos: usize,
    /// The tokens the position held, in order, ending with the returning one (A, B, A).
    pub tokens: Vec<u32>,
}

/// What the trace says about over-correction in one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceFindings {
    /// The answer was right after some step and is wrong at the end.
    pub over_corrected: bool,
    /// First and last `(block, step)` after which the answer was right.
    pub first_right: Option<(usize, usize)>,
    pub last_right: Option<(usize, usize)>,
    /// Edits that alone turned a right answer wrong.
    pub harmful: Vec<EditRef>,
    /// Edits without which the answer after their step would be wrong.
    pub helpful: Vec<EditRef>,
    pub churn: Vec<ChurnRef>,
}

/// Generated text of a canvas state: positions `[prompt_len, prompt_len + gen_length)`, cut
/// at the first EOS (excluded); masks read as `▒` so no partial state looks like an answer.
pub fn canvas_text(tokens: &[u32], mask_id: u32, eos_id: u32, detok: &dyn Fn(&[u32]) -> String) -> String {
    let end = tokens.iter().position(|&t| t == eos_id).unwrap_or(tokens.len());
    let mut out = String::new();
    let mut run: Vec<u32> = Vec::new();
    for &t in &tokens[..end] {
        if t == mask_id {
            if !run.is_empty() {
                out.push_str(&detok(&run));
                run.clear();
            }
            out.push('▒');
        } else {
            run.push(t);
        }
    }
    if !run.is_empty() {
        out.push_str(&detok(&run));
    }
    out
}

/// Text of token ids from the trace's own token texts (`<id>` without a tokenizer), so a saved
/// trace can be judged with no model loaded.
pub fn trace_detok(trace: &Trace) -> impl Fn(&[u32]) -> String + '_ {
    move |ids: &[u32]| ids.iter().map(|&i| trace.text_of(i)).collect()
}

/// Replays the trace step by step and judges every intermediate answer with `is_correct`
/// (which receives the generated text, see [`canvas_text`]).
pub fn analyse_trace(
    trace: &Trace,
    detok: &dyn Fn(&[u32]) -> String,
    is_correct: &dyn Fn(&str) -> bool,
) -> TraceFindings {
    let p = &trace.params;
    let prompt_len = trace.prompt_ids.len();
    let gen_end = (prompt_len + p.gen_length).min(trace.final_canvas.len());
    let mut canvas = vec![p.mask_id; trace.final_canvas.len()];
    canvas[..prompt_len].copy_from_slice(&trace.prompt_ids);
    let judge = |c: &[u32]| is_correct(&canvas_text(&c[prompt_len..gen_end], p.mask_id, p.eos_id, detok));

    let mut f = TraceFindings::default();
    let mut held: HashMap<usize, Vec<u32>> = HashMap::new();
    let mut remasked: HashMap<usize, PendingRemask> = HashMap::new();
    for b in &trace.blocks {
        let end = (b.start + b.steps.first().map_or(0, |s| s.after.len())).min(canvas.len());
        for s in &b.steps {
            canvas[b.start..end].copy_from_slice(&s.before[..end - b.start]);
            let right_before = (!s.edits.is_empty() || !s.remasks.is_empty()) && judge(&canvas);
            for r in &s.remasks {
                let before = right_before.then(|| canvas.clone());
                remasked.insert(r.pos, PendingRemask { from: r.from, before });
            }
            for e in &s.edits {
                if right_before {
                    let keep = canvas[e.pos];
                    canvas[e.pos] = e.to;
                    if !judge(&canvas) {
                        f.harmful.push(edit_ref(b.block, s.step, e));
                    }
                    canvas[e.pos] = keep;
                }
            }
            canvas[b.start..end].copy_from_slice(&s.after[..end - b.start]);
            let right_after = judge(&canvas);
            if right_after {
                f.first_right.get_or_insert((b.block, s.step));
                f.last_right = Some((b.block, s.step));
                for e in &s.edits {
                    canvas[e.pos] = e.from;
                    if !judge(&canvas) {
                        f.helpful.push(edit_ref(b.block, s.step, e));
                    }
                    canvas[e.pos] = e.to;
                }
            }
            // Refills of remasked positions: a different token is a change from → to.
            for c in &s.commits {
                let Some(r) = remasked.remove(&c.pos) else { continue };
                if c.token == r.from {
                    continue;
                }
                let e = EditRef { block: b.block, step: s.step, pos: c.pos, from: r.from, to: c.token };
                if let Some(mut before) = r.before {
                    before[c.pos] = c.token;
                    if !judge(&before) {
                        f.harmful.push(e.clone());
                    }
                }
                if right_after {
                    canvas[c.pos] = r.from;
                    if !judge(&canvas) {
                        f.helpful.push(e.clone());
                    }
                    canvas[c.pos] = c.token;
                }
            }
            // Churn: what each position held, from its first commit on (a refill continues it).
            for c in &s.commits {
                match held.get_mut(&c.pos) {
                    Some(h) if h.last() != Some(&c.token) => {
                        let returns = h.contains(&c.token);
                        h.push(c.token);
                        if returns {
                            f.churn.push(ChurnRef {
                                block: b.block,
                                step: s.step,
                                pos: c.pos,
                                tokens: h.clone(),
                            });
                        }
                    }
                    Some(_) => {}
                    None => {
                        held.insert(c.pos, vec![c.token]);
                    }
                }
            }
            for e in &s.edits {
                let h = held.entry(e.pos).or_insert_with(|| vec![e.from]);
                if h.last() != Some(&e.from) {
                    h.push(e.from);
                }
                let returns = h[..h.len() - 1].contains(&e.to);
                h.push(e.to);
                if returns {
                    f.churn.push(ChurnRef { block: b.block, step: s.step, pos: e.pos, tokens: h.clone() });
                }
            }
        }
    }
    let final_right = is_correct(&canvas_text(&trace.output, p.mask_id, p.eos_id, detok));
    f.over_corrected = f.first_right.is_some() && !final_right;
    f
}

/// A remasked position waiting for its refill: the token taken back and, when the answer was
/// right before the remask step, that step's canvas.
struct PendingRemask {
    from: u32,
    before: Option<Vec<u32>>,
}

fn edit_ref(block: usize, step: usize, e: &crate::decode::trace::Edit) -> EditRef {
    EditRef { block, step, pos: e.pos, from: e.from, to: e.to }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::score::ANSWER_MARKER;
    use crate::decode::trace::{BlockTrace, Commit, CommitKind, Edit, StepTrace};
    use crate::decode::{AttentionMode, BlockEnd, DecodeParams, Mode, TRACE_VERSION};

    fn marker() -> Scorer {
        Scorer::MarkerNumber { marker: ANSWER_MARKER.into() }
    }

    #[test]
    fn substituted_digit_is_one_digit_changed() {
        let t = "8000 + 728 = 8728. Answer: 8729";
        assert_eq!(final_digit_error(&marker(), t, "8728"), Some(DigitError::Substituted));
    }

    #[test]
    fn extra_digit_is_one_digit_too_many() {
        let t = "9 + 9 = 18. Answer: 188";
        assert_eq!(final_digit_error(&marker(), t, "18"), Some(DigitError::Extra));
    }

    #[test]
    fn dropped_digit_is_one_digit_missing() {
        let t = "4 * 8 = 32. Answer: 2";
        assert_eq!(final_digit_error(&marker(), t, "32"), Some(DigitError::Dropped));
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 32. Answer: 3", "32"), Some(DigitError::Dropped));
    }

    #[test]
    fn repeated_marker_is_a_marker_error() {
        let t = "4 * 8 = 32. Answer: 3 Answer: 2";
        assert_eq!(final_digit_error(&marker(), t, "32"), Some(DigitError::Marker));
    }

    #[test]
    fn garbled_marker_is_a_marker_error() {
        // Marker missing: the last number (the fallback) is a step value.
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 32. Answr 4", "32"), Some(DigitError::Marker));
        // Marker followed by junk before the number.
        assert_eq!(
            final_digit_error(&marker(), "4 * 8 = 32. Answer: is it 3", "32"),
            Some(DigitError::Marker)
        );
        // Marker with no number after it.
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 32. Answer:", "32"), Some(DigitError::Marker));
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 32.", "32"), Some(DigitError::Marker));
    }

    #[test]
    fn boxed_answers_classify_too() {
        let t = "so 8 * 4 = 32 apples. \\boxed{33}";
        assert_eq!(final_digit_error(&Scorer::BoxedNumber, t, "32"), Some(DigitError::Substituted));
        let t = "8 * 4 = 32 \\boxed{3} \\boxed{3}";
        assert_eq!(final_digit_error(&Scorer::BoxedNumber, t, "32"), Some(DigitError::Marker));
    }

    #[test]
    fn no_error_when_right_or_steps_never_reach_gold() {
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 32. Answer: 32", "32"), None);
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 31. Answer: 31", "32"), None);
        assert_eq!(final_digit_error(&Scorer::Text, "32 Answer: 31", "32"), None);
    }

    #[test]
    fn far_off_answers_are_other() {
        assert_eq!(final_digit_error(&marker(), "4 * 8 = 32. Answer: 1234", "32"), Some(DigitError::Other));
        assert_eq!(digit_diff("85", "85"), DigitError::Other);
    }

    #[test]
    fn canvas_text_cuts_at_eos_and_shows_masks() {
        let detok = |ids: &[u32]| ids.iter().map(|i| i.to_string()).collect::<String>();
        assert_eq!(canvas_text(&[1, 99, 2, 7, 3], 99, 7, &detok), "1▒2");
    }

    // ---- trace-based checks on hand-built traces -------------------------------------------
    //
    // Tokens are single characters: id = ASCII code. Mask = 0, EOS = 1. Prompt "Q" (81).
    // The gold answer is "7"; `is_correct` reads the text as the whole answer.

    const MASK: u32 = 0;
    const EOS: u32 = 1;

    fn detok(ids: &[u32]) -> String {
        ids.iter().map(|&i| char::from_u32(i).unwrap()).collect()
    }

    fn ch(c: char) -> u32 {
        c as u32
    }

    /// One block of 2 generated positions after a 2-token prompt block.
    fn trace(steps: Vec<StepTrace>, output: Vec<u32>) -> Trace {
        let mut params = DecodeParams::preset(Mode::Q, EOS, MASK);
        params.block_length = 2;
        params.gen_length = 2;
        let prompt = vec![ch('Q'), ch(':')];
        let mut final_canvas = prompt.clone();
        final_canvas.extend(steps.last().map(|s| s.after.clone()).unwrap_or(vec![MASK, MASK]));
        Trace {
            version: TRACE_VERSION,
            model: "hand".into(),
            adapter: None,
            params,
            attention: AttentionMode::BlockCausal,
            prompt: None,
            prompt_ids: prompt,
            output,
            forward_calls: steps.len(),
            stopped_early: false,
            cancelled: false,
            blocks: vec![BlockTrace {
                block: 1,
                start: 2,
                window_end: 4,
                ended_by: BlockEnd::NoEditAfterFill,
                steps,
            }],
            final_canvas,
            wall_ms: 0.0,
            token_text: Default::default(),
        }
    }

    fn step(
        i: usize,
        before: &str,
        after: &str,
        commits: &[(usize, char)],
        edits: &[(usize, char, char)],
    ) -> StepTrace {
        let toks = |s: &str| {
            s.chars()
                .map(|c| {
                    if c == '_' {
                        MASK
                    } else if c == '$' {
                        EOS
                    } else {
                        ch(c)
                    }
                })
                .collect()
        };
        StepTrace {
            step: i,
            forward: i,
            post_step_counter: 0,
            before: toks(before),
            after: toks(after),
            commits: commits
                .iter()
                .map(|&(pos, c)| Commit { pos, token: ch(c), p: 0.9, kind: CommitKind::Threshold })
                .collect(),
            edits: edits.iter().map(|&(pos, f, t)| Edit { pos, from: ch(f), to: ch(t), p: 0.6 }).collect(),
            remasks: Vec::new(),
            positions: Vec::new(),
            forward_ms: 0.0,
        }
    }

    fn is_seven(text: &str) -> bool {
        text.trim() == "7"
    }

    #[test]
    fn edit_replacing_a_right_answer_is_harmful_and_item_over_corrected() {
        // step 0 commits "7$" (right), step 1 edits 7→1 (wrong).
        let t = trace(
            vec![step(0, "__", "7$", &[(2, '7'), (3, '$')], &[]), step(1, "7$", "1$", &[], &[(2, '7', '1')])],
            vec![ch('1'), EOS],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert!(f.over_corrected);
        assert_eq!(f.first_right, Some((1, 0)));
        assert_eq!(f.last_right, Some((1, 0)));
        assert_eq!(f.harmful, vec![EditRef { block: 1, step: 1, pos: 2, from: ch('7'), to: ch('1') }]);
        assert!(f.helpful.is_empty());
        assert!(f.churn.is_empty());
    }

    #[test]
    fn edit_fixing_a_wrong_answer_is_helpful_not_over_correction() {
        let t = trace(
            vec![step(0, "__", "1$", &[(2, '1'), (3, '$')], &[]), step(1, "1$", "7$", &[], &[(2, '1', '7')])],
            vec![ch('7'), EOS],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert!(!f.over_corrected);
        assert_eq!(f.helpful, vec![EditRef { block: 1, step: 1, pos: 2, from: ch('1'), to: ch('7') }]);
        assert!(f.harmful.is_empty());
        assert_eq!(f.first_right, Some((1, 1)));
    }

    #[test]
    fn churn_counts_a_return_to_an_earlier_token() {
        // 7 → 1 → 7: harmful then helpful, one churn, right at the end.
        let t = trace(
            vec![
                step(0, "__", "7$", &[(2, '7'), (3, '$')], &[]),
                step(1, "7$", "1$", &[], &[(2, '7', '1')]),
                step(2, "1$", "7$", &[], &[(2, '1', '7')]),
            ],
            vec![ch('7'), EOS],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert!(!f.over_corrected);
        assert_eq!(f.harmful.len(), 1);
        assert_eq!(f.helpful.len(), 1);
        assert_eq!(
            f.churn,
            vec![ChurnRef { block: 1, step: 2, pos: 2, tokens: vec![ch('7'), ch('1'), ch('7')] }]
        );
    }

    #[test]
    fn edits_outside_the_answer_are_neither_harmful_nor_helpful() {
        // The answer "7" is right throughout; an edit elsewhere that keeps it right.
        let is_seven_start = |t: &str| t.starts_with('7');
        let t = trace(
            vec![step(0, "__", "7a", &[(2, '7'), (3, 'a')], &[]), step(1, "7a", "7b", &[], &[(3, 'a', 'b')])],
            vec![ch('7'), ch('b')],
        );
        let f = analyse_trace(&t, &detok, &is_seven_start);
        assert!(f.harmful.is_empty());
        assert!(f.helpful.is_empty());
        assert!(!f.over_corrected);
    }

    #[test]
    fn partial_states_with_masks_are_not_answers() {
        // After step 0 the text reads "7▒", not "7": a partial state is not an answer.
        let t = trace(
            vec![step(0, "__", "7_", &[(2, '7')], &[]), step(1, "7_", "74", &[(3, '4')], &[])],
            vec![ch('7'), ch('4')],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert_eq!(f.first_right, None);
        assert!(!f.over_corrected);
    }

    /// `step` with T2M remasks `(pos, from)` (the `after` string shows them as `_`).
    fn remask_step(
        i: usize,
        before: &str,
        after: &str,
        commits: &[(usize, char)],
        remasks: &[(usize, char)],
    ) -> StepTrace {
        let mut s = step(i, before, after, commits, &[]);
        s.remasks = remasks
            .iter()
            .map(|&(pos, from)| crate::decode::trace::Remask {
                pos,
                from: ch(from),
                p_current: 0.2,
                argmax: ch(from),
                p: 0.5,
                p_prev: None,
                score: 0.2,
                nth: 1,
            })
            .collect();
        s
    }

    #[test]
    fn a_remask_refilled_with_a_wrong_token_is_a_harmful_change_and_over_correction() {
        // "7$" (right), remask 7, refill 1 (wrong): one change 7→1, at the refill step.
        let t = trace(
            vec![
                step(0, "__", "7$", &[(2, '7'), (3, '$')], &[]),
                remask_step(1, "7$", "_$", &[], &[(2, '7')]),
                step(2, "_$", "1$", &[(2, '1')], &[]),
            ],
            vec![ch('1'), EOS],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert!(f.over_corrected);
        assert_eq!(f.harmful, vec![EditRef { block: 1, step: 2, pos: 2, from: ch('7'), to: ch('1') }]);
        assert!(f.helpful.is_empty());
        assert_eq!((f.first_right, f.last_right), (Some((1, 0)), Some((1, 0))));
    }

    #[test]
    fn a_remask_refilled_with_the_right_token_is_helpful() {
        let t = trace(
            vec![
                step(0, "__", "1$", &[(2, '1'), (3, '$')], &[]),
                remask_step(1, "1$", "_$", &[], &[(2, '1')]),
                step(2, "_$", "7$", &[(2, '7')], &[]),
            ],
            vec![ch('7'), EOS],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert!(!f.over_corrected);
        assert_eq!(f.helpful, vec![EditRef { block: 1, step: 2, pos: 2, from: ch('1'), to: ch('7') }]);
        assert!(f.harmful.is_empty());
    }

    #[test]
    fn a_remask_refilled_with_the_same_token_changes_nothing_and_a_return_is_churn() {
        // 7 → ▒ → 7 (no change), then 7 → ▒ → 1 → ▒ → 7: harmful, helpful, one churn.
        let t = trace(
            vec![
                step(0, "__", "7$", &[(2, '7'), (3, '$')], &[]),
                remask_step(1, "7$", "_$", &[], &[(2, '7')]),
                step(2, "_$", "7$", &[(2, '7')], &[]),
                remask_step(3, "7$", "_$", &[], &[(2, '7')]),
                step(4, "_$", "1$", &[(2, '1')], &[]),
                remask_step(5, "1$", "_$", &[], &[(2, '1')]),
                step(6, "_$", "7$", &[(2, '7')], &[]),
            ],
            vec![ch('7'), EOS],
        );
        let f = analyse_trace(&t, &detok, &is_seven);
        assert!(!f.over_corrected);
        assert_eq!((f.harmful.len(), f.helpful.len()), (1, 1));
        assert_eq!(f.harmful[0].step, 4);
        assert_eq!(
            f.churn,
            vec![ChurnRef { block: 1, step: 6, pos: 2, tokens: vec![ch('7'), ch('1'), ch('7')] }]
        );
    }
}
