//! Fuzzes `gatekit_static::StaticFiles`: the request's path, target, query
//! and conditional and range headers, as a web server or gatekit's HTTP
//! server hands them over, against a fixed tree with symlinks that point
//! out of it.
//!
//! The input is split at `0xFF` bytes into the request method, then
//! `PATH_INFO`, `REQUEST_URI`, `SCRIPT_NAME`, `QUERY_STRING`, `Range`,
//! `If-Range`, `If-Match`, `If-None-Match`, `If-Modified-Since` and
//! `If-Unmodified-Since`; missing fields are left unset.
//!
//! Properties: the app never panics and never fails (no `500`, nothing in
//! the error log); it answers with one of the statuses its docs list; no
//! byte of a file outside the root is ever sent in a body; every head line is a
//! well-formed header (nothing from the path splits a line); a `200` body
//! is the whole of a file in the tree, a `206` body the slice of one that
//! its `Content-Range` names; `Content-Length` is the body's length; and
//! `HEAD` gets no body.

#![no_main]

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::OnceLock;

use gatekit_core::testing::memory_gateway;
use gatekit_core::{Config, is_tchar};
use gatekit_static::StaticFiles;
use libfuzzer_sys::fuzz_target;

/// What the file outside the root holds: it must never be sent.
const SECRET: &[u8] = b"never-to-be-served-7f3c";

/// The files in the tree, by name and contents.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("hello.txt", b"Hello, world!\n".to_vec()),
        ("empty.txt", Vec::new()),
        // Bytes that differ from their neighbours, so a wrong slice shows.
        (
            "data.bin",
            (0..1000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("dir/index.html", b"<p>dir</p>\n".to_vec()),
        ("dir/page.html", b"<p>page</p>\n".to_vec()),
        ("index.html", b"<p>root</p>\n".to_vec()),
    ]
}

struct Site {
    app: StaticFiles,
    contents: Vec<Vec<u8>>,
}

/// The tree, made once per process under the temp directory.
fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let base: PathBuf =
            std::env::temp_dir().join(format!("gatekit-fuzz-static-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(root.join("dir")).expect("make the tree");
        std::fs::create_dir_all(&outside).expect("make the tree");
        std::fs::create_dir_all(root.join("trap")).expect("make the tree");
        std::fs::write(outside.join("secret.txt"), SECRET).expect("make the tree");
        let files = files();
        for (name, bytes) in &files {
            std::fs::write(root.join(name), bytes).expect("make the tree");
        }
        let links = [
            ("hello.txt", "link-in.txt"),
            ("dir", "dirlink"),
            ("../outside/secret.txt", "link-out.txt"),
            ("../outside", "dir-out"),
            ("no-such-file", "dangling"),
            ("../../outside/secret.txt", "trap/index.html"),
            ("loop", "loop"),
        ];
        for (target, name) in links {
            symlink(target, root.join(name)).expect("make the tree");
        }
        let app = StaticFiles::new(&root)
            .expect("the root")
            .index("index.html");
        Site {
            app,
            contents: files.into_iter().map(|(_, bytes)| bytes).collect(),
        }
    })
}

const FIELDS: [&str; 10] = [
    "PATH_INFO",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "QUERY_STRING",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
];

/// The statuses the crate's docs list.
const STATUSES: [u16; 10] = [200, 206, 301, 304, 400, 403, 404, 405, 412, 416];

fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (n, v) = line.split_at(colon);
        n.eq_ignore_ascii_case(name.as_bytes())
            .then(|| v[1..].strip_prefix(b" ").unwrap_or(&v[1..]))
    })
}

fn number(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {:?}", String::from_utf8_lossy(bytes)))
}

fuzz_target!(|data: &[u8]| {
    let site = site();
    let mut parts = data.split(|&b| b == 0xff);
    let method: &[u8] = match parts.next() {
        Some([]) | None => b"GET",
        Some([b'h']) => b"HEAD",
        Some([b'p']) => b"POST",
        Some(other) => other,
    };
    let mut vars: Vec<(&str, &[u8])> = vec![("REQUEST_METHOD", method)];
    vars.extend(FIELDS.iter().copied().zip(parts));
    let (mut gateway, errors) = memory_gateway(&vars, b"", Config::gateway());
    gateway.run(&site.app);
    let out = gateway.transport().output().as_slice();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let (head, body) = (&out[..split], &out[split + 4..]);
    // (The input may name the secret itself, and a Location header echo it.)
    assert!(
        !body.windows(SECRET.len()).any(|w| w == SECRET),
        "a file outside the root was sent"
    );
    // Each line of the head with its CRLF: the last piece is empty.
    for line in out[..split + 2]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let line = line.strip_suffix(b"\r").expect("CRLF line ends");
        let colon = line.iter().position(|&b| b == b':').expect("a header line");
        assert!(colon > 0 && line[..colon].iter().all(|&b| is_tchar(b)));
        assert!(!line.contains(&b'\r'));
    }
    let status = head
        .strip_prefix(b"Status: ")
        .and_then(|s| s.get(..3))
        .map(number)
        .expect("a Status line first");
    assert!(
        STATUSES.contains(&(status as u16)),
        "status {status}; log: {}",
        errors.text()
    );
    assert!(errors.text().is_empty(), "log: {}", errors.text());
    let is_head = method == b"HEAD";
    if is_head {
        assert!(body.is_empty());
    } else if let Some(len) = header(head, "Content-Length") {
        assert_eq!(number(len), body.len() as u64);
    }
    match status {
        200 if !is_head => assert!(
            site.contents.iter().any(|c| c == body),
            "a 200 body that is no file of the tree"
        ),
        206 => {
            let range = header(head, "Content-Range").expect("Content-Range with 206");
            let range = range.strip_prefix(b"bytes ").expect("a bytes range");
            let dash = range.iter().position(|&b| b == b'-').expect("first-last");
            let slash = range.iter().position(|&b| b == b'/').expect("/length");
            let (first, last, len) = (
                number(&range[..dash]),
                number(&range[dash + 1..slash]),
                number(&range[slash + 1..]),
            );
            assert!(first <= last && last < len, "range {first}-{last}/{len}");
            let slice = |c: &&Vec<u8>| {
                c.len() as u64 == len
                    && (is_head || c.get(first as usize..=last as usize) == Some(body))
            };
            assert!(
                site.contents.iter().any(|c| slice(&c)),
                "a 206 body that is no slice of a file of length {len}"
            );
        }
        301 => assert!(header(head, "Location").is_some()),
        _ => {}
    }
});
