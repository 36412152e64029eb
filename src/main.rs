//! draftscope command line. Errors print as one line and exit with code 2.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use draftscope::cli;

#[derive(Parser)]
#[command(
    name = "draftscope",
    version,
    about = "A workbench for block-diffusion LMs that edit their own drafts (LLaDA2.1)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The workbench (default with no subcommand): step through decoding and see why each token changed.
    ///
    /// The first start with no flags opens the tour (`--no-tour` or DRAFTSCOPE_NO_TOUR=1 skip it).
    Tui(draftscope::tui::TuiArgs),
    /// A short tour of the recorded sessions (no model, no network), then the workbench.
    Tour(draftscope::tui::TourArgs),
    /// Workbench speed: open a big trace and render frames (prints figures).
    BenchTui(draftscope::tui::bench::BenchTuiArgs),
    /// Re-record the demo sessions listed in a manifest (sessions/manifest.json).
    DemoSessions(draftscope::tui::demo::DemoArgs),
    /// Decode a prompt with M2T fills and T2T edits; print the text and a summary.
    Decode(cli::decode::DecodeArgs),
    /// One forward pass written to safetensors (logits, optionally hidden states).
    Logits(cli::logits::LogitsArgs),
    /// Regenerate the synthetic world's benchmark items and tokenizer (and optionally its corpus).
    World(draftscope::world::cli::WorldArgs),
    /// Write a seeded random-weight checkpoint at a real model's widths (memory and speed checks).
    Synth(cli::synth::SynthArgs),
    /// Write a GGUF copy of a model with quantized linear layers (q8_0, q4_k, or q4_k_moe).
    Quantize(cli::quantize::QuantizeArgs),
    /// Throughput benchmarks: forward pass, decoder, trace recording overhead.
    Speed(cli::speed::SpeedArgs),
    /// Block-diffusion pretraining of a tiny LLaDA2 MoE from scratch (M2T + random-token T2T).
    Pretrain(draftscope::train::cli::PretrainArgs),
    /// LoRA training run with the `random` or `self` (self-generated T2T) objective.
    Train(draftscope::train::cli::TrainArgs),
    /// Fold a LoRA adapter into its base and write a full model directory.
    Merge(draftscope::train::cli::MergeArgs),
    /// Run benchmark suites through the decoder: accuracy, edit intensity, final-digit errors, over-correction.
    Bench(draftscope::bench::cli::BenchArgs),
    /// Run a grid (base + training arms × seeds), benchmark it and report paired statistics.
    Experiment(draftscope::bench::experiment_cli::ExperimentArgs),
    /// Where failed arithmetic answers first go wrong in saved traces, and which edit or commit wrote it.
    Origin(draftscope::bench::origin_cli::OriginArgs),
    /// Compare stored bench results: base vs adapters by checkpoint.
    Results(draftscope::bench::cli::ResultsArgs),
    /// Training throughput (tokens/s) for LoRA on both objectives.
    BenchTrain(draftscope::train::cli::BenchTrainArgs),
}

fn main() {
    // Die quietly on a closed pipe (`draftscope decode … | head`) instead of panicking.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    keep_freed_pages();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some((_, sub)) = matches.subcommand() {
        cli::apply_threads(sub);
    }
    let given = |name: &str| matches.subcommand_matches(name).map(cli::given_flags).unwrap_or_default();
    let result = match cli.command {
        Some(Command::Decode(a)) => cli::decode::run(a),
        Some(Command::Logits(a)) => cli::logits::run(a),
        Some(Command::World(a)) => draftscope::world::cli::run(a),
        Some(Command::Speed(a)) => cli::speed::run(a),
        Some(Command::Synth(a)) => cli::synth::run(a),
        Some(Command::Quantize(a)) => cli::quantize::run(a),
        Some(Command::Pretrain(mut a)) => {
            a.given = given("pretrain");
            draftscope::train::cli::pretrain(a)
        }
        Some(Command::Train(mut a)) => {
            a.given = given("train");
            draftscope::train::cli::train(a)
        }
        Some(Command::Merge(a)) => draftscope::train::cli::merge(a),
        Some(Command::Bench(a)) => draftscope::bench::cli::run(a),
        Some(Command::Experiment(a)) => draftscope::bench::experiment_cli::run(a),
        Some(Command::Origin(a)) => draftscope::bench::origin_cli::run(a),
        Some(Command::Results(a)) => draftscope::bench::cli::results(a),
        Some(Command::BenchTrain(a)) => draftscope::train::cli::bench_train(a),
        Some(Command::Tui(mut a)) => {
            a.plain = given("tui").is_empty();
            draftscope::tui::run(a)
        }
        Some(Command::Tour(a)) => draftscope::tui::run_tour(a),
        Some(Command::BenchTui(a)) => draftscope::tui::bench::run(a),
        Some(Command::DemoSessions(a)) => draftscope::tui::demo::run(a),
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            draftscope::tui::run(draftscope::tui::TuiArgs { plain: true, ..Default::default() })
        }
        None => {
            Cli::command().print_help().ok();
            Ok(())
        }
    };
    if let Err(e) = result {
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
}

/// candle allocates and frees every activation and gradient each step; by default mimalloc hands
/// freed pages back to the OS after 10 ms and the kernel zeroes them again on the next fault
/// (18% of a pretraining step in `perf`). Never purging makes a step ~10% faster; the process
/// keeps its peak footprint, which it reaches every step anyway. An explicit
/// `MIMALLOC_PURGE_DELAY` still wins.
fn keep_freed_pages() {
    // `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3); libmimalloc-sys names
    // no constant for it.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; valid at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
