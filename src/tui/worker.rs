//! The worker thread that owns the model. The UI sends it requests and gets step events back;
//! it never touches the model itself, so typing and scrolling stay live during a decode.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use anyhow::Result;

use super::settings::Settings;
use crate::decode::session::{self, ModelArgs, Prompt};
use crate::decode::trace::StepTrace;
use crate::decode::{BlockEnd, DecodeEvent, Trace};
use crate::model::LoadedModel;

/// What the UI knows about the loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    pub adapter: Option<String>,
    pub has_tokenizer: bool,
    pub eos_id: u32,
    pub mask_id: u32,
    pub vocab_size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub run_id: u64,
    /// Prompt text, or comma-separated ids when the model has no tokenizer.
    pub prompt: String,
    pub settings: Settings,
}

pub enum Request {
    Run(Box<RunRequest>),
    Shutdown,
}

#[derive(Debug, Clone)]
pub enum WorkerEvent {
    ModelLoading(String),
    ModelReady(ModelInfo),
    ModelFailed(String),
    /// A run began: the trace so far (parameters, prompt, no blocks).
    Started {
        run_id: u64,
        trace: Box<Trace>,
    },
    /// One decoding step, with the texts of token ids not sent before in this run.
    Step {
        run_id: u64,
        block: usize,
        block_start: usize,
        step: Box<StepTrace>,
        texts: Vec<(u32, String)>,
    },
    /// A block ended.
    BlockEnd {
        run_id: u64,
        block: usize,
        block_start: usize,
        ended_by: BlockEnd,
    },
    Done {
        run_id: u64,
        trace: Box<Trace>,
    },
    Failed {
        run_id: u64,
        error: String,
    },
}

/// The model thread's name (the panic hook leaves its panics to it).
pub const THREAD_NAME: &str = "draftscope-model";

/// Handle to the worker thread.
pub struct Worker {
    tx: Sender<Request>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread; it loads the model (`args.model`, None = the embedded default) at once
    /// and reports through `emit`.
    pub fn spawn(args: ModelArgs, emit: impl Fn(WorkerEvent) + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let handle = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || worker_loop(args, rx, c, &emit))
            .expect("cannot start the model thread");
        Self { tx, cancel, handle: Some(handle) }
    }

    pub fn run(&self, req: RunRequest) {
        self.tx.send(Request::Run(Box::new(req))).ok();
    }

    /// Stops the running decode (if any) after its current step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Asks the thread to stop; does not wait for a forward pass in flight.
    pub fn shutdown(mut self) {
        self.cancel();
        self.tx.send(Request::Shutdown).ok();
        drop(self.handle.take());
    }
}

struct Loaded {
    lm: LoadedModel,
    adapter: Option<PathBuf>,
}

fn load(args: &ModelArgs, adapter: Option<&PathBuf>, emit: &dyn Fn(WorkerEvent)) -> Option<Loaded> {
    let name = args.model.clone().unwrap_or_else(|| "the embedded model".into());
    emit(WorkerEvent::ModelLoading(name));
    let mut a = args.clone();
    a.adapter = adapter.cloned();
    match session::load(&a) {
        Ok(lm) => {
            emit(WorkerEvent::ModelReady(ModelInfo {
                id: lm.id.clone(),
                adapter: lm.adapter.clone(),
                has_tokenizer: lm.codec.has_tokenizer(),
                eos_id: lm.model.cfg.eos_token_id,
                mask_id: lm.model.cfg.mask_token_id,
                vocab_size: lm.model.cfg.vocab_size,
            }));
            Some(Loaded { lm, adapter: adapter.cloned() })
        }
        Err(e) => {
            emit(WorkerEvent::ModelFailed(format!("{e:#}").replace('\n', " ")));
            None
        }
    }
}

fn worker_loop(args: ModelArgs, rx: Receiver<Request>, cancel: Arc<AtomicBool>, emit: &dyn Fn(WorkerEvent)) {
    let mut model = load(&args, args.adapter.as_ref(), emit);
    while let Ok(req) = rx.recv() {
        let req = match req {
            Request::Shutdown => return,
            Request::Run(r) => r,
        };
        cancel.store(false, Ordering::SeqCst);
        let want = req.settings.active_adapter().cloned();
        if model.as_ref().is_none_or(|m| m.adapter != want) {
            model = load(&args, want.as_ref(), emit);
        }
        let Some(m) = &model else {
            emit(WorkerEvent::Failed { run_id: req.run_id, error: "no model is loaded".into() });
            continue;
        };
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_one(&m.lm, &req, &cancel, emit)));
        let error = match r {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => format!("{e:#}").replace('\n', " "),
            Err(p) => format!(
                "the decoder panicked: {}",
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or(p.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            ),
        };
        emit(WorkerEvent::Failed { run_id: req.run_id, error });
    }
}

fn run_one(
    lm: &LoadedModel,
    req: &RunRequest,
    cancel: &AtomicBool,
    emit: &dyn Fn(WorkerEvent),
) -> Result<()> {
    let (text, ids) = if lm.codec.has_tokenizer() {
        lm.codec.prompt(Some(&req.prompt), None, req.settings.chat)?
    } else {
        lm.codec.prompt(None, Some(&req.prompt), false)?
    };
    let mask_id = req.settings.params(lm.model.cfg.eos_token_id, lm.model.cfg.mask_token_id).mask_id;
    // Token texts travel once per run: the head carries the prompt's, each step the new ones.
    let mut sent: HashSet<u32> = HashSet::new();
    let mut texts_for = |tokens: &mut dyn Iterator<Item = u32>| -> Vec<(u32, String)> {
        if !lm.codec.has_tokenizer() {
            return Vec::new();
        }
        tokens.filter(|&t| t != mask_id && sent.insert(t)).map(|t| (t, lm.codec.token_text(t))).collect()
    };
    let run_id = req.run_id;
    session::run(lm.into(), &Prompt { text, ids }, &req.settings.spec, &mut |ev| {
        match ev {
            DecodeEvent::Start { trace } => {
                texts_for(&mut trace.token_text.keys().copied());
                emit(WorkerEvent::Started { run_id, trace: Box::new(trace.clone()) });
            }
            DecodeEvent::Step { block, block_start, step: s, .. } => {
                let mut toks = s
                    .after
                    .iter()
                    .copied()
                    .chain(
                        s.positions
                            .iter()
                            .flat_map(|r| std::iter::once(r.argmax).chain(r.top.iter().map(|t| t.0))),
                    )
                    .chain(s.edits.iter().map(|e| e.from))
                    .chain(s.remasks.iter().map(|r| r.from));
                let texts = texts_for(&mut toks);
                emit(WorkerEvent::Step { run_id, block, block_start, step: Box::new(s.clone()), texts });
                if cancel.load(Ordering::SeqCst) {
                    return ControlFlow::Break(());
                }
            }
            DecodeEvent::BlockEnd { block, block_start, ended_by } => {
                emit(WorkerEvent::BlockEnd { run_id, block, block_start, ended_by })
            }
            DecodeEvent::Done { trace } => emit(WorkerEvent::Done { run_id, trace: Box::new(trace.clone()) }),
        }
        ControlFlow::Continue(())
    })?;
    Ok(())
}
