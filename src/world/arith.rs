//! Arithmetic word problems with short column-by-column worked steps.
//!
//! Answer format (one line, ASCII, no spaces inside equations so a number is just its digits):
//!
//! ```text
//! 47+38: 7+8=15, 4+3+1=8, so 85. Answer: 85
//! ```
//!
//! The equation first, restated from the question: copying the two operands once, in order,
//! is the only lookup into the prompt; every column step then reads digits at fixed offsets
//! from that restatement, which a tiny model learns far sooner than finding digits inside a
//! word problem. One step per column of the longer operand, units first (missing digits are
//! written as 0, so the number of steps is fixed by the operand length); then `so` and the value assembled
//! from the columns; then the fixed marker `Answer: ` and the value again. The number after
//! `so` is the *worked-step value* (the last number before `Answer:`), the number after the
//! marker is the *final answer*: a final-digit transcription error is when the two differ and
//! the worked value is right. Column steps make the carries explicit, which is what lets a tiny
//! model learn multi-digit arithmetic at all.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::names::{OBJECTS, PEOPLE};

/// The marker before the final answer, in every arithmetic answer.
pub const ANSWER_MARKER: &str = "Answer: ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
        }
    }
}

/// Problem families: operation and operand sizes. The base families ([`Kind::ALL`]) have
/// two-digit operands: every family still carries or borrows, and at this size the 2-core
/// pretraining budget learns them from scratch (the first shipped world also had 3-digit
/// families; a model trained from scratch learned none of it). The long families
/// ([`Kind::LONG`]) are the editing testbed's: the same worked format with 3–4 columns, so the
/// worked value and the answer line are 3–5 digits drafted in one block; a model learns them by
/// continued pretraining once it knows the base families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// 2-digit + 2-digit.
    Add2,
    /// 2-digit − 2-digit (positive result).
    Sub2,
    /// 2-digit × 1-digit.
    Mul2,
    /// 3-digit + 3-digit.
    Add3,
    /// 3-digit − 3-digit (positive result).
    Sub3,
    /// 3-digit × 1-digit.
    Mul3,
    /// 4-digit + 4-digit.
    Add4,
}

impl Kind {
    /// The base families: the `arith` suite, the 2-digit testbed and the base corpus.
    pub const ALL: [Kind; 3] = [Kind::Add2, Kind::Sub2, Kind::Mul2];
    /// The long families: the long testbed and the continued-pretraining corpus.
    pub const LONG: [Kind; 4] = [Kind::Add3, Kind::Sub3, Kind::Mul3, Kind::Add4];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Add2 => "add2",
            Kind::Sub2 => "sub2",
            Kind::Mul2 => "mul2",
            Kind::Add3 => "add3",
            Kind::Sub3 => "sub3",
            Kind::Mul3 => "mul3",
            Kind::Add4 => "add4",
        }
    }

    /// Draws operands of this family.
    pub fn sample(self, rng: &mut impl Rng) -> Problem {
        let (op, a, b) = match self {
            Kind::Add2 => (Op::Add, rng.random_range(10..100), rng.random_range(10..100)),
            Kind::Sub2 => {
                let a = rng.random_range(20..100);
                (Op::Sub, a, rng.random_range(10..a))
            }
            Kind::Mul2 => (Op::Mul, rng.random_range(10..100), rng.random_range(2..10)),
            Kind::Add3 => (Op::Add, rng.random_range(100..1000), rng.random_range(100..1000)),
            Kind::Sub3 => {
                let a = rng.random_range(200..1000);
                (Op::Sub, a, rng.random_range(100..a))
            }
            Kind::Mul3 => (Op::Mul, rng.random_range(100..1000), rng.random_range(2..10)),
            Kind::Add4 => (Op::Add, rng.random_range(1000..10000), rng.random_range(1000..10000)),
        };
        Problem { op, a, b }
    }
}

/// `a op b`; for `Mul`, `b` is the single-digit factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    pub op: Op,
    pub a: u32,
    pub b: u32,
}

impl Problem {
    pub fn value(&self) -> u32 {
        match self.op {
            Op::Add => self.a + self.b,
            Op::Sub => self.a - self.b,
            Op::Mul => self.a * self.b,
        }
    }

    /// `47+38`
    pub fn equation(&self) -> String {
        format!("{}{}{}", self.a, self.op.symbol(), self.b)
    }

    /// The worked solution: the equation, column steps, `so value`, `Answer: value`.
    pub fn solution(&self) -> String {
        let v = self.value();
        format!("{}: {}, so {v}. {ANSWER_MARKER}{v}", self.equation(), self.column_steps().join(", "))
    }

    /// The same problem up to operand order (`47+38` ~ `38+47`): what the benchmark holds out.
    pub fn unordered_key(&self) -> (Op, u32, u32) {
        (self.op, self.a.min(self.b), self.a.max(self.b))
    }

