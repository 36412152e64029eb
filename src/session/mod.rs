//! Where traces, runs and results live on disk, and how we write them (atomically, with
//! ordinary permissions).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub mod run_dir;
pub use run_dir::RunDir;

/// Prefix of every temp file and directory we create beside its final path, so that the litter
/// a `kill -9` leaves can be recognised and removed on the next start.
pub const TEMP_PREFIX: &str = ".tmp";

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Prefix of the temp files of writers that do not own the directory they write in (the
/// workbench's launch record in a run directory): the owner's litter cleanup must not delete
/// them while they are being written.
pub const GUEST_TEMP_PREFIX: &str = ".guest-tmp";

/// A temp file in `dir` created with mode 0666 minus the umask, like any file a user writes
/// (tempfile's own default is 0600, which made traces and adapters unreadable to a group).
pub fn temp_file_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    temp_file_prefixed(dir, TEMP_PREFIX)
}

fn temp_file_prefixed(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir).with_context(|| format!("cannot create a temp file in {}", dir.display()))
}

/// A temp directory in `dir` (mode 0777 minus the umask), renamed into place by the caller.
pub fn temp_dir_in(dir: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut b = tempfile::Builder::new();
    b.prefix(TEMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o777));
    }
    b.tempdir_in(dir).with_context(|| format!("cannot create a temp directory in {}", dir.display()))
}

/// Writes `path` through a temp file in the same directory and a rename, so readers never see a
/// partial file and a crash leaves the old version intact. `fill` writes the content.
pub fn atomic_write_with(path: &Path, fill: impl FnOnce(&Path, &mut File) -> Result<()>) -> Result<()> {
    write_via(temp_file_in(&parent_dir(path))?, path, fill)
}

/// [`atomic_write`] for a writer in a directory another process owns and cleans up
/// ([`GUEST_TEMP_PREFIX`]).
pub fn atomic_write_as_guest(path: &Path, bytes: &[u8]) -> Result<()> {
    write_via(temp_file_prefixed(&parent_dir(path), GUEST_TEMP_PREFIX)?, path, |_, f| Ok(f.write_all(bytes)?))
}

fn write_via(
    mut tmp: tempfile::NamedTempFile,
    path: &Path,
    fill: impl FnOnce(&Path, &mut File) -> Result<()>,
) -> Result<()> {
    let tmp_path = tmp.path().to_path_buf();
    let mode = tmp.as_file().metadata().map(|m| m.permissions()).ok();
    fill(&tmp_path, tmp.as_file_mut()).with_context(|| format!("cannot write {}", path.display()))?;
    // A writer given the path (safetensors) may replace the file with one of its own, mode
    // 0600; give the result the ordinary mode the temp file was made with.
    if let Some(mode) = mode {
        std::fs::set_permissions(&tmp_path, mode).ok();
    }
    tmp.as_file().sync_all().ok();
    tmp.persist(path).map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

/// [`atomic_write_with`] for bytes in memory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |_, f| Ok(f.write_all(bytes)?))
}

/// Removes temp files and directories ([`TEMP_PREFIX`]) that an interrupted writer left in
/// `dir` and its subdirectories (down to `depth` levels). Only call this while holding the
/// directory's lock: a live writer's temp file looks the same.
pub fn remove_temp_litter(dir: &Path, depth: usize) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if name.to_string_lossy().starts_with(TEMP_PREFIX) {
            let ok = if is_dir { std::fs::remove_dir_all(e.path()) } else { std::fs::remove_file(e.path()) };
            removed += usize::from(ok.is_ok());
        } else if is_dir && depth > 0 {
            removed += remove_temp_litter(&e.path(), depth - 1);
        }
    }
    removed
}

/// The lock file [`DirLock`] holds in its directory.
pub const LOCK_FILE: &str = ".lock";

/// An advisory exclusive lock on a directory (`DIR/.lock`), held until dropped. Two writers of
/// one run directory would interleave metrics and checkpoints; the second is refused.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock or says who holds it (`what` names the directory's role, e.g. "run").
    pub fn acquire(dir: &Path, what: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let p = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .with_context(|| format!("cannot open {}", p.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "{}: this {what} is in use by another draftscope process (it holds {}); wait for it to finish or stop it",
                dir.display(),
                p.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", p.display())),
        }
    }
}

/// The session data directory (traces, results, runs): `--sessions DIR`, else
/// `DRAFTSCOPE_SESSIONS`, else the platform data dir.
pub fn data_dir(override_dir: Option<&Path>) -> PathBuf {
    if let Some(d) = override_dir {
        return d.to_path_buf();
    }
    if let Ok(d) = std::env::var("DRAFTSCOPE_SESSIONS") {
        return PathBuf::from(d);
    }
    directories::ProjectDirs::from("org", "draftscope", "draftscope")
        .map(|p| p.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".draftscope"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        atomic_write(&p, b"first").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_gives_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        atomic_write(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        // 0666 minus whatever umask the test runs under: readable by the group at least
        // unless the umask forbids it, and never the tempfile default 0600 under umask 022.
        let umask = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        assert_eq!(mode, 0o666 & !(umask as u32));
    }

    #[test]
    fn temp_litter_is_removed_and_other_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/.tmp-x1/inner")).unwrap();
        std::fs::write(dir.path().join("a/.tmpABC"), b"").unwrap();
        std::fs::write(dir.path().join("a/keep.json"), b"{}").unwrap();
        assert_eq!(remove_temp_litter(dir.path(), 3), 2);
        assert!(dir.path().join("a/keep.json").exists());
        assert!(!dir.path().join("a/.tmpABC").exists());
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "run").unwrap();
        let err = DirLock::acquire(dir.path(), "run").unwrap_err().to_string();
        assert!(err.contains("in use by another draftscope process"), "{err}");
        drop(first);
        DirLock::acquire(dir.path(), "run").unwrap();
    }
}
