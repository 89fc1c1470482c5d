//! One HTTP/1.1 exchange over a unix socket, with bounds: a connect timeout, one
//! deadline for the whole answer and a size limit. Anything short of a complete
//! `HTTP/1.x 200` whose Content-Length matches its body is an `Err(reason)`.

use std::io::{ErrorKind, Read, Write};
use std::os::raw::{c_int, c_long, c_void};
use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The answer's body at most; a larger one is "the daemon did not answer".
pub const MAX_BODY: usize = 16 << 20;
/// The status line and headers at most.
pub const MAX_HEAD: usize = 64 << 10;

extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    fn close(fd: c_int) -> c_int;
}

const AF_UNIX: c_int = 1;
const SOCK_STREAM: c_int = 1;
const SOCK_CLOEXEC: c_int = 0o2000000;
const SOL_SOCKET: c_int = 1;
const SO_SNDTIMEO: c_int = 21;

#[repr(C)]
struct Timeval {
    sec: c_long,
    usec: c_long,
}

#[repr(C)]
struct SockaddrUn {
    family: u16,
    path: [u8; 108],
}

fn os_error(what: &str) -> String {
    let e = std::io::Error::last_os_error();
    format!("{what}: {}", describe(&e))
}

/// The error without Rust's " (os error N)" suffix, as Python's strerror.
pub fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(n) => text[..n].to_owned(),
        None => text,
    }
}

/// Why a connect failed; `absent` when nobody serves the path yet (no socket file,
/// or a socket nobody listens on): a daemon starting may still bind it.
#[derive(Debug)]
pub struct ConnectError {
    pub absent: bool,
    pub reason: String,
}

impl From<String> for ConnectError {
    fn from(reason: String) -> Self {
        ConnectError {
            absent: false,
            reason,
        }
    }
}

const ENOENT: i32 = 2;
const ECONNREFUSED: i32 = 111;

/// Connects to the unix socket at `path`, waiting at most `timeout` for the daemon
/// to take the connection (Linux bounds a blocking unix connect by SO_SNDTIMEO:
/// this is the wait on a full listen backlog).
pub fn connect_unix(path: &[u8], timeout: Duration) -> Result<UnixStream, ConnectError> {
    let mut addr = SockaddrUn {
        family: AF_UNIX as u16,
        path: [0; 108],
    };
    if path.is_empty() || path.len() >= addr.path.len() || path.contains(&0) {
        return Err(String::from("not a usable socket path").into());
    }
    addr.path[..path.len()].copy_from_slice(path);
    // SAFETY: plain system calls on a descriptor this function owns.
    unsafe {
        let fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(os_error("socket").into());
        }
        let tv = Timeval {
            sec: timeout.as_secs() as c_long,
            usec: timeout.subsec_micros() as c_long,
        };
        let tv_ptr = &tv as *const Timeval as *const c_void;
        let addr_len = (2 + path.len() + 1) as u32;
        if setsockopt(
            fd,
            SOL_SOCKET,
            SO_SNDTIMEO,
            tv_ptr,
            std::mem::size_of::<Timeval>() as u32,
        ) != 0
            || connect(fd, &addr as *const SockaddrUn as *const c_void, addr_len) != 0
        {
            let e = std::io::Error::last_os_error();
            close(fd);
            return Err(ConnectError {
                absent: matches!(e.raw_os_error(), Some(ENOENT | ECONNREFUSED)),
                reason: match e.kind() {
                    ErrorKind::WouldBlock => {
                        format!("not accepted within {} s", timeout.as_secs_f64())
                    }
                    _ => describe(&e),
                },
            });
        }
        Ok(UnixStream::from_raw_fd(fd))
    }
}