    fn column_steps(&self) -> Vec<String> {
        let da = digits_units_first(self.a);
        let db = digits_units_first(self.b);
        let mut steps = Vec::with_capacity(da.len());
        let mut carry = 0;
        for (i, &x) in da.iter().enumerate() {
            let y = db.get(i).copied().unwrap_or(0);
            match self.op {
                Op::Add => {
                    let s = x + y + carry;
                    steps.push(if carry > 0 {
                        format!("{x}+{y}+{carry}={s}")
                    } else {
                        format!("{x}+{y}={s}")
                    });
                    carry = s / 10;
                }
                Op::Sub => {
                    let top = if x < y + carry { x + 10 } else { x };
                    let r = top - carry - y;
                    steps.push(if carry > 0 {
                        format!("{top}-{carry}-{y}={r}")
                    } else {
                        format!("{top}-{y}={r}")
                    });
                    carry = u32::from(top != x);
                }
                Op::Mul => {
                    let p = x * self.b + carry;
                    steps.push(if carry > 0 {
                        format!("{x}*{}+{carry}={p}", self.b)
                    } else {
                        format!("{x}*{}={p}", self.b)
                    });
                    carry = p / 10;
                }
            }
        }
        steps
    }

    /// A word problem (or, with `bare`, a plain "What is a+b?") asking for this value.
    pub fn prompt(&self, rng: &mut impl Rng, bare: bool) -> String {
        if bare {
            return format!("What is {}?", self.equation());
        }
        let templates = templates(self.op);
        let p = *PEOPLE.choose(rng).unwrap();
        let q = loop {
            let q = *PEOPLE.choose(rng).unwrap();
            if q != p {
                break q;
            }
        };
        let o = *OBJECTS.choose(rng).unwrap();
        templates
            .choose(rng)
            .unwrap()
            .replace("{p}", p)
            .replace("{q}", q)
            .replace("{o}", o)
            .replace("{a}", &self.a.to_string())
            .replace("{b}", &self.b.to_string())
    }
}

/// The word-problem templates of an operation: `{p}`/`{q}` people, `{o}` objects, `{a}`/`{b}`
/// the operands (for `Mul`, `{b}` is the one-digit factor).
fn templates(op: Op) -> &'static [&'static str] {
    match op {
        Op::Add => &[
            "{p} has {a} {o} and gets {b} more. How many {o} does {p} have now?",
            "A shop sold {a} {o} in the morning and {b} in the evening. How many {o} did it sell?",
            "{p} found {a} {o} and {q} found {b} {o}. How many {o} did they find in all?",
        ],
        Op::Sub => &[
            "{p} had {a} {o} and gave {b} to {q}. How many {o} does {p} have left?",
            "A box holds {a} {o}. {p} takes out {b}. How many {o} are still in the box?",
            "{p} needs {a} {o} and has {b}. How many more {o} does {p} need?",
        ],
        Op::Mul => &[
            "{p} buys {b} bags with {a} {o} in each bag. How many {o} does {p} buy?",
            "There are {b} rows of {a} {o}. How many {o} are there?",
            "Each of {b} friends brings {a} {o}. How many {o} do they bring?",
        ],
    }
}

/// The problem a prompt of [`Problem::prompt`] asks (the inverse of it), or `None` for a text
/// no template writes: what lets a saved trace, which keeps only its prompt, be judged.
pub fn parse_prompt(text: &str) -> Option<Problem> {
    if let Some(eq) = text.strip_prefix("What is ").and_then(|t| t.strip_suffix('?')) {
        return parse_equation(eq).filter(|(_, rest)| rest.is_empty()).map(|(p, _)| p);
    }
    [Op::Add, Op::Sub, Op::Mul]
        .into_iter()
        .flat_map(|op| templates(op).iter().map(move |t| (op, *t)))
        .find_map(|(op, t)| match_template(t, text).map(|(a, b)| Problem { op, a, b }))
}

/// Matches `text` against one template: literal pieces exactly, word placeholders as ASCII
/// letters, operands as digits. Returns the operands.
fn match_template(template: &str, text: &str) -> Option<(u32, u32)> {
    let (mut a, mut b) = (None, None);
    let (mut t, mut x) = (template, text);
    while !t.is_empty() {
        if let Some(rest) = t.strip_prefix('{') {
            let close = rest.find('}')?;
            let (name, after) = (&rest[..close], &rest[close + 1..]);
            let digits = matches!(name, "a" | "b");
            let n = x
                .find(|c: char| if digits { !c.is_ascii_digit() } else { !c.is_ascii_alphabetic() })
                .unwrap_or(x.len());
            if n == 0 {
                return None;
            }
            let (word, rest_x) = x.split_at(n);
            match name {
                "a" => a = Some(word.parse().ok()?),
                "b" => b = Some(word.parse().ok()?),
                _ => {}
            }
            t = after;
            x = rest_x;
        } else {
            let lit = t.find('{').unwrap_or(t.len());
            x = x.strip_prefix(&t[..lit])?;
            t = &t[lit..];
        }
    }
    if !x.is_empty() {
        return None;
    }
    Some((a?, b?))
}

