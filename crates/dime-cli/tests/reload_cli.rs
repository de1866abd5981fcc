//! `dimed reload` and SIGHUP (issue 25): a renewed certificate is served from the next
//! handshake on, on the IMAP and the DMTP listeners, without a restart; a certificate that
//! does not load is refused, named, and the one served stays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Serving;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The certificate a TLS server on `port` of 127.0.0.1 presents, as DER, read by Python's
/// `ssl` module offering ALPN `alpn` (no verification: the certificate itself is looked at).
fn served(port: u16, alpn: &str) -> Vec<u8> {
    let script = format!(
        "import socket,ssl,sys\n\
         ctx = ssl.create_default_context()\n\
         ctx.check_hostname = False\n\
         ctx.verify_mode = ssl.CERT_NONE\n\
         ctx.set_alpn_protocols(['{alpn}'])\n\
         with socket.create_connection(('127.0.0.1', {port})) as s:\n\
         \x20   with ctx.wrap_socket(s, server_hostname='mx.a.test') as t:\n\
         \x20       sys.stdout.buffer.write(t.getpeercert(binary_form=True))\n"
    );
    let o = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// A new self-signed certificate for the host: (PEM certificate, PEM key, DER certificate).
fn new_cert() -> (String, String, Vec<u8>) {
    let c = rcgen::generate_simple_self_signed(vec!["mx.a.test".into()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem(), c.cert.der().to_vec())
}

fn dimed(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dimed")).args(args).output().unwrap()
}

#[test]
fn a_renewed_certificate_is_served_after_reload_and_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("a");
    let port = || dime_testkit::free_port();
    let (dmtp, imaps, imap) = (port(), port(), port());
    let o = dimed(&[
        "init",
        "--domain",
        "a.test",
        "--dir",
        s(&d),
        "--listen",
        &format!("127.0.0.1:{dmtp}"),
        "--imaps",
        &format!("127.0.0.1:{imaps}"),
        "--imap",
        &format!("127.0.0.1:{imap}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conf = d.join("dimed.toml");
    let mut server = Serving::start(
        &["serve", "--create", "--config", s(&conf)],
        &d.join("data/dimed-admin.sock"),
    );
    let (cert, key) = (d.join("config/tls.crt"), d.join("config/tls.key"));
    let first = served(imaps, "imap");
    assert_eq!(served(dmtp, "dmtp/1"), first, "one certificate on every listener");

    // Renewed, then `dimed reload`: the next handshakes get the new one.
    let (pem, key_pem, der) = new_cert();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    let o = dimed(&["reload", "--config", s(&conf)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("certificate reloaded from "));
    assert_eq!((served(imaps, "imap"), served(dmtp, "dmtp/1")), (der.clone(), der.clone()));

    // A key that is not the certificate's: refused, named, and the one served stays.
    let (pem2, _, _) = new_cert();
    std::fs::write(&cert, &pem2).unwrap();
    let o = dimed(&["reload", "--config", s(&conf)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("tls.crt") && err.contains("unchanged"), "{err}");
    assert_eq!(served(imaps, "imap"), der);

    // SIGHUP does the same, and dimed goes on serving.
    let (pem3, key3, der3) = new_cert();
    std::fs::write(&cert, &pem3).unwrap();
    std::fs::write(&key, &key3).unwrap();
    let hup = Command::new("kill").args(["-HUP", &server.0.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let t0 = Instant::now();
    while served(imaps, "imap") != der3 {
        assert!(server.0.try_wait().unwrap().is_none(), "SIGHUP stopped dimed");
        assert!(t0.elapsed() < Duration::from_secs(20), "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served(dmtp, "dmtp/1"), der3);
    server.stop();
}
