//! The checks every web server in front of the test app must pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gatekit_testkit::{WebServer, curl, curl_parallel, curl_to_file, pattern, sha256_file};

/// Writes a 100 MB file into `dir`, readable by every user (a web server's
/// children may run as www-data), and returns its path.
pub fn big_file(dir: &Path) -> PathBuf {
    let big = dir.join("big.bin");
    let chunk = pattern(1024 * 1024);
    let mut f = std::fs::File::create(&big).unwrap();
    for _ in 0..100 {
        std::io::Write::write_all(&mut f, &chunk).unwrap();
    }
    gatekit_testkit::set_mode(&big, 0o644);
    big
}

/// GET, a 10 MB POST echoed back (SHA-256), a 100 MB FileWrapper download
/// of `big` from `/file` (SHA-256), wsgi.errors in the web server's error
/// log, 500 on an app panic with the server going on, and 200 concurrent
/// requests with zero errors. `name` labels the failures.
pub fn check_all(ws: &WebServer, name: &str, big: &Path) {
    let ctx = |what: &str| format!("{name}: {what}; error log:\n{}", ws.error_log());

    // GET
    let r = curl(&[], &ws.url("/hello?x=1"));
    assert_eq!(r.status, 200, "{}", ctx("GET"));
    assert_eq!(r.text(), "Hello, world!\n", "{}", ctx("GET body"));

    // POST 10 MB, echoed back; the hashes match.
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, pattern(10 * 1024 * 1024)).unwrap();
    let echoed = dir.path().join("echoed.bin");
    let at = format!("@{}", upload.display());
    let status = curl_to_file(
        &[
            "--data-binary",
            &at,
            "-H",
            "Content-Type: application/octet-stream",
        ],
        &ws.url("/echo"),
        &echoed,
    );
    assert_eq!(status, 200, "{}", ctx("POST"));
    assert_eq!(
        sha256_file(&echoed),
        sha256_file(&upload),
        "{}",
        ctx("POST echo")
    );

    // A 100 MB FileWrapper download; the hashes match.
    let got = dir.path().join("got.bin");
    let status = curl_to_file(&[], &ws.url("/file"), &got);
    assert_eq!(status, 200, "{}", ctx("download"));
    assert_eq!(
        sha256_file(&got),
        sha256_file(big),
        "{}",
        ctx("download hash")
    );

    // wsgi.errors (FCGI_STDERR records) reaches the web server's error log.
    let r = curl(&[], &ws.url("/stderr"));
    assert_eq!(r.status, 200, "{}", ctx("stderr"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ws.error_log().contains("gatekit-stderr-marker") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ws.error_log().contains("gatekit-stderr-marker"),
        "{}",
        ctx("stderr in log")
    );

    // An app panic is a 500, and the server goes on.
    let r = curl(&[], &ws.url("/panic"));
    assert_eq!(r.status, 500, "{}", ctx("panic"));
    let r = curl(&[], &ws.url("/hello"));
    assert_eq!(r.status, 200, "{}", ctx("after panic"));

    // 200 concurrent requests, zero errors.
    concurrent_hellos(ws, 200, &ctx);
}

/// `n` concurrent GETs of `/hello`, every one answered 200; `ctx` labels
/// a failure.
pub fn concurrent_hellos(ws: &WebServer, n: usize, ctx: &dyn Fn(&str) -> String) {
    let urls: Vec<String> = (0..n).map(|i| ws.url(&format!("/hello?n={i}"))).collect();
    let got = curl_parallel(&urls, 60);
    assert_eq!(got.ok, n, "{}", ctx(&format!("concurrent: {}", got.report)));
}
