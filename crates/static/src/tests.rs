//! Every rule of the crate docs, through the core's in-memory gateway.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use gatekit_core::Config;
use gatekit_core::testing::memory_gateway;

use super::*;

/// A root with files, directories and symlinks, and a directory beside it
/// holding what must never be served.
struct Site {
    root: tempfile::TempDir,
    _outside: tempfile::TempDir,
    app: StaticFiles,
}

fn data() -> Vec<u8> {
    (0..100u8).collect()
}

fn site() -> Site {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::write(outside.path().join("secret.txt"), "secret\n").unwrap();
    std::fs::write(r.join("hello.txt"), "Hello, world!\n").unwrap();
    std::fs::write(r.join("data.bin"), data()).unwrap();
    std::fs::write(r.join("empty.txt"), "").unwrap();
    std::fs::write(r.join("style.CSS"), "p {}\n").unwrap();
    std::fs::write(r.join("index.html"), "<p>root</p>\n").unwrap();
    std::fs::create_dir(r.join("dir")).unwrap();
    std::fs::write(r.join("dir/index.html"), "<p>dir</p>\n").unwrap();
    std::fs::write(r.join("dir/home.htm"), "<p>home</p>\n").unwrap();
    std::fs::write(r.join("dir/page.html"), "<p>page</p>\n").unwrap();
    std::fs::create_dir(r.join("empty")).unwrap();
    std::fs::create_dir(r.join("evil.example")).unwrap();
    std::fs::write(r.join("evil.example/index.html"), "x").unwrap();
    symlink("hello.txt", r.join("link-in.txt")).unwrap();
    symlink("dir", r.join("dirlink")).unwrap();
    symlink(outside.path().join("secret.txt"), r.join("link-out.txt")).unwrap();
    symlink("../../../../../../../../etc/passwd", r.join("passwd")).unwrap();
    symlink(outside.path(), r.join("dir-out")).unwrap();
    symlink("no-such-file", r.join("dangling")).unwrap();
    std::fs::create_dir(r.join("trap")).unwrap();
    symlink(outside.path().join("secret.txt"), r.join("trap/index.html")).unwrap();
    let app = StaticFiles::new(r).unwrap();
    Site {
        root,
        _outside: outside,
        app,
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
    errors: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }
}

fn call(app: &StaticFiles, vars: &[(&str, &[u8])]) -> Reply {
    let (mut gateway, errors) = memory_gateway(vars, b"", Config::gateway());
    gateway.run(app);
    let out = gateway.transport().output().clone();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(out[..split].to_vec()).unwrap();
    let status = head
        .strip_prefix("Status: ")
        .and_then(|s| s.get(..3))
        .unwrap()
        .parse()
        .unwrap();
    Reply {
        status,
        head,
        body: out[split + 4..].to_vec(),
        errors: errors.text(),
    }
}

fn get(app: &StaticFiles, path: &str) -> Reply {
    call(app, &[("PATH_INFO", path.as_bytes())])
}

/// A request as gatekit's HTTP server presents it: `PATH_INFO` is the
/// percent-decoded path, `REQUEST_URI` the raw target.
fn get_raw(app: &StaticFiles, target: &str) -> Reply {
    let path = target.split('?').next().unwrap();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let decoded = gatekit_http::proto::percent_decode(path.as_bytes());
    call(
        app,
        &[
            ("PATH_INFO", &decoded),
            ("REQUEST_URI", target.as_bytes()),
            ("QUERY_STRING", query.as_bytes()),
        ],
    )
}

#[test]
fn serves_a_file_with_its_headers() {
    let s = site();
    let r = get(&s.app, "/hello.txt");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"Hello, world!\n");
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("Content-Length"), Some("14"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    let meta = std::fs::metadata(s.root.path().join("hello.txt")).unwrap();
    let secs = u64::try_from(meta.mtime()).unwrap();
    assert_eq!(
        r.header("Last-Modified"),
        Some(format_date_time(UNIX_EPOCH + Duration::from_secs(secs)).as_str())
    );
    let etag = format!(
        "\"{:x}-e-{secs:x}.{:x}\"",
        meta.ino(),
        u64::try_from(meta.mtime_nsec()).unwrap()
    );
    assert_eq!(r.header("ETag"), Some(etag.as_str()));

    let r = get(&s.app, "/style.CSS");
    assert_eq!(r.header("Content-Type"), Some("text/css; charset=utf-8"));
    let r = get(&s.app, "/data.bin");
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(r.body, data());
    let r = get(&s.app, "/empty.txt");
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("0")));
    // Empty segments are skipped.
    assert_eq!(get(&s.app, "//dir///page.html").body, b"<p>page</p>\n");
}

