//! Files kmsim writes: each all or nothing (a file through a temporary name, a set of files
//! through a staging folder), with temporary names a later run recognises and removes.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::Failure;
use crate::report::trace;
use crate::scenario::Scenario;

/// A file kmsim could not read as text.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreadable {
    #[error("{path}: cannot read {what}: {source}")]
    Io { path: PathBuf, what: String, source: io::Error },
    #[error("{path}: not UTF-8: byte {offset} (line {line}, column {column}) is 0x{byte:02X}; save the file as UTF-8")]
    NotUtf8 { path: PathBuf, offset: usize, line: usize, column: usize, byte: u8 },
}

impl From<Unreadable> for Failure {
    fn from(e: Unreadable) -> Self {
        Failure::Input(e.to_string())
    }
}

/// The text of a file kmsim reads (a scenario, a sweep part), whole: UTF-8, a byte-order mark
/// at its start skipped; otherwise an error naming the file (`what` it is) and where its first
/// bad byte is.
pub(super) fn read_text(path: &Path, what: &str) -> Result<String, Unreadable> {
    let bytes = fs::read(path).map_err(|source| Unreadable::Io { path: path.into(), what: what.into(), source })?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let before = &body[..at];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            // Columns count characters, as the scenario's other messages do.
            let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
            let offset = at + (bytes.len() - body.len());
            Err(Unreadable::NotUtf8 { path: path.into(), offset, line, column, byte: body[at] })
        }
    }
}

/// Every `.ron` file at or under the given paths, sorted, without duplicates.
/// A file reached through several names (links, or a folder given twice) is checked once, under
/// the first name found; a folder is entered once, so links that loop end.
pub(super) fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    #[derive(Default)]
    struct Seen {
        dirs: BTreeSet<PathBuf>,
        files: BTreeSet<PathBuf>,
    }
    pub(super) fn add(path: PathBuf, seen: &mut Seen, out: &mut Vec<PathBuf>) -> io::Result<()> {
        if seen.files.insert(fs::canonicalize(&path)?) {
            out.push(path);
        }
        Ok(())
    }
    pub(super) fn walk(dir: &Path, seen: &mut Seen, out: &mut Vec<PathBuf>) -> io::Result<()> {
        if !seen.dirs.insert(fs::canonicalize(dir)?) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<io::Result<_>>()?;
        // A folder's own files before its subfolders', so a file is named where it lies.
        entries.sort_by_key(|p| (p.is_dir(), p.clone()));
        for path in entries {
            // Benchmark inputs (fleets of up to a million volumes) are not regression tests:
            // they are checked only when named.
            if path.is_dir() && path.file_name().is_some_and(|n| n != "bench") {
                walk(&path, seen, out)?;
            } else if path.is_file() && path.extension().is_some_and(|e| e == "ron") {
                add(path, seen, out)?;
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    let mut seen = Seen::default();
    for p in paths {
        let unreadable = |e: io::Error| Failure::Input(format!("{}: cannot read: {e}", p.display()));
        if p.is_dir() {
            walk(p, &mut seen, &mut files).map_err(unreadable)?;
        } else if p.exists() {
            add(p.clone(), &mut seen, &mut files).map_err(unreadable)?;
        } else {
            return Err(Failure::Input(format!("{}: no such file or folder", p.display())));
        }
    }
    files.sort();
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Failure::Input(format!("no scenario (.ron) files under {}", shown.join(", "))));
    }
    Ok(files)
}

/// A file written through a temporary name in the same folder and renamed into place by
/// [`AtomicFile::commit`], so a failure never leaves a half-written file behind: dropped
/// uncommitted, the temporary file is removed. A path that exists and is not a regular file
/// (`/dev/null`, a FIFO, a terminal) is written in place: renaming over it would replace the
/// device with a plain file. Temporary names carry the process id (`.NAME.PID.kmsim-tmp`), so
/// two runs writing one path at once do not share one; those a killed run left are removed.
pub(super) struct AtomicFile {
    path: PathBuf,
    /// `None` when writing in place.
    tmp: Option<PathBuf>,
    out: Option<BufWriter<fs::File>>,
}

