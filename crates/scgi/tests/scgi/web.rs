//! Behind real web servers, configured as docs/deploy-scgi.md shows:
//! nginx `scgi_pass` over TCP (stock `scgi_params`, so `PATH_INFO` is
//! derived) and over a Unix socket (with the two `scgi_param` lines),
//! Apache `mod_proxy_scgi` (with `script_name` set) and lighttpd
//! `mod_scgi`. Each does a GET, a 10 MiB POST (its SHA-256 computed by the
//! app), a 100 MiB `FileWrapper` download, a panicking app (500, then the
//! server still serves) and 200 requests from 8 concurrent clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gatekit_testkit::{APACHE_MODULES, WebServer, curl, curl_to_file, sha256_file};

use crate::common::{big_file, config, start};

/// nginx's stock `scgi_params` (as Debian ships it), which sends neither
/// `SCRIPT_NAME` nor `PATH_INFO`.
const STOCK_SCGI_PARAMS: &str = "\
    scgi_param  REQUEST_METHOD     $request_method;
    scgi_param  REQUEST_URI        $request_uri;
    scgi_param  QUERY_STRING       $query_string;
    scgi_param  CONTENT_TYPE       $content_type;
    scgi_param  DOCUMENT_URI       $document_uri;
    scgi_param  DOCUMENT_ROOT      $document_root;
    scgi_param  SCGI               1;
    scgi_param  SERVER_PROTOCOL    $server_protocol;
    scgi_param  REQUEST_SCHEME     $scheme;
    scgi_param  HTTPS              $https if_not_empty;
    scgi_param  REMOTE_ADDR        $remote_addr;
    scgi_param  REMOTE_PORT        $remote_port;
    scgi_param  SERVER_PORT        $server_port;
    scgi_param  SERVER_NAME        $server_name;
";

/// The two lines docs/deploy-scgi.md adds for an app at the site root.
const PATH_PARAMS: &str = "\
    scgi_param  SCRIPT_NAME        \"\";
    scgi_param  PATH_INFO          $document_uri;
";

fn nginx_conf(port: u16, backend: &str, extra: &str) -> String {
    format!(
        "server {{\n  listen 127.0.0.1:{port};\n  location / {{\n{STOCK_SCGI_PARAMS}{extra}    \
         scgi_pass {backend};\n  }}\n}}\n"
    )
}

#[test]
fn nginx_scgi_pass_tcp() {
    let backend = start("127.0.0.1:0", config());
    let addr = backend.tcp();
    let Some(web) = WebServer::nginx(|p| nginx_conf(p.port, &addr.to_string(), "")) else {
        return;
    };
    exercise(&web);
}

#[test]
fn nginx_scgi_pass_unix_socket() {
    let dir = gatekit_testkit::public_tempdir();
    let sock = dir.path().join("app.sock");
    let mut c = config();
    c.listen.unix_mode = Some(0o666);
    let _backend = start(&format!("unix:{}", sock.display()), c);
    gatekit_testkit::wait_for_unix(&sock);
    let Some(web) =
        WebServer::nginx(|p| nginx_conf(p.port, &format!("unix:{}", sock.display()), PATH_PARAMS))
    else {
        return;
    };
    exercise(&web);
}

#[test]
fn apache_mod_proxy_scgi() {
    let mut c = config();
    // mod_proxy_scgi sends the whole path as SCRIPT_NAME: say where the app is mounted.
    c.script_name = Some(String::new());
    let backend = start("127.0.0.1:0", c);
    let port = backend.tcp().port();
    let Some(web) = WebServer::apache(|_| {
        format!(
            "LoadModule proxy_module {APACHE_MODULES}/mod_proxy.so\n\
             LoadModule proxy_scgi_module {APACHE_MODULES}/mod_proxy_scgi.so\n\
             ProxyPass \"/\" \"scgi://127.0.0.1:{port}/\"\n"
        )
    }) else {
        return;
    };
    exercise(&web);
}

