//! Faults under load: signals, killed backends, panics, a full spool disk, no file descriptors.
//!
//! Each test starts what it needs (the built `gatekit` binary, real nginx,
//! or gatekit's library server in this process), puts it under a bounded
//! load from threads in the test, causes the fault, and checks that no
//! accepted request is lost and the server recovers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

#[path = "../abuse/running.rs"]
mod running;

mod client;

mod emfile;
mod killed_backend;
mod panics;
mod sigterm;
mod spool_full;
