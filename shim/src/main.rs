//! multinet-shim: multinet's thick-mode CNI executable.
//!
//! Reads stdin and the environment, POSTs them to multinetd's `/v1/cni` over its
//! unix socket, writes the daemon's `stdout` and exits with its `code`. When the
//! daemon does not answer (no socket, refused, not accepted in time, dropped,
//! malformed, oversized, too slow), execs the thin `multinet` with the same
//! arguments, environment and stdin. The protocol: docs/thick-mode.md.

mod fallback;
mod http;
mod json;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fallback::Stdin;
use json::Value;

const DEFAULT_SOCKET: &[u8] = b"/run/multinet/multinet.sock";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_ANSWER_TIMEOUT: f64 = 300.0;
const MAX_ANSWER_TIMEOUT: f64 = 3600.0;
/// How long a shim started before the daemon (a node booting, the daemon restarting)
/// waits for the socket to be served before it falls back (`daemonSocketWait`).
const DEFAULT_SOCKET_WAIT: f64 = 5.0;
const MAX_SOCKET_WAIT: f64 = 300.0;
/// Between two attempts to connect while the socket is absent.
const SOCKET_POLL: Duration = Duration::from_millis(50);
/// Stdin held in memory for the request at most; a larger one goes to the fallback.
const MAX_STDIN: usize = 16 << 20;
/// The daemon refuses larger request bodies (413); the shim does not build them.
const MAX_REQUEST: usize = 16 << 20;

/// The CNI versions multinet speaks (multinet/cni/version.py ACCEPTED), lowest first: an
/// error the shim writes itself is in the request's version when it is one of these, else
/// in the last (never echoing a version multinet cannot speak).
const ACCEPTED: [&[u8]; 7] = [
    b"0.1.0", b"0.2.0", b"0.3.0", b"0.3.1", b"0.4.0", b"1.0.0", b"1.1.0",
];

fn answer_version(requested: Option<&[u8]>) -> &[u8] {
    match requested {
        None => b"1.0.0",
        Some(v) if ACCEPTED.contains(&v) => v,
        Some(_) => ACCEPTED[ACCEPTED.len() - 1],
    }
}

/// The netconf keys the shim reads itself.
struct NetConf {
    socket: Vec<u8>,
    timeout: Duration,
    socket_wait: Duration,
    fallback: Option<Vec<u8>>,
    cni_version: Option<Vec<u8>>,
}

fn netconf(stdin: &[u8]) -> NetConf {
    const KEYS: [&str; 5] = [
        "daemonSocketPath",
        "daemonTimeout",
        "fallbackExecutable",
        "cniVersion",
        "daemonSocketWait",
    ];
    let fields = json::object_fields(stdin, &KEYS).unwrap_or_default();
    let get = |n: usize| fields.get(n).and_then(Option::as_ref);
    let text = |n: usize| {
        get(n)
            .and_then(Value::as_bytes)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
    };
    let secs = get(1)
        .and_then(Value::as_f64)
        .filter(|s| *s > 0.0 && *s <= MAX_ANSWER_TIMEOUT)
        .unwrap_or(DEFAULT_ANSWER_TIMEOUT);
    let wait = get(4)
        .and_then(Value::as_f64)
        .filter(|s| *s >= 0.0 && *s <= MAX_SOCKET_WAIT)
        .unwrap_or(DEFAULT_SOCKET_WAIT);
    NetConf {
        socket: text(0).unwrap_or_else(|| DEFAULT_SOCKET.to_vec()),
        timeout: Duration::from_secs_f64(secs),
        socket_wait: Duration::from_secs_f64(wait),
        fallback: text(2).filter(|p| p.starts_with(b"/")),
        cni_version: text(3),
    }
}

/// Reads stdin, at most MAX_STDIN bytes (Partial when there is more).
fn read_stdin() -> Stdin {
    if fallback::stdin_is_terminal() {
        return Stdin::Untouched;
    }
    let mut data = Vec::new();
    let fd = fallback::stdin_fd();
    match (&*fd).take(MAX_STDIN as u64 + 1).read_to_end(&mut data) {
        Ok(_) if data.len() > MAX_STDIN => Stdin::Partial(data),
        Ok(_) => Stdin::Read(data),
        Err(e) if e.raw_os_error() == Some(9) => Stdin::Untouched, // EBADF: no stdin
        Err(_) => Stdin::Read(data),
    }
}

