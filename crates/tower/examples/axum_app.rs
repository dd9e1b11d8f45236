//! An axum app served by gatekit, on whatever gateway started it.
//!
//! ```sh
//! cargo run -p gatekit-tower --example axum_app                          # HTTP on 127.0.0.1:8000
//! cargo run -p gatekit-tower --example axum_app -- --http 127.0.0.1:8080
//! cargo run -p gatekit-tower --example axum_app -- --fastcgi 127.0.0.1:9000   # nginx: fastcgi_pass
//! cargo run -p gatekit-tower --example axum_app -- --scgi unix:/tmp/app.sock  # nginx: scgi_pass
//! GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET PATH_INFO=/users/7 target/debug/examples/axum_app
//! spawn-fcgi -n -a 127.0.0.1 -p 9000 -- target/debug/examples/axum_app   # FastCGI on fd 0
//! ```
//!
//! As a CGI program (in a `cgi-bin`, so `SCRIPT_NAME` is the script's path)
//! the routes are matched against `PATH_INFO` alone:
//! `TowerApp::strip_script_name`.
//!
//! Routes: `GET /` hello; `POST /json` (`{"name": …}` → `{"echo": …}`);
//! `POST /form` (`name=…`); `GET /users/{id}`; `GET /cookies` (two
//! `Set-Cookie`); `GET /sse` (3 events, 300 ms apart); `GET /panic`;
//! `GET /path/{*rest}` (echoes the decoded rest and the URI); `POST /count`
//! (streams the request body and counts its bytes); `GET /info` (what the
//! adapter put in the request's extensions).

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request};
use axum::http::{StatusCode, Uri, header};
use axum::response::sse::{Event, Sse};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures_util::{Stream, StreamExt};
use gatekit_tower::{CgiVars, RemoteAddr, ScriptName, TowerApp};
use serde::Deserialize;

/// The body of `POST /json` and `POST /form`.
#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

async fn json(Json(named): Json<Named>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "echo": named.name }))
}

async fn form(Form(named): Form<Named>) -> String {
    format!("Hello, {}!\n", named.name)
}

async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}\n")
}

async fn cookies() -> impl IntoResponse {
    (
        AppendHeaders([
            (header::SET_COOKIE, "a=1; Path=/"),
            (header::SET_COOKIE, "b=2; Path=/; HttpOnly"),
        ]),
        "two cookies\n",
    )
}

/// Three events, the first at once, then one every 300 ms.
fn events() -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(0u32, |n| async move {
        if n == 3 {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Some((
            Ok(Event::default().event("tick").data(format!("{n}"))),
            n + 1,
        ))
    })
}

async fn sse() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(events())
}

async fn boom() -> &'static str {
    panic!("the /panic route panics, on purpose")
}

async fn path_echo(uri: Uri, Path(rest): Path<String>) -> String {
    format!("rest={rest}\nuri={uri}\n")
}

async fn count(body: axum::body::Body) -> Result<String, (StatusCode, String)> {
    let mut stream = body.into_data_stream();
    let (mut bytes, mut blocks) = (0usize, 0usize);
    while let Some(block) = stream.next().await {
        let block: Bytes = block.map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))?;
        bytes += block.len();
        blocks += 1;
    }
    Ok(format!("{bytes} bytes in {blocks} blocks\n"))
}

async fn info(req: Request) -> String {
    let ext = req.extensions();
    let remote = ext
        .get::<RemoteAddr>()
        .map(|RemoteAddr(a)| a.to_string())
        .unwrap_or_default();
    let script = ext
        .get::<ScriptName>()
        .map(ScriptName::encoded)
        .unwrap_or_default();
    let gateway = ext
        .get::<CgiVars>()
        .and_then(|v| v.get("GATEWAY_INTERFACE").map(str::to_owned))
        .unwrap_or_default();
    format!(
        "method={}\nuri={}\nversion={:?}\nremote={remote}\nscript_name={script}\ngateway={gateway}\n",
        req.method(),
        req.uri(),
        req.version()
    )
}

/// The axum router this example serves.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum on gatekit!\n" }))
        .route("/json", post(json))
        .route("/form", post(form))
        .route("/users/{id}", get(user))
        .route("/cookies", get(cookies))
        .route("/sse", get(sse))
        .route("/panic", get(boom))
        .route("/path/{*rest}", get(path_echo))
        .route("/count", post(count))
        .route("/info", get(info))
}

fn serve(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let app = gatekit_tower::app(router());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--fastcgi", addr] => {
            let server = gatekit_fastcgi::make_server(addr, app)?;
            server.shutdown_handle().on_signals()?;
            eprintln!("axum_app: FastCGI on {addr}");
            server.serve_forever()?;
        }
        ["--scgi", addr] => {
            let server = gatekit_scgi::make_server(addr, app)?;
            server.shutdown_handle().on_signals()?;
            eprintln!("axum_app: SCGI on {addr}");
            server.serve_forever()?;
        }
        [] if gatekit_server::listen::fd0_is_listener() => {
            // Started by spawn-fcgi or mod_fcgid: the listening socket is fd 0.
            let server =
                gatekit_fastcgi::Server::from_fd0(app, gatekit_fastcgi::ServerConfig::default())?;
            server.shutdown_handle().on_signals()?;
            server.serve_forever()?;
        }
        [] | ["--http", _] => {
            let addr = args.get(1).copied().unwrap_or("127.0.0.1:8000");
            let server = gatekit_http::make_server(addr, app)?;
            server.shutdown_handle().on_signals()?;
            eprintln!("axum_app: HTTP on http://{addr}/");
            server.serve_forever()?;
        }
        _ => return Err("usage: axum_app [--http ADDR | --fastcgi ADDR | --scgi ADDR]".into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    if std::env::var_os("GATEWAY_INTERFACE").is_some() {
        // CGI: the routes are below the script's own path.
        let app = TowerApp::new(router()).strip_script_name(true);
        return gatekit_cgi::serve(&app).exit_code();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_app: {e}");
            ExitCode::FAILURE
        }
    }
}
