//! `gatekit request`: send one request to a FastCGI, SCGI or HTTP backend.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gatekit_client::{Options, Protocol, Request, Target};

/// The protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Proto {
    /// FastCGI (php-fpm, gatekit serve --fastcgi, flup, ...), Responder role.
    Fastcgi,
    /// SCGI.
    Scgi,
    /// HTTP/1.1.
    Http,
}

impl From<Proto> for Protocol {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Fastcgi => Protocol::FastCgi,
            Proto::Scgi => Protocol::Scgi,
            Proto::Http => Protocol::Http,
        }
    }
}

/// What to send; shared by `request` and `bench`.
#[derive(Debug, Args)]
pub(crate) struct RequestSpec {
    /// The backend's protocol.
    #[arg(value_enum)]
    pub(crate) protocol: Proto,
    /// Where it listens: HOST:PORT, [V6]:PORT or unix:PATH.
    #[arg(value_name = "ADDR")]
    pub(crate) addr: String,
    /// The method (default: GET, or POST with --data).
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// A CGI variable to send, replacing the default of the same name (FastCGI and SCGI; repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// A request header (repeatable); behind FastCGI and SCGI it becomes an HTTP_* variable.
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub(crate) headers: Vec<String>,
    /// The request body: @FILE for a file's contents, - for standard input, or the text itself.
    #[arg(long, value_name = "@FILE|-|TEXT")]
    pub(crate) data: Option<String>,
    /// SCRIPT_FILENAME: the script the backend runs (php-fpm needs it). SCRIPT_NAME is then the
    /// path and PATH_INFO empty; without it, SCRIPT_NAME is empty and PATH_INFO the path.
    #[arg(long, value_name = "FILE")]
    pub(crate) script_filename: Option<PathBuf>,
    /// Seconds allowed to connect, and for each read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) timeout: u64,
    /// Largest response accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = gatekit_client::DEFAULT_MAX_RESPONSE)]
    pub(crate) max_response: usize,
    /// The request path, with an optional ?query.
    #[arg(value_name = "PATH", default_value = "/")]
    pub(crate) path: String,
}

impl RequestSpec {
    /// The target, the request and the client options the arguments describe.
    pub(crate) fn build(&self) -> Result<(Target, Request, Options)> {
        let target: Target = self.addr.parse()?;
        let body = match self.data.as_deref() {
            None => Vec::new(),
            Some("-") => {
                let mut body = Vec::new();
                std::io::stdin()
                    .lock()
                    .read_to_end(&mut body)
                    .context("cannot read the body from standard input")?;
                body
            }
            Some(data) => match data.strip_prefix('@') {
                Some(file) => std::fs::read(file)
                    .with_context(|| format!("cannot read the body from {file}"))?,
                None => data.as_bytes().to_vec(),
            },
        };
        let method = match (&self.method, &self.data) {
            (Some(m), _) => m.clone(),
            (None, Some(_)) => "POST".to_owned(),
            (None, None) => "GET".to_owned(),
        };
        let protocol = Protocol::from(self.protocol);
        if protocol == Protocol::Http {
            if !self.params.is_empty() {
                bail!("--param is for fastcgi and scgi backends; send HTTP headers with --header");
            }
            if self.script_filename.is_some() {
                bail!("--script-filename is for fastcgi and scgi backends");
            }
        }
        let mut request = Request::new(&method, &self.path);
        request.body = body;
        request.script_filename.clone_from(&self.script_filename);
        for param in &self.params {
            let Some((name, value)) = param.split_once('=') else {
                bail!("--param {param:?}: expected NAME=VALUE");
            };
            if name.is_empty() {
                bail!("--param {param:?}: the name is empty");
            }
            request
                .params
                .push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
        for header in &self.headers {
            let Some((name, value)) = header.split_once(':') else {
                bail!("--header {header:?}: expected NAME:VALUE");
            };
            let name = name.trim();
            if name.is_empty() || name.contains(' ') {
                bail!("--header {header:?}: bad header name");
            }
            request
                .headers
                .push((name.to_owned(), value.trim().to_owned()));
        }
        let mut options = Options::default();
        let timeout = Duration::from_secs(self.timeout.max(1));
        options.connect_timeout = timeout;
        options.io_timeout = timeout;
        options.max_response = self.max_response;
        Ok((target, request, options))
    }
}

/// Arguments of `gatekit request`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    #[command(flatten)]
    spec: RequestSpec,
    /// Print only the response body, without the head.
    #[arg(short = 'b', long)]
    body_only: bool,
    /// Exit with status 1 when the response status is not 2xx (the response is still printed).
    #[arg(short = 'f', long)]
    fail: bool,
}

pub(crate) fn run(args: &RequestArgs) -> Result<ExitCode> {
    let (target, request, options) = args.spec.build()?;
    let protocol = Protocol::from(args.spec.protocol);
    let response = gatekit_client::send(protocol, &target, &request, &options)
        .with_context(|| format!("{protocol} request to {target}"))?;
    if !response.stderr.is_empty() {
        let mut err = std::io::stderr().lock();
        // The backend's error output is informative; failing to show it is not an error.
        let _ = err.write_all(&response.stderr);
        if !response.stderr.ends_with(b"\n") {
            let _ = err.write_all(b"\n");
        }
        let _ = err.flush();
    }
    let mut out = std::io::stdout().lock();
    if !args.body_only {
        out.write_all(&response.head)?;
    }
    out.write_all(&response.body)?;
    out.flush()?;
    if args.fail && !response.is_success() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
