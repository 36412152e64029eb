//! `draftscope bench-tui`: how fast a big trace opens and a frame renders (a benchmark, not a
//! test). Without `--trace` it writes a synthetic trace of `--tokens` generated tokens (blocks
//! of 32, top-5 alternatives at every position and step) to a temp file and opens that.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{Action, App, DecodeAction, Focus};
use super::view::StepRef;

#[derive(Debug, Args)]
pub struct BenchTuiArgs {
    /// Generated tokens of the synthetic trace.
    #[arg(long, default_value_t = 16384)]
    pub tokens: usize,
    /// Bench this trace file instead of a synthetic one.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Frames to render.
    #[arg(long, default_value_t = 200)]
    pub frames: usize,
    #[arg(long, default_value_t = 200)]
    pub width: u16,
    #[arg(long, default_value_t = 50)]
    pub height: u16,
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (mean, v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

pub fn run(args: BenchTuiArgs) -> Result<()> {
    let _tmp;
    let path = match &args.trace {
        Some(p) => p.clone(),
        None => {
            let t0 = Instant::now();
            let trace = super::synthetic::synthetic(args.tokens);
            let dir = tempfile::tempdir()?;
            let p = dir.path().join("synthetic.json");
            trace.save(&p)?;
            println!(
                "synthetic trace: {} generated tokens, {} blocks, {} steps, {:.1} MB (written in {:.0} ms)",
                trace.output.len(),
                trace.blocks.len(),
                trace.forward_calls,
                std::fs::metadata(&p)?.len() as f64 / 1e6,
                t0.elapsed().as_secs_f64() * 1e3
            );
            _tmp = dir;
            p
        }
    };
    // Open: read + parse + index, best of 3 (the first run warms the page cache).
    let mut opens = Vec::new();
    let mut doc = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let d = super::open_doc(&path)?;
        opens.push(t0.elapsed().as_secs_f64() * 1e3);
        doc = Some(d);
    }
    let doc = doc.expect("opened");
    let open_best = opens.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "open {}: best {:.1} ms, runs {:?} ms (target < 300 ms)",
        path.display(),
        open_best,
        opens.iter().map(|x| (x * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    let n_steps = doc.index.len();
    let mut app = App::default();
    app.open_doc(doc.clone());
    app.decode.focus = Focus::Tokens;
    let mut term = Terminal::new(TestBackend::new(args.width, args.height))?;
    let mut frame_ms = Vec::new();
    for i in 0..args.frames {
        // Wander over the trace: far jumps and single steps, selection moving.
        let f = (i * 7919) % n_steps.max(1);
        let r = app.decode.doc.as_ref().map(|d| d.index.steps[f]).unwrap_or(StepRef::default());
        app.update(Action::Decode(DecodeAction::Goto(r)));
        app.update(Action::Decode(DecodeAction::Select(i % 32)));
        let t0 = Instant::now();
        term.draw(|fr| {
            super::panels::draw(fr, &app);
        })?;
        frame_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let (mean, p50, p99) = stats(frame_ms);
    println!(
        "frame {}x{} over {} frames: mean {:.2} ms, median {:.2} ms, p99 {:.2} ms (target < 5 ms)",
        args.width, args.height, args.frames, mean, p50, p99
    );
    // Diff view: the same trace against itself (every visible step compared).
    app.decode.other = Some(doc);
    app.decode.diff = true;
    let mut diff_ms = Vec::new();
    for i in 0..args.frames {
        let f = (i * 104729) % n_steps.max(1);
        let r = app.decode.doc.as_ref().map(|d| d.index.steps[f]).unwrap_or(StepRef::default());
        app.update(Action::Decode(DecodeAction::Goto(r)));
        let t0 = Instant::now();
        term.draw(|fr| {
            super::panels::draw(fr, &app);
        })?;
        diff_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let (mean, p50, p99) = stats(diff_ms);
    println!("frame in diff view: mean {:.2} ms, median {:.2} ms, p99 {:.2} ms", mean, p50, p99);
    Ok(())
}