#[test]
fn lighttpd_mod_scgi() {
    let backend = start("127.0.0.1:0", config());
    let port = backend.tcp().port();
    let Some(web) = WebServer::lighttpd(|_| {
        format!(
            "server.modules += ( \"mod_scgi\" )\n\
             scgi.server = ( \"/\" => ((\n    \"host\" => \"127.0.0.1\",\n    \"port\" => {port},\n    \
             \"check-local\" => \"disable\",\n    \"fix-root-scriptname\" => \"enable\"\n)) )\n"
        )
    }) else {
        return;
    };
    exercise(&web);
}

/// The checks every web server goes through.
fn exercise(web: &WebServer) {
    let log = || web.error_log();

    // GET.
    let r = curl(&[], &web.url("/hello?x=1"));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), log());
    assert_eq!(r.text(), "Hello\n");
    assert_eq!(r.header("Content-Type").as_deref(), Some("text/plain"));

    // The environ: SCRIPT_NAME and PATH_INFO for an app at the site root.
    let r = curl(&[], &web.url("/env/a%20b?q=1"));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), log());
    let text = r.text();
    for line in [
        "SCRIPT_NAME = ''",
        "PATH_INFO = '/env/a b'",
        "QUERY_STRING = 'q=1'",
        "REQUEST_METHOD = 'GET'",
        "SCGI = '1'",
        "CONTENT_LENGTH = '0'",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }

    let dir = tempfile::tempdir().unwrap();

    // A 10 MiB POST; the app answers its length and SHA-256.
    let upload = big_file(dir.path(), 10);
    let r = curl(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", upload.display()),
        ],
        &web.url("/sha256"),
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), log());
    assert_eq!(
        r.text(),
        format!("{} {}\n", 10 * 1024 * 1024, sha256_file(&upload))
    );

    // A 100 MiB FileWrapper download (sendfile on the SCGI socket).
    let file = big_file(dir.path(), 100);
    let dest = dir.path().join("download.bin");
    let status = curl_to_file(&[], &web.url(&format!("/file?{}", file.display())), &dest);
    assert_eq!(status, 200, "{}", log());
    assert_eq!(
        std::fs::metadata(&dest).unwrap().len(),
        100 * 1024 * 1024,
        "{}",
        log()
    );
    assert_eq!(sha256_file(&dest), sha256_file(&file));
    drop(std::fs::remove_file(&dest));

    // The app panics: 500, and the server goes on.
    let r = curl(&[], &web.url("/panic"));
    assert_eq!(r.status, 500, "{}", r.text());
    let r = curl(&[], &web.url("/hello"));
    assert_eq!((r.status, r.text().as_str()), (200, "Hello\n"));

    // 200 requests from 8 concurrent clients, no error.
    concurrent_gets(web.port, 8, 25);
}

/// `threads` clients each make `each` GET /hello requests, one connection
/// each; every one must be a 200 with the body.
fn concurrent_gets(port: u16, threads: usize, each: usize) {
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                (0..each)
                    .map(|_| http_get(port, "/hello"))
                    .filter(|r| !is_hello(r))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed; first:\n{}",
        failures.len(),
        threads * each,
        failures[0]
    );
}

/// A 200 whose body is `Hello\n`, with a Content-Length or chunked (Apache
/// sometimes re-frames a response it passes on).
fn is_hello(response: &str) -> bool {
    response.starts_with("HTTP/1.1 200 ")
        && (response.ends_with("\r\n\r\nHello\n")
            || response.ends_with("\r\n\r\n6\r\nHello\n\r\n0\r\n\r\n"))
}

/// One HTTP/1.1 request on its own connection; the whole response as text,
/// or the error.
fn http_get(port: u16, path: &str) -> String {
    let attempt = || -> std::io::Result<String> {
        let mut c = TcpStream::connect(("127.0.0.1", port))?;
        c.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = Vec::new();
        c.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    attempt().unwrap_or_else(|e| format!("error: {e}"))
}
