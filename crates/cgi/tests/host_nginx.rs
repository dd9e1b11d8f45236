//! fcgiwrap's job: gatekit's FastCGI server, in this process, hosting a
//! directory of CGI scripts (POSIX shell and Python) with `CgiHost`, behind
//! real nginx `fastcgi_pass` on loopback, driven with curl.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use gatekit_cgi::host::CgiHost;
use gatekit_fastcgi::server::{Server, ServerConfig};
use gatekit_server::engine::Shutdown;
use gatekit_server::listen::Addr;
use gatekit_testkit::{WebServer, curl, curl_to_file, is_gone, pattern, set_mode, sha256_file};

/// The test scripts copied into a temp dir, executable, plus `noexec.sh`
/// (mode 0644).
fn scripts() -> tempfile::TempDir {
    let dir = gatekit_testkit::public_tempdir();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dir.path().join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
        set_mode(&to, 0o755);
    }
    let noexec = dir.path().join("noexec.sh");
    std::fs::copy(dir.path().join("env.sh"), &noexec).unwrap();
    set_mode(&noexec, 0o644);
    dir
}

/// The FastCGI server on a thread; stopped on drop.
struct Backend {
    port: u16,
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(host: CgiHost) -> Backend {
    let mut config = ServerConfig::default();
    config.engine.workers = 4;
    config.engine.shutdown_grace = Duration::from_secs(5);
    let server = Server::bind("127.0.0.1:0", host, config).unwrap();
    let Addr::Ip(addr) = server.local_addrs().remove(0) else {
        panic!("not TCP")
    };
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve_forever().unwrap());
    Backend {
        port: addr.port(),
        shutdown,
        thread: Some(thread),
    }
}

/// nginx splitting `/cgi/NAME/PATH` into SCRIPT_NAME `/cgi` and PATH_INFO
/// `/NAME/PATH` for the host, with its stock-style parameters spelt out.
fn nginx_conf(backend: u16, port: u16) -> String {
    format!(
        "server {{\n  listen 127.0.0.1:{port};\n  location /cgi/ {{\n    \
         fastcgi_split_path_info ^(/cgi)(/.*)$;\n    \
         fastcgi_param QUERY_STRING $query_string;\n    \
         fastcgi_param REQUEST_METHOD $request_method;\n    \
         fastcgi_param CONTENT_TYPE $content_type;\n    \
         fastcgi_param CONTENT_LENGTH $content_length;\n    \
         fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n    \
         fastcgi_param PATH_INFO $fastcgi_path_info;\n    \
         fastcgi_param REQUEST_URI $request_uri;\n    \
         fastcgi_param DOCUMENT_ROOT $document_root;\n    \
         fastcgi_param SERVER_PROTOCOL $server_protocol;\n    \
         fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n    \
         fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;\n    \
         fastcgi_param REMOTE_ADDR $remote_addr;\n    \
         fastcgi_param REMOTE_PORT $remote_port;\n    \
         fastcgi_param SERVER_ADDR $server_addr;\n    \
         fastcgi_param SERVER_PORT $server_port;\n    \
         fastcgi_param SERVER_NAME $server_name;\n    \
         fastcgi_read_timeout 60s;\n    \
         fastcgi_pass 127.0.0.1:{backend};\n  }}\n}}\n"
    )
}

fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_log(ws: &WebServer, marker: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if ws.error_log().contains(marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

// One nginx and one backend for every check: starting them is the slow part.
#[allow(clippy::too_many_lines)]
#[test]
fn cgi_scripts_behind_nginx() {
    let dir = scripts();
    let pids = gatekit_testkit::public_tempdir();
    let host = CgiHost::new(dir.path())
        .unwrap()
        .timeout(Duration::from_secs(2))
        .env("PID_DIR", pids.path());
    let backend = start(host);
    let Some(ws) = WebServer::nginx(|p| nginx_conf(backend.port, p.port)) else {
        return;
    };
    let ctx = |what: &str| format!("{what}; nginx error log:\n{}", ws.error_log());

    // GET with a query string and PATH_INFO; the Proxy header is dropped.
    let r = curl(
        &["-H", "Proxy: http://evil.example/", "-H", "X-Test: yes"],
        &ws.url("/cgi/env.sh/some/path?a=1&b=2"),
    );
    assert_eq!(r.status, 200, "{}", ctx("GET env.sh"));
    let text = r.text();
    for want in [
        "\nSCRIPT_NAME=/cgi/env.sh\n",
        "\nPATH_INFO=/some/path\n",
        "\nQUERY_STRING=a=1&b=2\n",
        "\nREQUEST_METHOD=GET\n",
        "\nHTTP_X_TEST=yes\n",
        "\nGATEWAY_INTERFACE=CGI/1.1\n",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert!(!text.contains("HTTP_PROXY"), "httpoxy: {text}");

    // Python: PATH_INFO and the query string in its own headers.
    let r = curl(&[], &ws.url("/cgi/echo.py/p/q?k=v"));
    assert_eq!(r.status, 200, "{}", ctx("GET echo.py"));
    assert_eq!(r.header("X-Path-Info").as_deref(), Some("/p/q"));
    assert_eq!(r.header("X-Query").as_deref(), Some("k=v"));

    // A 1 MB POST echoed back byte for byte, by each script.
    let tmp = tempfile::tempdir().unwrap();
    let upload = tmp.path().join("upload.bin");
    std::fs::write(&upload, pattern(1024 * 1024)).unwrap();
    let at = format!("@{}", upload.display());
    for script in ["echo.sh", "echo.py"] {
        let echoed = tmp.path().join(format!("{script}.out"));
        let status = curl_to_file(
            &[
                "--data-binary",
                &at,
                "-H",
                "Content-Type: application/octet-stream",
            ],
            &ws.url(&format!("/cgi/{script}")),
            &echoed,
        );
        assert_eq!(status, 200, "{}", ctx(script));
        assert_eq!(
            sha256_file(&echoed),
            sha256_file(&upload),
            "{}",
            ctx(&format!("{script} echo"))
        );
    }

    // The script's own status.
    let r = curl(&[], &ws.url("/cgi/status.sh"));
    assert_eq!(r.status, 404, "{}", ctx("status.sh"));
    assert_eq!(r.text(), "no such thing\n");

    // A local redirect, followed inside the host.
    let r = curl(&[], &ws.url("/cgi/redirect.sh"));
    assert_eq!(r.status, 200, "{}", ctx("redirect.sh"));
    assert!(
        r.text().contains("\nPATH_INFO=/redirected\n"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("\nQUERY_STRING=via=redirect\n"),
        "{}",
        r.text()
    );

    // stderr lines reach nginx's error log.
    let r = curl(&[], &ws.url("/cgi/stderr.sh"));
    assert_eq!(r.status, 200, "{}", ctx("stderr.sh"));
    assert!(
        wait_for_log(&ws, "gatekit-stderr-marker two"),
        "{}",
        ctx("stderr in the log")
    );
    let _ = curl(&[], &ws.url("/cgi/echo.py"));
    assert!(
        wait_for_log(&ws, "gatekit-python-marker GET"),
        "{}",
        ctx("python stderr in the log")
    );

    // Not executable, hidden, missing: 404.
    for path in ["/cgi/noexec.sh", "/cgi/.hidden", "/cgi/missing.sh"] {
        let r = curl(&[], &ws.url(path));
        assert_eq!(r.status, 404, "{}", ctx(path));
    }

    // Malformed output: 502.
    let r = curl(&[], &ws.url("/cgi/garbage.sh"));
    assert_eq!(r.status, 502, "{}", ctx("garbage.sh"));

    // A script that hangs: 504 at the timeout, its process group killed.
    let started = Instant::now();
    let r = curl(&[], &ws.url("/cgi/hang.sh"));
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", ctx("hang.sh"));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let script = read_pid(&pids.path().join("script.pid"));
    let grandchild = read_pid(&pids.path().join("grandchild.pid"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !(is_gone(script) && is_gone(grandchild)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_gone(script), "script {script} survived");
    assert!(
        is_gone(grandchild),
        "grandchild sleep {grandchild} survived"
    );
    assert!(
        wait_for_log(&ws, "timed out"),
        "{}",
        ctx("timeout in the log")
    );

    // And the server goes on.
    let r = curl(&[], &ws.url("/cgi/status.sh"));
    assert_eq!(r.status, 404, "{}", ctx("after the timeout"));
    drop(ws);
    drop(backend);
}
