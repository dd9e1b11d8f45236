//! Argument parsing and the subcommands. clap and anyhow live here only.

mod bench;
mod owner;
mod request;

use gatekit::util::percent_decode;
use std::ffi::OsString;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use gatekit::cgi::host::CgiHost;
use gatekit::cgi::{CgiOptions, Nph};
use gatekit::core::AccessLog;
use gatekit::server::allow::IpNet;
use gatekit::server::engine::{EngineConfig, Shutdown};
use gatekit::server::listen::{self, Addr, ListenOptions, Listener};
use gatekit::server::spool::SpoolConfig;
use gatekit::static_files::StaticFiles;
use gatekit::{App, Detected, demo_app, echo_app};
use std::path::PathBuf;
use std::sync::Arc;

/// Run one web application under CGI, FastCGI, SCGI or its own HTTP server.
#[derive(Debug, Parser)]
#[command(name = "gatekit", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a built-in app: as CGI or FastCGI when started as one, else over HTTP.
    Serve(ServeArgs),
    /// Send one request to a FastCGI, SCGI or HTTP backend and print the response.
    Request(request::RequestArgs),
    /// Load a FastCGI, SCGI or HTTP backend for a bounded time; print requests/s and latencies.
    Bench(bench::BenchArgs),
}

/// The built-in apps, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AppSpec {
    /// "Hello world!" and the request environment, sorted (wsgiref's demo_app).
    Demo,
    /// The request body sent back as it came (for testing a gateway).
    Echo,
    /// The files under a directory.
    Static(PathBuf),
    /// CGI scripts: one script, or a directory of them.
    Cgi(PathBuf),
}

