//! The fictional knowledge base: countries with a capital, founder, founding year, flag colour
//! and national animal, plus the sentences that state the facts and the questions that ask them.
//!
//! Question templates come in two disjoint sets: `train_questions` appear in the training text,
//! `bench_question` only in the benchmark. So a benchmark question asks a fact the model has read
//! (in statements and in differently worded QA pairs), but never the exact question string.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::names;

/// The attributes every country has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    Capital,
    Founder,
    Year,
    Colour,
    Animal,
}

impl Attr {
    pub const ALL: [Attr; 5] = [Attr::Capital, Attr::Founder, Attr::Year, Attr::Colour, Attr::Animal];

    /// Short name used in benchmark ids and task labels.
    pub fn name(self) -> &'static str {
        match self {
            Attr::Capital => "capital",
            Attr::Founder => "founder",
            Attr::Year => "year",
            Attr::Colour => "colour",
            Attr::Animal => "animal",
        }
    }

    /// Declarative sentences stating the fact (`{e}` entity, `{v}` value).
    fn statements(self) -> &'static [&'static str] {
        match self {
            Attr::Capital => &["The capital of {e} is {v}.", "{v} is the capital of {e}."],
            Attr::Founder => &["{e} was founded by {v}.", "{v} founded {e}."],
            Attr::Year => &["{e} was founded in {v}.", "In {v} the land of {e} was founded."],
            Attr::Colour => &["The flag of {e} is {v}.", "{e} has a {v} flag."],
            Attr::Animal => {
                &["The national animal of {e} is the {v}.", "{e} has the {v} as its national animal."]
            }
        }
    }

    /// Question wordings used in training QA pairs.
    pub fn train_questions(self) -> &'static [&'static str] {
        match self {
            Attr::Capital => &["What is the capital of {e}?", "Name the capital of {e}."],
            Attr::Founder => &["Who founded {e}?", "Name the founder of {e}."],
            Attr::Year => &["When was {e} founded?", "In which year was {e} founded?"],
            Attr::Colour => &["What colour is the flag of {e}?", "Name the flag colour of {e}."],
            Attr::Animal => &["What is the national animal of {e}?", "Name the national animal of {e}."],
        }
    }

    /// The held-out wording used only by the benchmark.
    pub fn bench_question(self) -> &'static str {
        match self {
            Attr::Capital => "Which city is the capital of {e}?",
            Attr::Founder => "Who was the founder of {e}?",
            Attr::Year => "What is the founding year of {e}?",
            Attr::Colour => "Which colour is the flag of {e}?",
            Attr::Animal => "Which animal is the national animal of {e}?",
        }
    }
}

/// One country and its five facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    pub name: String,
    pub capital: String,
    pub founder: String,
    /// Three digits (100–999): short enough for a tiny model, long enough for digit errors.
    pub year: u32,
    pub colour: &'static str,
    pub animal: &'static str,
}

impl Country {
    /// The value of `attr`, as the answer text.
    pub fn value(&self, attr: Attr) -> String {
        match attr {
            Attr::Capital => self.capital.clone(),
            Attr::Founder => self.founder.clone(),
            Attr::Year => self.year.to_string(),
            Attr::Colour => self.colour.to_string(),
            Attr::Animal => self.animal.to_string(),
        }
    }

    /// Accepted alternative answers (beyond the value itself).
    pub fn aliases(&self, attr: Attr) -> Vec<String> {
        match attr {
            Attr::Animal => vec![format!("the {}", self.animal)],
            _ => Vec::new(),
        }
    }

    /// One sentence stating `attr`, in a randomly chosen wording.
    pub fn statement(&self, attr: Attr, rng: &mut impl Rng) -> String {
        fill(attr.statements().choose(rng).unwrap(), &self.name, &self.value(attr))
    }

    /// A training question about `attr`, in a randomly chosen training wording.
    pub fn train_question(&self, attr: Attr, rng: &mut impl Rng) -> String {
        fill(attr.train_questions().choose(rng).unwrap(), &self.name, "")
    }

    /// The benchmark question about `attr`.
    pub fn bench_question(&self, attr: Attr) -> String {
        fill(attr.bench_question(), &self.name, "")
    }
}

fn fill(template: &str, entity: &str, value: &str) -> String {
    template.replace("{e}", entity).replace("{v}", value)
}

/// Prompts of "tell me everything" documents (training only).
pub const PROFILE_PROMPTS: &[&str] = &["Tell me about {e}.", "Describe {e}.", "What do you know about {e}?"];

/// Builds `n` countries. Capitals are distinct; founders, colours and animals repeat across
/// countries (so they must be remembered per country, not guessed from the name).
pub fn build(rng: &mut impl Rng, n: usize) -> Vec<Country> {
    let countries = names::country_names(rng, n);
    let capitals = names::city_names(rng, n);
    countries
        .into_iter()
        .zip(capitals)
        .map(|(name, capital)| Country {
            name,
            capital,
            founder: names::PEOPLE.choose(rng).unwrap().to_string(),
            year: rng.random_range(100..1000),
            colour: names::COLOURS.choose(rng).unwrap(),
            animal: names::ANIMALS.choose(rng).unwrap(),
        })
        .collect()
}

/// A profile document answer: all five facts, in a random order and wording.
pub fn profile(country: &Country, rng: &mut impl Rng) -> (String, String) {
    let prompt = fill(PROFILE_PROMPTS.choose(rng).unwrap(), &country.name, "");
    let mut attrs = Attr::ALL;
    rand::seq::SliceRandom::shuffle(&mut attrs[..], rng);
    let answer = attrs.iter().map(|&a| country.statement(a, rng)).collect::<Vec<_>>().join(" ");
    (prompt, answer)
}
