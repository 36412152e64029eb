//! Word lists and a syllable name maker for the synthetic world.
//!
//! Everything the world says is built from these lists, so the vocabulary stays small (a tiny
//! model must learn every word) and the tokenizer sees every word often enough to keep it whole.
//! Names are built from syllables on purpose: similar names ("Karholm", "Karport") share pieces,
//! which gives the T2T editor plausible near-miss alternatives to (over-)correct towards.

use rand::Rng;
use rand::seq::IndexedRandom;

/// People in arithmetic word problems and founders in the knowledge base.
pub const PEOPLE: &[&str] = &[
    "Mia", "Tom", "Ana", "Ben", "Lia", "Sam", "Eva", "Leo", "Ida", "Max", "Zoe", "Noah", "Ella", "Finn",
    "Nora", "Omar", "Rosa", "Ivan", "Lena", "Hugo", "Ilsa", "Doran", "Mira", "Tobin",
];

/// Countable things for word problems (plural forms).
pub const OBJECTS: &[&str] = &[
    "apples", "books", "coins", "cards", "pens", "shells", "stones", "cups", "eggs", "boxes", "stamps",
    "beads",
];

/// Flag colours in the knowledge base.
pub const COLOURS: &[&str] =
    &["red", "blue", "green", "yellow", "white", "black", "orange", "purple", "grey", "silver"];

/// National animals in the knowledge base.
pub const ANIMALS: &[&str] =
    &["fox", "wolf", "bear", "eagle", "owl", "deer", "hare", "lion", "swan", "crow", "horse", "seal"];

const COUNTRY_HEADS: &[&str] = &[
    "Val", "Mor", "Kel", "Dar", "Zan", "Ost", "Bel", "Tir", "Gal", "Ner", "Sar", "Vor", "Lun", "Ark", "Esk",
    "Cor",
];
const COUNTRY_TAILS: &[&str] = &["ia", "or", "ana", "eth", "ara", "mark", "land", "ova"];
const CITY_HEADS: &[&str] = &[
    "Kar", "Bri", "Fen", "Hal", "Mel", "Ros", "Tal", "Wen", "Ash", "Dun", "Gry", "Lor", "Pel", "Sten", "Ulm",
    "Yar",
];
const CITY_TAILS: &[&str] = &["holm", "port", "ford", "wick", "ton", "burg", "mere", "gate"];

/// `n` distinct country names ("Valia", "Kelmark", …), in a seeded order.
pub fn country_names(rng: &mut impl Rng, n: usize) -> Vec<String> {
    distinct_names(rng, n, COUNTRY_HEADS, COUNTRY_TAILS)
}

/// `n` distinct city names ("Karholm", "Fenport", …), in a seeded order.
pub fn city_names(rng: &mut impl Rng, n: usize) -> Vec<String> {
    distinct_names(rng, n, CITY_HEADS, CITY_TAILS)
}

fn distinct_names(rng: &mut impl Rng, n: usize, heads: &[&str], tails: &[&str]) -> Vec<String> {
    assert!(n <= heads.len() * tails.len(), "not enough syllables for {n} names");
    let mut out: Vec<String> = Vec::with_capacity(n);
    while out.len() < n {
        let name = format!("{}{}", heads.choose(rng).unwrap(), tails.choose(rng).unwrap());
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}
