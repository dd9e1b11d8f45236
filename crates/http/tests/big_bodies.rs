//! A 1 GiB upload and a 1 GiB download through the HTTP server, each with
//! the server process's peak RSS (`VmHWM`) under 32 MiB: bodies are spooled
//! to disk and files leave by `sendfile(2)`, never held in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ChildProc, b2sum_file, first_word, mib};
use gatekit_testkit::{curl, pattern, require};

const GIB: u64 = 1 << 30;
const RSS_LIMIT_KIB: u64 = 32 * 1024;

/// Runs the server when a parent test asked for it (see `common`).
#[test]
#[ignore = "helper: run as a child process by the other tests"]
fn child() {
    common::child_main();
}

/// 1 GiB of a repeatable pattern, each MiB stamped with its index (so a
/// block sent twice or out of order changes the digest).
fn write_gib(path: &Path) {
    let base = pattern(1 << 20);
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    for i in 0..(GIB >> 20) {
        let mut block = base.clone();
        block[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn stop(mut server: ChildProc) {
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "server exit: {status:?}; stderr:\n{}",
        server.stderr()
    );
}

#[test]
fn gib_upload_and_download_keep_server_rss_under_32_mib() {
    if require(&["/usr/bin/curl"]).is_none() || require(&["/usr/bin/b2sum"]).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("gib.bin");
    let t = Instant::now();
    write_gib(&source);
    let digest = b2sum_file(&source);
    eprintln!("generated and hashed 1 GiB in {:?}", t.elapsed());

    // Upload: curl streams the file (-T), the app reads wsgi.input to the
    // end through b2sum and answers the byte count and digest.
    let (server, port) = ChildProc::server(&[("GK_REQUEST_TIMEOUT_MS", "240000".into())]);
    let t = Instant::now();
    let r = curl(
        &[
            "--fail",
            "-T",
            source.to_str().unwrap(),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
        ],
        &format!("http://127.0.0.1:{port}/sum"),
    );
    let upload_time = t.elapsed();
    let up_hwm = server.status_kib("VmHWM");
    assert_eq!(r.status, 200, "{}", server.stderr());
    assert_eq!(r.text(), format!("{GIB} {digest}"));
    stop(server);

    // Download: the app returns a FileWrapper over the same file; curl's
    // output goes straight into b2sum.
    let (server, port) = ChildProc::server(&[]);
    let head = dir.path().join("head");
    let t = Instant::now();
    let mut curl = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "240", "-D"])
        .arg(&head)
        .arg(format!(
            "http://127.0.0.1:{port}/file?{}",
            source.to_str().unwrap()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sum = Command::new("b2sum")
        .stdin(Stdio::from(curl.stdout.take().unwrap()))
        .output()
        .unwrap();
    assert!(curl.wait().unwrap().success(), "{}", server.stderr());
    let download_time = t.elapsed();
    let down_hwm = server.status_kib("VmHWM");
    let head = std::fs::read_to_string(&head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {GIB}\r\n")),
        "{head}"
    );
    assert_eq!(first_word(&sum.stdout), digest);
    stop(server);

    eprintln!(
        "1 GiB upload: {upload_time:?}, server VmHWM {:.1} MiB; \
         1 GiB download: {download_time:?}, server VmHWM {:.1} MiB",
        mib(up_hwm),
        mib(down_hwm)
    );
    assert!(
        up_hwm < RSS_LIMIT_KIB,
        "upload: server peak RSS {:.1} MiB",
        mib(up_hwm)
    );
    assert!(
        down_hwm < RSS_LIMIT_KIB,
        "download: server peak RSS {:.1} MiB",
        mib(down_hwm)
    );
}
