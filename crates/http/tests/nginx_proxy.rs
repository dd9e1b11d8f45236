//! The HTTP server behind real nginx `proxy_pass` with upstream keep-alive
//! (`proxy_http_version 1.1`, `Connection ""`, `keepalive 16`): requests and
//! a 10 MB body pass byte-exact, a chunked response keeps the upstream
//! connection usable, and nginx reuses upstream connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::thread::JoinHandle;

use gatekit_http::{Server, ServerConfig};
use gatekit_server::engine::Shutdown;
use gatekit_server::listen::Addr;
use gatekit_testkit::{WebServer, curl, curl_to_file, pattern, sha256_file};

struct InProcess {
    port: u16,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    fn start() -> InProcess {
        let server = Server::bind("127.0.0.1:0", common::app, ServerConfig::default()).unwrap();
        let port = match server.local_addrs().first() {
            Some(Addr::Ip(a)) => a.port(),
            other => panic!("unexpected local address {other:?}"),
        };
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.serve_forever().unwrap());
        InProcess {
            port,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// nginx in front of `backend` with a keep-alive upstream.
fn nginx(backend: u16) -> Option<WebServer> {
    WebServer::nginx(|p| {
        format!(
            "  upstream gatekit {{\n    server 127.0.0.1:{backend};\n    keepalive 16;\n  }}\n\
             server {{\n    listen 127.0.0.1:{};\n    location / {{\n      \
             proxy_pass http://gatekit;\n      proxy_http_version 1.1;\n      \
             proxy_set_header Connection \"\";\n      \
             proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n  }}\n",
            p.port
        )
    })
}

fn remote_port(nginx: &WebServer) -> u16 {
    let r = curl(&[], &nginx.url("/port"));
    assert_eq!(r.status, 200, "{}", nginx.error_log());
    r.text().parse().unwrap()
}

#[test]
fn get_through_nginx_reaches_the_app_as_http_1_1() {
    let backend = InProcess::start();
    let Some(nginx) = nginx(backend.port) else {
        return;
    };
    let r = curl(&[], &nginx.url("/env?a=1&b=%20x"));
    assert_eq!(r.status, 200, "{}", nginx.error_log());
    let text = r.text();
    for line in [
        "REQUEST_METHOD=GET",
        "PATH_INFO=/env",
        "QUERY_STRING=a=1&b=%20x",
        "SERVER_PROTOCOL=HTTP/1.1",
        "HTTP_HOST=gatekit",
        "HTTP_CONNECTION=\n",
        "HTTP_X_FORWARDED_FOR=127.0.0.1",
        "REMOTE_ADDR=127.0.0.1",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let hello = curl(&[], &nginx.url("/hello"));
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello\n"));
    assert_eq!(hello.header("content-length").as_deref(), Some("6"));
}

#[test]
fn ten_mb_post_through_nginx_is_echoed_byte_exact() {
    let backend = InProcess::start();
    let Some(nginx) = nginx(backend.port) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, pattern(10_000_000)).unwrap();
    let echoed = dir.path().join("echoed");
    let data = format!("@{}", body.display());
    let status = curl_to_file(
        &[
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/octet-stream",
        ],
        &nginx.url("/echo"),
        &echoed,
    );
    assert_eq!(status, 200, "{}", nginx.error_log());
    assert_eq!(std::fs::metadata(&echoed).unwrap().len(), 10_000_000);
    assert_eq!(sha256_file(&echoed), sha256_file(&body));
    // The upstream connection survived the big body: the next request works.
    let r = curl(&[], &nginx.url("/hello"));
    assert_eq!(r.status, 200);
}

#[test]
fn chunked_response_through_nginx_keeps_the_upstream_connection() {
    let backend = InProcess::start();
    let Some(nginx) = nginx(backend.port) else {
        return;
    };
    let before = remote_port(&nginx);
    let r = curl(&[], &nginx.url("/stream"));
    assert_eq!(r.status, 200, "{}", nginx.error_log());
    let want: Vec<u8> = (0..100u8)
        .flat_map(|i| vec![b'a' + i % 26; 10_000])
        .collect();
    assert_eq!(r.body.len(), want.len());
    assert!(r.body == want, "streamed body differs");
    // nginx reads a chunked upstream response to its last chunk and keeps
    // the connection: the next request arrives on the same one.
    let after = remote_port(&nginx);
    assert_eq!(
        before, after,
        "nginx opened a new upstream connection after a chunked response"
    );
}

#[test]
fn hundred_sequential_requests_reuse_upstream_connections() {
    let backend = InProcess::start();
    let Some(nginx) = nginx(backend.port) else {
        return;
    };
    let mut ports = BTreeSet::new();
    for _ in 0..100 {
        ports.insert(remote_port(&nginx));
    }
    eprintln!(
        "100 requests through nginx came on {} upstream connection(s)",
        ports.len()
    );
    // One worker process, sequential requests: one kept connection is
    // enough; 16 (the keepalive pool) is the most nginx may keep.
    assert!(
        ports.len() <= 16,
        "{} distinct upstream connections for 100 requests: {ports:?}",
        ports.len()
    );
}
