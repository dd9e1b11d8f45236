//! `gatekit bench`: a bounded load against a FastCGI, SCGI or HTTP backend.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

/// Arguments of `gatekit bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {}

pub(crate) fn run(_args: &BenchArgs) -> Result<ExitCode> {
    bail!("bench: not built yet")
}
