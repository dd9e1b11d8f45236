//! The behaviours of CPython's Lib/test/test_wsgiref.py (HandlerTests and the
//! IntegrationTests that need no socket), ported with byte-exact expectations,
//! plus gatekit's own rules for errors, Content-Length, HEAD, chunking and sendfile.

#![allow(clippy::unwrap_used)] // test helpers may unwrap: a failure is a test failure

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gatekit_core::testing::{SharedBuf, memory_gateway};
use gatekit_core::validate::validator;
use gatekit_core::{
    App, Body, BoxError, Clock, Config, Environ, FileWrapper, Gateway, HttpVersion, StartError,
    StartResponse, StreamTransport, Transport, demo_app,
};

type R = Result<Body, BoxError>;

/// Shows bytes readably when an assertion fails.
#[track_caller]
fn eq_bytes(got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "\nwant: {}\n got: {}",
        want.escape_ascii(),
        got.escape_ascii()
    );
}

fn run_with(
    vars: &[(&str, &[u8])],
    config: Config,
    app: &dyn App,
) -> (Vec<u8>, String, gatekit_core::Outcome) {
    let (mut gw, errors) = memory_gateway(vars, b"", config);
    let outcome = gw.run(app);
    (gw.into_transport().into_output(), errors.text(), outcome)
}

fn run(app: &dyn App) -> (Vec<u8>, String) {
    let (out, err, _) = run_with(&[], Config::gateway(), app);
    (out, err)
}

fn non_error_app(_: &mut Environ, sr: &mut StartResponse<'_>) -> R {
    sr.start("200 OK", Vec::<(&str, &str)>::new())?;
    Ok(Body::empty())
}

fn hello_app(_: &mut Environ, sr: &mut StartResponse<'_>) -> R {
    sr.start(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Date", "Mon, 05 Jun 2006 18:49:54 GMT"),
        ],
    )?;
    Ok(Body::from("Hello, world!"))
}

const ERROR_BODY: &[u8] = b"A server error occurred.  Please contact the administrator.";

fn error_page() -> Vec<u8> {
    let mut v = format!(
        "Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        ERROR_BODY.len()
    )
    .into_bytes();
    v.extend_from_slice(ERROR_BODY);
    v
}

// testEnviron
#[test]
fn environ() {
    let mut config = Config::gateway();
    config.os_environ = [
        ("HOME", "/my/home"),
        ("PATH", "/my/path"),
        ("LANG", "fr_FR.UTF-8"),
        ("SCRIPT_NAME", "test_script_name"),
        ("SERVER_NAME", "test_server_name"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    let (mut gw, _) = memory_gateway(&[("X", b"Y"), ("HOME", b"/override/home")], b"", config);
    gw.setup_environ();
    let env = gw.environ().unwrap();
    let got: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("HOME", "/override/home"),
        ("HTTP_HOST", "127.0.0.1"),
        ("LANG", "fr_FR.UTF-8"),
        ("PATH", "/my/path"),
        ("PATH_INFO", "/"),
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", ""),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.0"),
        ("X", "Y"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(got, want);
    // The wsgi_* attributes are copied to the wsgi.* keys.
    assert_eq!(Environ::VERSION, (1, 0));
    assert!(env.multithread && env.multiprocess && !env.run_once && env.file_wrapper);
    assert_eq!(env.url_scheme, "http");
}

// testCGIEnviron
#[test]
fn cgi_environ() {
    let t = StreamTransport::new(io::empty(), Vec::new(), io::sink(), Vec::new());
    let mut gw = Gateway::new(t, Config::gateway());
    gw.setup_environ();
    let env = gw.environ().unwrap();
    assert_eq!(env.url_scheme, "http");
    assert_eq!(env.input.content_length(), 0);
}

// testScheme
#[test]
fn scheme() {
    let (mut gw, _) = memory_gateway(&[("HTTPS", b"on")], b"", Config::gateway());
    gw.setup_environ();
    assert_eq!(gw.environ().unwrap().url_scheme, "https");
    let (mut gw, _) = memory_gateway(&[], b"", Config::gateway());
    gw.setup_environ();
    assert_eq!(gw.environ().unwrap().url_scheme, "http");
}

// testAbstractMethods: in Rust the abstract methods are required trait
// methods, so a transport missing one does not compile. What can be checked
// is that the optional hooks have working defaults.
#[test]
fn abstract_methods_have_defaults_only_where_optional() {
    struct Minimal(Vec<u8>);
    impl Transport for Minimal {
        fn write(&mut self, data: &[u8]) -> io::Result<()> {
            self.0.extend_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn input(&mut self) -> Box<dyn io::BufRead + Send> {
            Box::new(io::empty())
        }
        fn errors(&mut self) -> Box<dyn Write + Send> {
            Box::new(io::sink())
        }
        fn add_cgi_vars(&mut self, _: &mut Environ) {}
    }
    let mut m = Minimal(Vec::new());
    let f = File::open("/dev/null").unwrap();
    assert_eq!(m.sendfile(&f, 0, 10).unwrap(), 0);
    m.abort();
    let mut gw = Gateway::new(m, Config::gateway());
    gw.run(&non_error_app);
    eq_bytes(
        &gw.transport().0,
        b"Status: 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
}

// testContentLength
#[test]
fn content_length() {
    let app1 = |e: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", Vec::<(&str, &str)>::new())?;
        Ok(Body::from(e.url_scheme.to_string()))
    };
    eq_bytes(
        &run(&app1).0,
        b"Status: 200 OK\r\nContent-Length: 4\r\n\r\nhttp",
    );

    let app2 = |e: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        let scheme = e.url_scheme.to_string();
        sr.start("200 OK", Vec::<(&str, &str)>::new())?
            .write_all(scheme.as_bytes())?;
        Ok(Body::empty())
    };
    eq_bytes(&run(&app2).0, b"Status: 200 OK\r\n\r\nhttp");

    let app3 = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", Vec::<(&str, &str)>::new())?;
        Ok(Body::from("\u{442}\u{435}\u{441}\u{442}"))
    };
    eq_bytes(
        &run(&app3).0,
        b"Status: 200 OK\r\nContent-Length: 8\r\n\r\n\xd1\x82\xd0\xb5\xd1\x81\xd1\x82",
    );

    // A response to a HEAD request: the app's Content-Length stands, no body.
    let app4 = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Length", "12345")])?;
        Ok(Body::empty())
    };
    let (out, err, outcome) = run_with(&[("REQUEST_METHOD", b"HEAD")], Config::gateway(), &app4);
    eq_bytes(&out, b"Status: 200 OK\r\nContent-Length: 12345\r\n\r\n");
    assert_eq!(err, "");
    assert!(outcome.complete && outcome.delimited);
}

