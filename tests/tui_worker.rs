//! The model thread on the reference fixture: it streams every step of a run before the final
//! trace, the app rebuilds the same trace from the stream, and a cancel stops a run early.

use std::sync::mpsc::{channel, sync_channel};
use std::time::Duration;

use draftscope::decode::DecodeSpec;
use draftscope::decode::session::ModelArgs;
use draftscope::model::{DeviceKind, DtypeKind};
use draftscope::tui::app::{Action, App, DecodeAction, ModelState};
use draftscope::tui::settings::Settings;
use draftscope::tui::worker::{RunRequest, Worker, WorkerEvent};

fn fixture() -> ModelArgs {
    ModelArgs {
        model: Some(format!("{}/tests/fixtures/llada2-tiny", env!("CARGO_MANIFEST_DIR"))),
        adapter: None,
        device: DeviceKind::Cpu,
        dtype: DtypeKind::F32,
        threads: 0,
    }
}

fn settings(gen_length: usize) -> Settings {
    Settings::new(
        DecodeSpec { block_length: 8, gen_length, eos_early_stop: false, ..DecodeSpec::default() },
        None,
    )
}

#[test]
fn a_run_streams_every_step_and_the_app_rebuilds_the_final_trace() {
    let (tx, rx) = channel();
    let w = Worker::spawn(fixture(), move |e| {
        tx.send(e).ok();
    });
    let mut app = App::new(settings(32));
    let next = || rx.recv_timeout(Duration::from_secs(60)).expect("worker event");
    loop {
        let ev = next();
        let ready = matches!(ev, WorkerEvent::ModelReady(_));
        app.on_worker(ev);
        if ready {
            break;
        }
    }
    assert!(matches!(app.model, ModelState::Ready(_)));
    assert_eq!(app.decode.prompt.text, "409,191,80,91,337", "no tokenizer: the sample prompt is ids");
    app.update(Action::Decode(DecodeAction::Run));
    let Some(draftscope::tui::app::Effect::Run(req)) = app.effects.pop() else { panic!("no run queued") };
    w.run(*req);
    let mut steps = 0;
    let final_trace = loop {
        let ev = next();
        match &ev {
            WorkerEvent::Step { .. } => steps += 1,
            WorkerEvent::Done { trace, .. } => {
                let t = (**trace).clone();
                // Before the final trace lands, the streamed one matches it step for step.
                let live = &app.decode.doc.as_ref().unwrap().trace;
                assert_eq!(live.blocks.len(), t.blocks.len());
                for (a, b) in live.blocks.iter().zip(&t.blocks) {
                    assert_eq!(a.steps, b.steps);
                }
                // How each finished block ended is inferred as the next one begins (the last
                // block's end arrives with the final trace).
                let n = t.blocks.len();
                for (a, b) in live.blocks[..n - 1].iter().zip(&t.blocks) {
                    assert_eq!(a.ended_by, b.ended_by, "block {}", b.block);
                }
                assert_eq!(live.final_canvas, t.final_canvas);
                app.on_worker(ev);
                break t;
            }
            WorkerEvent::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
        app.on_worker(ev);
    };
    assert_eq!(steps, final_trace.forward_calls);
    assert_eq!(final_trace.forward_calls, 54, "the fixture's Q-mode decode (decode CLI: 54 forwards)");
    assert!(!app.is_running());
    w.shutdown();
}

#[test]
fn cancel_stops_a_running_decode_after_the_current_step() {
    // A rendezvous channel: the worker cannot run ahead of the events this test has read,
    // so "step 3 seen" means the worker is at most one forward further when cancel lands.
    let (tx, rx) = sync_channel(0);
    let w = Worker::spawn(fixture(), move |e| {
        tx.send(e).ok();
    });
    w.run(RunRequest { run_id: 7, prompt: "409,191,80,91,337".into(), settings: settings(2048) });
    let next = || rx.recv_timeout(Duration::from_secs(60)).expect("worker event");
    let mut steps = 0;
    let trace = loop {
        match next() {
            WorkerEvent::Step { run_id, .. } => {
                assert_eq!(run_id, 7);
                steps += 1;
                if steps == 3 {
                    w.cancel();
                }
            }
            WorkerEvent::Done { trace, .. } => break trace,
            WorkerEvent::Failed { error, .. } => panic!("{error}"),
            _ => {}
        }
    };
    assert!(trace.cancelled);
    assert!(trace.forward_calls <= 4, "stopped within a step of the cancel: {}", trace.forward_calls);
    w.shutdown();
}
