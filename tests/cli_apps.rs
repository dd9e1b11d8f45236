//! `gatekit serve` with each built-in app, as the built binary: `static DIR`
//! over its own HTTP server (curl, path traversal attempts), `static` and
//! `demo` behind real nginx over FastCGI (TCP and Unix) and SCGI, `static`
//! behind real Apache cgi-bin through a wrapper script, `cgi DIR` behind
//! nginx `fastcgi_pass` (fcgiwrap's job), the serve options that change
//! what a client sees, and the exit codes of usage and runtime errors.
//!
//! Covered elsewhere, not repeated here: the binary copied into cgi-bin as
//! `demo.cgi` (tests/apache_cgi.rs), spawn-fcgi and socket activation
//! (tests/fastcgi_binary.rs), a port in use (tests/cgi_process.rs).
//! `gatekit serve` started by spawn-fcgi is detected as FastCGI on fd 0
//! there; the bare binary (no subcommand) on a socket at fd 0 is tested here.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gatekit_testkit::{WebServer, curl_to_file, is_gone, sha256_file, wait_for_unix};

use crate::util::{curl, gatekit_bin, pattern, public_tempdir, set_mode, stop};

/// A `gatekit serve` the test started; stopped by PID on drop.
struct Backend {
    child: Child,
    /// The line saying what it serves where.
    banner: String,
    /// Its stderr, removed on drop.
    log: Option<PathBuf>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        stop(&mut self.child);
        if let Some(log) = self.log.take() {
            let _ = std::fs::remove_file(log);
        }
    }
}

