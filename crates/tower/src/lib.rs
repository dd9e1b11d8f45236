//! gatekit-tower: serve an `http`/`tower` service (an axum `Router`, a
//! `tower::service_fn`, anything hyper could serve) as a gatekit [`App`], and
//! so under CGI, FastCGI, SCGI and gatekit's own HTTP server.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! let router = Router::new().route("/", get(|| async { "Hello, world!\n" }));
//! let app = gatekit_tower::app(router);
//! // Any front-end: gatekit_cgi::serve(&app), gatekit_fastcgi::make_server(addr, app), ...
//! gatekit_http::make_server("127.0.0.1:8000", app)?.serve_forever()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What maps to what
//!
//! | request environ | `http::Request<RequestBody>` |
//! |---|---|
//! | `REQUEST_METHOD` | method (an invalid one is answered 400) |
//! | `wsgi.url_scheme`, `HTTP_HOST` or `SERVER_NAME`:`SERVER_PORT`, `SCRIPT_NAME` + `PATH_INFO` (percent-encoded back), `QUERY_STRING` | URI (PEP 3333 "URL Reconstruction") |
//! | `SERVER_PROTOCOL` | version |
//! | `HTTP_*`, `CONTENT_TYPE`, `CONTENT_LENGTH` | headers (invalid ones left out) |
//! | `wsgi.input` | the body, [`RequestBody`] |
//! | `REMOTE_ADDR` + `REMOTE_PORT` | extension [`RemoteAddr`] |
//! | `SCRIPT_NAME` | extension [`ScriptName`] |
//! | every variable | extension [`CgiVars`] |
//!
//! | `http::Response<B>` | gatekit |
//! |---|---|
//! | status | `start_response("NNN Reason", …)` |
//! | headers (repeats kept) | response headers; hop-by-hop ones left out |
//! | body frames | a [`Body`]: one block, or a stream pulled frame by frame and flushed block by block (server-sent events work); trailers are dropped |
//!
//! # Design
//!
//! gatekit's front-ends call apps on blocking worker threads. [`TowerApp`]
//! polls each request's service future on that worker thread, inside the
//! context of one tokio runtime shared by the whole process ([`runtime`]:
//! multi-thread, 1–2 workers, created on first use, which drive timers, I/O
//! and whatever the service spawns), parking the thread between wake-ups
//! until the response head is ready; no request hops to a runtime thread and
//! back. Then it hands the body to the gateway as an iterator that waits for
//! one frame at a time. A panic in the service becomes a 500; a client that
//! goes away while the service works is noticed (within 100 ms) through
//! `Environ::is_cancelled` and the future is dropped.

use std::any::Any;
use std::fmt;
use std::io;

use bytes::Buf;
use gatekit_core::{App, Body, BoxError, Environ, StartResponse};
use http::{Request, Response};
use tokio::runtime::Handle;
use tower_service::Service;

mod request;
mod response;
mod runtime;

pub use request::{CgiVars, RemoteAddr, RequestBody, ScriptName};
pub use runtime::runtime;

/// A tower service as a gatekit [`App`].
///
/// Each request clones the service (as hyper does per connection), waits for
/// `poll_ready`, then `call`s it, on the shared runtime or the one given to
/// [`with_handle`](TowerApp::with_handle).
#[derive(Clone)]
pub struct TowerApp<S> {
    service: S,
    handle: Option<Handle>,
    strip_script_name: bool,
}

impl<S> TowerApp<S> {
    /// The service as an app, run on gatekit-tower's shared runtime.
    pub fn new(service: S) -> TowerApp<S> {
        TowerApp {
            service,
            handle: None,
            strip_script_name: false,
        }
    }

    /// The service as an app, run on a runtime of your own (it must be a
    /// multi-thread runtime, or a current-thread one driven by some other
    /// thread: the gateway's threads only wait on it).
    pub fn with_handle(service: S, handle: Handle) -> TowerApp<S> {
        TowerApp {
            service,
            handle: Some(handle),
            strip_script_name: false,
        }
    }

    /// Leaves `SCRIPT_NAME` out of the request URI, so the service routes on
    /// `PATH_INFO` alone: for an app mounted below a prefix (a CGI program at
    /// `/cgi-bin/app.cgi`, an SCGI mount point) whose routes are written from
    /// `/`. The prefix stays available as the [`ScriptName`] extension.
    ///
    /// Not for nginx's stock `fastcgi_params`, which sends the whole path as
    /// `SCRIPT_NAME` and no `PATH_INFO`. Off by default.
    #[must_use]
    pub fn strip_script_name(mut self, strip: bool) -> TowerApp<S> {
        self.strip_script_name = strip;
        self
    }