/// The head of a request with a body of `len` bytes.
pub fn request_head(method: &str, target: &str, len: usize) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: multinetd\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// Sends `head` and `body` on `stream` and reads the answer until the daemon
/// closes the connection, all within `timeout`: the body of a 200.
pub fn exchange(
    mut stream: UnixStream,
    head: &[u8],
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let late = || format!("no answer within {} s", timeout.as_secs_f64());
    let remaining = |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    };
    let failed = |e: std::io::Error| format!("connection failed: {}", describe(&e));
    for part in [head, body] {
        let mut rest = part;
        while !rest.is_empty() {
            stream
                .set_write_timeout(Some(remaining(deadline).ok_or_else(late)?))
                .map_err(failed)?;
            match stream.write(rest) {
                Ok(0) => return Err("connection failed: the daemon stopped reading".into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(late())
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }
    let mut answer = Answer::default();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        stream
            .set_read_timeout(Some(remaining(deadline).ok_or_else(late)?))
            .map_err(failed)?;
        match stream.read(&mut chunk) {
            Ok(0) => return answer.finish(),
            Ok(n) => answer.push(&chunk[..n])?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(late())
            }
            Err(e) => return Err(failed(e)),
        }
    }
}

/// An HTTP answer read piece by piece, checked as it comes so that neither a
/// huge head nor a huge body is held.
#[derive(Default)]
pub struct Answer {
    data: Vec<u8>,
    /// Where the body starts and how long it must be, once the head is in.
    body: Option<(usize, usize)>,
}