impl AppSpec {
    fn parse(words: &[OsString]) -> Result<AppSpec> {
        let name = words.first().map(|w| w.to_string_lossy());
        let operand = words.get(1).map(PathBuf::from);
        let spec = match (name.as_deref(), operand) {
            (None | Some("demo"), None) => AppSpec::Demo,
            (Some("echo"), None) => AppSpec::Echo,
            (Some("static"), Some(dir)) => AppSpec::Static(dir),
            (Some("cgi"), Some(path)) => AppSpec::Cgi(path),
            (Some("static"), None) => bail!("usage: static DIR"),
            (Some("cgi"), None) => bail!("usage: cgi PATH (a script or a directory of scripts)"),
            _ => bail!(
                "unknown app {:?}: expected demo, echo, static DIR or cgi PATH",
                words
                    .iter()
                    .map(|w| w.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        if words.len() > 2 {
            bail!("too many words for the app: expected demo, echo, static DIR or cgi PATH");
        }
        Ok(spec)
    }

    fn describe(&self) -> String {
        match self {
            AppSpec::Demo => "demo".into(),
            AppSpec::Echo => "echo".into(),
            AppSpec::Static(dir) => format!("the files in {}", dir.display()),
            AppSpec::Cgi(path) => format!("CGI scripts from {}", path.display()),
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Serve one CGI request from this process's environment and stdio (the default when GATEWAY_INTERFACE is set).
    #[arg(long, conflicts_with_all = ["http", "fastcgi", "scgi"])]
    cgi: bool,
    /// Serve HTTP on ADDR (HOST:PORT, [V6]:PORT, unix:PATH, fd:N); the default is 127.0.0.1:8000 when no gateway is detected.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["fastcgi", "scgi"])]
    http: Option<String>,
    /// Serve FastCGI on ADDR (HOST:PORT, [V6]:PORT, unix:PATH, fd:N); the default when fd 0 is a listening socket (spawn-fcgi, mod_fcgid) or systemd passes sockets.
    #[arg(long, value_name = "ADDR", conflicts_with = "scgi")]
    fastcgi: Option<String>,
    /// Serve SCGI on ADDR (HOST:PORT, [V6]:PORT, unix:PATH, fd:N).
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
    /// Largest request head in bytes: the HTTP request line and headers, the SCGI netstring, the FastCGI params (431 beyond; default 64 KiB for HTTP and SCGI, 128 KiB for FastCGI).
    #[arg(long, value_name = "BYTES")]
    max_head: Option<usize>,
    /// Seconds a client may take to accept more of a response before the connection is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    write_timeout: u64,
    /// Seconds a connection may stay idle between requests.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    idle_timeout: u64,
    /// On SIGTERM/SIGINT, seconds in-flight requests get to finish.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    shutdown_grace: u64,
    /// Request bodies up to this many bytes are kept in memory; larger ones go to a temp file.
    #[arg(long, value_name = "BYTES", default_value_t = 512 * 1024)]
    spool_threshold: usize,
    /// Permission bits for a unix:PATH socket, in octal (e.g. 660); default: what the umask gives.
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    unix_mode: Option<u32>,
    /// Owner of a unix:PATH socket: USER, USER:GROUP or :GROUP (names or numeric ids), so the web server's user can connect.
    #[arg(long, value_name = "USER[:GROUP]")]
    unix_owner: Option<String>,
    /// TCP peers allowed to connect: addresses or networks (127.0.0.1, 10.0.0.0/8, ::1), comma-separated or repeated; others are closed at once. Default: any for HTTP, FCGI_WEB_SERVER_ADDRS (else any) for FastCGI, loopback for SCGI. Unix-socket peers are always allowed.
    #[arg(long, value_name = "NETS", value_delimiter = ',')]
    allow: Vec<IpNet>,
    /// The Server header and SERVER_SOFTWARE (default: gatekit/VERSION).
    #[arg(long, value_name = "NAME", value_parser = parse_server_software)]
    server_software: Option<String>,
    /// Append gatekit's own messages (and the app's errors when they go to the process) to PATH instead of stderr, once the sockets are bound.
    #[arg(long, value_name = "PATH")]
    error_log: Option<std::path::PathBuf>,
    /// Log each request in Common Log Format to PATH ('-' for stderr); off by default.
    #[arg(long, value_name = "PATH")]
    access_log: Option<std::path::PathBuf>,
    /// FastCGI: send the app's wsgi.errors to this process's stderr instead of FCGI_STDERR records (the web server's error log).
    #[arg(long)]
    stderr_to_process: bool,
    /// CGI hosting (cgi PATH): seconds a script may run before its process group is killed (504 if it sent no header yet).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    script_timeout: u64,
    /// The app to serve: demo (default: "Hello world!" and the environment), echo (the body sent back), static DIR (files, with ranges and conditional requests), cgi PATH (a CGI script or a directory of them, like fcgiwrap).
    #[arg(value_name = "APP", num_args = 0..=2)]
    app: Vec<OsString>,
}

pub fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    match gatekit::detect() {
        // Started by a web server as a CGI program (e.g. copied into cgi-bin
        // as demo.cgi): serve the demo app. Arguments are ignored when they
        // are the server's "isindex" split of a query string without '='
        // (RFC 3875 §4.4).
        Some(Detected::Cgi)
            if args.len() <= 1 || is_isindex_argv(args.get(1..).unwrap_or_default()) =>
        {
            return gatekit::cgi::serve(&demo_app).exit_code();
        }
        // Started bare with a listening socket (mod_fcgid running demo.fcgi,
        // spawn-fcgi, systemd): `gatekit serve`, which finds the socket.
        Some(_) if args.len() <= 1 => args.push("serve".into()),
        _ => {}
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

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Request(args) => request::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

fn parse_server_software(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() || s.bytes().any(|b| b.is_ascii_control()) {
        return Err("must be non-empty with no control characters".into());
    }
    Ok(s.to_owned())
}

fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode like 660"))
}

/// The front-end to run and where.
enum Front {
    Cgi,
    Http(Vec<Listener>),
    FastCgi(Vec<Listener>),
    Scgi(Vec<Listener>),
}

fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let spec = match AppSpec::parse(&args.app) {
        Ok(spec) => spec,
        Err(e) => {
            // A usage error: exit 2, as clap does for its own.
            eprintln!("gatekit: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let owner = args.unix_owner.as_deref().map(owner::parse).transpose()?;
    // A web server always writes first to its FastCGI or SCGI backend; an
    // HTTP client may connect ahead (a browser's spare connection).
    let bind = |addr: &str, backend: bool| -> Result<Vec<Listener>> {
        let parsed: Addr = addr.parse()?;
        let mut options = if backend {
            ListenOptions::backend()
        } else {
            ListenOptions::default()
        };
        options.unix_mode = args.unix_mode;
        if let Some((uid, gid)) = owner {
            (options.unix_uid, options.unix_gid) = (uid, gid);
        }
        Ok(vec![listen::bind(&parsed, &options)?])
    };
    let front = if args.cgi {
        Front::Cgi
    } else if let Some(addr) = &args.fastcgi {
        Front::FastCgi(bind(addr, true)?)
    } else if let Some(addr) = &args.scgi {
        Front::Scgi(bind(addr, true)?)
    } else if let Some(addr) = &args.http {
        Front::Http(bind(addr, false)?)
    } else {
        match gatekit::detect() {
            Some(Detected::Cgi) => Front::Cgi,
            Some(Detected::FastCgi) => Front::FastCgi(vec![
                Listener::from_fd0().context("fd 0 looked like a listening socket")?,
            ]),
            Some(Detected::SocketActivation) => {
                Front::FastCgi(listen::systemd_listeners().context("systemd socket activation")?)
            }
            _ => Front::Http(bind("127.0.0.1:8000", false)?),
        }
    };
    match &spec {
        AppSpec::Demo => run_front(front, demo_app, &spec, args),
        AppSpec::Echo => run_front(front, echo_app, &spec, args),
        AppSpec::Static(dir) => {
            let app = StaticFiles::new(dir).context("static")?;
            run_front(front, app, &spec, args)
        }
        AppSpec::Cgi(path) => {
            let app = CgiHost::new(path)
                .with_context(|| format!("cannot host CGI scripts from {}", path.display()))?
                .timeout(Duration::from_secs(args.script_timeout.max(1)));
            run_front(front, app, &spec, args)
        }
    }
}

fn run_front<A: App + 'static>(
    front: Front,
    app: A,
    spec: &AppSpec,
    args: &ServeArgs,
) -> Result<ExitCode> {
    let mut engine = EngineConfig::default();
    if let Some(n) = args.workers {
        engine.workers = n.max(1);
    }
    engine.max_connections = args.max_connections.max(1);
    engine.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    engine.request_timeout = Duration::from_secs(args.timeout.max(1));
    engine.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    engine.write_timeout = Duration::from_secs(args.write_timeout.max(1));
    let access_log = match &args.access_log {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Arc::new(AccessLog::stderr())),
        Some(p) => Some(Arc::new(AccessLog::append_to(p).with_context(|| {
            format!("cannot open the access log {}", p.display())
        })?)),
    };
    let spool = SpoolConfig::default()
        .with_max_body(args.max_body)
        .with_memory_threshold(args.spool_threshold);
    let allow = (!args.allow.is_empty()).then(|| args.allow.clone());
    if let Some(path) = &args.error_log {
        gatekit::server::stdio::redirect_stderr(path)
            .with_context(|| format!("cannot open the error log {}", path.display()))?;
    }
    match front {
        Front::Cgi => {
            let mut options = CgiOptions::default();
            options.iis_path_fix = args.iis;
            if args.nph {
                options.nph = Nph::On;
            }
            Ok(gatekit::cgi::CgiHandler::with_options(&options)
                .run(&app)
                .exit_code())
        }
        Front::Http(listeners) => {
            let mut config = gatekit::http::ServerConfig::default();
            config.gateway.access_log = access_log;
            set_server_software(&mut config.gateway, args);
            if let Some(bytes) = args.max_head {
                config.limits.max_head = bytes.max(1);
            }
            engine.allow = allow;
            config.engine = engine;
            config.spool = spool;
            let server = gatekit::http::Server::from_listeners(listeners, app, config);
            announce(&server.local_addrs(), "HTTP", spec);
            on_signals(&server.shutdown_handle())?;
            server.serve_forever()?;
            Ok(ExitCode::SUCCESS)
        }
        Front::Scgi(listeners) => {
            let mut config = gatekit::scgi::ServerConfig::default();
            config.gateway.access_log = access_log;
            set_server_software(&mut config.gateway, args);
            if let Some(allow) = allow {
                config.allow = allow;
            }
            if let Some(bytes) = args.max_head {
                config.limits.max_head = bytes.max(1);
            }
            config.engine = engine;
            config.spool = spool;
            let server = gatekit::scgi::Server::from_listeners(listeners, app, config);
            announce(&server.local_addrs(), "SCGI", spec);
            on_signals(&server.shutdown_handle())?;
            server.serve_forever()?;
            Ok(ExitCode::SUCCESS)
        }
        Front::FastCgi(listeners) => {
            let mut config =
                gatekit::fastcgi::ServerConfig::default().with_env_web_server_addrs()?;
            config.gateway.access_log = access_log;
            set_server_software(&mut config.gateway, args);
            if allow.is_some() {
                config.web_server_addrs = allow;
            }
            if let Some(bytes) = args.max_head {
                config.max_params = bytes.max(1);
            }
            config.engine = engine;
            config.spool = spool;
            if args.stderr_to_process {
                config.errors_to = gatekit::fastcgi::server::ErrorsTo::Process;
            }
            let server = gatekit::fastcgi::Server::from_listeners(listeners, app, config);
            announce(&server.local_addrs(), "FastCGI", spec);
            on_signals(&server.shutdown_handle())?;
            server.serve_forever()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn set_server_software(gateway: &mut gatekit::Config, args: &ServeArgs) {
    if let Some(name) = &args.server_software {
        gateway.server_software = Some(name.clone());
    }
}

fn on_signals(shutdown: &Shutdown) -> Result<()> {
    shutdown
        .on_signals()
        .context("cannot install signal handlers")
}

/// One line on stderr per listener: what is served where.
fn announce(addrs: &[Addr], protocol: &str, app: &AppSpec) {
    for local in addrs {
        let place = match (local, protocol) {
            (Addr::Ip(_), "HTTP") => format!("on http://{local}/"),
            _ => format!("over {protocol} on {local}"),
        };
        eprintln!(
            "gatekit: serving {} {place} (Ctrl-C to stop)",
            app.describe()
        );
    }
}