impl Backend {
    /// The port of a `127.0.0.1:0` listener, read from the banner.
    fn port(&self) -> u16 {
        let at = self.banner.rfind("127.0.0.1:").expect("a TCP banner") + "127.0.0.1:".len();
        let digits: String = self.banner[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    }
}

/// A fresh log file name under the temp dir.
fn log_path(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "gatekit-cli-apps-{}-{what}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `gatekit serve ARGS` with an empty environment; waits (15 s at most)
/// for its banner in `banner_in`, else in its stderr.
fn serve_with_log(args: &[&str], banner_in: Option<&Path>) -> Backend {
    let stderr = log_path("stderr");
    let mut child = Command::new(gatekit_bin())
        .env_clear()
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let log = banner_in.unwrap_or(&stderr);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // Whole lines only: stderr is unbuffered, so a line may be read
        // while it is still being written, in pieces.
        if let Some(line) = text
            .split_inclusive('\n')
            .find(|l| l.starts_with("gatekit: serving ") && l.ends_with('\n'))
        {
            return Backend {
                child,
                banner: line.trim_end().to_owned(),
                log: Some(stderr),
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "gatekit serve {args:?} exited ({status}): {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no banner from gatekit serve {args:?}: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(args: &[&str]) -> Backend {
    serve_with_log(args, None)
}

/// Runs `gatekit ARGS` that should exit on its own: killed after 15 s.
fn run_to_exit(args: &[&str]) -> Output {
    let out = log_path("out");
    let err = log_path("err");
    let mut child = Command::new(gatekit_bin())
        .env_clear()
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            stop(&mut child);
            panic!("gatekit {args:?} did not exit within 15 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(err);
    output
}

/// A document root for `static`, next to a file outside it:
/// `top/root/{data.bin, index.html, sub/inner.txt, inside.txt -> data.bin,
/// link.txt -> ../secret.txt, outdir -> ..}` and `top/secret.txt`.
struct Site {
    top: tempfile::TempDir,
    data: Vec<u8>,
}

const SECRET: &[u8] = b"gatekit-outside-the-root-5f1c9e";

impl Site {
    fn new() -> Site {
        let top = public_tempdir();
        let root = top.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        set_mode(&root, 0o755);
        set_mode(&root.join("sub"), 0o755);
        let data = pattern(300_000);
        let files: [(&str, &[u8]); 3] = [
            ("root/data.bin", &data),
            ("root/index.html", b"<h1>index</h1>\n"),
            ("root/sub/inner.txt", b"inner\n"),
        ];
        for (name, bytes) in files {
            std::fs::write(top.path().join(name), bytes).unwrap();
            set_mode(&top.path().join(name), 0o644);
        }
        std::fs::write(top.path().join("secret.txt"), SECRET).unwrap();
        set_mode(&top.path().join("secret.txt"), 0o644);
        std::os::unix::fs::symlink("data.bin", root.join("inside.bin")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink("..", root.join("outdir")).unwrap();
        Site { top, data }
    }

    fn root(&self) -> PathBuf {
        self.top.path().join("root")
    }

    fn root_arg(&self) -> String {
        self.root().display().to_string()
    }
}

/// The file and a range of it through `base` (a URL prefix).
#[track_caller]
fn check_file_and_range(base: &str, site: &Site, context: &dyn Fn() -> String) {
    let r = curl(&[], &format!("{base}/data.bin"));
    assert_eq!(r.status, 200, "{}", context());
    assert!(r.body == site.data, "data.bin differs; {}", context());
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("application/octet-stream")
    );
    assert!(r.header("ETag").is_some(), "{}", r.head);
    let r = curl(
        &["-H", "Range: bytes=1000-1999"],
        &format!("{base}/data.bin"),
    );
    assert_eq!(r.status, 206, "{}", context());
    assert_eq!(
        r.header("Content-Range").as_deref(),
        Some(format!("bytes 1000-1999/{}", site.data.len()).as_str()),
        "{}",
        r.head
    );
    assert!(
        r.body == site.data[1000..2000],
        "range differs; {}",
        context()
    );
}

#[test]
fn static_over_http_with_curl() {
    let site = Site::new();
    let root = site.root_arg();
    let s = serve(&["--http", "127.0.0.1:0", "static", &root]);
    assert!(s.banner.contains(" on http://127.0.0.1:"), "{}", s.banner);
    let base = format!("http://127.0.0.1:{}", s.port());
    check_file_and_range(&base, &site, &String::new);

    // The index, a file in a subdirectory, a symlink that stays inside.
    let r = curl(&[], &format!("{base}/"));
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>index</h1>\n"));
    let r = curl(&[], &format!("{base}/sub/inner.txt"));
    assert_eq!((r.status, r.text().as_str()), (200, "inner\n"));
    let r = curl(&[], &format!("{base}/inside.bin"));
    assert_eq!(r.status, 200);
    assert!(r.body == site.data);

    // Every way out of the root is refused, and no byte of the file
    // outside it comes back.
    for path in [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/sub%2finner.txt",
        "/..%5csecret.txt",
        "/link.txt",
        "/outdir/secret.txt",
    ] {
        let r = curl(&["--path-as-is"], &format!("{base}{path}"));
        assert!(
            (400..500).contains(&r.status),
            "{path}: {}\n{}",
            r.status,
            r.head
        );
        assert!(
            !r.body.windows(SECRET.len()).any(|w| w == SECRET),
            "{path} leaked the outside file"
        );
    }
    let r = curl(&["--path-as-is"], &format!("{base}/link.txt"));
    assert_eq!(r.status, 403, "a symlink out of the root");
}

/// A `location` passing `/MOUNT/...` to a backend, mounted at `/MOUNT`
/// (`SCRIPT_NAME`) with the rest of the path as `PATH_INFO`, in the forms
/// docs/cli.md shows: Debian's stock parameter files plus the split.
fn nginx_location(mount: &str, pass: &str) -> String {
    if pass.starts_with("scgi_pass") {
        format!(
            "  location ~ ^(?<sn>/{mount})(?<pi>/.*)$ {{\n    include /etc/nginx/scgi_params;\n    \
             scgi_param SCRIPT_NAME $sn;\n    scgi_param PATH_INFO $pi;\n    {pass};\n  }}\n"
        )
    } else {
        format!(
            "  location /{mount}/ {{\n    include /etc/nginx/fastcgi_params;\n    \
             fastcgi_split_path_info ^(/{mount})(/.*)$;\n    \
             fastcgi_param PATH_INFO $fastcgi_path_info;\n    {pass};\n  }}\n"
        )
    }
}

#[test]
fn static_and_demo_behind_nginx_fastcgi_and_scgi() {
    let site = Site::new();
    let root = site.root_arg();
    let sockets = public_tempdir();
    let sock = |name: &str| format!("unix:{}", sockets.path().join(name).display());
    let (static_sock, demo_sock) = (sock("static.sock"), sock("demo.sock"));

    let fcgi_static = serve(&["--fastcgi", "127.0.0.1:0", "static", &root]);
    let fcgi_demo = serve(&["--fastcgi", "127.0.0.1:0", "demo"]);
    let unix_static = serve(&[
        "--fastcgi",
        &static_sock,
        "--unix-mode",
        "666",
        "static",
        &root,
    ]);
    let _unix_demo = serve(&["--fastcgi", &demo_sock, "--unix-mode", "666"]);
    let scgi_static = serve(&["--scgi", "127.0.0.1:0", "static", &root]);
    let scgi_demo = serve(&["--scgi", "127.0.0.1:0", "demo"]);
    for (b, want) in [
        (&fcgi_static, "over FastCGI on 127.0.0.1:"),
        (&unix_static, "over FastCGI on unix:"),
        (&scgi_demo, "over SCGI on 127.0.0.1:"),
    ] {
        assert!(b.banner.contains(want), "{}", b.banner);
    }
    for name in ["static.sock", "demo.sock"] {
        let mode = std::fs::metadata(sockets.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666, "{name}");
    }

    let locations = [
        (
            "ft",
            format!("fastcgi_pass 127.0.0.1:{}", fcgi_static.port()),
        ),
        ("fd", format!("fastcgi_pass 127.0.0.1:{}", fcgi_demo.port())),
        ("ut", format!("fastcgi_pass {static_sock}")),
        ("ud", format!("fastcgi_pass {demo_sock}")),
        ("st", format!("scgi_pass 127.0.0.1:{}", scgi_static.port())),
        ("sd", format!("scgi_pass 127.0.0.1:{}", scgi_demo.port())),
    ];
    let Some(nginx) = WebServer::nginx(|p| {
        let body: String = locations
            .iter()
            .map(|(mount, pass)| nginx_location(mount, pass))
            .collect();
        format!("server {{\n  listen 127.0.0.1:{};\n{body}}}\n", p.port)
    }) else {
        return;
    };
    let log = || format!("nginx error log:\n{}", nginx.error_log());

    for mount in ["ft", "ut", "st"] {
        check_file_and_range(&nginx.url(&format!("/{mount}")), &site, &log);
        let r = curl(&[], &nginx.url(&format!("/{mount}/sub/inner.txt")));
        assert_eq!((r.status, r.text().as_str()), (200, "inner\n"), "{mount}");
        let r = curl(&[], &nginx.url(&format!("/{mount}/link.txt")));
        assert_eq!(r.status, 403, "{mount}: a symlink out of the root");
    }
    for (mount, protocol) in [("fd", "FastCGI"), ("ud", "FastCGI"), ("sd", "SCGI")] {
        let r = curl(&[], &nginx.url(&format!("/{mount}/some/path?x=1")));
        assert_eq!(r.status, 200, "{mount}: {}", log());
        let body = r.text();
        assert!(body.starts_with("Hello world!\n"), "{mount}: {body}");
        for line in [
            format!("SCRIPT_NAME = '/{mount}'"),
            "PATH_INFO = '/some/path'".to_owned(),
            "QUERY_STRING = 'x=1'".to_owned(),
            "wsgi.multithread = True".to_owned(),
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "{mount}/{protocol}: {body}"
            );
        }
    }
    assert!(!nginx.error_log().contains("panicked"), "{}", log());
}

#[test]
fn static_behind_apache_cgi_bin_through_a_wrapper() {
    let site = Site::new();
    let root = site.root_arg();
    let Some(apache) = WebServer::apache(|p| {
        let d = p.dir.display();
        let m = gatekit_testkit::APACHE_MODULES;
        // The binary where Apache's user can run it, and the wrapper style
        // docs/cli.md shows.
        let bin = p.dir.join("gatekit");
        std::fs::copy(gatekit_bin(), &bin).unwrap();
        set_mode(&bin, 0o755);
        let cgi_bin = p.dir.join("cgi-bin");
        std::fs::create_dir(&cgi_bin).unwrap();
        set_mode(&cgi_bin, 0o755);
        let wrapper = cgi_bin.join("files.cgi");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {} serve --cgi static {root}\n",
                bin.display()
            ),
        )
        .unwrap();
        set_mode(&wrapper, 0o755);
        format!(
            "LoadModule alias_module {m}/mod_alias.so\nLoadModule cgid_module {m}/mod_cgid.so\n\
             ScriptSock \"{d}/run/cgid.sock\"\nScriptAlias /cgi-bin/ \"{d}/cgi-bin/\"\n\
             <Directory \"{d}/cgi-bin\">\n    Require all granted\n</Directory>\n"
        )
    }) else {
        return;
    };
    let log = || format!("Apache error log:\n{}", apache.error_log());
    check_file_and_range(&apache.url("/cgi-bin/files.cgi"), &site, &log);
    let r = curl(&[], &apache.url("/cgi-bin/files.cgi/"));
    assert_eq!(r.status, 200, "{}", log());
    assert_eq!(r.text(), "<h1>index</h1>\n");
    let r = curl(&[], &apache.url("/cgi-bin/files.cgi/link.txt"));
    assert_eq!(r.status, 403, "{}", log());
    assert!(!r.body.windows(SECRET.len()).any(|w| w == SECRET));
    // A 304 from the CGI program reaches the client as one.
    let etag = curl(&[], &apache.url("/cgi-bin/files.cgi/data.bin"))
        .header("ETag")
        .unwrap();
    let r = curl(
        &["-H", &format!("If-None-Match: {etag}")],
        &apache.url("/cgi-bin/files.cgi/data.bin"),
    );
    assert_eq!(r.status, 304, "{}", log());
    assert!(r.body.is_empty());
}

/// CGI scripts for `serve cgi DIR`: a shell and a Python script echoing the
/// body, a shell script naming its variables, and one that hangs (its
/// background child's pid noted in `sleep.pid` next to it).
fn cgi_scripts() -> tempfile::TempDir {
    let dir = public_tempdir();
    let scripts: [(&str, &str); 4] = [
        (
            "env.sh",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n\
             printf 'SCRIPT_NAME=%s\\nPATH_INFO=%s\\nQUERY_STRING=%s\\nREQUEST_METHOD=%s\\n' \
             \"$SCRIPT_NAME\" \"$PATH_INFO\" \"$QUERY_STRING\" \"$REQUEST_METHOD\"\n",
        ),
        (
            "echo.sh",
            "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
        ),
        (
            "echo.py",
            "#!/usr/bin/env python3\nimport os, sys\n\
             body = sys.stdin.buffer.read(int(os.environ.get('CONTENT_LENGTH') or 0))\n\
             sys.stdout.buffer.write(b'Status: 201 Created\\r\\n\
             Content-Type: application/octet-stream\\r\\n\\r\\n' + body)\n",
        ),
        (
            "hang.sh",
            "#!/bin/sh\nsleep 60 &\necho $! > \"$(dirname \"$0\")/sleep.pid\"\nwait\n",
        ),
    ];
    for (name, text) in scripts {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o755);
    }
    dir
}

#[test]
fn cgi_scripts_through_the_binary_behind_nginx() {
    let scripts = cgi_scripts();
    let dir = scripts.path().display().to_string();
    let backend = serve(&[
        "--fastcgi",
        "127.0.0.1:0",
        "--script-timeout",
        "2",
        "cgi",
        &dir,
    ]);
    assert!(
        backend.banner.contains("CGI scripts from "),
        "{}",
        backend.banner
    );
    let pass = format!("fastcgi_pass 127.0.0.1:{}", backend.port());
    let Some(nginx) = WebServer::nginx(|p| {
        format!(
            "server {{\n  listen 127.0.0.1:{};\n{}}}\n",
            p.port,
            nginx_location("cgi", &pass)
        )
    }) else {
        return;
    };
    let log = || format!("nginx error log:\n{}", nginx.error_log());

    let r = curl(&[], &nginx.url("/cgi/env.sh/a/b?k=v"));
    assert_eq!(r.status, 200, "{}", log());
    assert_eq!(
        r.text(),
        "SCRIPT_NAME=/cgi/env.sh\nPATH_INFO=/a/b\nQUERY_STRING=k=v\nREQUEST_METHOD=GET\n"
    );

    // A POST body through each script and back, compared by SHA-256.
    let tmp = tempfile::tempdir().unwrap();
    let upload = tmp.path().join("upload.bin");
    std::fs::write(&upload, pattern(700_000)).unwrap();
    let at = format!("@{}", upload.display());
    for (script, status) in [("echo.sh", 200), ("echo.py", 201)] {
        let echoed = tmp.path().join(format!("{script}.out"));
        let got = curl_to_file(
            &[
                "--data-binary",
                &at,
                "-H",
                "Content-Type: application/octet-stream",
            ],
            &nginx.url(&format!("/cgi/{script}")),
            &echoed,
        );
        assert_eq!(got, status, "{script}: {}", log());
        assert_eq!(sha256_file(&echoed), sha256_file(&upload), "{script}");
    }

    // A script that never answers: 504 at --script-timeout, its process
    // group killed.
    let started = Instant::now();
    let r = curl(&[], &nginx.url("/cgi/hang.sh"));
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", log());
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "took {took:?}"
    );
    let pid: u32 = std::fs::read_to_string(scripts.path().join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_gone(pid), "the hung script's child {pid} survived");