impl Answer {
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        match self.body {
            Some((start, length)) => {
                if self.data.len() - start + chunk.len() > length {
                    return Err("the daemon's answer is longer than its Content-Length".into());
                }
                self.data.extend_from_slice(chunk);
            }
            None => {
                // Look for the end of the head in the new bytes (and the 3 before).
                let from = self.data.len().saturating_sub(3);
                self.data.extend_from_slice(chunk);
                match find(&self.data[from..], b"\r\n\r\n") {
                    Some(n) => {
                        let start = from + n + 4;
                        if start > MAX_HEAD {
                            return Err("the daemon's answer head is too long".into());
                        }
                        let length = parse_head(&self.data[..start - 4])?;
                        if self.data.len() - start > length {
                            return Err(
                                "the daemon's answer is longer than its Content-Length".into()
                            );
                        }
                        self.body = Some((start, length));
                    }
                    None if self.data.len() > MAX_HEAD => {
                        return Err("the daemon's answer head is too long".into());
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// At the end of the connection: the body, if the answer is complete.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        let (start, length) = match self.body {
            Some(body) => body,
            None => return Err("the daemon closed the connection without an answer".into()),
        };
        if self.data.len() - start != length {
            return Err("the daemon's answer was cut short".into());
        }
        self.data.drain(..start);
        Ok(self.data)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status line must be `HTTP/1.x 200`; the Content-Length header is required,
/// at most MAX_BODY, and all of them must agree. Returns it.
pub fn parse_head(head: &[u8]) -> Result<usize, String> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines.next().unwrap_or_default();
    let shown = || String::from_utf8_lossy(&status[..status.len().min(80)]).into_owned();
    let mut parts = status.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let version_ok =
        version.len() == 8 && version.starts_with(b"HTTP/1.") && version[7].is_ascii_digit();
    if !version_ok || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(format!("not an HTTP answer: {:?}", shown()));
    }
    if code != b"200" {
        return Err(format!("the daemon refused the request: {:?}", shown()));
    }
    let mut length = None;
    for line in lines {
        let colon = match line.iter().position(|&b| b == b':') {
            Some(colon) => colon,
            None => continue,
        };
        if !trim(&line[..colon]).eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let value = trim(&line[colon + 1..]);
        let n = parse_length(value).ok_or("the daemon's answer has a bad Content-Length")?;
        if length.map_or(false, |l| l != n) {
            return Err("the daemon's answer has conflicting Content-Lengths".into());
        }
        length = Some(n);
    }
    let length = length.ok_or("the daemon's answer has no Content-Length")?;
    if length > MAX_BODY {
        return Err(format!(
            "the daemon's answer is larger than {} MiB",
            MAX_BODY >> 20
        ));
    }
    Ok(length)
}

/// Without the spaces and tabs around (HTTP's optional whitespace).
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn parse_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn answer(parts: &[&[u8]]) -> Result<Vec<u8>, String> {
        let mut a = Answer::default();
        for p in parts {
            a.push(p)?;
        }
        a.finish()
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n";

    #[test]
    fn complete_answers() {
        assert_eq!(answer(&[OK, b"hello"]).unwrap(), b"hello");
        // Split anywhere, even inside the blank line.
        let whole = [OK, b"hello"].concat();
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(answer(&[a, b]).unwrap(), b"hello", "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(answer(&bytes).unwrap(), b"hello");
        assert_eq!(
            answer(&[b"HTTP/1.0 200\r\ncontent-length:0\r\n\r\n"]).unwrap(),
            b""
        );
        assert_eq!(
            answer(&[b"HTTP/1.1 200 OK\r\nContent-Length:  2 \r\nContent-Length: 2\r\n\r\nab"])
                .unwrap(),
            b"ab"
        );
    }

    #[test]
    fn incomplete_or_refused_answers() {
        for (parts, why) in [
            (vec![], "without an answer"),
            (
                vec![&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"[..]],
                "without an answer",
            ),
            (vec![OK, b"hel"], "cut short"),
            (vec![OK, b"hello!"], "longer than"),
            (vec![OK, b"hel", b"lo!"], "longer than"),
            (
                vec![b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"],
                "refused",
            ),
            (
                vec![b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"],
                "refused",
            ),
            (
                vec![b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n"],
                "not an HTTP answer",
            ),
            (
                vec![b"HTTP/1.1 2000\r\nContent-Length: 0\r\n\r\n"],
                "not an HTTP answer",
            ),
            (vec![b"garbage\r\n\r\n"], "not an HTTP answer"),
            (vec![b"\xff\xfe\r\n\r\n"], "not an HTTP answer"),
            (vec![b"HTTP/1.1 200 OK\r\n\r\n{}"], "no Content-Length"),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
                "bad Content-Length",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"],
                "bad Content-Length",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"],
                "bad Content-Length",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
                "conflicting",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n"],
                "larger than 16 MiB",
            ),
        ] {
            let err = answer(&parts).unwrap_err();
            assert!(err.contains(why), "{parts:?}: {err}");
        }
    }

    #[test]
    fn bounded_head() {
        let mut a = Answer::default();
        a.push(b"HTTP/1.1 200 OK\r\nX: ").unwrap();
        let filler = vec![b'x'; 4096];
        let mut err = None;
        for _ in 0..(MAX_HEAD / filler.len() + 2) {
            if let Err(e) = a.push(&filler) {
                err = Some(e);
                break;
            }
        }
        assert!(err.unwrap().contains("head is too long"));
        assert!(a.data.len() <= MAX_HEAD + filler.len());
    }

    #[test]
    fn the_largest_body_is_accepted() {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY}\r\n\r\n");
        let body = vec![b'x'; MAX_BODY];
        assert_eq!(answer(&[head.as_bytes(), &body]).unwrap().len(), MAX_BODY);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(answer(&[head.as_bytes()]).is_err());
    }

    #[test]
    fn request_head_is_the_python_shims() {
        assert_eq!(
            request_head("POST", "/v1/cni", 12),
            "POST /v1/cni HTTP/1.1\r\nHost: multinetd\r\nContent-Type: application/json\r\n\
             Content-Length: 12\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn socket_paths() {
        let t = Duration::from_millis(100);
        for bad in [&b""[..], &[b'a'; 108], b"/a\0b"] {
            let err = connect_unix(bad, t).unwrap_err();
            assert!(err.reason.contains("not a usable") && !err.absent);
        }
        let err = connect_unix(b"/nonexistent/multinet.sock", t).unwrap_err();
        assert_eq!(err.reason, "No such file or directory");
        assert!(err.absent);
    }

    #[test]
    fn a_socket_nobody_listens_on_is_absent() {
        let dir = std::env::temp_dir().join(format!("mnshim-refused-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("d.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // the file stays
        let err = connect_unix(path.as_os_str().as_bytes(), Duration::from_millis(100));
        std::fs::remove_dir_all(&dir).unwrap();
        let err = err.unwrap_err();
        assert_eq!(err.reason, "Connection refused");
        assert!(err.absent);
    }
}
