//! Command-line entry points. Each subcommand parses its flags here and calls into the
//! library; errors surface as one line and exit code 2 (see `main.rs`).

pub mod decode;
pub mod logits;
pub mod quantize;
pub mod speed;
pub mod speed_f32;
pub mod speed_model;
pub mod speed_q8;
pub mod synth;

pub use crate::decode::session::ModelArgs;
pub use crate::model::tokenizer::parse_ids;

/// Sets candle's thread count from a subcommand's `--threads`, before any thread exists.
pub fn apply_threads(sub: &clap::ArgMatches) {
    if let Ok(Some(&n)) = sub.try_get_one::<usize>("threads")
        && n > 0
        && std::env::var_os("RAYON_NUM_THREADS").is_none()
    {
        // SAFETY: called first thing in main, before this process starts any thread.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

/// The ids of the flags the user typed (not defaults), so a command can tell "left at the
/// default" from "set to the default value".
pub fn given_flags(m: &clap::ArgMatches) -> Vec<String> {
    m.ids()
        // clap also lists each flattened struct as a group named after the struct.
        .filter(|id| !id.as_str().starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|id| m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}