    // And it goes on serving.
    let r = curl(&[], &nginx.url("/cgi/env.sh"));
    assert_eq!(r.status, 200, "{}", log());
}

#[test]
fn allow_list_closes_other_peers() {
    let refused = serve(&["--http", "127.0.0.1:0", "--allow", "10.0.0.0/8"]);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", refused.port())).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The write may already fail: the server closes at once.
    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    match c.read_to_end(&mut got) {
        Ok(_) => assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got)),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }

    // The same server with loopback allowed answers.
    let allowed = serve(&["--http", "127.0.0.1:0", "--allow", "10.0.0.0/8,127.0.0.1"]);
    let r = curl(&[], &format!("http://127.0.0.1:{}/", allowed.port()));
    assert_eq!(r.status, 200);
}

#[test]
fn server_software_and_error_log() {
    let logs = tempfile::tempdir().unwrap();
    let error_log = logs.path().join("error.log");
    let s = serve_with_log(
        &[
            "--http",
            "127.0.0.1:0",
            "--server-software",
            "X/1",
            "--error-log",
            &error_log.display().to_string(),
        ],
        Some(&error_log),
    );
    let r = curl(&[], &format!("http://127.0.0.1:{}/", s.port()));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Server").as_deref(), Some("X/1"));
    assert!(
        r.text().contains("\nSERVER_SOFTWARE = 'X/1'\n"),
        "{}",
        r.text()
    );
    let text = std::fs::read_to_string(&error_log).unwrap();
    assert!(
        text.starts_with("gatekit: serving demo on http://127.0.0.1:"),
        "{text}"
    );
}

