//! Faults under load: signals, killed backends, panics, a full spool disk, no file descriptors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
