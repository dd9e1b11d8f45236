//! Argument parsing and the subcommands. clap and anyhow live here only.

use std::ffi::OsString;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gatekit::cgi::{CgiOptions, Nph};
use gatekit::http::{Server, ServerConfig};
use gatekit::server::listen::Addr;
use gatekit::{App, demo_app, echo_app};

/// Run one web application under CGI, FastCGI, SCGI or its own HTTP server.
#[derive(Debug, Parser)]
#[command(name = "gatekit", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a built-in app: as CGI when started as one, else over HTTP (FastCGI and SCGI to come).
    Serve(ServeArgs),
}

/// The built-in apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AppName {
    /// "Hello world!" and the request environment, sorted (wsgiref's demo_app).
    Demo,
    /// The request body sent back as it came (for testing a gateway).
    Echo,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Serve one CGI request from this process's environment and stdio (the default when GATEWAY_INTERFACE is set).
    #[arg(long, conflicts_with_all = ["http", "fastcgi", "scgi"])]
    cgi: bool,
    /// Serve HTTP on ADDR (HOST:PORT, [V6]:PORT, unix:PATH, fd:N); the default is 127.0.0.1:8000 when no gateway is detected.
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Serve FastCGI on ADDR. Not available yet.
    #[arg(long, value_name = "ADDR")]
    fastcgi: Option<String>,
    /// Serve SCGI on ADDR. Not available yet.
    #[arg(long, value_name = "ADDR")]
    scgi: Option<String>,
    /// CGI: write a complete HTTP response (non-parsed headers); by default only when the script's name starts with "nph-".
    #[arg(long)]
    nph: bool,
    /// CGI: strip SCRIPT_NAME from the front of PATH_INFO, for IIS.
    #[arg(long)]
    iis: bool,
    /// Worker threads running requests (default: twice the CPUs, at least 4).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    max_body: u64,
    /// Connections open at once.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a request may take to arrive, from its first byte (408 beyond).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Seconds a connection may stay idle between requests.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    idle_timeout: u64,
    /// On SIGTERM/SIGINT, seconds in-flight requests get to finish.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    shutdown_grace: u64,
    /// The app to serve.
    #[arg(value_enum, default_value_t = AppName::Demo)]
    app: AppName,
}

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // Started by a web server as a CGI program (e.g. copied into cgi-bin as
    // demo.cgi): serve the demo app. Arguments are ignored when they are the
    // server's "isindex" split of a query string without '=' (RFC 3875 §4.4).
    if gatekit::detect().is_some()
        && (args.len() <= 1 || is_isindex_argv(args.get(1..).unwrap_or_default()))
    {
        return gatekit::cgi::serve(&demo_app).exit_code();
    }
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("gatekit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// RFC 3875 §4.4: with a query string holding no unencoded '=', the server
/// may pass its '+'-separated, percent-decoded words as arguments.
fn is_isindex_argv(argv: &[OsString]) -> bool {
    let Some(query) = std::env::var_os("QUERY_STRING") else {
        return false;
    };
    let query = query.into_encoded_bytes();
    if query.is_empty() || query.contains(&b'=') {
        return false;
    }
    let words: Vec<Vec<u8>> = query.split(|&b| b == b'+').map(percent_decode).collect();
    words.len() == argv.len()
        && words
            .iter()
            .zip(argv)
            .all(|(w, a)| w.as_slice() == a.as_encoded_bytes())
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let hex = |j: usize| s.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&args),
    }
}

fn serve(args: &ServeArgs) -> Result<ExitCode> {
    for (flag, value) in [("--fastcgi", &args.fastcgi), ("--scgi", &args.scgi)] {
        if value.is_some() {
            bail!("{flag}: this front-end is not available yet; use --http or --cgi");
        }
    }
    if args.cgi || (args.http.is_none() && gatekit::detect().is_some()) {
        let mut options = CgiOptions::default();
        options.iis_path_fix = args.iis;
        if args.nph {
            options.nph = Nph::On;
        }
        let app: &dyn App = match args.app {
            AppName::Demo => &demo_app,
            AppName::Echo => &echo_app,
        };
        return Ok(gatekit::cgi::CgiHandler::with_options(&options)
            .run(app)
            .exit_code());
    }
    let addr = args.http.as_deref().unwrap_or("127.0.0.1:8000");
    match args.app {
        AppName::Demo => serve_http(addr, demo_app, args),
        AppName::Echo => serve_http(addr, echo_app, args),
    }
}

fn serve_http<A: App + 'static>(addr: &str, app: A, args: &ServeArgs) -> Result<ExitCode> {
    let mut config = ServerConfig::default();
    if let Some(n) = args.workers {
        config.engine.workers = n.max(1);
    }
    config.engine.max_connections = args.max_connections.max(1);
    config.engine.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    config.engine.request_timeout = Duration::from_secs(args.timeout.max(1));
    config.engine.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    config.spool = config.spool.with_max_body(args.max_body);
    let server = Server::bind(addr, app, config)?;
    server
        .shutdown_handle()
        .on_signals()
        .context("cannot install signal handlers")?;
    for local in server.local_addrs() {
        let url = match &local {
            Addr::Unix(_) | Addr::Fd(_) => local.to_string(),
            _ => format!("http://{local}/"),
        };
        eprintln!(
            "gatekit: serving {} on {url} (Ctrl-C to stop)",
            app_name(args.app)
        );
    }
    server.serve_forever()?;
    Ok(ExitCode::SUCCESS)
}

fn app_name(app: AppName) -> &'static str {
    match app {
        AppName::Demo => "demo",
        AppName::Echo => "echo",
    }
}