#[test]
fn unix_owner_sets_the_socket_owner() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    // Only root can give a file away; others can name themselves.
    let (owner, uid) = if is_root {
        let out = Command::new("id")
            .args(["-u", "www-data"])
            .output()
            .unwrap();
        let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        ("www-data".to_owned(), uid)
    } else {
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        (uid.to_string(), uid)
    };
    let dir = public_tempdir();
    let socket = dir.path().join("owned.sock");
    let addr = format!("unix:{}", socket.display());
    let s = serve(&[
        "--fastcgi",
        &addr,
        "--unix-owner",
        &owner,
        "--unix-mode",
        "660",
    ]);
    wait_for_unix(&socket);
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.uid(), uid, "owner of {}", socket.display());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    drop(s);
}

#[track_caller]
fn assert_one_error_line(out: &Output, code: i32, contains: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.starts_with("gatekit: "), "{err}");
    assert!(err.ends_with('\n'), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(contains), "{contains:?} in {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2_and_runtime_errors_exit_1() {
    // Usage: an app without its operand, an unknown app.
    let out = run_to_exit(&["serve", "--http", "127.0.0.1:0", "static"]);
    assert_one_error_line(&out, 2, "static DIR");
    let out = run_to_exit(&["serve", "--http", "127.0.0.1:0", "cgi"]);
    assert_one_error_line(&out, 2, "cgi PATH");
    let out = run_to_exit(&["serve", "nosuchapp"]);
    assert_one_error_line(&out, 2, "nosuchapp");
    // clap's own usage errors: 2 as well.
    for args in [
        &["serve", "static", "a", "b"][..],
        &["serve", "--unix-mode", "999"],
        &["serve", "--http", "127.0.0.1:0", "--fastcgi", "127.0.0.1:0"],
        &["nosuchcommand"],
    ] {
        let out = run_to_exit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }

    // Runtime: a directory that is not there.
    let out = run_to_exit(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "static",
        "/nonexistent/gk",
    ]);
    assert_one_error_line(&out, 1, "/nonexistent/gk");
    let out = run_to_exit(&[
        "serve",
        "--fastcgi",
        "127.0.0.1:0",
        "cgi",
        "/nonexistent/gk",
    ]);
    assert_one_error_line(&out, 1, "/nonexistent/gk");
    // A file where a directory is wanted.
    let file = tempfile::NamedTempFile::new().unwrap();
    let name = file.path().display().to_string();
    let out = run_to_exit(&["serve", "--http", "127.0.0.1:0", "static", &name]);
    assert_one_error_line(&out, 1, "not a directory");
    // An unknown --unix-owner.
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix:{}", dir.path().join("s.sock").display());
    let out = run_to_exit(&[
        "serve",
        "--fastcgi",
        &addr,
        "--unix-owner",
        "no-such-user-gk",
    ]);
    assert_one_error_line(&out, 1, "no-such-user-gk");
    // --help is not an error.
    let out = run_to_exit(&["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--script-timeout"));
}

/// The binary started with a listening socket on fd 0 and no arguments, as
/// mod_fcgid starts a program in cgi-bin (`demo.fcgi`) and as `spawn-fcgi
/// -- gatekit` does: it serves FastCGI on the socket, as `gatekit serve`
/// would, rather than answering one CGI request on stdout.
#[test]
fn no_arguments_with_a_socket_on_fd0_serves_fastcgi() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stdout = log_path("fd0-stdout");
    let mut command = Command::new(gatekit_bin());
    command
        .env_clear()
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null());
    let child = command.spawn().unwrap();
    drop(command); // the parent's copy of the socket
    let mut child = Backend {
        child,
        banner: String::new(),
        log: None,
    };
    let addr = format!("127.0.0.1:{port}");
    let out = run_to_exit(&["request", "fastcgi", &addr, "--timeout", "5", "/fd0"]);
    let printed = std::fs::read_to_string(&stdout).unwrap_or_default();
    let _ = std::fs::remove_file(&stdout);
    assert!(
        printed.is_empty(),
        "a CGI response went to stdout instead of the socket:\n{printed}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Hello world!\n"), "{text}");
    assert!(child.child.try_wait().unwrap().is_none(), "it exited");
}