// testBasicErrorOutput
#[test]
fn basic_error_output() {
    let (out, err) = run(&non_error_app);
    eq_bytes(&out, b"Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(err, "");

    let error_app = |_: &mut Environ, _: &mut StartResponse<'_>| -> R {
        Err("AssertionError: This should be caught by handler".into())
    };
    let (out, err) = run(&error_app);
    eq_bytes(&out, &error_page());
    assert!(err.contains("AssertionError"), "{err}");
}

// testErrorAfterOutput
#[test]
fn error_after_output() {
    let error_app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", Vec::<(&str, &str)>::new())?
            .write_all(b"Some output has been sent")?;
        Err("AssertionError: This should be caught by handler".into())
    };
    let (out, err, outcome) = run_with(&[], Config::gateway(), &error_app);
    eq_bytes(&out, b"Status: 200 OK\r\n\r\nSome output has been sent");
    assert!(err.contains("AssertionError"), "{err}");
    assert!(!outcome.complete && outcome.app_failed);
}

// testHeaderFormats, byte-exact thanks to a fixed clock.
#[test]
fn header_formats() {
    const DATE: &str = "Mon, 05 Jun 2006 18:49:54 GMT";
    for server_software in [Some("FooBar/1.0"), None] {
        for version in [HttpVersion::Http10, HttpVersion::Http11] {
            for proto in ["HTTP/0.9", "HTTP/1.0", "HTTP/1.1"] {
                let mut config = Config::gateway();
                config.http_version = version;
                config.server_software = server_software.map(str::to_owned);
                let (out, _, _) = run_with(
                    &[("SERVER_PROTOCOL", proto.as_bytes())],
                    config,
                    &non_error_app,
                );
                eq_bytes(&out, b"Status: 200 OK\r\nContent-Length: 0\r\n\r\n");

                let mut config = Config::origin();
                config.http_version = version;
                config.server_software = server_software.map(str::to_owned);
                config.clock = Clock::fixed_unix(1_149_533_394);
                let (out, _, _) = run_with(
                    &[("SERVER_PROTOCOL", proto.as_bytes())],
                    config,
                    &non_error_app,
                );
                if proto == "HTTP/0.9" {
                    eq_bytes(&out, b"");
                } else {
                    let server = server_software
                        .map(|s| format!("Server: {s}\r\n"))
                        .unwrap_or_default();
                    let want = format!(
                        "HTTP/{} 200 OK\r\nDate: {DATE}\r\n{server}Content-Length: 0\r\n\r\n",
                        version.as_str()
                    );
                    eq_bytes(&out, want.as_bytes());
                }
            }
        }
    }
}

// testBytesData
#[test]
fn bytes_data() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain; charset=utf-8")])?;
        Ok(Body::from(&b"data"[..]))
    };
    eq_bytes(
        &run(&app).0,
        b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n\r\ndata",
    );
}