/// `{"env":{...},"stdin":"..."}` as the Python shim writes it, or None past MAX_REQUEST.
fn encode_request(env: &[&[u8]], stdin: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(stdin.len() + 4096);
    out.extend_from_slice(b"{\"env\":{");
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(env.len());
    for entry in env {
        // Like CPython's os.environ: split at the first '=', skip entries without
        // one, and the first of duplicate names wins.
        let eq = match entry.iter().position(|&b| b == b'=') {
            Some(eq) => eq,
            None => continue,
        };
        let (name, value) = (&entry[..eq], &entry[eq + 1..]);
        if !seen.insert(name) {
            continue;
        }
        if seen.len() > 1 {
            out.push(b',');
        }
        json::write_str(&mut out, name);
        out.push(b':');
        json::write_str(&mut out, value);
        if out.len() > MAX_REQUEST {
            return None;
        }
    }
    out.extend_from_slice(b"},\"stdin\":");
    // Bounded: at most 12 bytes of JSON per byte of a MAX_STDIN stdin.
    json::write_str(&mut out, stdin);
    out.push(b'}');
    (out.len() <= MAX_REQUEST).then_some(out)
}

/// A connection to the daemon. While nobody serves the socket (not there yet, or
/// refused: the daemon is starting, or restarting after a crash) it is tried again
/// for `socket_wait`, so that a call made before the daemon is up at boot is still
/// served by it; any other failure is final at once.
fn connect_waiting(conf: &NetConf) -> Result<std::os::unix::net::UnixStream, String> {
    let deadline = Instant::now() + conf.socket_wait;
    loop {
        match http::connect_unix(&conf.socket, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.absent => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(if conf.socket_wait.is_zero() {
                        e.reason
                    } else {
                        let waited = conf.socket_wait.as_secs_f64();
                        format!("{} (waited {waited} s for the daemon)", e.reason)
                    });
                }
                std::thread::sleep(left.min(SOCKET_POLL));
            }
            Err(e) => return Err(e.reason),
        }
    }
}

/// The daemon's (exit code, stdout) for this request, or why there is none.
fn call_daemon(conf: &NetConf, env: &[&[u8]], stdin: &[u8]) -> Result<(u8, Vec<u8>), String> {
    let path = String::from_utf8_lossy(&conf.socket).into_owned();
    let body = encode_request(env, stdin).ok_or_else(|| {
        format!(
            "the request is larger than the daemon takes ({} MiB)",
            MAX_REQUEST >> 20
        )
    })?;
    let stream = connect_waiting(conf).map_err(|e| format!("cannot connect to {path}: {e}"))?;
    let head = http::request_head("POST", "/v1/cni", body.len());
    let answer = http::exchange(stream, head.as_bytes(), &body, conf.timeout)
        .map_err(|e| format!("{path}: {e}"))?;
    let shape = || "the daemon's answer is not {code, stdout}".to_owned();
    std::str::from_utf8(&answer).map_err(|_| shape())?;
    let fields = json::object_fields(&answer, &["code", "stdout"]).ok_or_else(shape)?;
    let code = fields[0]
        .as_ref()
        .and_then(Value::as_exit_code)
        .ok_or_else(shape)?;
    match fields[1].as_ref() {
        Some(Value::Str { bytes, .. }) => Ok((code, bytes.clone())),
        _ => Err(shape()),
    }
}