impl AtomicFile {
    pub(super) fn create(path: &Path) -> Result<Self, Failure> {
        let name = path.file_name().ok_or_else(|| Failure::Output(format!("{}: not a file name", path.display())))?;
        let special = fs::metadata(path).is_ok_and(|m| !m.file_type().is_file());
        let name = name.to_string_lossy();
        if !special {
            remove_stale_temporaries(path.parent().unwrap_or(Path::new(".")), &name);
        }
        let tmp = (!special).then(|| path.with_file_name(temporary_name(&name, "kmsim-tmp")));
        let file = match &tmp {
            Some(tmp) => fs::File::create(tmp),
            None => fs::OpenOptions::new().write(true).open(path),
        }
        .map_err(|e| Failure::Output(format!("{}: cannot write: {e}", path.display())))?;
        Ok(AtomicFile { path: path.to_path_buf(), tmp, out: Some(BufWriter::with_capacity(1 << 20, file)) })
    }

    /// Moves the file now at the path (if a regular one) to a hidden name beside it and returns
    /// that name, for the caller to remove; a failure after this leaves neither file.
    pub(super) fn set_aside_earlier(&self) -> Option<PathBuf> {
        // A path written in place (a device, a FIFO) is never moved.
        self.tmp.as_ref()?;
        let name = self.path.file_name()?.to_string_lossy().to_string();
        let earlier = self.path.with_file_name(temporary_name(&name, "kmsim-old"));
        fs::rename(&self.path, &earlier).is_ok().then_some(earlier)
    }

    pub(super) fn writer(&mut self) -> &mut BufWriter<fs::File> {
        self.out.as_mut().expect("not committed yet")
    }

    pub(super) fn commit(mut self) -> Result<(), Failure> {
        let out = self.out.take().expect("committed once");
        // No fsync: the rename is what keeps a half-written file from ever bearing the name;
        // flushing gigabytes of trace to the disk before returning would only make the user wait.
        let result = out.into_inner().map(drop).map_err(io::IntoInnerError::into_error);
        let renamed = result.and_then(|()| self.tmp.as_ref().map_or(Ok(()), |tmp| replace(tmp, &self.path)));
        renamed.map_err(|e| self.error(&e))
    }

    pub(super) fn error(&self, e: &io::Error) -> Failure {
        Failure::Output(format!("{}: cannot write: {e}", self.path.display()))
    }
}

/// `.NAME.PID.KIND`: a temporary name of this process for `name`.
pub(super) fn temporary_name(name: &str, kind: &str) -> String {
    format!(".{name}.{}.{kind}", std::process::id())
}

/// Removes what a run of kmsim that no longer lives left for `name` in `dir`: temporary files and
/// set-aside earlier files (`.NAME.PID.kmsim-tmp`, `.NAME.PID.kmsim-old`) and report staging
/// folders. Where it cannot tell whether a process lives (no `/proc`), it leaves them.
pub(super) fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = file_name.strip_prefix(&prefix) else { continue };
        let Some((pid, kind)) = rest.split_once('.') else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let ours = matches!(kind, "kmsim-tmp" | "kmsim-old");
        if ours && pid != std::process::id() && process_gone(pid) {
            let path = entry.path();
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
}

