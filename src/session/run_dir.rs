//! The run-directory format, owned in one place: where a training run keeps its run file,
//! metrics, checkpoints, lock, and the launcher's log and record; and the processes that write
//! it (spawned detached, signalled, checked by pid).
//!
//! ```text
//! RUN/run.json                 written by the trainer (config, status, pid, step, evals)
//! RUN/metrics.jsonl            one line per step (a partial last line is skipped by readers)
//! RUN/checkpoints/step-N/      state.json + the adapter (LoRA) or a full model (pretraining)
//! RUN/launch.json              written by the launcher: pid, arguments, start step
//! RUN/train.log                the process's stdout + stderr (appended on resume)
//! RUN/.lock                    held by the one process writing the run
//! ```

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// A run directory (it need not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub const RUN_FILE: &'static str = "run.json";
    pub const METRICS_FILE: &'static str = "metrics.jsonl";
    pub const CHECKPOINTS: &'static str = "checkpoints";
    /// The log a launcher (the workbench) writes a run's output to, created before the run starts.
    pub const LOG_FILE: &'static str = "train.log";
    /// The launcher's record of the process it started (pid, arguments), written beside the log.
    pub const LAUNCH_FILE: &'static str = "launch.json";
    /// The run config the workbench writes for `train --config FILE`.
    pub const CONFIG_FILE: &'static str = "launch-config.json";
    const LOCK_FILE: &'static str = super::LOCK_FILE;

    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `<data dir>/runs/<name>`.
    pub fn named(data_dir: &Path, name: &str) -> Self {
        Self::new(runs_dir(data_dir).join(name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_file(&self) -> PathBuf {
        self.path.join(Self::RUN_FILE)
    }

    pub fn metrics_file(&self) -> PathBuf {
        self.path.join(Self::METRICS_FILE)
    }

    pub fn log_file(&self) -> PathBuf {
        self.path.join(Self::LOG_FILE)
    }

    pub fn launch_file(&self) -> PathBuf {
        self.path.join(Self::LAUNCH_FILE)
    }

    pub fn config_file(&self) -> PathBuf {
        self.path.join(Self::CONFIG_FILE)
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join(Self::CHECKPOINTS)
    }

    /// `checkpoints/step-N`.
    pub fn checkpoint(&self, step: usize) -> PathBuf {
        self.checkpoints_dir().join(format!("step-{step}"))
    }

    /// The adapter a LoRA checkpoint saved.
    pub fn adapter(&self, step: usize) -> PathBuf {
        self.checkpoint(step).join("adapter")
    }

    /// Whether a trainer has written this run (its run file exists).
    pub fn has_run(&self) -> bool {
        self.run_file().exists()
    }

    /// Whether a run was started or launched here (a new run must pick another name).
    pub fn is_taken(&self) -> bool {
        self.has_run() || self.launch_file().exists()
    }

    /// Finished checkpoints (those with a `state.json`), oldest first.
    pub fn checkpoints(&self) -> Vec<(usize, PathBuf)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.checkpoints_dir()) else { return out };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_prefix("step-").and_then(|s| s.parse::<usize>().ok())
                && e.path().join("state.json").exists()
            {
                out.push((n, e.path()));
            }
        }
        out.sort();
        out
    }

    /// The one-writer lock of the run (see [`super::DirLock`]).
    pub fn lock(&self) -> Result<super::DirLock> {
        super::DirLock::acquire(&self.path, "run")
    }

    /// Files that may be in a run directory before its run file: the launcher's log, record and
    /// config, the lock, and temp litter of an interrupted start. A directory holding only these
    /// counts as empty.
    pub fn is_launcher_file(name: &str) -> bool {
        [Self::LOG_FILE, Self::LAUNCH_FILE, Self::CONFIG_FILE, Self::LOCK_FILE].contains(&name)
            || name.starts_with(super::TEMP_PREFIX)
            || name.starts_with(super::GUEST_TEMP_PREFIX)
    }

    pub fn read_launch(&self) -> Option<LaunchRecord> {
        std::fs::read_to_string(self.launch_file()).ok().and_then(|t| serde_json::from_str(&t).ok())
    }

    pub fn write_launch(&self, rec: &LaunchRecord) -> Result<()> {
        // The launched trainer owns the directory and removes `.tmp*` litter as it starts,
        // possibly while this is being written.
        super::atomic_write_as_guest(&self.launch_file(), serde_json::to_string_pretty(rec)?.as_bytes())
    }

    /// The checkpoint an adapter directory is, when it is one of a run's
    /// (`RUN/checkpoints/step-N/adapter` or `RUN/checkpoints/step-N`), read from the path's
    /// components.
    pub fn checkpoint_of(adapter: &Path) -> Option<CheckpointRef> {
        let mut dir = adapter;
        if dir.file_name().is_some_and(|n| n == "adapter") {
            dir = dir.parent()?;
        }
        let step = dir.file_name()?.to_str()?.strip_prefix("step-")?.parse().ok()?;
        let root = dir.parent()?;
        if root.file_name()? != Self::CHECKPOINTS {
            return None;
        }
        Some(CheckpointRef { run: RunDir::new(root.parent()?), step })
    }
}

/// A checkpoint of a training run: which run, which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRef {
    pub run: RunDir,
    pub step: usize,
}

/// The runs folder of a session data directory.
pub fn runs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runs")
}

