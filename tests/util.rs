//! Test helpers: the built binary, plus the shared ones from
//! gatekit-testkit (real servers, temp dirs, free ports, curl, stopping
//! what a test started, by PID).

use std::path::PathBuf;

pub use gatekit_testkit::{
    curl, free_port, pattern, public_tempdir, require, set_mode, stop, wait_for_port,
};

/// The built `gatekit` binary.
pub fn gatekit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatekit"))
}
