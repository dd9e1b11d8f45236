//! gatekit-server: what gatekit's socket front-ends (FastCGI, SCGI, HTTP) share.
//!
//! - [`allow`]: the allow-list of TCP peers ([`allow::IpNet`]);
//! - [`listen`]: listeners (TCP, Unix sockets, fd 0 as FastCGI's
//!   `FCGI_LISTENSOCK_FILENO`, `fd:N`, systemd socket activation);
//! - [`spool`]: request bodies held in memory, then in a temp file;
//! - [`engine`]: the shared epoll instance and worker pool a front-end's
//!   [`Protocol`](engine::Protocol) runs on, with timeouts, backpressure,
//!   cancellation and graceful shutdown;
//! - [`stdio`]: this process's stderr sent to a log file (`--error-log`);
//! - [`offload`]: `X-Sendfile` / `X-Accel-Redirect`, the web server sending a file;
//! - [`turn`]: one thread at a time in `epoll_wait`, the others parked
//!   until the awake ones do not keep up;
//! - [`Endpoint`]: a front-end server's sockets and shutdown handle.

pub mod allow;
mod endpoint;
pub mod engine;
pub mod listen;
pub mod offload;
pub mod spool;
pub mod stdio;
mod sys;
pub mod turn;

pub use endpoint::Endpoint;
