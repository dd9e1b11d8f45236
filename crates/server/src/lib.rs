//! gatekit-server: what gatekit's socket front-ends (FastCGI, SCGI, HTTP) share.
//!
//! Work in progress: [`listen`] (listeners) and [`spool`] (request bodies
//! held in memory, then on disk) are the first parts; the event-driven I/O
//! engine and the worker pool follow.

pub mod engine;
pub mod listen;
pub mod spool;
mod sys;
