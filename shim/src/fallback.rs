//! When the daemon did not answer: exec the thin `multinet` with the shim's own
//! arguments, environment and stdin (replayed from a memfd), so that a request,
//! DEL above all, never depends on the daemon.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::raw::{c_char, c_int, c_uint};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

extern "C" {
    static environ: *const *const c_char;
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
        -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn isatty(fd: c_int) -> c_int;
}

const MFD_CLOEXEC: c_uint = 1;
const SIGPIPE: c_int = 13;
const SIG_DFL: usize = 0;

/// The process environment as its raw `NAME=value` entries, in order.
pub fn environ_entries() -> Vec<&'static [u8]> {
    let mut out = Vec::new();
    // SAFETY: `environ` is the C runtime's NULL-terminated array of C strings;
    // nothing in this single-threaded program changes it.
    unsafe {
        let mut p = environ;
        if p.is_null() {
            return out;
        }
        while !(*p).is_null() {
            out.push(std::ffi::CStr::from_ptr(*p).to_bytes());
            p = p.add(1);
        }
    }
    out
}

/// File descriptor 0, unbuffered, never closed by the shim.
pub fn stdin_fd() -> std::mem::ManuallyDrop<File> {
    // SAFETY: fd 0 stays open for the life of the process; ManuallyDrop never closes it.
    std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(0) })
}

/// File descriptor 1, unbuffered, never closed by the shim.
pub fn stdout_fd() -> std::mem::ManuallyDrop<File> {
    // SAFETY: as for stdin_fd.
    std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(1) })
}

/// Whether stdin is a terminal (then it is not read, as by the Python shim).
pub fn stdin_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { isatty(0) == 1 }
}

/// Where stdin is kept for the thin executable.
pub enum Stdin {
    /// Not read (a terminal, or closed): left as it is.
    Untouched,
    /// All of it was read: these bytes.
    Read(Vec<u8>),
    /// Larger than the shim holds: the bytes read so far, then the rest of fd 0.
    Partial(Vec<u8>),
}

/// A descriptor holding `head` and then whatever is left on stdin, at offset 0.
fn replay_file(head: &[u8], rest_of_stdin: bool) -> std::io::Result<File> {
    // SAFETY: memfd_create returns a new descriptor that only this File owns.
    let fd = unsafe { memfd_create(b"multinet-stdin\0".as_ptr() as *const c_char, MFD_CLOEXEC) };
    let mut file = if fd >= 0 {
        unsafe { File::from_raw_fd(fd) }
    } else {
        tempfile()? // no memfd (old kernel, seccomp): an unlinked file
    };
    file.write_all(head)?;
    if rest_of_stdin {
        let mut stdin = stdin_fd();
        let mut chunk = vec![0u8; 1 << 20];
        loop {
            match stdin.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => file.write_all(&chunk[..n])?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

fn tempfile() -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    const O_TMPFILE: i32 = 0o20200000;
    let dir = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_TMPFILE)
        .open(dir)
}

/// The candidates in order: `explicit` alone when given; else `multinet` beside the
/// shim's own executable, then `multinet` in each PATH directory.
fn candidates(explicit: Option<&[u8]>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![PathBuf::from(OsStr::from_bytes(path))];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::fs::read_link("/proc/self/exe")
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        out.push(dir.join("multinet"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        out.push(dir.join("multinet"));
    }
    out
}

/// Execs the thin executable; returns only on failure: (the path tried, the error).
pub fn exec_thin(explicit: Option<&[u8]>, stdin: Stdin) -> (String, String) {
    let shown = |p: &Path| p.display().to_string();
    let first = candidates(explicit)
        .into_iter()
        .next()
        .unwrap_or_else(|| PathBuf::from("multinet"));
    let replay = match &stdin {
        Stdin::Untouched => None,
        Stdin::Read(data) => Some(replay_file(data, false)),
        Stdin::Partial(data) => Some(replay_file(data, true)),
    };
    if let Some(replay) = replay {
        let file = match replay {
            Ok(file) => file,
            Err(e) => return (shown(&first), format!("cannot keep stdin: {e}")),
        };
        // SAFETY: dup2 onto fd 0; the memfd's own descriptor closes on exec.
        if unsafe { dup2(file.as_raw_fd(), 0) } < 0 {
            let e = std::io::Error::last_os_error();
            return (shown(&first), format!("cannot replay stdin: {e}"));
        }
    }
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|a| CString::new(a.into_vec()).unwrap_or_default())
        .collect();
    // Rust ignores SIGPIPE; the thin executable gets the default, as from the runtime.
    // SAFETY: resetting a signal disposition.
    unsafe { signal(SIGPIPE, SIG_DFL) };
    let mut last: Option<(PathBuf, std::io::Error)> = None;
    for path in candidates(explicit) {
        let c_path = match CString::new(OsString::from(path.clone()).into_vec()) {
            Ok(c_path) => c_path,
            Err(_) => continue,
        };
        let mut argv: Vec<*const c_char> = vec![c_path.as_ptr()];
        argv.extend(args.iter().map(|a| a.as_ptr()));
        argv.push(std::ptr::null());
        // SAFETY: argv is NULL-terminated and its strings outlive the call; environ
        // is the process's own environment.
        unsafe { execve(c_path.as_ptr(), argv.as_ptr(), environ) };
        let e = std::io::Error::last_os_error();
        let missing = matches!(e.raw_os_error(), Some(2 | 20)); // ENOENT, ENOTDIR
                                                                // Like execvp: a missing candidate passes to the next one; the first real
                                                                // error (permission, format) is the one reported if none works.
        if last.as_ref().map_or(true, |(_, prev)| {
            matches!(prev.raw_os_error(), Some(2 | 20)) && !missing
        }) {
            last = Some((path, e));
        }
    }
    match last {
        Some((path, e)) => (shown(&path), crate::http::describe(&e)),
        None => (shown(&first), "no candidate".into()),
    }
}
