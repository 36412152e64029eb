//! Benchmarks: suites (the embedded world's and public formats from local files), answer
//! extraction and scoring, the failure-mode classifiers (final-digit transcription errors,
//! over-correction, churn), the bench runner, and the results store the results pane reads.
//! User guide: `docs/bench.md`.
//!
//! For the TUI: [`ResultsStore::open`] + [`ResultsStore::load`] for the records,
//! [`results::compare`] (base vs adapters by checkpoint), [`results::list_runs`],
//! [`ResultsStore::failing_items`] (with trace paths), and [`results::item_findings`] to
//! locate harmful/helpful edits and churn in an opened trace without the model.

pub mod classify;
pub mod cli;
pub mod experiment;
pub mod experiment_cli;
pub mod experiment_report;
pub mod launchers;
pub mod origin;
pub mod origin_cli;
pub mod record;
pub mod results;
pub mod run;
pub mod score;
pub mod shard;
pub mod stats;
pub mod suite;

pub use classify::{ChurnRef, DigitError, EditRef, TraceFindings, analyse_trace, final_digit_error};
pub use record::{ItemOutcome, RunRecord, SuiteMetrics};
pub use results::{ComparisonRow, FailingItem, ResultsStore, RunSummary, compare, item_findings, list_runs};
pub use run::{ModelRef, RunContext, RunOptions, bench_suites, load_suites, run_suite};
pub use score::Scorer;
pub use suite::{Format, Item, Suite};
