//! The FastCGI server behind real web servers on loopback: nginx
//! `fastcgi_pass` (TCP and Unix socket, with and without keep-conn), Apache
//! `mod_proxy_fcgi` and `mod_authnz_fcgi`, lighttpd `mod_fastcgi`, and
//! libfcgi's `cgi-fcgi` as a client. The configurations are the ones
//! docs/deploy-nginx.md, docs/deploy-apache-fcgi.md and
//! docs/deploy-lighttpd.md show.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Command;

use common::{Running, config, start};
use gatekit_testkit::{WebServer, curl, curl_to_file, pattern, require, sha256, sha256_file};

/// Where the backend listens, as each web server spells it.
enum Backend {
    Tcp(u16),
    Unix(std::path::PathBuf),
}

fn backend_tcp() -> (Running, Backend) {
    let s = start("127.0.0.1:0", config());
    let port = s.port();
    (s, Backend::Tcp(port))
}

fn backend_unix(dir: &Path) -> (Running, Backend) {
    let path = dir.join("gatekit.sock");
    let mut cfg = config();
    // The web server may run as another user (Apache: www-data).
    cfg.listen.unix_mode = Some(0o666);
    let s = start(&format!("unix:{}", path.display()), cfg);
    (s, Backend::Unix(path))
}

/// Runs the checks every web server must pass ([`common::web::check_all`]),
/// with the backend's `/file` sending a 100 MB file.
fn check_all(ws: &WebServer, backend: &Running, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let big = common::web::big_file(dir.path());
    *backend.shared.file.lock().unwrap() = Some(big.clone());
    common::web::check_all(ws, name, &big);
}

fn nginx_conf(backend: &Backend, keep_conn: bool, port: u16) -> String {
    let server = match backend {
        Backend::Tcp(p) => format!("127.0.0.1:{p}"),
        Backend::Unix(path) => format!("unix:{}", path.display()),
    };
    let keep = if keep_conn { "keepalive 16;" } else { "" };
    let keep_conn = if keep_conn {
        "fastcgi_keep_conn on;"
    } else {
        ""
    };
    format!(
        "upstream gatekit {{ server {server}; {keep} }}\n\
         server {{\n  listen 127.0.0.1:{port};\n  location / {{\n    \
         include /etc/nginx/fastcgi_params;\n    fastcgi_pass gatekit;\n    {keep_conn}\n  }}\n}}\n"
    )
}

fn nginx_case(unix: bool, keep_conn: bool) {
    let dir = gatekit_testkit::public_tempdir();
    let (backend, addr) = if unix {
        backend_unix(dir.path())
    } else {
        backend_tcp()
    };
    let Some(ws) = WebServer::nginx(|p| nginx_conf(&addr, keep_conn, p.port)) else {
        return;
    };
    let name = format!("nginx unix={unix} keep_conn={keep_conn}");
    check_all(&ws, &backend, &name);
    assert!(
        !ws.error_log().contains("upstream prematurely closed"),
        "{}",
        ws.error_log()
    );
}

#[test]
fn nginx_tcp() {
    nginx_case(false, false);
}

#[test]
fn nginx_tcp_keep_conn() {
    nginx_case(false, true);
}

#[test]
fn nginx_unix() {
    nginx_case(true, false);
}

#[test]
fn nginx_unix_keep_conn() {
    nginx_case(true, true);
}

#[test]
fn apache_mod_proxy_fcgi() {
    let (backend, addr) = backend_tcp();
    let Backend::Tcp(port) = addr else {
        unreachable!()
    };
    let m = gatekit_testkit::APACHE_MODULES;
    let Some(ws) = WebServer::apache(|_| {
        format!(
            "LoadModule proxy_module {m}/mod_proxy.so\n\
             LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so\n\
             ProxyPass \"/\" \"fcgi://127.0.0.1:{port}/\" enablereuse=on\n"
        )
    }) else {
        return;
    };
    check_all(&ws, &backend, "apache mod_proxy_fcgi");
}

#[test]
fn apache_mod_proxy_fcgi_unix() {
    let dir = gatekit_testkit::public_tempdir();
    let (backend, addr) = backend_unix(dir.path());
    let Backend::Unix(path) = addr else {
        unreachable!()
    };
    let m = gatekit_testkit::APACHE_MODULES;
    let Some(ws) = WebServer::apache(|_| {
        format!(
            "LoadModule proxy_module {m}/mod_proxy.so\n\
             LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so\n\
             ProxyPass \"/\" \"unix:{}|fcgi://localhost/\"\n",
            path.display()
        )
    }) else {
        return;
    };
    check_all(&ws, &backend, "apache mod_proxy_fcgi unix");
}

