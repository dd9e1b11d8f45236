//! Hostile clients against every running front-end, over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