// testCloseOnError: the body is closed (dropped) even when iterating it fails.
#[test]
fn close_on_error() {
    struct Crashy {
        yielded: bool,
        closed: Arc<AtomicBool>,
    }
    impl Iterator for Crashy {
        type Item = Result<Vec<u8>, BoxError>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.yielded {
                return Some(Err(
                    "AssertionError: This should be caught by handler".into()
                ));
            }
            self.yielded = true;
            Some(Ok(b"blah".to_vec()))
        }
    }
    impl Drop for Crashy {
        fn drop(&mut self) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }
    let closed = Arc::new(AtomicBool::new(false));
    let c = Arc::clone(&closed);
    let app = move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", Vec::<(&str, &str)>::new())?
            .write_all(b"Some output has been sent")?;
        Ok(Body::stream(Crashy {
            yielded: false,
            closed: Arc::clone(&c),
        }))
    };
    let (out, err) = run(&app);
    assert!(closed.load(Ordering::SeqCst));
    eq_bytes(&out, b"Status: 200 OK\r\n\r\nSome output has been sentblah");
    assert!(err.contains("AssertionError"));
}

/// A writer that takes at most 7 bytes per call.
struct PartialWriter(Arc<Mutex<Vec<u8>>>);
impl Write for PartialWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(7);
        self.0.lock().unwrap().extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn origin_10() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![(b"SERVER_PROTOCOL".to_vec(), b"HTTP/1.0".to_vec())]
}

fn origin_config() -> Config {
    let mut c = Config::origin();
    c.server_software = None;
    c.clock = Clock::fixed_unix(0);
    c
}

// testPartialWrite: every byte goes out even when the stream takes a few at a time.
#[test]
fn partial_write() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let t = StreamTransport::new(
        io::empty(),
        PartialWriter(Arc::clone(&written)),
        io::sink(),
        origin_10(),
    );
    let mut gw = Gateway::new(t, origin_config());
    gw.run(&hello_app);
    eq_bytes(
        &written.lock().unwrap(),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 05 Jun 2006 18:49:54 GMT\r\n\
          Content-Length: 13\r\n\r\nHello, world!",
    );
}

struct FailingWriter(io::ErrorKind);
impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(self.0, "custom write failure"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// testClientConnectionTerminations: a departed client is not logged.
#[test]
fn client_connection_terminations() {
    for kind in [
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::ConnectionReset,
    ] {
        let errors = SharedBuf::new();
        let t = StreamTransport::new(
            io::empty(),
            FailingWriter(kind),
            errors.clone(),
            origin_10(),
        );
        let mut gw = Gateway::new(t, origin_config());
        let outcome = gw.run(&hello_app);
        assert_eq!(errors.text(), "", "{kind:?}");
        assert!(outcome.client_gone && !outcome.complete);
    }
}

// testDontResetInternalStateOnException
#[test]
fn dont_reset_internal_state_on_exception() {
    let errors = SharedBuf::new();
    let t = StreamTransport::new(
        io::empty(),
        FailingWriter(io::ErrorKind::Other),
        errors.clone(),
        origin_10(),
    );
    let mut gw = Gateway::new(t, origin_config());
    gw.run(&hello_app);
    assert!(
        errors.text().contains("custom write failure"),
        "{}",
        errors.text()
    );
    assert!(gw.status().is_some());
    assert!(gw.headers().is_some());
    assert!(gw.environ().is_some());
}

// testRaisesControlCharacters (BaseHandler.start_response): control characters
// in the status or headers are refused; HTAB only in values.
#[test]
fn start_response_raises_control_characters() {
    for c in (0u8..0x20).map(char::from) {
        let app = move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
            // A control character in a name is always refused.
            assert!(
                sr.start("200 OK", [(format!("key{c}"), "val".to_owned())])
                    .is_err()
            );
            let in_value = sr
                .start("200 OK", [("key".to_owned(), format!("val{c}"))])
                .is_ok();
            // HTAB is allowed in values (and so in reason phrases), nothing else.
            assert_eq!(in_value, c == '\t', "{c:?}");
            if c != '\t' {
                assert!(
                    sr.start(format!("200 OK{c}"), Vec::<(&str, &str)>::new())
                        .is_err(),
                    "{c:?}"
                );
                sr.start("200 OK", Vec::<(&str, &str)>::new())?;
            }
            Ok(Body::empty())
        };
        let (out, err) = run(&app);
        assert_eq!(err, "", "{c:?}");
        assert!(out.starts_with(b"Status: 200 OK\r\n"));
    }
}

// IntegrationTests.test_plain_hello, through the origin-server configuration.
#[test]
fn plain_hello_origin() {
    let mut config = Config::origin();
    config.http_version = HttpVersion::Http10;
    config.server_software = Some("WSGIServer/0.2".into());
    let (out, _, _) = run_with(&[], config, &hello_app);
    eq_bytes(
        &out,
        b"HTTP/1.0 200 OK\r\nServer: WSGIServer/0.2\r\nContent-Type: text/plain\r\n\
          Date: Mon, 05 Jun 2006 18:49:54 GMT\r\nContent-Length: 13\r\n\r\nHello, world!",
    );
}

