//! `gatekit request`: send one request to a FastCGI, SCGI or HTTP backend.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

/// Arguments of `gatekit request`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {}

pub(crate) fn run(_args: &RequestArgs) -> Result<ExitCode> {
    bail!("request: not built yet")
}
