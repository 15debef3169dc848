//! What users read when something fails: one line, in words, each cause
//! once (issue 12). Each case's standard error is an insta snapshot named
//! `stderr_*`, and `stderr_snapshots_hold_no_debug_text` reads every such
//! snapshot in this folder (other test files' too) for Rust debug
//! formatting: `{` (a struct) and `Some(`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::{make_certs, make_client_cert, stderr_of, toolkit};

/// Runs `toolkit ARGS…`, checks its exit code, and returns its standard
/// error with `dir` and `port` replaced by stable placeholders.
fn stderr(args: &[&str], code: i32, dir: &Path, port: Option<u16>) -> String {
    let out = toolkit().args(args).output().unwrap();
    let text = stderr_of(&out);
    assert_eq!(out.status.code(), Some(code), "{text}");
    let mut text = text.replace(&dir.display().to_string(), "[DIR]");
    if let Some(port) = port {
        text = text.replace(&port.to_string(), "[PORT]");
    }
    text
}

/// A server that answers whatever it is sent with an HTTP error page, as a
/// web server on the port a user mistook for the broker's would.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let body = "<html><body><h1>400 Bad Request</h1>This is a web server.</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\nServer: test\r\nContent-Type: text/html\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Issue 12: `PubAck(PubAck { pkid: 21584 })`. "HTTP/1.1" reads as a
/// PUBACK (0x48) whose packet id is "TP" (0x5450 = 21584).
#[test]
fn an_http_server_is_named_as_a_web_server_with_what_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_server();
    let port_text = port.to_string();
    let text = stderr(
        &[
            "probe",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--timeout",
            "5",
        ],
        3,
        dir.path(),
        Some(port),
    );
    insta::assert_snapshot!("stderr_http_server", text);
}

/// Issue 12: `keys may not be consistent: KeyMismatch`.
#[test]
fn a_client_key_of_another_certificate_is_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &[]);
    make_client_cert(dir.path(), "one");
    make_client_cert(dir.path(), "two");
    let d = dir.path().display().to_string();
    let text = stderr(
        &[
            "probe",
            "--tls",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--cafile",
            &format!("{d}/ca.pem"),
            "--cert",
            &format!("{d}/one.pem"),
            "--key",
            &format!("{d}/two.key"),
        ],
        2,
        dir.path(),
        None,
    );
    insta::assert_snapshot!("stderr_key_mismatch", text);
}

/// Issue 12: `NomError(Eof)`.
#[test]
fn a_truncated_certificate_is_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &[]);
    let pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let der = rustls_pki_der(&pem);
    std::fs::write(dir.path().join("cut.der"), &der[..der.len() / 2]).unwrap();
    let file = dir.path().join("cut.der").display().to_string();
    let text = stderr(&["certs", "info", &file], 2, dir.path(), None);
    insta::assert_snapshot!("stderr_truncated_der", text);
}

/// Issue 12: the OS error was printed twice in one line
/// (`writing F: Not a directory (os error 20): Not a directory (os error 20)`).
#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let out = dir.path().join("file/certs").display().to_string();
    let text = stderr(&["certs", "--out", &out], 1, dir.path(), None);
    assert_eq!(text.matches("(os error").count(), 1, "{text}");
    insta::assert_snapshot!("stderr_os_error_once", text);
}

#[test]
fn a_password_without_b_says_how_to_pass_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw").display().to_string();
    let text = stderr(&["passwd", &file, "alice", "s3cret"], 2, dir.path(), None);
    insta::assert_snapshot!("stderr_passwd_without_b", text);
}

/// Every `stderr_*` snapshot of the toolkit's CLI tests, read as text:
/// none may show Rust debug formatting.
#[test]
fn stderr_snapshots_hold_no_debug_text() {
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut checked = 0;
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains("__stderr") || !name.ends_with(".snap") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // The header between the two `---` lines is insta's, not ours.
        let body = text.splitn(3, "---\n").nth(2).unwrap_or(&text);
        for debug in ["{", "Some("] {
            assert!(!body.contains(debug), "{name} shows {debug}:\n{body}");
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} stderr snapshots in {}",
        snapshots.display()
    );
}

/// The DER bytes of the first certificate in `pem`.
fn rustls_pki_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}