#[test]
fn apache_mod_authnz_fcgi_authorizer() {
    let (_backend, addr) = backend_tcp();
    let Backend::Tcp(port) = addr else {
        unreachable!()
    };
    let m = gatekit_testkit::APACHE_MODULES;
    let Some(ws) = WebServer::apache(|_| {
        format!(
            "LoadModule proxy_module {m}/mod_proxy.so\n\
             LoadModule proxy_fcgi_module {m}/mod_proxy_fcgi.so\n\
             LoadModule authn_core_module {m}/mod_authn_core.so\n\
             LoadModule authz_user_module {m}/mod_authz_user.so\n\
             LoadModule authnz_fcgi_module {m}/mod_authnz_fcgi.so\n\
             AuthnzFcgiDefineProvider authnz GatekitAuth fcgi://127.0.0.1:{port}/\n\
             ProxyPass \"/protected\" \"fcgi://127.0.0.1:{port}/\"\n\
             <Location \"/protected\">\n\
             \x20   AuthType GatekitAuth\n\
             \x20   AuthName \"gatekit\"\n\
             \x20   CGIPassAuth On\n\
             \x20   AuthnzFcgiCheckAuthnProvider GatekitAuth Authoritative On RequireBasicAuth Off UserExpr \"%{{reqenv:REMOTE_USER}}\"\n\
             \x20   Require valid-user\n\
             </Location>\n"
        )
    }) else {
        return;
    };
    let ok = curl(&["-H", "Authorization: Bearer good"], &ws.url("/protected"));
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), ws.error_log());
    assert_eq!(ok.text(), "user=alice\n", "{}", ws.error_log());
    let denied = curl(&["-H", "Authorization: Bearer bad"], &ws.url("/protected"));
    assert_eq!(denied.status, 403, "{}\n{}", denied.text(), ws.error_log());
}

#[test]
fn lighttpd_mod_fastcgi() {
    let (backend, addr) = backend_tcp();
    let Backend::Tcp(port) = addr else {
        unreachable!()
    };
    let Some(ws) = WebServer::lighttpd(|_| {
        format!(
            "server.modules += ( \"mod_fastcgi\" )\n\
             fastcgi.server = ( \"/\" => (( \"host\" => \"127.0.0.1\", \"port\" => {port}, \"check-local\" => \"disable\" )) )\n"
        )
    }) else {
        return;
    };
    check_all(&ws, &backend, "lighttpd mod_fastcgi");
}

#[test]
fn cgi_fcgi_client() {
    let Some(cgi_fcgi) = require(&["/usr/bin/cgi-fcgi"]) else {
        return;
    };
    let (_backend, addr) = backend_tcp();
    let Backend::Tcp(port) = addr else {
        unreachable!()
    };
    let body = pattern(300_000);
    let mut child = Command::new(cgi_fcgi)
        .args(["-bind", "-connect", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("REQUEST_METHOD", "POST")
        .env("REQUEST_URI", "/echo")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let body = body.clone();
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &body))
    };
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    // 200 OK has no `Status:` line (`omit_status_200`).
    assert!(
        out.stdout
            .starts_with(b"Content-Type: application/octet-stream\r\n")
    );
    assert_eq!(sha256(&out.stdout[split..]), sha256(&body));
}

#[test]
fn nginx_x_accel_redirect_offload() {
    let files = gatekit_testkit::public_tempdir();
    let root = files.path().canonicalize().unwrap();
    let path = root.join("big.bin");
    let data = pattern(3 * 1024 * 1024);
    std::fs::write(&path, &data).unwrap();
    gatekit_testkit::set_mode(&path, 0o644);
    let mut cfg = config();
    cfg.offload = Some(gatekit_server::offload::Offload::XAccelRedirect {
        root: root.clone(),
        prefix: "/.gatekit-files/".into(),
    });
    let backend = start("127.0.0.1:0", cfg);
    *backend.shared.file.lock().unwrap() = Some(path.clone());
    let port = backend.port();
    let Some(ws) = WebServer::nginx(|p| {
        format!(
            "server {{\n  listen 127.0.0.1:{};\n  \
             location /.gatekit-files/ {{ internal; alias {}/; }}\n  \
             location / {{\n    include /etc/nginx/fastcgi_params;\n    fastcgi_pass 127.0.0.1:{port};\n  }}\n}}\n",
            p.port,
            root.display()
        )
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let got = dir.path().join("got.bin");
    assert_eq!(
        curl_to_file(&[], &ws.url("/file"), &got),
        200,
        "{}",
        ws.error_log()
    );
    assert_eq!(sha256_file(&got), sha256(&data));
    // nginx's static module served it: it adds an ETag, the app does not.
    let r = curl(&["-I"], &ws.url("/file"));
    assert!(r.header("ETag").is_some(), "{}", r.head);
    // The internal location is not reachable from outside.
    assert_eq!(curl(&[], &ws.url("/.gatekit-files/big.bin")).status, 404);
}