/// What the launcher wrote when it started a process in a run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchRecord {
    pub pid: u32,
    pub args: Vec<String>,
    pub unix_time: u64,
    /// The step the process starts from (the last checkpoint when resuming, else 0).
    pub start_step: usize,
    pub resume: bool,
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether process `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks for the process; it sends nothing.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        let alive = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            return false;
        }
        // Exited but not yet reaped by its parent: not running.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => !s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => true,
        }
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Whether `pid` is alive and (where the OS tells) still runs one of `subcommands` — a
/// recycled pid belonging to another program does not count.
pub fn pid_runs(pid: u32, subcommands: &[&str]) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) if !raw.is_empty() => {
            raw.split(|&b| b == 0).any(|a| subcommands.iter().any(|s| a == s.as_bytes()))
        }
        _ => true,
    }
}

/// Sends SIGINT to `pid` (the trainer checkpoints, marks the run cancelled and exits).
pub fn interrupt(pid: u32) -> Result<()> {
    if pid == 0 || pid > i32::MAX as u32 {
        anyhow::bail!("bad pid {pid}");
    }
    #[cfg(unix)]
    {
        // SAFETY: plain kill(2) on a pid we read from the run directory.
        let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        if r != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("cannot signal pid {pid}"));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        anyhow::bail!("cancelling needs a Unix system")
    }
}

/// Starts `exe args` detached (own session, no terminal, stdout and stderr appended to `log`,
/// `DRAFTSCOPE_SESSIONS=data_dir`) so it outlives the launcher; a thread reaps it if it ends
/// first. Returns the pid.
pub fn spawn_detached(exe: &Path, args: &[String], data_dir: &Path, log: &Path) -> Result<u32> {
    if let Some(p) = log.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .env("DRAFTSCOPE_SESSIONS", data_dir)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal and
        // process group, so closing the terminal or quitting the launcher leaves it running.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id();
    std::thread::Builder::new()
        .name("draftscope-reaper".into())
        .spawn(move || {
            child.wait().ok();
        })
        .ok();
    Ok(pid)
}

/// Splits a flag line as a shell would split words: whitespace separates, '…' and "…" quote
/// (so paths with spaces survive), a backslash escapes the next character.
pub fn split_args(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => anyhow::bail!("the flags end in a lone backslash"),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        anyhow::bail!("the flags have an unclosed {q}");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Quotes an argument for [`split_args`] when it needs it.
pub fn quote_arg(a: &str) -> String {
    if !a.is_empty() && !a.chars().any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\')) {
        return a.to_string();
    }
    format!("'{}'", a.replace('\'', r"'\''"))
}

/// A process for the workbench to start: the binary, its arguments, where its output goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The draftscope binary.
    pub exe: PathBuf,
    pub args: Vec<String>,
    /// Session data directory (`DRAFTSCOPE_SESSIONS` of the child: evals land in its results).
    pub data_dir: PathBuf,
    /// Where stdout and stderr go (appended).
    pub log: PathBuf,
    pub kind: LaunchKind,
}

/// What a launch is: a training run (owning a run directory) or a bench job.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchKind {
    /// `train` / `pretrain`: the run directory gets `launch.json`; the step it starts from.
    Train { run: RunDir, start_step: usize, resume: bool },
    /// `bench`: tracked by pid until it exits; its results land in the results store.
    Bench,
}

/// Starts the process detached (it outlives the workbench) and, for a training run, records
/// the launch in its run directory. Returns the pid.
pub fn spawn(l: &Launch) -> Result<u32> {
    let pid = spawn_detached(&l.exe, &l.args, &l.data_dir, &l.log)?;
    if let LaunchKind::Train { run, start_step, resume } = &l.kind {
        let rec = LaunchRecord {
            pid,
            args: l.args.clone(),
            unix_time: unix_now(),
            start_step: *start_step,
            resume: *resume,
        };
        run.write_launch(&rec)?;
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_files_have_fixed_names_under_the_run() {
        let r = RunDir::named(Path::new("/d"), "self-a");
        assert_eq!(r.run_file(), Path::new("/d/runs/self-a/run.json"));
        assert_eq!(r.metrics_file(), Path::new("/d/runs/self-a/metrics.jsonl"));
        assert_eq!(r.adapter(300), Path::new("/d/runs/self-a/checkpoints/step-300/adapter"));
        assert!(RunDir::is_launcher_file("train.log") && RunDir::is_launcher_file(".tmp123"));
        assert!(!RunDir::is_launcher_file("run.json"));
    }

    #[test]
    fn an_adapter_path_names_its_run_and_step() {
        let r = RunDir::named(Path::new("/data dir"), "self a");
        assert_eq!(RunDir::checkpoint_of(&r.adapter(300)), Some(CheckpointRef { run: r.clone(), step: 300 }));
        assert_eq!(RunDir::checkpoint_of(&r.checkpoint(5)).map(|c| c.step), Some(5));
        assert_eq!(RunDir::checkpoint_of(Path::new("/x/step-5/adapter")), None);
        assert_eq!(RunDir::checkpoint_of(Path::new("/x/adapter")), None);
    }

    #[test]
    fn flags_split_like_shell_words_so_paths_with_spaces_survive() {
        let line =
            format!("--suite arith --adapter {} --note \"a \\\"b\\\"\"", quote_arg("/my runs/it's/adapter"));
        assert_eq!(
            split_args(&line).unwrap(),
            ["--suite", "arith", "--adapter", "/my runs/it's/adapter", "--note", "a \"b\""]
        );
        assert_eq!(split_args("  a  ''  b ").unwrap(), ["a", "", "b"]);
        assert_eq!(split_args("--x 'open").unwrap_err().to_string(), "the flags have an unclosed '");
    }

    #[test]
    fn pid_zero_and_a_dead_child_are_not_alive() {
        assert!(!pid_alive(0));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert!(!pid_alive(pid) || !pid_runs(pid, &["train"]));
        assert!(pid_alive(std::process::id()));
    }
}