// IntegrationTests.test_validated_hello: the validator passes a good app.
// (The Rust validator passes the body through, so Content-Length stays.)
#[test]
fn validated_hello() {
    let (out, err) = run(&validator(hello_app));
    assert_eq!(err, "");
    eq_bytes(
        &out,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 05 Jun 2006 18:49:54 GMT\r\n\
          Content-Length: 13\r\n\r\nHello, world!",
    );
}

// IntegrationTests.test_simple_validation_error and test_status_validation_errors.
#[test]
fn validation_errors_become_500_and_a_log_line() {
    let bad_status = |status: &'static str| {
        move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
            sr.start(status, [("Content-Type", "text/plain; charset=utf-8")])?;
            Ok(Body::from("Hello, world!"))
        }
    };
    for (status, msg) in [
        ("200", "status must be at least 4 characters"),
        ("20X OK", "status must begin with a 3-digit code"),
        ("200OK", "status must have a space after the code"),
        ("200 ", "should be a three-digit code, a space and a reason"),
    ] {
        let (out, err) = run(&validator(bad_status(status)));
        assert!(out.ends_with(ERROR_BODY), "{status}");
        // The log names the check, through the error's causes.
        let (_, plain_err) = run(&bad_status(status));
        assert!(
            err.contains(msg) || plain_err.contains(msg),
            "{status}: {err} / {plain_err}"
        );
    }
    let no_type = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("X-Thing", "1")])?;
        Ok(Body::from("x"))
    };
    let (out, err) = run(&validator(no_type));
    assert!(out.ends_with(ERROR_BODY));
    assert!(
        err.contains("no Content-Type header found in headers"),
        "{err}"
    );

    let status_header = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start(
            "200 OK",
            [("Content-Type", "text/plain"), ("Status", "200 OK")],
        )?;
        Ok(Body::from("x"))
    };
    let (_, err) = run(&validator(status_header));
    assert!(err.contains("the Status header cannot be used"), "{err}");

    let typed_204 = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("204 No Content", [("Content-Type", "text/plain")])?;
        Ok(Body::empty())
    };
    let (_, err) = run(&validator(typed_204));
    assert!(
        err.contains("Content-Type header found in a 204 response"),
        "{err}"
    );

    let no_start = |_: &mut Environ, _: &mut StartResponse<'_>| -> R { Ok(Body::from("x")) };
    let (out, err) = run(&validator(no_start));
    assert!(out.ends_with(ERROR_BODY));
    assert!(
        err.contains("returned before calling start_response"),
        "{err}"
    );
}

#[test]
fn validator_checks_the_environ() {
    for (vars, msg) in [
        (
            vec![("HTTP_CONTENT_TYPE", &b"text/plain"[..])],
            "should not have the key HTTP_CONTENT_TYPE",
        ),
        (
            vec![("PATH_INFO", &b"x"[..])],
            "PATH_INFO doesn't start with '/'",
        ),
        (
            vec![("SCRIPT_NAME", &b"/"[..])],
            "SCRIPT_NAME cannot be '/'",
        ),
        (vec![("REQUEST_METHOD", &b"GE T"[..])], "is not a token"),
    ] {
        let (out, err, _) = run_with(&vars, Config::gateway(), &validator(hello_app));
        assert!(out.ends_with(ERROR_BODY), "{msg}");
        assert!(err.contains(msg), "{msg}: {err}");
    }
}

// IntegrationTests.test_bytes_validation: a validated app with its own Date.
#[test]
fn bytes_validation() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start(
            "200 OK",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Date", "Wed, 24 Dec 2008 13:29:32 GMT"),
            ],
        )?;
        Ok(Body::from("data"))
    };
    let mut config = Config::origin();
    config.http_version = HttpVersion::Http10;
    config.server_software = Some("WSGIServer/0.2".into());
    let (out, err, _) = run_with(&[], config, &validator(app));
    assert_eq!(err, "");
    eq_bytes(
        &out,
        b"HTTP/1.0 200 OK\r\nServer: WSGIServer/0.2\r\nContent-Type: text/plain; charset=utf-8\r\n\
          Date: Wed, 24 Dec 2008 13:29:32 GMT\r\nContent-Length: 4\r\n\r\ndata",
    );
}

// IntegrationTests.test_cp1252_url, at the environ level: PATH_INFO bytes
// reach the app unchanged and can be echoed back.
#[test]
fn non_utf8_path_info_round_trips() {
    let app = |e: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        let path = e.get_bytes("PATH_INFO").unwrap_or_default().to_vec();
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::from(path))
    };
    let (out, _, _) = run_with(&[("PATH_INFO", b"/\x80\x80")], Config::gateway(), &app);
    assert!(out.ends_with(b"\r\n\r\n/\x80\x80"));
}

// ---- gatekit's own rules ----

#[test]
fn panic_before_headers_is_a_500() {
    let app = |_: &mut Environ, _: &mut StartResponse<'_>| -> R { panic!("kaboom") };
    let (out, err, outcome) = run_with(&[], Config::gateway(), &app);
    eq_bytes(&out, &error_page());
    assert!(err.contains("application panicked: kaboom"), "{err}");
    assert!(outcome.app_failed && !outcome.complete);
}

