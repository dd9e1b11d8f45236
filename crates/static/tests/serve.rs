//! `StaticFiles` behind real servers: gatekit's HTTP server in this process
//! with real curl (`--path-as-is`, so `..` reaches the server unnormalised),
//! and real nginx in front of gatekit's FastCGI server, so `SCRIPT_NAME`
//! and `PATH_INFO` come from a real web server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::os::unix::fs::symlink;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use gatekit_server::engine::Shutdown;
use gatekit_server::listen::Addr;
use gatekit_static::StaticFiles;
use gatekit_testkit::{WebServer, curl, curl_to_file, pattern, sha256, sha256_file};

const BIG: usize = 1024 * 1024;

/// A served root plus a directory beside it with a secret in it.
struct Site {
    root: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

fn site() -> Site {
    let root = gatekit_testkit::public_tempdir();
    let outside = gatekit_testkit::public_tempdir();
    let r = root.path();
    std::fs::write(outside.path().join("secret.txt"), "secret\n").unwrap();
    std::fs::write(r.join("big.bin"), pattern(BIG)).unwrap();
    std::fs::write(r.join("hello.txt"), "Hello, world!\n").unwrap();
    std::fs::create_dir(r.join("dir")).unwrap();
    std::fs::write(r.join("dir/index.html"), "<p>dir</p>\n").unwrap();
    symlink("hello.txt", r.join("link-in.txt")).unwrap();
    symlink(outside.path().join("secret.txt"), r.join("link-out.txt")).unwrap();
    symlink(outside.path(), r.join("dir-out")).unwrap();
    Site {
        root,
        _outside: outside,
    }
}

/// A server running on a thread of this process, stopped on drop.
struct Running {
    port: u16,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn port_of(addr: &Addr) -> u16 {
    match addr {
        Addr::Ip(a) => a.port(),
        other => panic!("not TCP: {other}"),
    }
}

fn start_http(root: &Path) -> Running {
    let mut config = gatekit_http::ServerConfig::default();
    config.engine.workers = 2;
    config.engine.shutdown_grace = Duration::from_secs(5);
    let app = StaticFiles::new(root).unwrap();
    let server = gatekit_http::Server::bind("127.0.0.1:0", app, config).unwrap();
    let port = port_of(&server.local_addrs()[0]);
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve_forever().unwrap());
    Running {
        port,
        shutdown,
        thread: Some(thread),
    }
}

fn start_fastcgi(root: &Path) -> Running {
    let mut config = gatekit_fastcgi::ServerConfig::default();
    config.engine.workers = 2;
    config.engine.shutdown_grace = Duration::from_secs(5);
    let app = StaticFiles::new(root).unwrap();
    let server = gatekit_fastcgi::Server::bind("127.0.0.1:0", app, config).unwrap();
    let port = port_of(&server.local_addrs()[0]);
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve_forever().unwrap());
    Running {
        port,
        shutdown,
        thread: Some(thread),
    }
}

