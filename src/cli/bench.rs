//! `gatekit bench`: a bounded load against a FastCGI, SCGI or HTTP backend.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use gatekit_client::Protocol;
use gatekit_client::bench::{self, Report};

use super::request::RequestSpec;

/// Arguments of `gatekit bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    spec: RequestSpec,
    /// Concurrent connections, one thread each (1 to 1024).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// Seconds to run (1 to 3600).
    #[arg(short = 'd', long = "duration", value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// FastCGI: keep each connection open between requests (FCGI_KEEP_CONN). HTTP always
    /// uses keep-alive; SCGI has one request per connection.
    #[arg(long)]
    keep_conn: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let (target, request, mut options) = args.spec.build()?;
    let protocol = Protocol::from(args.spec.protocol);
    options.keep_conn = match protocol {
        Protocol::FastCgi => args.keep_conn,
        Protocol::Http => true,
        Protocol::Scgi => false,
    };
    let summary_of = format!("{protocol} {target} {} {}", request.method, request.path);
    let json_head = format!(
        "\"protocol\":{},\"address\":{},\"method\":{},\"path\":{}",
        json_string(protocol.name()),
        json_string(&target.to_string()),
        json_string(&request.method),
        json_string(&request.path)
    );
    let mut config = bench::Config::new(
        protocol,
        target,
        request,
        usize::from(args.connections),
        Duration::from_secs(args.duration),
    );
    let keep_conn = options.keep_conn;
    config.options = options;
    let report = bench::run(&config).context("bench")?;
    let text = if args.json {
        json(&report, &json_head, keep_conn)
    } else {
        human(&report, &summary_of)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    // A run in which nothing succeeded measured nothing.
    if report.requests == 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Nanoseconds as milliseconds with three decimals.
fn ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns / 1_000) % 1_000)
}

fn human(report: &Report, what: &str) -> String {
    let l = &report.latency;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "{what}: {} connections, {:.2} s",
        report.connections,
        report.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "requests:  {} ({:.1}/s), non-2xx: {}",
        report.requests,
        report.requests_per_sec(),
        report.non_2xx
    );
    let _ = writeln!(
        s,
        "latency:   p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        ms(l.percentile(50.0)),
        ms(l.percentile(90.0)),
        ms(l.percentile(99.0)),
        ms(l.max())
    );
    let _ = write!(
        s,
        "errors:    {} (timeouts {})",
        report.errors, report.timeouts
    );
    if let Some(first) = &report.first_error {
        let _ = write!(s, ", first: {first}");
    }
    s.push('\n');
    s
}

/// The summary as one JSON object; `head` holds its first fields, already encoded.
fn json(report: &Report, head: &str, keep_conn: bool) -> String {
    let l = &report.latency;
    let first_error = report
        .first_error
        .as_deref()
        .map_or_else(|| "null".to_owned(), json_string);
    format!(
        "{{{head},\"connections\":{},\"keep_conn\":{keep_conn},\"elapsed_s\":{:.3},\
         \"requests\":{},\"requests_per_s\":{:.1},\"non_2xx\":{},\"errors\":{},\"timeouts\":{},\
         \"latency_ms\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}},\"first_error\":{first_error}}}\n",
        report.connections,
        report.elapsed.as_secs_f64(),
        report.requests,
        report.requests_per_sec(),
        report.non_2xx,
        report.errors,
        report.timeouts,
        ms(l.percentile(50.0)),
        ms(l.percentile(90.0)),
        ms(l.percentile(99.0)),
        ms(l.max()),
    )
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