#[test]
fn panic_in_body_after_headers_aborts() {
    struct Abortable {
        out: Vec<u8>,
        aborted: bool,
    }
    impl Transport for Abortable {
        fn write(&mut self, d: &[u8]) -> io::Result<()> {
            self.out.extend_from_slice(d);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn input(&mut self) -> Box<dyn io::BufRead + Send> {
            Box::new(io::empty())
        }
        fn errors(&mut self) -> Box<dyn Write + Send> {
            Box::new(io::sink())
        }
        fn add_cgi_vars(&mut self, _: &mut Environ) {}
        fn abort(&mut self) {
            self.aborted = true;
        }
    }
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        let mut n = 0;
        Ok(Body::chunks(std::iter::from_fn(move || {
            n += 1;
            assert!(n < 3, "iterator blew up");
            Some(b"block".to_vec())
        })))
    };
    let mut gw = Gateway::new(
        Abortable {
            out: Vec::new(),
            aborted: false,
        },
        Config::gateway(),
    );
    let outcome = gw.run(&app);
    assert!(gw.transport().aborted);
    assert!(!outcome.complete && outcome.app_failed);
    eq_bytes(
        &gw.transport().out,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nblockblock",
    );
}

#[test]
fn app_must_call_start_response() {
    let app = |_: &mut Environ, _: &mut StartResponse<'_>| -> R { Ok(Body::from("x")) };
    let (out, err) = run(&app);
    eq_bytes(&out, &error_page());
    assert!(
        err.contains("returned without calling start_response"),
        "{err}"
    );
}

#[test]
fn second_start_without_error_is_refused() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        let second = sr.start("404 Not Found", [("Content-Type", "text/plain")]);
        assert!(matches!(second, Err(StartError::AlreadyStarted)));
        Ok(Body::from("ok"))
    };
    assert!(run(&app).0.starts_with(b"Status: 200 OK\r\n"));
}

#[test]
fn start_with_error_replaces_headers_before_they_are_sent() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/html"), ("X-Old", "1")])?;
        sr.start_with_error(
            "503 Busy",
            [("Content-Type", "text/plain")],
            "overloaded".into(),
        )?;
        Ok(Body::from("busy"))
    };
    eq_bytes(
        &run(&app).0,
        b"Status: 503 Busy\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbusy",
    );
}

#[test]
fn start_with_error_after_headers_hands_the_error_back() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?
            .write_all(b"partial")?;
        match sr.start_with_error(
            "500 Oops",
            [("Content-Type", "text/plain")],
            "late failure".into(),
        ) {
            Err(StartError::HeadersSent(e)) => Err(e),
            other => panic!("expected HeadersSent, got {other:?}"),
        }
    };
    let (out, err, outcome) = run_with(&[], Config::gateway(), &app);
    eq_bytes(
        &out,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\npartial",
    );
    assert!(err.contains("late failure"));
    assert!(!outcome.complete);
}

#[test]
fn hop_by_hop_headers_are_refused() {
    for name in ["Connection", "Transfer-Encoding", "keep-alive", "Upgrade"] {
        let app = move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
            sr.start("200 OK", [(name, "x")])?;
            Ok(Body::empty())
        };
        let (out, err) = run(&app);
        eq_bytes(&out, &error_page());
        assert!(err.contains("invalid response header"), "{err}");
    }
}

#[test]
fn content_length_is_never_exceeded() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Length", "5")])?;
        Ok(Body::chunks([&b"hel"[..], b"lo world", b"!"]))
    };
    let (out, err, outcome) = run_with(&[], Config::gateway(), &app);
    eq_bytes(&out, b"Status: 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    assert!(err.contains("longer than its Content-Length"), "{err}");
    assert_eq!(err.matches("longer than").count(), 1);
    assert!(outcome.complete && outcome.delimited);
}

#[test]
fn short_body_aborts_and_logs() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Length", "12345")])?;
        Ok(Body::from("short"))
    };
    let (out, err, outcome) = run_with(&[], Config::gateway(), &app);
    eq_bytes(
        &out,
        b"Status: 200 OK\r\nContent-Length: 12345\r\n\r\nshort",
    );
    assert!(
        err.contains("shorter than its Content-Length (5 of 12345 bytes)"),
        "{err}"
    );
    assert!(!outcome.complete);
}

#[test]
fn invalid_content_length_from_app_is_refused() {
    for v in ["-1", "abc", "1 2", ""] {
        let app = move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
            sr.start("200 OK", [("Content-Length", v)])?;
            Ok(Body::empty())
        };
        eq_bytes(&run(&app).0, &error_page());
    }
}

#[test]
fn bodiless_statuses_get_no_content_length() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("304 Not Modified", [("ETag", "\"x\"")])?;
        Ok(Body::empty())
    };
    eq_bytes(
        &run(&app).0,
        b"Status: 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    );
}