fn main() -> ExitCode {
    let stdin = read_stdin();
    let env = fallback::environ_entries();
    let held: &[u8] = match &stdin {
        Stdin::Read(data) | Stdin::Partial(data) => data,
        Stdin::Untouched => b"",
    };
    let conf = netconf(held);
    let reason = if let Stdin::Partial(_) = stdin {
        format!("stdin is larger than {} MiB", MAX_STDIN >> 20)
    } else {
        match call_daemon(&conf, &env, held) {
            Ok((code, stdout)) => {
                // Nothing more can be reported if stdout is gone: the code still stands.
                let _ = fallback::stdout_fd().write_all(&stdout);
                return ExitCode::from(code);
            }
            Err(reason) => reason,
        }
    };
    let command = std::env::var_os("CNI_COMMAND");
    let command = command.as_ref().map_or("the request".into(), |c| {
        String::from_utf8_lossy(c.as_bytes())
    });
    let _ = writeln!(
        std::io::stderr(),
        "multinet-shim: daemon unavailable ({reason}); running {command} in-process"
    );
    let (path, error) = fallback::exec_thin(conf.fallback.as_deref(), stdin);
    let mut out = b"{\"cniVersion\": ".to_vec();
    json::write_str(&mut out, answer_version(conf.cni_version.as_deref()));
    out.extend_from_slice(b", \"code\": 5, \"msg\": ");
    let msg = format!("multinet-shim: daemon unavailable and cannot run {path}: {error}");
    json::write_str(&mut out, msg.as_bytes());
    out.extend_from_slice(b"}\n");
    let _ = fallback::stdout_fd().write_all(&out);
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_matches_the_python_shim() {
        // multinet.shim.encode_request({"A": "1", "B": "\udcff"}, b'{"x":"\xe9"}')
        let env: [&[u8]; 5] = [b"A=1", b"NOEQUALS", b"B=\xff", b"A=2", b"C=x=y"];
        let body = encode_request(&env, b"{\"x\":\"\xe9\"}").unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"env":{"A":"1","B":"\udcff","C":"x=y"},"stdin":"{\"x\":\"\udce9\"}"}"#
        );
        assert_eq!(
            encode_request(&[], b"").unwrap(),
            br#"{"env":{},"stdin":""}"#
        );
    }

    #[test]
    fn an_error_never_names_a_version_multinet_cannot_speak() {
        assert_eq!(answer_version(Some(b"0.4.0")), b"0.4.0");
        assert_eq!(answer_version(Some(b"9.9.9")), b"1.1.0");
        assert_eq!(answer_version(None), b"1.0.0");
    }

    #[test]
    fn request_body_is_bounded() {
        let stdin = vec![0xffu8; MAX_REQUEST / 6 + 1];
        assert!(encode_request(&[], &stdin).is_none());
        let stdin = vec![b'a'; MAX_REQUEST - 100];
        assert!(encode_request(&[], &stdin).is_some());
    }

    #[test]
    fn netconf_keys_and_defaults() {
        let c = netconf(br#"{"daemonSocketPath": "/x.sock", "daemonTimeout": 1.5, "fallbackExecutable": "/bin/m", "cniVersion": "0.4.0"}"#);
        assert_eq!(c.socket, b"/x.sock");
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.fallback.as_deref(), Some(&b"/bin/m"[..]));
        assert_eq!(c.cni_version.as_deref(), Some(&b"0.4.0"[..]));
        assert_eq!(c.socket_wait, Duration::from_secs(5));
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            br#"{"daemonSocketPath": 1, "daemonTimeout": 0, "fallbackExecutable": "rel"}"#,
            br#"{"daemonSocketPath": "", "daemonTimeout": 3601, "fallbackExecutable": ""}"#,
            br#"{"daemonSocketPath": "\ud800", "daemonTimeout": "5"}"#,
            br#"{"daemonTimeout": NaN}"#,
            br#"{"daemonTimeout": -1}"#,
            br#"{"daemonTimeout": 1e999}"#,
            br#"{"daemonTimeout": true}"#,
        ] {
            let c = netconf(bad);
            assert_eq!(c.socket, DEFAULT_SOCKET);
            assert_eq!(c.timeout, Duration::from_secs(300));
            assert_eq!(c.fallback, None);
            assert_eq!(c.socket_wait, Duration::from_secs(5));
        }
        for (given, wait) in [("0", 0.0), ("0.25", 0.25), ("300", 300.0)] {
            let c = netconf(format!(r#"{{"daemonSocketWait": {given}}}"#).as_bytes());
            assert_eq!(c.socket_wait, Duration::from_secs_f64(wait));
        }
        for bad in ["-1", "300.5", "\"3\"", "true", "null"] {
            let c = netconf(format!(r#"{{"daemonSocketWait": {bad}}}"#).as_bytes());
            assert_eq!(c.socket_wait, Duration::from_secs(5), "{bad}");
        }
        assert_eq!(
            netconf(br#"{"daemonSocketPath": "/a\udcff"}"#).socket,
            b"/a\xff"
        );
        assert_eq!(
            netconf(br#"{"daemonTimeout": 3600}"#).timeout,
            Duration::from_secs(3600)
        );
    }
}