    /// The service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }

    /// Gives back the service.
    pub fn into_inner(self) -> S {
        self.service
    }

    fn handle(&self) -> io::Result<Handle> {
        match &self.handle {
            Some(h) => Ok(h.clone()),
            None => runtime(),
        }
    }
}

impl<S> fmt::Debug for TowerApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerApp")
            .field("service", &std::any::type_name::<S>())
            .field("own_runtime", &self.handle.is_some())
            .field("strip_script_name", &self.strip_script_name)
            .finish()
    }
}

/// The service as an app, on the shared runtime: [`TowerApp::new`].
pub fn app<S>(service: S) -> TowerApp<S> {
    TowerApp::new(service)
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

impl<S, B> App for TowerApp<S>
where
    S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    fn call(&self, environ: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        let handle = self.handle()?;
        let req = match request::from_environ(environ, &handle, self.strip_script_name) {
            Ok(req) => req,
            Err(why) => {
                sr.start("400 Bad Request", [("Content-Type", "text/plain")])?;
                return Ok(Body::from(format!("Bad Request: {why}\n")));
            }
        };
        let mut service = self.service.clone();
        // Polled here, on the gateway's worker thread (with the runtime's
        // context entered, so its timers and I/O work), not spawned: no
        // hand-off to a runtime thread and back for each request.
        let call = async move {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            service.call(req).await.map_err(Into::<BoxError>::into)
        };
        let env: &Environ = environ;
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime::block_on(&handle, call, Some(&|| env.is_cancelled()))
        }));
        let response = match polled {
            Ok(Some(Ok(response))) => response,
            Ok(Some(Err(e))) => return Err(e),
            Err(payload) => {
                return Err(format!("service panicked: {}", panic_message(&*payload)).into());
            }
            Ok(None) => {
                // A client-gone error: the gateway ends the request quietly.
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "request cancelled while the service was running",
                )
                .into());
            }
        };
        response::send(response, environ, sr, &handle)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use gatekit_core::testing::memory_gateway;
    use gatekit_core::{Config, Headers, ResponseSink, StartError, Status};
    use http::HeaderMap;
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};

    use super::*;

    /// A service from a closure.
    #[derive(Clone)]
    struct FnService<F>(F);

    impl<F, B> Service<Request<RequestBody>> for FnService<F>
    where
        F: Fn(Request<RequestBody>) -> Result<Response<B>, BoxError>,
    {
        type Response = Response<B>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<B>, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
            std::future::ready((self.0)(req))
        }
    }

    fn run<A: App>(app: &A, vars: &[(&str, &[u8])]) -> (String, String, gatekit_core::Outcome) {
        let (mut gw, errors) = memory_gateway(vars, b"", Config::gateway());
        let outcome = gw.run(app);
        let out = gatekit_core::latin1_to_string(gw.transport().output());
        (out, errors.text(), outcome)
    }

    #[test]
    fn headers_repeat_latin1_and_hop_by_hop() {
        let app = app(FnService(|_req| {
            let mut res = Response::new(Full::new(Bytes::from_static(b"hi")));
            *res.status_mut() = http::StatusCode::IM_A_TEAPOT;
            let h = res.headers_mut();
            h.append("set-cookie", "a=1".parse()?);
            h.append("set-cookie", "b=2".parse()?);
            h.append("x-latin1", http::HeaderValue::from_bytes(b"caf\xe9")?);
            h.append("connection", "keep-alive".parse()?);
            Ok(res)
        }));
        let (out, log, outcome) = run(&app, &[]);
        assert!(!outcome.app_failed);
        assert_eq!(
            out,
            "Status: 418 I'm a teapot\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\
             x-latin1: caf\u{e9}\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert!(log.contains("\"connection\" not sent: hop-by-hop"), "{log}");
    }

    type Frames = Vec<Result<Frame<Bytes>, std::io::Error>>;

    fn stream_app(
        frames: fn() -> Frames,
    ) -> TowerApp<
        impl Service<
            Request<RequestBody>,
            Response = Response<
                impl http_body::Body<Data = Bytes, Error = std::io::Error> + Send + 'static,
            >,
            Error = BoxError,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static,
    > {
        app(FnService(move |_req| {
            Ok(Response::new(StreamBody::new(futures_util::stream::iter(
                frames(),
            ))))
        }))
    }

    #[test]
    fn streamed_blocks_skip_empty_frames_and_trailers() {
        let app = stream_app(|| {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", http::HeaderValue::from_static("1"));
            vec![
                Ok(Frame::data(Bytes::from_static(b"a"))),
                Ok(Frame::data(Bytes::new())),
                Ok(Frame::data(Bytes::from_static(b"b"))),
                Ok(Frame::trailers(trailers)),
            ]
        });
        let (out, _, outcome) = run(&app, &[]);
        assert!(outcome.complete && !outcome.app_failed);
        assert_eq!(out, "Status: 200 OK\r\n\r\nab");
        // An origin server chunks it.
        let (mut gw, _) =
            memory_gateway(&[("SERVER_PROTOCOL", b"HTTP/1.1")], b"", Config::origin());
        gw.run(&app);
        let out = String::from_utf8_lossy(gw.transport().output()).into_owned();
        assert!(
            out.ends_with("Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n"),
            "{out}"
        );
    }

    /// Two one-byte frames, with an exact size hint.
    struct Sized2(u8);

    impl http_body::Body for Sized2 {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.0 == 0 {
                return Poll::Ready(None);
            }
            self.0 -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(u64::from(self.0))
        }
    }

    #[test]
    fn stream_of_known_length_gets_content_length() {
        let app = app(FnService(|_req| Ok(Response::new(Sized2(2)))));
        let (out, _, outcome) = run(&app, &[]);
        assert!(outcome.complete, "{out}");
        assert_eq!(out, "Status: 200 OK\r\nContent-Length: 2\r\n\r\nxx");
    }

    #[test]
    fn error_in_first_frame_is_500_later_is_abort() {
        let app = stream_app(|| vec![Err(std::io::Error::other("early"))]);
        let (out, log, outcome) = run(&app, &[]);
        assert!(outcome.app_failed);
        assert!(
            out.starts_with("Status: 500 Internal Server Error\r\n"),
            "{out}"
        );
        assert!(log.contains("early"), "{log}");

        let app = stream_app(|| {
            vec![
                Ok(Frame::data(Bytes::from_static(b"a"))),
                Err(std::io::Error::other("late")),
            ]
        });
        let (out, log, outcome) = run(&app, &[]);
        assert!(outcome.app_failed && !outcome.complete);
        assert_eq!(out, "Status: 200 OK\r\n\r\na");
        assert!(log.contains("late"), "{log}");
    }

    #[test]
    fn service_error_is_500_and_bad_method_400() {
        let app = app(FnService(
            |_req| -> Result<Response<Full<Bytes>>, BoxError> { Err("no".into()) },
        ));
        let (out, log, _) = run(&app, &[]);
        assert!(out.starts_with("Status: 500 "), "{out}");
        assert!(log.contains("application error: no"), "{log}");
        let (out, _, _) = run(&app, &[("REQUEST_METHOD", b"G\xffT")]);
        assert!(out.starts_with("Status: 400 Bad Request\r\n"), "{out}");
    }

    /// A sink that only records the status.
    #[derive(Default)]
    struct Sink(Option<Status>);

    impl ResponseSink for Sink {
        fn start_response(
            &mut self,
            status: Status,
            _: Headers,
            _: Option<BoxError>,
        ) -> Result<(), StartError> {
            self.0 = Some(status);
            Ok(())
        }
        fn write(&mut self, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn headers_sent(&self) -> bool {
            false
        }
    }

    /// A service that never answers.
    #[derive(Clone)]
    struct Never;

    impl Service<Request<RequestBody>> for Never {
        type Response = Response<Full<Bytes>>;
        type Error = Infallible;
        type Future = std::future::Pending<Result<Response<Full<Bytes>>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<RequestBody>) -> Self::Future {
            std::future::pending()
        }
    }

    #[test]
    fn cancelled_request_gives_up_as_client_gone() {
        let mut env = Environ::new();
        env.set_cancel_flag(Arc::new(AtomicBool::new(true)));
        let mut sink = Sink::default();
        let mut sr = StartResponse::new(&mut sink);
        let err = app(Never).call(&mut env, &mut sr).unwrap_err();
        let io = err.downcast_ref::<io::Error>().unwrap();
        assert!(gatekit_core::is_client_gone(io));
        assert!(sink.0.is_none());
    }

    #[test]
    fn own_runtime_handle() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let app = TowerApp::with_handle(
            FnService(|req: Request<RequestBody>| {
                Ok(Response::new(Full::new(Bytes::from(req.uri().to_string()))))
            }),
            rt.handle().clone(),
        );
        let (out, _, _) = run(&app, &[("PATH_INFO", b"/x"), ("QUERY_STRING", b"y")]);
        assert!(out.ends_with("\r\n\r\nhttp://127.0.0.1/x?y"), "{out}");
    }
}