#[test]
fn head_sends_headers_as_for_get_but_no_body() {
    let (out, _, outcome) = run_with(
        &[("REQUEST_METHOD", b"HEAD")],
        Config::gateway(),
        &hello_app,
    );
    eq_bytes(
        &out,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 05 Jun 2006 18:49:54 GMT\r\n\
          Content-Length: 13\r\n\r\n",
    );
    assert!(outcome.complete);
}

#[test]
fn origin_http11_streams_are_chunked() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::chunks(["Hello, ", "", "world!"]))
    };
    let (out, _, outcome) = run_with(&[("SERVER_PROTOCOL", b"HTTP/1.1")], origin_config(), &app);
    eq_bytes(
        &out,
        b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/plain\r\n\
          Transfer-Encoding: chunked\r\n\r\n7\r\nHello, \r\n6\r\nworld!\r\n0\r\n\r\n",
    );
    assert!(outcome.delimited);
    // An HTTP/1.0 client gets the stream unframed, ended by closing the connection.
    let (out, _, outcome) = run_with(&[("SERVER_PROTOCOL", b"HTTP/1.0")], origin_config(), &app);
    eq_bytes(
        &out,
        b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/plain\r\n\r\nHello, world!",
    );
    assert!(outcome.complete && !outcome.delimited);
}

#[test]
fn invalid_request_content_length_is_a_400() {
    let called = Arc::new(AtomicBool::new(false));
    let c = Arc::clone(&called);
    let app = move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        c.store(true, Ordering::SeqCst);
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::empty())
    };
    for bad in [&b"abc"[..], b"-5", b"1e3", b" 7"] {
        let (out, err, outcome) = run_with(&[("CONTENT_LENGTH", bad)], Config::gateway(), &app);
        eq_bytes(&out, b"Status: 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nBad Request\n");
        assert!(err.contains("invalid CONTENT_LENGTH"), "{err}");
        assert!(!outcome.complete);
    }
    assert!(!called.load(Ordering::SeqCst));
}

#[test]
fn input_is_bounded_by_content_length() {
    let app = |e: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        let mut body = Vec::new();
        e.input.read_to_end(&mut body)?;
        sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
        Ok(Body::from(body))
    };
    let (mut gw, _) = memory_gateway(
        &[("CONTENT_LENGTH", b"5")],
        b"hello, and more",
        Config::gateway(),
    );
    gw.run(&app);
    assert!(gw.transport().output().ends_with(b"\r\n\r\nhello"));
    // A body that ends early is an error for the app, not a silent short read.
    let (mut gw, err) = memory_gateway(&[("CONTENT_LENGTH", b"50")], b"hello", Config::gateway());
    gw.run(&app);
    eq_bytes(gw.transport().output(), &error_page());
    assert!(
        err.text()
            .contains("request body ended after 5 of 50 bytes"),
        "{}",
        err.text()
    );
}

#[test]
fn app_log_lines_reach_wsgi_errors() {
    let app = |e: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        writeln!(e.errors, "app says hi")?;
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::empty())
    };
    assert_eq!(run(&app).1, "app says hi\n");
}

#[test]
fn traceback_limit_bounds_the_causes_logged() {
    #[derive(Debug)]
    struct Chain(u32);
    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "level {}", self.0)
        }
    }
    impl std::error::Error for Chain {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            const LEVELS: [Chain; 4] = [Chain(0), Chain(1), Chain(2), Chain(3)];
            LEVELS.get(self.0 as usize + 1).map(|c| c as _)
        }
    }
    let app = |_: &mut Environ, _: &mut StartResponse<'_>| -> R { Err(Box::new(Chain(0))) };
    let mut config = Config::gateway();
    config.traceback_limit = Some(1);
    let (_, err, _) = run_with(&[], config, &app);
    assert!(
        err.contains("level 0") && err.contains("caused by: level 1") && !err.contains("level 2"),
        "{err}"
    );
    let (_, err, _) = run_with(&[], Config::gateway(), &app);
    assert!(err.contains("caused by: level 3"), "{err}");
}

// ---- file wrapper and the sendfile hook ----

fn temp_file(data: &[u8]) -> File {
    let mut f = tempfile();
    f.write_all(data).unwrap();
    f.rewind().unwrap();
    f
}

fn tempfile() -> File {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "gatekit-handler-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

/// Records sendfile calls and sends `limit` bytes at most per call (0 = refuse).
struct SendfileTransport {
    out: Vec<u8>,
    calls: Vec<(u64, u64)>,
    limit: u64,
}

impl Transport for SendfileTransport {
    fn write(&mut self, d: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(d);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn input(&mut self) -> Box<dyn io::BufRead + Send> {
        Box::new(io::empty())
    }
    fn errors(&mut self) -> Box<dyn Write + Send> {
        Box::new(io::sink())
    }
    fn add_cgi_vars(&mut self, _: &mut Environ) {}
    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.calls.push((offset, count));
        let n = count.min(self.limit);
        let mut buf = vec![0; usize::try_from(n).unwrap()];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)?;
        self.out.extend_from_slice(&buf);
        Ok(n)
    }
}