/// The equation an answer starts with (`47+38` in `47+38: 7+8=15, …`), and the text after it.
pub fn parse_equation(text: &str) -> Option<(Problem, &str)> {
    let n = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let a = text[..n].parse().ok()?;
    let mut rest = text[n..].chars();
    let op = match rest.next()? {
        '+' => Op::Add,
        '-' => Op::Sub,
        '*' => Op::Mul,
        _ => return None,
    };
    let rest = rest.as_str();
    let m = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let b = rest[..m].parse().ok()?;
    Some((Problem { op, a, b }, &rest[m..]))
}

fn digits_units_first(mut n: u32) -> Vec<u32> {
    let mut d = vec![n % 10];
    n /= 10;
    while n > 0 {
        d.push(n % 10);
        n /= 10;
    }
    d
}

/// Splits an arithmetic answer text into (worked-step value, final answer), the two numbers
/// the final-digit classifier compares. `None` where the marker or a number is missing.
pub fn split_answer(text: &str) -> (Option<String>, Option<String>) {
    let (before, after) = match text.rfind(ANSWER_MARKER.trim_end()) {
        Some(i) => (&text[..i], Some(&text[i + ANSWER_MARKER.trim_end().len()..])),
        None => (text, None),
    };
    let worked = last_number(before);
    let fin = after.and_then(first_number);
    (worked, fin)
}

fn last_number(s: &str) -> Option<String> {
    let end = s.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = s[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    Some(s[start..end].to_string())
}

fn first_number(s: &str) -> Option<String> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let end = s[start..].find(|c: char| !c.is_ascii_digit()).map_or(s.len(), |i| start + i);
    Some(s[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn addition_with_carry_writes_column_steps() {
        let p = Problem { op: Op::Add, a: 47, b: 38 };
        assert_eq!(p.solution(), "47+38: 7+8=15, 4+3+1=8, so 85. Answer: 85");
    }

    #[test]
    fn addition_with_final_carry_and_short_operand() {
        let p = Problem { op: Op::Add, a: 956, b: 78 };
        assert_eq!(p.solution(), "956+78: 6+8=14, 5+7+1=13, 9+0+1=10, so 1034. Answer: 1034");
    }

    #[test]
    fn subtraction_with_borrows() {
        let p = Problem { op: Op::Sub, a: 503, b: 78 };
        assert_eq!(p.solution(), "503-78: 13-8=5, 10-1-7=2, 5-1-0=4, so 425. Answer: 425");
        let p = Problem { op: Op::Sub, a: 83, b: 47 };
        assert_eq!(p.solution(), "83-47: 13-7=6, 8-1-4=3, so 36. Answer: 36");
    }

    #[test]
    fn multiplication_by_one_digit() {
        let p = Problem { op: Op::Mul, a: 356, b: 7 };
        assert_eq!(p.solution(), "356*7: 6*7=42, 5*7+4=39, 3*7+3=24, so 2492. Answer: 2492");
    }

    #[test]
    fn split_answer_finds_worked_value_and_final() {
        let (w, f) = split_answer("7+8=15, 4+3+1=8, so 85. Answer: 86");
        assert_eq!((w.as_deref(), f.as_deref()), (Some("85"), Some("86")));
        let (w, f) = split_answer("7+8=15, 4+3+1=8, so 85.");
        assert_eq!((w.as_deref(), f), (Some("85"), None));
    }

    #[test]
    fn every_prompt_parses_back_to_its_problem() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for kind in Kind::ALL.into_iter().chain(Kind::LONG) {
            for i in 0..200 {
                let p = kind.sample(&mut rng);
                let text = p.prompt(&mut rng, i % 10 == 0);
                assert_eq!(parse_prompt(&text), Some(p), "{text}");
            }
        }
        assert_eq!(parse_prompt("Which city is the capital of Nerana?"), None);
        assert_eq!(parse_prompt("Mia has 12 apples and gets more. How many apples does Mia have now?"), None);
    }

    #[test]
    fn the_written_equation_is_read_with_what_follows() {
        let (p, rest) = parse_equation("47+38: 7+8=15").unwrap();
        assert_eq!((p, rest), (Problem { op: Op::Add, a: 47, b: 38 }, ": 7+8=15"));
        assert_eq!(parse_equation("47x38:"), None);
        assert_eq!(parse_equation("+38:"), None);
    }

    #[test]
    fn every_kind_solution_is_consistent() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            for k in Kind::ALL.into_iter().chain(Kind::LONG) {
                let p = k.sample(&mut rng);
                let (w, f) = split_answer(&p.solution());
                assert_eq!(w, Some(p.value().to_string()));
                assert_eq!(f, Some(p.value().to_string()));
            }
        }
    }
}