/// Whether no process `pid` runs, as far as this system can tell.
pub(super) fn process_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Writes files into `dir` as a set (a report, a sweep's results): every file is written into a
/// staging folder inside `dir` (`.STEM.PID.kmsim-tmp`) first, and only once all are written, and
/// nothing stands in any one's way, are they moved into place; until then an earlier set in `dir`
/// stays whole, and a failure leaves it so.
pub(super) fn write_set(dir: &Path, stem: &str, files: &[(&'static str, Vec<u8>)]) -> Result<(), Failure> {
    let set = SetWriter::begin(dir, stem)?;
    for (name, bytes) in files {
        set.write(name, bytes)?;
    }
    set.commit(&files.iter().map(|(name, _)| *name).collect::<Vec<_>>())
}

/// A set of files being written (see [`write_set`]); a file may also be written straight to
/// its [`SetWriter::path`] (a trace, as the run goes).
pub(super) struct SetWriter {
    dir: PathBuf,
    staging: Staging,
}

impl SetWriter {
    pub(super) fn begin(dir: &Path, stem: &str) -> Result<Self, Failure> {
        let cannot = |what: &str, e: &dyn std::fmt::Display| Failure::Output(format!("{}: {what}: {e}", dir.display()));
        fs::create_dir_all(dir).map_err(|e| cannot("cannot create the folder", &e))?;
        remove_stale_temporaries(dir, stem);
        let staging = Staging(dir.join(temporary_name(stem, "kmsim-tmp")));
        fs::create_dir(&staging.0).map_err(|e| cannot("cannot write", &e))?;
        Ok(SetWriter { dir: dir.to_path_buf(), staging })
    }

    pub(super) fn cannot(&self, what: &str, e: &dyn std::fmt::Display) -> Failure {
        Failure::Output(format!("{}: {what}: {e}", self.dir.display()))
    }

    /// Where the set's file `name` is staged.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.staging.0.join(name)
    }

    pub(super) fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Failure> {
        fs::write(self.path(name), bytes).map_err(|e| self.cannot(&format!("cannot write {name}"), &e))
    }

    /// Moves the staged files `names` into place, once nothing stands in any one's way.
    pub(super) fn commit(self, names: &[&str]) -> Result<(), Failure> {
        for name in names {
            if fs::symlink_metadata(self.dir.join(name)).is_ok_and(|m| !m.file_type().is_file()) {
                return Err(Failure::Output(format!(
                    "{}: {name} is in the way (not a file): nothing was replaced",
                    self.dir.display()
                )));
            }
        }
        for name in names {
            replace(&self.path(name), &self.dir.join(name))
                .map_err(|e| self.cannot(&format!("cannot write {name}"), &e))?;
        }
        Ok(())
    }
}

/// A staging folder, removed with whatever is left in it.
pub(super) struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Puts `tmp` in place of `path`. The old file goes first: renaming over an existing file makes
/// ext4 (`auto_da_alloc`) start writing the new one to the disk inside the rename, which for a
/// gigabyte trace took about a second (and made the next run wait on the disk). The cost is a
/// moment in which neither file bears the name; a half-written file still never does.
pub(super) fn replace(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => fs::rename(tmp, path),
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp
            && (self.out.take().is_some() || tmp.exists())
        {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Runs `f` with a trace streaming to `path` as it goes (never held in memory, formatted and
/// written by a second thread), and puts the file in place once `f` and every write succeeded;
/// otherwise no file is left behind, not even the one that was there before.
pub(super) fn with_trace<T>(
    path: &Path,
    scenario: &Scenario,
    format: trace::Format,
    f: impl FnOnce(&mut trace::Handoff) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut file = AtomicFile::create(path)?;
    std::thread::scope(|scope| {
        // An earlier trace goes while the run does: freeing a gigabyte of page cache took a
        // fifth of a second, and the simulating core waits on the writing one anyway.
        if let Some(earlier) = file.set_aside_earlier() {
            scope.spawn(move || fs::remove_file(earlier));
        }
        // The stream buffers whole chunks itself: it writes them to the file, not through a copy.
        let (out, written) = trace::in_background(scenario, format, file.writer().get_mut(), f);
        let out = out?;
        written.map_err(|e| file.error(&e))?;
        Ok(out)
    })
    .and_then(|out| file.commit().map(|()| out))
}

/// Writes a whole file atomically (see [`AtomicFile`]).
pub(super) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> Result<(), Failure> {
    let mut file = AtomicFile::create(path)?;
    fill(file.writer()).map_err(|e| file.error(&e))?;
    file.commit()
}
