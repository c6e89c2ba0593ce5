//! Inputs read in several passes: a regular file is opened again for each; a pipe, a FIFO or
//! `/dev/fd/N` (anything that cannot be read twice) is read once into a private spool file
//! that each pass reads from its start. Also the stop flag every pass checks.
//!
//! The spool is created 0600 and unlinked at once, before a byte is written: it is reachable
//! only through this process's open file, and the kernel frees it however the process ends
//! (an error, a signal, SIGKILL). Nothing here talks to MTurk or the journal.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by a signal: every pass over an input ends within [`ROWS_PER_STOP_CHECK`] rows.
static STOP: AtomicBool = AtomicBool::new(false);

/// Rows a pass reads between two looks at the stop flag.
pub const ROWS_PER_STOP_CHECK: u64 = 1024;

/// Asks every pass over an input, under way or to come, to end early. A pass that ends so
/// returns an error that [`stop_requested`] tells apart from a problem of the file.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// What a pass returns when it ended on request.
pub(crate) const STOPPED: &str = "reading stopped on request";

/// An input file as the passes read it.
#[derive(Debug)]
pub struct Input {
    path: PathBuf,
    /// The bytes of a non-seekable input, read once.
    spool: Option<File>,
}

impl Input {
    /// `path` as given. Anything but a regular file (or a directory) is read to its end now, into a spool file
    /// in `spool_dir` (or the system's temporary directory when that does not exist).
    pub fn open(path: &Path, spool_dir: Option<&Path>) -> io::Result<Input> {
        // A path that cannot be looked at, or a directory, is left to the first pass to
        // refuse, with the message every pass gives.
        let seekable = std::fs::metadata(path).map_or(true, |m| m.is_file() || m.is_dir());
        if seekable {
            return Ok(Input {
                path: path.to_owned(),
                spool: None,
            });
        }
        let dir = spool_dir
            .filter(|d| d.is_dir())
            .map(Path::to_owned)
            .unwrap_or_else(std::env::temp_dir);
        let mut spool = private_unlinked_file(&dir)?;
        let mut src = File::open(path)?;
        copy_until_stopped(&mut src, &mut spool)?;
        Ok(Input {
            path: path.to_owned(),
            spool: Some(spool),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the input was read into a spool (it could not be read twice).
    pub fn spooled(&self) -> bool {
        self.spool.is_some()
    }

    /// How many bytes the input holds, when that can be known.
    pub fn size(&self) -> Option<u64> {
        match &self.spool {
            None => std::fs::metadata(&self.path).ok().map(|m| m.len()),
            Some(f) => f.metadata().ok().map(|m| m.len()),
        }
    }

    /// A reader from the input's first byte: the file opened again, or the spool.
    pub fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        match &self.spool {
            None => Ok(Box::new(File::open(&self.path)?)),
            Some(f) => Ok(Box::new(SpoolReader { file: f, at: 0 })),
        }
    }
}

/// Reads a spool from its start with positioned reads, so that passes never share an offset.
struct SpoolReader<'a> {
    file: &'a File,
    at: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Copies `src` to its end into `dst`, looking at the stop flag between reads.
fn copy_until_stopped(src: &mut File, dst: &mut File) -> io::Result<()> {
    use std::io::Write;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if stop_requested() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, STOPPED));
        }
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
    }
    dst.flush()
}

/// A new file in `dir`, readable only by its owner, already removed from the directory.
fn private_unlinked_file(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    for attempt in 0..100u32 {
        let name = dir.join(format!(
            ".payout-spool-{}-{}-{attempt}",
            std::process::id(),
            fastrand::u64(..)
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&name)
        {
            Ok(f) => {
                std::fs::remove_file(&name)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no spool file name was free"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_read_once_and_every_pass_reads_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, b"a,b\n1,2\n").unwrap())
        };
        let input = Input::open(&fifo, Some(dir.path())).unwrap();
        writer.join().unwrap();
        assert!(input.spooled());
        for _ in 0..2 {
            let mut text = String::new();
            input.reader().unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, "a,b\n1,2\n");
        }
        // Nothing is left in the directory but the FIFO itself.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
