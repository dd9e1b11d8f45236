//! What the tests share: in-process servers running the example router, and
//! curl with timings.

use std::net::SocketAddr;
use std::process::Command;
use std::thread::JoinHandle;

use axum::Router;
use gatekit_server::engine::Shutdown;
use gatekit_server::listen::Addr;
use gatekit_tower::TowerApp;

/// The example's router as a gatekit app.
pub fn app() -> TowerApp<Router> {
    gatekit_tower::app(crate::example::router())
}

/// A server running on a thread; stopped (and joined) on drop.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// `http://ADDR` + `path` (for the HTTP server).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ip_of(addrs: &[Addr]) -> SocketAddr {
    match addrs.first() {
        Some(Addr::Ip(sa)) => *sa,
        other => panic!("not an IP listener: {other:?}"),
    }
}

fn run<F>(addr: SocketAddr, shutdown: Shutdown, serve: F) -> Running
where
    F: FnOnce() + Send + 'static,
{
    Running {
        addr,
        shutdown,
        thread: Some(std::thread::spawn(serve)),
    }
}

/// gatekit's HTTP server on 127.0.0.1:0.
pub fn http() -> Running {
    let server = gatekit_http::make_server("127.0.0.1:0", app()).unwrap();
    let addr = ip_of(&server.local_addrs());
    let shutdown = server.shutdown_handle();
    run(addr, shutdown, move || server.serve_forever().unwrap())
}

/// gatekit's FastCGI server on 127.0.0.1:0.
pub fn fastcgi() -> Running {
    let server = gatekit_fastcgi::make_server("127.0.0.1:0", app()).unwrap();
    let addr = ip_of(&server.local_addrs());
    let shutdown = server.shutdown_handle();
    run(addr, shutdown, move || server.serve_forever().unwrap())
}

/// gatekit's SCGI server on 127.0.0.1:0.
pub fn scgi() -> Running {
    let server = gatekit_scgi::make_server("127.0.0.1:0", app()).unwrap();
    let addr = ip_of(&server.local_addrs());
    let shutdown = server.shutdown_handle();
    run(addr, shutdown, move || server.serve_forever().unwrap())
}

/// A response with curl's timings.
#[derive(Debug)]
pub struct Timed {
    pub status: u16,
    pub body: String,
    /// Seconds until the first response byte.
    pub ttfb: f64,
    /// Seconds until the end.
    pub total: f64,
}

/// GET `url` with curl, unbuffered, timing the first byte and the end.
pub fn curl_timed(url: &str) -> Timed {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-N",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code} %{time_starttransfer} %{time_total}",
        ])
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let mut it = tail.split_whitespace();
    Timed {
        status: it.next().unwrap().parse().unwrap(),
        ttfb: it.next().unwrap().parse().unwrap(),
        total: it.next().unwrap().parse().unwrap(),
        body: body.to_owned(),
    }
}

/// `/sse` streams: the first event well before the handler is done (3
/// events, 300 ms apart), all three in order.
pub fn check_sse(url: &str, ctx: &dyn Fn(&str) -> String) {
    let r = curl_timed(url);
    assert_eq!(r.status, 200, "{}", ctx(&format!("sse {r:?}")));
    let events: Vec<&str> = r.body.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(
        events,
        ["data: 0", "data: 1", "data: 2"],
        "{}",
        ctx(&format!("{r:?}"))
    );
    assert!(
        r.ttfb < 0.25,
        "{}",
        ctx(&format!("first event late: {r:?}"))
    );
    assert!(r.total > 0.55, "{}", ctx(&format!("too fast: {r:?}")));
}

/// The JSON POST, two cookies and panic checks, through any front web server.
pub fn check_common(base: &dyn Fn(&str) -> String, ctx: &dyn Fn(&str) -> String) {
    use gatekit_testkit::curl;

    let r = curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"name":"gatekit"}"#,
        ],
        &base("/json"),
    );
    assert_eq!(r.status, 200, "{}", ctx(&format!("json: {}", r.text())));
    assert_eq!(r.text(), r#"{"echo":"gatekit"}"#, "{}", ctx("json body"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );

    let r = curl(&[], &base("/cookies"));
    assert_eq!(r.status, 200, "{}", ctx("cookies"));
    assert_eq!(
        r.headers("set-cookie"),
        ["a=1; Path=/", "b=2; Path=/; HttpOnly"],
        "{}",
        ctx(&r.head)
    );

    let r = curl(&[], &base("/panic"));
    assert_eq!(r.status, 500, "{}", ctx("panic"));
    let r = curl(&[], &base("/users/7"));
    assert_eq!(r.status, 200, "{}", ctx("after panic"));
    assert_eq!(r.text(), "user 7\n");
}