#[test]
fn head_has_the_headers_and_no_body() {
    let s = site();
    let r = call(
        &s.app,
        &[("REQUEST_METHOD", b"HEAD"), ("PATH_INFO", b"/hello.txt")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("14"));
    assert!(r.header("ETag").is_some());
    assert!(r.body.is_empty());
}

#[test]
fn other_methods_are_405() {
    let s = site();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "TRACE"] {
        let r = call(
            &s.app,
            &[
                ("REQUEST_METHOD", method.as_bytes()),
                ("PATH_INFO", b"/hello.txt"),
            ],
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"), "{method}");
    }
}

#[test]
fn if_none_match_answers_304() {
    let s = site();
    let etag = get(&s.app, "/hello.txt").header("ETag").unwrap().to_owned();
    let with = |value: &str| {
        call(
            &s.app,
            &[
                ("PATH_INFO", b"/hello.txt"),
                ("HTTP_IF_NONE_MATCH", value.as_bytes()),
            ],
        )
    };
    let r = with(&etag);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    assert!(r.header("Last-Modified").is_some());
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(with(&format!("W/{etag}")).status, 304);
    assert_eq!(with(&format!("\"other\", {etag}")).status, 304);
    assert_eq!(with("*").status, 304);
    assert_eq!(with("\"other\"").status, 200);

    // If-None-Match takes precedence over If-Modified-Since.
    let r = call(
        &s.app,
        &[
            ("PATH_INFO", b"/hello.txt"),
            ("HTTP_IF_NONE_MATCH", b"\"other\""),
            ("HTTP_IF_MODIFIED_SINCE", b"Thu, 31 Dec 2099 23:59:59 GMT"),
        ],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn if_modified_since_answers_304() {
    let s = site();
    let last_modified = get(&s.app, "/hello.txt")
        .header("Last-Modified")
        .unwrap()
        .to_owned();
    let with = |value: &str| {
        call(
            &s.app,
            &[
                ("PATH_INFO", b"/hello.txt"),
                ("HTTP_IF_MODIFIED_SINCE", value.as_bytes()),
            ],
        )
        .status
    };
    assert_eq!(with(&last_modified), 304);
    assert_eq!(with("Thu, 31 Dec 2099 23:59:59 GMT"), 304);
    assert_eq!(with("Thursday, 31-Dec-37 23:59:59 GMT"), 304);
    assert_eq!(with("Thu, 01 Jan 1970 00:00:00 GMT"), 200);
    assert_eq!(with("not a date"), 200);
}

#[test]
fn failed_preconditions_are_412() {
    let s = site();
    let full = get(&s.app, "/hello.txt");
    let etag = full.header("ETag").unwrap();
    let last_modified = full.header("Last-Modified").unwrap();
    let with = |name: &str, value: &str| {
        call(
            &s.app,
            &[("PATH_INFO", b"/hello.txt"), (name, value.as_bytes())],
        )
        .status
    };
    assert_eq!(with("HTTP_IF_MATCH", etag), 200);
    assert_eq!(with("HTTP_IF_MATCH", "*"), 200);
    assert_eq!(with("HTTP_IF_MATCH", "\"stale\""), 412);
    assert_eq!(with("HTTP_IF_MATCH", &format!("W/{etag}")), 412);
    assert_eq!(with("HTTP_IF_UNMODIFIED_SINCE", last_modified), 200);
    assert_eq!(
        with("HTTP_IF_UNMODIFIED_SINCE", "Thu, 01 Jan 1970 00:00:00 GMT"),
        412
    );
    assert_eq!(with("HTTP_IF_UNMODIFIED_SINCE", "garbage"), 200);
    // If-Match takes precedence over If-Unmodified-Since.
    let r = call(
        &s.app,
        &[
            ("PATH_INFO", b"/hello.txt"),
            ("HTTP_IF_MATCH", etag.as_bytes()),
            ("HTTP_IF_UNMODIFIED_SINCE", b"Thu, 01 Jan 1970 00:00:00 GMT"),
        ],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn single_ranges_are_206() {
    let s = site();
    let range = |value: &str| {
        call(
            &s.app,
            &[
                ("PATH_INFO", b"/data.bin"),
                ("HTTP_RANGE", value.as_bytes()),
            ],
        )
    };
    let r = range("bytes=10-19");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 10-19/100"));
    assert_eq!(r.header("Content-Length"), Some("10"));
    assert_eq!(r.body, data()[10..20]);
    let r = range("bytes=95-");
    assert_eq!(r.header("Content-Range"), Some("bytes 95-99/100"));
    assert_eq!(r.body, data()[95..]);
    let r = range("bytes=-3");
    assert_eq!(r.header("Content-Range"), Some("bytes 97-99/100"));
    assert_eq!(r.body, data()[97..]);
    let r = range("bytes=0-1000");
    assert_eq!((r.status, r.body.len()), (206, 100));

    let r = range("bytes=100-");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some("bytes */100"));
    assert_eq!(range("bytes=-0").status, 416);

    // Several ranges, invalid ones, other units: the whole file.
    for value in ["bytes=0-1,5-6", "bytes=5-1", "bytes=x", "lines=1-2"] {
        let r = range(value);
        assert_eq!((r.status, r.body.len()), (200, 100), "{value}");
        assert_eq!(r.header("Content-Range"), None);
    }

    let r = call(
        &s.app,
        &[("PATH_INFO", b"/empty.txt"), ("HTTP_RANGE", b"bytes=0-")],
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some("bytes */0"));
}

#[test]
fn head_ignores_range() {
    let s = site();
    let r = call(
        &s.app,
        &[
            ("REQUEST_METHOD", b"HEAD"),
            ("PATH_INFO", b"/data.bin"),
            ("HTTP_RANGE", b"bytes=0-9"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("100"));
}

#[test]
fn if_range_keeps_or_drops_the_range() {
    let s = site();
    let full = get(&s.app, "/data.bin");
    let etag = full.header("ETag").unwrap();
    let last_modified = full.header("Last-Modified").unwrap();
    let with = |if_range: &str| {
        call(
            &s.app,
            &[
                ("PATH_INFO", b"/data.bin"),
                ("HTTP_RANGE", b"bytes=0-4"),
                ("HTTP_IF_RANGE", if_range.as_bytes()),
            ],
        )
        .status
    };
    assert_eq!(with(etag), 206);
    assert_eq!(with(last_modified), 206);
    assert_eq!(with("\"stale\""), 200);
    assert_eq!(with(&format!("W/{etag}")), 200);
    assert_eq!(with("Thu, 01 Jan 1970 00:00:00 GMT"), 200);
}

#[test]
fn directories_serve_their_index_or_redirect() {
    let s = site();
    let r = get(&s.app, "/dir/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<p>dir</p>\n");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(get(&s.app, "/").body, b"<p>root</p>\n");

    let r = get(&s.app, "/dir");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/dir/"));
    let r = get_raw(&s.app, "/dir?a=1&b=%20");
    assert_eq!(r.header("Location"), Some("/dir/?a=1&b=%20"));
    let r = call(
        &s.app,
        &[("SCRIPT_NAME", b"/static"), ("PATH_INFO", b"/dir")],
    );
    assert_eq!(r.header("Location"), Some("/static/dir/"));
    let r = call(&s.app, &[("SCRIPT_NAME", b"/static"), ("PATH_INFO", b"")]);
    assert_eq!(r.header("Location"), Some("/static/"));
    // Never a protocol-relative location to another host.
    let r = get(&s.app, "//evil.example");
    assert_eq!(r.header("Location"), Some("/evil.example/"));
    let r = call(
        &s.app,
        &[("SCRIPT_NAME", b"//evil.example"), ("PATH_INFO", b"")],
    );
    assert_eq!(r.header("Location"), Some("/evil.example/"));

    assert_eq!(get(&s.app, "/empty/").status, 404);
    assert_eq!(get(&s.app, "/dirlink/").body, b"<p>dir</p>\n");

    let custom = s.app.clone().index("home.htm");
    assert_eq!(get(&custom, "/dir/").body, b"<p>home</p>\n");
    let none = s.app.clone().no_index();
    assert_eq!(get(&none, "/dir/").status, 404);
    assert_eq!(none.index_name(), None);
}

#[test]
fn missing_things_are_404() {
    let s = site();
    for path in [
        "/nope.txt",
        "/dir/nope.html",
        "/nope/x",
        "/hello.txt/",
        "/hello.txt/x",
        "/dangling",
    ] {
        assert_eq!(get(&s.app, path).status, 404, "{path}");
    }
    let long = format!("/{}", "a".repeat(5000));
    assert_eq!(get(&s.app, &long).status, 404);
}

#[test]
fn traversal_attempts_are_refused() {
    let s = site();
    // What a client can send, and what reaches the app after decoding.
    for target in [
        "/../secret.txt",
        "/dir/../hello.txt",
        "/dir/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e/secret.txt",
        "/dir/%2E%2e/hello.txt",
        "/..%2fsecret.txt",
        "/dir%2fpage.html",
        "/dir%2Fpage.html",
        "/..%5csecret.txt",
        "/dir%5cpage.html",
        "/dir\\page.html",
        "/./hello.txt",
        "/..",
        "/dir/..",
    ] {
        let r = get_raw(&s.app, target);
        assert_eq!(r.status, 404, "{target}: {r:?}");
        assert!(!r.body.starts_with(b"secret"), "{target}");
    }
    for target in ["/hello.txt%00.png", "/%00", "/dir/%00/../x"] {
        assert_eq!(get_raw(&s.app, target).status, 400, "{target}");
    }
    // Behind a web server that sends no REQUEST_URI, a decoded `%2f` is a
    // plain separator: still inside the root.
    assert_eq!(get(&s.app, "/dir/page.html").status, 200);
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    let s = site();
    let r = get(&s.app, "/link-in.txt");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"Hello, world!\n"[..])
    );
    for path in [
        "/link-out.txt",
        "/passwd",
        "/dir-out/secret.txt",
        "/dir-out/",
        "/dir-out",
        "/trap/",
    ] {
        let r = get(&s.app, path);
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(!r.body.starts_with(b"secret"), "{path}");
    }
}

#[test]
fn only_regular_files_are_served() {
    let s = site();
    let fifo = s.root.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Answered at once: the FIFO is never opened for a blocking read.
    assert_eq!(get(&s.app, "/fifo").status, 404);
}

#[test]
fn unreadable_files_are_403() {
    assert!(matches!(
        refusal(io::Error::from_raw_os_error(Errno::ACCESS.raw_os_error())),
        Refusal::Forbidden
    ));
    assert!(matches!(
        refusal(io::Error::from_raw_os_error(Errno::IO.raw_os_error())),
        Refusal::Io(_)
    ));
    let s = site();
    let path = s.root.path().join("locked.txt");
    std::fs::write(&path, "locked").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if File::open(&path).is_ok() {
        eprintln!("running with CAP_DAC_OVERRIDE (root): the 403 check is the mapping above");
        return;
    }
    assert_eq!(get(&s.app, "/locked.txt").status, 403);
}

#[test]
fn overlong_names_are_404_not_500() {
    let s = site();
    // ENAMETOOLONG: a name the file system cannot hold does not exist.
    let r = get(&s.app, &format!("/{}", "x".repeat(300)));
    assert_eq!(r.status, 404);
    assert!(r.errors.is_empty());
}

#[test]
fn new_checks_the_root() {
    let s = site();
    let e = StaticFiles::new(s.root.path().join("nope")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("nope"), "{e}");
    let e = StaticFiles::new(s.root.path().join("hello.txt")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
    assert!(e.to_string().contains("is not a directory"), "{e}");
    // A symlinked root is resolved.
    let app = StaticFiles::new(s.root.path().join("dirlink")).unwrap();
    assert_eq!(
        app.root(),
        std::fs::canonicalize(s.root.path().join("dir")).unwrap()
    );
    assert_eq!(app.index_name(), Some(OsStr::new("index.html")));
    assert!(Path::new(app.root()).is_absolute());
}