#[test]
fn http_server_with_curl() {
    let site = site();
    let server = start_http(site.root.path());
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port);
    let want = sha256(&pattern(BIG));

    // 1 MB byte-exact.
    let dl = tempfile::tempdir().unwrap();
    let dest = dl.path().join("big.bin");
    assert_eq!(curl_to_file(&[], &url("/big.bin"), &dest), 200);
    assert_eq!(sha256_file(&dest), want);

    let r = curl(&[], &url("/big.bin"));
    assert_eq!(r.header("Content-Length").as_deref(), Some("1048576"));
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(r.header("Accept-Ranges").as_deref(), Some("bytes"));
    let etag = r.header("ETag").expect("an ETag");
    let last_modified = r.header("Last-Modified").expect("a Last-Modified");

    // HEAD: the same headers, no body.
    let r = curl(&["-I"], &url("/big.bin"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length").as_deref(), Some("1048576"));
    assert_eq!(r.header("ETag").as_deref(), Some(etag.as_str()));
    // curl -I writes the head as its output too: no byte of the file follows it.
    assert!(
        r.body.ends_with(b"\r\n\r\n") && r.body.len() < 1024,
        "{}",
        r.text()
    );

    // 304 from If-None-Match and from If-Modified-Since.
    let inm = format!("If-None-Match: {etag}");
    let r = curl(&["-H", &inm], &url("/big.bin"));
    assert_eq!(r.status, 304, "{}", r.head);
    assert!(r.body.is_empty());
    assert_eq!(r.header("ETag").as_deref(), Some(etag.as_str()));
    let ims = format!("If-Modified-Since: {last_modified}");
    let r = curl(&["-H", &ims], &url("/big.bin"));
    assert_eq!(r.status, 304, "{}", r.head);
    assert!(r.body.is_empty());
    let r = curl(&["-H", "If-None-Match: \"stale\""], &url("/big.bin"));
    assert_eq!((r.status, r.body.len()), (200, BIG));

    // Range: 206 with the right bytes (sendfile from an offset), and 416.
    let r = curl(&["-r", "1000-1999"], &url("/big.bin"));
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(
        r.header("Content-Range").as_deref(),
        Some("bytes 1000-1999/1048576")
    );
    assert_eq!(r.body, pattern(BIG)[1000..2000]);
    let r = curl(&["-r", "-10"], &url("/big.bin"));
    assert_eq!(r.body, pattern(BIG)[BIG - 10..]);
    let r = curl(&["-r", "524288-"], &url("/big.bin"));
    assert_eq!(
        (r.status, sha256(&r.body)),
        (206, sha256(&pattern(BIG)[524_288..]))
    );
    let r = curl(&["-r", "2000000-"], &url("/big.bin"));
    assert_eq!(r.status, 416, "{}", r.head);
    assert_eq!(
        r.header("Content-Range").as_deref(),
        Some("bytes */1048576")
    );
    let if_range = format!("If-Range: {etag}");
    let r = curl(&["-r", "0-9", "-H", &if_range], &url("/big.bin"));
    assert_eq!((r.status, r.body.len()), (206, 10));
    let r = curl(
        &["-r", "0-9", "-H", "If-Range: \"stale\""],
        &url("/big.bin"),
    );
    assert_eq!((r.status, r.body.len()), (200, BIG));

    // Traversal attempts, sent as they are written.
    for (target, status) in [
        ("/../secret.txt", 404),
        ("/dir/../../secret.txt", 404),
        ("/dir/../hello.txt", 404),
        ("/%2e%2e/secret.txt", 404),
        ("/%2E%2e/secret.txt", 404),
        ("/%2E%2e/", 404),
        ("/..%2fsecret.txt", 404),
        ("/..%2Fdir-out/secret.txt", 404),
        ("/dir%2findex.html", 404),
        ("/..%5csecret.txt", 404),
        ("/dir%5cindex.html", 404),
        ("/hello.txt%00.png", 400),
        ("/link-out.txt", 403),
        ("/dir-out/secret.txt", 403),
        ("/dir-out/", 403),
    ] {
        let r = curl(&["--path-as-is"], &url(target));
        assert_eq!(r.status, status, "{target}: {}", r.head);
        assert!(!r.text().contains("secret"), "{target}: {}", r.text());
    }
    let r = curl(&[], &url("/link-in.txt"));
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!\n"));

    // A directory: 301 to the slash form (query kept), then its index.
    let r = curl(&[], &url("/dir?x=1"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location").as_deref(), Some("/dir/?x=1"));
    let r = curl(&["-L"], &url("/dir"));
    assert_eq!((r.status, r.text().as_str()), (200, "<p>dir</p>\n"));
    // The head file holds both responses; the last one is the index's.
    assert_eq!(
        r.headers("Content-Type").last().map(String::as_str),
        Some("text/html; charset=utf-8")
    );

    // Other methods.
    let r = curl(&["-X", "POST", "-d", "x"], &url("/hello.txt"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow").as_deref(), Some("GET, HEAD"));
}

/// nginx mounts the app at `/files` and passes the split path the usual
/// way (`fastcgi_split_path_info`): `SCRIPT_NAME=/files`, `PATH_INFO=/…`.
fn nginx_conf(port: u16, backend: u16) -> String {
    format!(
        "server {{\n  listen 127.0.0.1:{port};\n  location /files/ {{\n    \
         fastcgi_split_path_info ^(/files)(/.*)$;\n    \
         fastcgi_param REQUEST_METHOD $request_method;\n    \
         fastcgi_param QUERY_STRING $query_string;\n    \
         fastcgi_param REQUEST_URI $request_uri;\n    \
         fastcgi_param SERVER_PROTOCOL $server_protocol;\n    \
         fastcgi_param SERVER_NAME $server_name;\n    \
         fastcgi_param SERVER_PORT $server_port;\n    \
         fastcgi_param REMOTE_ADDR $remote_addr;\n    \
         fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n    \
         fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n    \
         fastcgi_param PATH_INFO $fastcgi_path_info;\n    \
         fastcgi_pass 127.0.0.1:{backend};\n  }}\n}}\n"
    )
}

#[test]
fn behind_nginx_fastcgi() {
    let site = site();
    let backend = start_fastcgi(site.root.path());
    let Some(ws) = WebServer::nginx(|p| nginx_conf(p.port, backend.port)) else {
        return;
    };
    let ctx = |what: &str| format!("{what}; nginx error log:\n{}", ws.error_log());

    let dl = tempfile::tempdir().unwrap();
    let dest = dl.path().join("big.bin");
    assert_eq!(
        curl_to_file(&[], &ws.url("/files/big.bin"), &dest),
        200,
        "{}",
        ctx("GET")
    );
    assert_eq!(
        sha256_file(&dest),
        sha256(&pattern(BIG)),
        "{}",
        ctx("GET body")
    );

    let r = curl(&["-r", "100000-100099"], &ws.url("/files/big.bin"));
    assert_eq!(r.status, 206, "{}", ctx(&r.head));
    assert_eq!(
        r.header("Content-Range").as_deref(),
        Some("bytes 100000-100099/1048576")
    );
    assert_eq!(r.body, pattern(BIG)[100_000..100_100], "{}", ctx("range"));

    let r = curl(&["-r", "2000000-"], &ws.url("/files/big.bin"));
    assert_eq!(r.status, 416, "{}", ctx(&r.head));

    let r = curl(&[], &ws.url("/files/hello.txt"));
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!\n"));
    let etag = r.header("ETag").expect("an ETag");
    let inm = format!("If-None-Match: {etag}");
    assert_eq!(curl(&["-H", &inm], &ws.url("/files/hello.txt")).status, 304);

    // The redirect keeps the mount point nginx sent as SCRIPT_NAME.
    let r = curl(&[], &ws.url("/files/dir?x=1"));
    assert_eq!(r.status, 301, "{}", ctx(&r.head));
    assert_eq!(r.header("Location").as_deref(), Some("/files/dir/?x=1"));
    let r = curl(&[], &ws.url("/files/dir/"));
    assert_eq!((r.status, r.text().as_str()), (200, "<p>dir</p>\n"));

    // Encoded traversal that nginx passes on: refused by the app.
    let r = curl(
        &["--path-as-is"],
        &ws.url("/files/dir%2f..%2f..%2fsecret.txt"),
    );
    assert!(matches!(r.status, 400 | 404), "{}", ctx(&r.head));
    assert!(!r.text().contains("secret"));
    let r = curl(&[], &ws.url("/files/link-out.txt"));
    assert_eq!(r.status, 403, "{}", ctx(&r.head));
}
