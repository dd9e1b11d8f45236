//! Argument parsing and the subcommands. clap and anyhow live here only.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gatekit::cgi::{CgiOptions, Nph};
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
    /// Serve a built-in app under a gateway (CGI today; FastCGI, SCGI and HTTP as they land).
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
    /// Serve HTTP on ADDR (HOST:PORT, [V6]:PORT, unix:PATH, fd:N). Not available yet.
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
    let app: &dyn App = match args.app {
        AppName::Demo => &demo_app,
        AppName::Echo => &echo_app,
    };
    for (flag, value) in [
        ("--http", &args.http),
        ("--fastcgi", &args.fastcgi),
        ("--scgi", &args.scgi),
    ] {
        if value.is_some() {
            bail!(
                "{flag}: this front-end is not available yet; use --cgi (or start gatekit as a CGI program)"
            );
        }
    }
    if args.cgi || gatekit::detect().is_some() {
        let mut options = CgiOptions::default();
        options.iis_path_fix = args.iis;
        if args.nph {
            options.nph = Nph::On;
        }
        return Ok(gatekit::cgi::CgiHandler::with_options(&options)
            .run(app)
            .exit_code());
    }
    bail!(
        "no gateway detected: start gatekit as a CGI program (GATEWAY_INTERFACE set) or pass --cgi; \
         the HTTP, FastCGI and SCGI front-ends are not available yet"
    )
}
