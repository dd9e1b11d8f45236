//! The `gatekit` binary as a FastCGI backend: started by spawn-fcgi with the
//! listening socket on fd 0 (detected, no flag) behind real nginx, by
//! systemd-socket-activate (LISTEN_FDS), by Apache's mod_fcgid as a `.fcgi`
//! program and by lighttpd's `bin-path`, and with `--fastcgi ADDR`, driven
//! by libfcgi's `cgi-fcgi`.

use std::process::{Child, Command, Stdio};

use gatekit_testkit::{WebServer, curl, free_port, require, stop, wait_for_port};

use crate::util::gatekit_bin;

struct Backend {
    child: Child,
}

impl Drop for Backend {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn log_file(name: &str, port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gatekit-{name}-{port}.log"))
}

/// `cgi-fcgi -bind -connect` with a CGI environment; returns its stdout.
fn cgi_fcgi(port: u16, method: &str, uri: &str, body: &[u8]) -> Vec<u8> {
    let cgi_fcgi = require(&["/usr/bin/cgi-fcgi"]).expect("checked by the caller");
    let mut child = Command::new(cgi_fcgi)
        .args(["-bind", "-connect", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("REQUEST_METHOD", method)
        .env("REQUEST_URI", uri)
        .env("PATH_INFO", uri)
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "cgi-fcgi failed");
    out.stdout
}

#[test]
fn spawn_fcgi_on_fd0_behind_nginx() {
    let Some(spawn_fcgi) = require(&["/usr/bin/spawn-fcgi"]) else {
        return;
    };
    let port = free_port();
    let log = log_file("spawn-fcgi", port);
    // -n: spawn-fcgi binds the socket, puts it on fd 0 and execs gatekit in
    // its own place, so the child's pid is gatekit's.
    let mut child = Command::new(spawn_fcgi)
        .args(["-n", "-a", "127.0.0.1", "-p", &port.to_string(), "--"])
        .arg(gatekit_bin())
        .arg("serve")
        .env_clear()
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    let mut backend = Backend { child };
    let Some(nginx) = WebServer::nginx(|p| {
        format!(
            "server {{\n  listen 127.0.0.1:{};\n  location / {{\n    include /etc/nginx/fastcgi_params;\n    \
             fastcgi_param PATH_INFO $uri;\n    fastcgi_pass 127.0.0.1:{port};\n  }}\n}}\n",
            p.port
        )
    }) else {
        return;
    };
    let r = curl(&[], &nginx.url("/some/path?x=1"));
    assert_eq!(r.status, 200, "{}", nginx.error_log());
    let body = r.text();
    assert!(body.starts_with("Hello world!\n"), "{body}");
    assert!(body.contains("PATH_INFO = '/some/path'"), "{body}");
    assert!(body.contains("FCGI_ROLE = 'RESPONDER'"), "{body}");
    // SIGTERM: a clean exit.
    let _ = Command::new("kill")
        .args(["-TERM", &backend.child.id().to_string()])
        .status();
    let status = backend.child.wait().unwrap();
    assert!(
        status.success(),
        "exit status {status}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// The binary dropped into a document root as `demo.fcgi`: mod_fcgid
/// starts it with no arguments and a Unix listening socket on fd 0, and it
/// serves the demo app over FastCGI (docs/deploy-spawn-fcgi.md).
#[test]
fn mod_fcgid_starts_the_binary_as_a_fcgi_program() {
    let m = gatekit_testkit::APACHE_MODULES;
    if require(&[&format!("{m}/mod_fcgid.so")]).is_none() {
        return;
    }
    let Some(apache) = WebServer::apache(|p| {
        let d = p.dir.display();
        let program = p.dir.join("htdocs/demo.fcgi");
        std::fs::copy(gatekit_bin(), &program).unwrap();
        gatekit_testkit::set_mode(&program, 0o755);
        let ipc = p.dir.join("fcgid");
        std::fs::create_dir(&ipc).unwrap();
        gatekit_testkit::set_mode(&ipc, 0o777);
        format!(
            "LoadModule mime_module {m}/mod_mime.so\n\
             TypesConfig /dev/null\n\
             LoadModule fcgid_module {m}/mod_fcgid.so\n\
             FcgidIPCDir \"{d}/fcgid\"\n\
             FcgidProcessTableFile \"{d}/fcgid/shm\"\n\
             <Directory \"{d}/htdocs\">\n\
             \x20   Options +ExecCGI\n\
             \x20   AddHandler fcgid-script .fcgi\n\
             </Directory>\n"
        )
    }) else {
        return;
    };
    for _ in 0..3 {
        let r = curl(&[], &apache.url("/demo.fcgi/some/path?x=1"));
        assert_eq!(r.status, 200, "{}", apache.error_log());
        let body = r.text();
        assert!(body.starts_with("Hello world!\n"), "{body}");
        assert!(body.contains("PATH_INFO = '/some/path'"), "{body}");
        assert!(body.contains("FCGI_ROLE = 'RESPONDER'"), "{body}");
        assert!(body.contains("QUERY_STRING = 'x=1'"), "{body}");
    }
    let log = apache.error_log();
    assert!(log.contains("demo.fcgi"), "{log}");
}

/// lighttpd starting `gatekit serve` itself (`bin-path`) with a Unix socket
/// on fd 0 (docs/deploy-lighttpd.md); stopping lighttpd stops it.
#[test]
fn lighttpd_bin_path_starts_gatekit_serve() {
    let mut pid_file = None;
    let Some(lighttpd) = WebServer::lighttpd(|p| {
        let d = p.dir.display();
        let program = p.dir.join("gatekit");
        std::fs::copy(gatekit_bin(), &program).unwrap();
        let pid = p.dir.join("run/gatekit.pid");
        // Notes its PID (the shell's, which exec keeps), for the check below.
        let wrapper = p.dir.join("gatekit.fcgi");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho $$ > '{}'\nexec '{}' serve\n",
                pid.display(),
                program.display()
            ),
        )
        .unwrap();
        gatekit_testkit::set_mode(&wrapper, 0o755);
        pid_file = Some(pid);
        format!(
            "server.modules += ( \"mod_fastcgi\" )\n\
             fastcgi.server = ( \"/\" => ((\n\
             \x20 \"socket\" => \"{d}/run/gatekit.sock\",\n\
             \x20 \"bin-path\" => \"{}\",\n\
             \x20 \"max-procs\" => 1,\n\
             \x20 \"check-local\" => \"disable\"\n\
             )) )\n",
            wrapper.display()
        )
    }) else {
        return;
    };
    for _ in 0..3 {
        let r = curl(&[], &lighttpd.url("/some/path?x=1"));
        assert_eq!(r.status, 200, "{}", lighttpd.error_log());
        let body = r.text();
        assert!(body.starts_with("Hello world!\n"), "{body}");
        assert!(body.contains("FCGI_ROLE = 'RESPONDER'"), "{body}");
        assert!(body.contains("QUERY_STRING = 'x=1'"), "{body}");
    }
    let pid: u32 = std::fs::read_to_string(pid_file.unwrap())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(lighttpd);
    // Started (through lighttpd) by this test: killed by PID if left.
    let left = gatekit_testkit::reap_or_kill(&[pid], std::time::Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "gatekit {pid} still ran after lighttpd stopped"
    );
}

#[test]
fn systemd_socket_activation_serves_fastcgi() {
    let Some(activate) = require(&["/usr/bin/systemd-socket-activate"]) else {
        return;
    };
    if require(&["/usr/bin/cgi-fcgi"]).is_none() {
        return;
    }
    let port = free_port();
    let log = log_file("activate", port);
    let mut child = Command::new(activate)
        .args(["-l", &format!("127.0.0.1:{port}")])
        .arg(gatekit_bin())
        .arg("serve")
        .env_clear()
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    let _backend = Backend { child };
    let out = cgi_fcgi(port, "GET", "/activated", b"");
    let text = String::from_utf8_lossy(&out);
    // 200 OK: no `Status:` line (`omit_status_200`).
    assert!(text.starts_with("Content-Type: "), "{text}");
    assert!(text.contains("Hello world!\n"), "{text}");
}

#[test]
fn fastcgi_flag_with_cgi_fcgi_client() {
    if require(&["/usr/bin/cgi-fcgi"]).is_none() {
        return;
    }
    let port = free_port();
    let log = log_file("fastcgi-flag", port);
    let mut child = Command::new(gatekit_bin())
        .args(["serve", "--fastcgi", &format!("127.0.0.1:{port}"), "echo"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    let _backend = Backend { child };
    let body = gatekit_testkit::pattern(200_000);
    let out = cgi_fcgi(port, "POST", "/echo", &body);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        out.starts_with(b"Content-Type: "),
        "{}",
        String::from_utf8_lossy(&out[..200])
    );
    assert!(out[split..] == body[..]);
    let banner = std::fs::read_to_string(&log).unwrap();
    assert!(banner.contains("over FastCGI on 127.0.0.1:"), "{banner}");
}

#[test]
fn scgi_flag_serves_a_netstring_request() {
    use std::io::{Read, Write};
    let port = free_port();
    let log = log_file("scgi-flag", port);
    let mut child = Command::new(gatekit_bin())
        .args(["serve", "--scgi", &format!("127.0.0.1:{port}"), "echo"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    let _backend = Backend { child };
    let headers: &[u8] =
        b"CONTENT_LENGTH\x005\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/echo\x00";
    let mut request = format!("{}:", headers.len()).into_bytes();
    request.extend_from_slice(headers);
    request.extend_from_slice(b",hello");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(&request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    assert!(
        response.starts_with(b"Content-Type: "),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert!(response.ends_with(b"\r\n\r\nhello"));
}