fn file_app(data: &'static [u8], skip: u64, cl: Option<&'static str>) -> impl App {
    move |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        let mut headers = vec![("Content-Type", "application/octet-stream")];
        if let Some(cl) = cl {
            headers.push(("Content-Length", cl));
        }
        sr.start("200 OK", headers)?;
        let mut f = temp_file(data);
        f.seek(io::SeekFrom::Start(skip))?;
        Ok(Body::File(FileWrapper::new(f, 4)))
    }
}

fn run_file(app: &dyn App, limit: u64) -> SendfileTransport {
    let mut gw = Gateway::new(
        SendfileTransport {
            out: Vec::new(),
            calls: Vec::new(),
            limit,
        },
        Config::gateway(),
    );
    let outcome = gw.run(app);
    assert!(outcome.complete, "{outcome:?}");
    gw.into_transport()
}

#[test]
fn file_wrapper_uses_sendfile_from_the_current_position() {
    let t = run_file(&file_app(b"0123456789", 3, None), u64::MAX);
    assert_eq!(t.calls, [(3, 7)]);
    eq_bytes(
        &t.out,
        b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 7\r\n\r\n3456789",
    );
}

#[test]
fn file_wrapper_honours_app_content_length() {
    let t = run_file(&file_app(b"0123456789", 0, Some("4")), u64::MAX);
    assert_eq!(t.calls, [(0, 4)]);
    assert!(t.out.ends_with(b"Content-Length: 4\r\n\r\n0123"));
}

#[test]
fn file_wrapper_falls_back_to_reads_when_sendfile_refuses_or_stops_short() {
    let t = run_file(&file_app(b"0123456789", 0, None), 0);
    assert!(t.out.ends_with(b"Content-Length: 10\r\n\r\n0123456789"));
    let t = run_file(&file_app(b"0123456789", 0, None), 6);
    assert_eq!(t.calls, [(0, 10)]);
    assert!(t.out.ends_with(b"Content-Length: 10\r\n\r\n0123456789"));
}

#[test]
fn file_wrapper_over_a_reader_streams_blocks() {
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::File(FileWrapper::new(
            io::Cursor::new(b"abcdefghij".to_vec()),
            4,
        )))
    };
    let t = run_file(&app, u64::MAX);
    assert!(t.calls.is_empty());
    eq_bytes(
        &t.out,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nabcdefghij",
    );
}

#[test]
fn file_wrapper_short_file_against_content_length_aborts() {
    let mut gw = Gateway::new(
        SendfileTransport {
            out: Vec::new(),
            calls: Vec::new(),
            limit: u64::MAX,
        },
        Config::gateway(),
    );
    let outcome = gw.run(&file_app(b"0123", 0, Some("10")));
    assert!(!outcome.complete && outcome.app_failed);
}

#[test]
fn demo_app_lists_the_environ() {
    let (out, _, _) = run_with(
        &[("PATH_INFO", b"/\xff"), ("QUERY_STRING", b"a=1")],
        Config::gateway(),
        &demo_app,
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(
        "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
    ));
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.starts_with("Hello world!\n\n"), "{body}");
    for line in [
        "PATH_INFO = '/\\xff'",
        "QUERY_STRING = 'a=1'",
        "wsgi.version = (1, 0)",
        "wsgi.url_scheme = 'http'",
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    let keys: Vec<&str> = body
        .lines()
        .skip(2)
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
}

#[test]
fn gateway_keeps_its_clock_fixed() {
    let mut config = origin_config();
    config.clock = Clock::fixed_unix(1_149_533_394);
    let app = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::from("x"))
    };
    let (out, _, _) = run_with(&[], config, &app);
    eq_bytes(
        &out,
        b"HTTP/1.1 200 OK\r\nDate: Mon, 05 Jun 2006 18:49:54 GMT\r\nContent-Type: text/plain\r\n\
          Content-Length: 1\r\n\r\nx",
    );
}

#[test]
fn origin_connection_header_follows_framing() {
    let stream = |_: &mut Environ, sr: &mut StartResponse<'_>| -> R {
        sr.start("200 OK", [("Content-Type", "text/plain")])?;
        Ok(Body::chunks(["a", "b"]))
    };
    let run_ka = |proto: &[u8], wanted: bool, app: &dyn App| {
        let (mut gw, _) = memory_gateway(&[("SERVER_PROTOCOL", proto)], b"", origin_config());
        gw.set_keep_alive(wanted);
        let outcome = gw.run(app);
        (
            String::from_utf8(gw.into_transport().into_output()).unwrap(),
            outcome,
        )
    };
    // HTTP/1.1, sized body: persistent, no header needed.
    let (out, o) = run_ka(b"HTTP/1.1", true, &hello_app);
    assert!(!out.contains("Connection:") && o.keep_alive, "{out}");
    // HTTP/1.1 stream: chunked, still persistent.
    let (out, o) = run_ka(b"HTTP/1.1", true, &stream);
    assert!(
        out.contains("Transfer-Encoding: chunked\r\n")
            && !out.contains("Connection:")
            && o.keep_alive
    );
    // HTTP/1.1, client said close.
    let (out, o) = run_ka(b"HTTP/1.1", false, &hello_app);
    assert!(
        out.contains("\r\nConnection: close\r\n\r\n") && !o.keep_alive,
        "{out}"
    );
    // HTTP/1.0 keep-alive, sized: say keep-alive.
    let (out, o) = run_ka(b"HTTP/1.0", true, &hello_app);
    assert!(
        out.contains("\r\nConnection: keep-alive\r\n\r\n") && o.keep_alive,
        "{out}"
    );
    // HTTP/1.0 stream: no framing possible, so close.
    let (out, o) = run_ka(b"HTTP/1.0", true, &stream);
    assert!(
        out.contains("\r\nConnection: close\r\n\r\nab") && !o.keep_alive,
        "{out}"
    );
    // Without set_keep_alive: no Connection header at all (wsgiref's output).
    let (mut gw, _) = memory_gateway(&[("SERVER_PROTOCOL", b"HTTP/1.1")], b"", origin_config());
    let o = gw.run(&hello_app);
    assert!(
        !String::from_utf8_lossy(gw.transport().output()).contains("Connection:") && !o.keep_alive
    );
}

/// A transport that offloads every file it is offered.
struct OffloadTransport(SendfileTransport);

impl Transport for OffloadTransport {
    fn write(&mut self, d: &[u8]) -> io::Result<()> {
        self.0.write(d)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn input(&mut self) -> Box<dyn io::BufRead + Send> {
        Box::new(io::empty())
    }
    fn errors(&mut self) -> Box<dyn Write + Send> {
        Box::new(io::sink())
    }
    fn add_cgi_vars(&mut self, _: &mut Environ) {}
    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.0.sendfile(file, offset, count)
    }
    fn offload(&mut self, _: &File, len: u64) -> Option<(String, String)> {
        Some(("X-Sendfile".into(), format!("/files/{len}")))
    }
}

fn run_offload(app: &dyn App) -> OffloadTransport {
    let mut gw = Gateway::new(
        OffloadTransport(SendfileTransport {
            out: Vec::new(),
            calls: Vec::new(),
            limit: u64::MAX,
        }),
        Config::gateway(),
    );
    assert!(gw.run(app).complete);
    gw.into_transport()
}

#[test]
fn whole_file_is_offloaded_as_a_header_without_a_body() {
    let t = run_offload(&file_app(b"0123456789", 0, Some("10")));
    assert!(t.0.calls.is_empty());
    eq_bytes(
        &t.0.out,
        b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\nX-Sendfile: /files/10\r\nContent-Length: 0\r\n\r\n",
    );
}

#[test]
fn partial_file_is_not_offloaded() {
    // From an offset, or shorter than the file: gatekit sends the bytes.
    let t = run_offload(&file_app(b"0123456789", 3, None));
    assert_eq!(t.0.calls, [(3, 7)]);
    let t = run_offload(&file_app(b"0123456789", 0, Some("4")));
    assert!(t.0.out.ends_with(b"Content-Length: 4\r\n\r\n0123"));
}

/// `omit_status_200`: `Status: 200 OK` is left out (RFC 3875 §6.3.3's
/// default), and only that: another status or reason phrase, or a
/// `Location` beside 200 (which without a `Status` asks for a redirect), keep
/// the header; an origin server's status line is not affected.
#[test]
fn omit_status_200_leaves_out_only_a_plain_200_ok() {
    fn with(
        status: &'static str,
        location: bool,
    ) -> impl Fn(&mut Environ, &mut StartResponse<'_>) -> R {
        move |_, sr| {
            let mut headers = vec![("Content-Type", "text/plain")];
            if location {
                headers.push(("Location", "/elsewhere"));
            }
            sr.start(status, headers)?;
            Ok(Body::from("x"))
        }
    }
    let mut config = Config::gateway();
    config.omit_status_200 = true;
    let out = |status, location| run_with(&[], config.clone(), &with(status, location)).0;
    eq_bytes(
        &out("200 OK", false),
        b"Content-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
    );
    eq_bytes(
        &out("200 Fine", false),
        b"Status: 200 Fine\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
    );
    eq_bytes(
        &out("200 OK", true),
        b"Status: 200 OK\r\nContent-Type: text/plain\r\nLocation: /elsewhere\r\nContent-Length: 1\r\n\r\nx",
    );
    eq_bytes(
        &out("404 Not Found", false),
        b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
    );
    // The default (wsgiref's) writes it.
    eq_bytes(
        &run(&with("200 OK", false)).0,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
    );
    let mut origin = Config::origin();
    origin.omit_status_200 = true;
    origin.clock = Clock::fixed_unix(1_149_533_394);
    let (head, _, _) = run_with(
        &[("SERVER_PROTOCOL", b"HTTP/1.1")],
        origin,
        &with("200 OK", false),
    );
    assert!(
        head.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        head.escape_ascii()
    );
}
