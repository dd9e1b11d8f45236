//! What every front-end's `Server` holds: its listening sockets and the
//! handle that stops it. The front-ends add only their app and protocol.

use std::io;

use crate::engine::{self, EngineConfig, Protocol, Shutdown};
use crate::listen::{self, Addr, ListenOptions, Listener};

/// Listening sockets and their shutdown handle, ready to serve a [`Protocol`].
#[derive(Debug)]
pub struct Endpoint {
    listeners: Vec<Listener>,
    shutdown: Shutdown,
}

impl Endpoint {
    /// Binds `addr` (`HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd:N`).
    ///
    /// # Errors
    /// The address is malformed or cannot be bound.
    pub fn bind(addr: &str, options: &ListenOptions) -> Result<Endpoint, listen::Error> {
        let addr: Addr = addr.parse()?;
        Ok(Endpoint::new(vec![listen::bind(&addr, options)?]))
    }

    /// An endpoint on listeners made elsewhere (fd 0, socket activation).
    #[must_use]
    pub fn new(listeners: Vec<Listener>) -> Endpoint {
        Endpoint {
            listeners,
            shutdown: Shutdown::new(),
        }
    }

    /// Where it listens.
    #[must_use]
    pub fn local_addrs(&self) -> Vec<Addr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// A handle that stops [`serve`](Endpoint::serve) gracefully.
    #[must_use]
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves `protocol` until the shutdown handle is triggered, then lets
    /// in-flight requests finish ([`engine::serve`]).
    ///
    /// # Errors
    /// The engine could not start.
    pub fn serve<P: Protocol>(self, protocol: P, config: EngineConfig) -> io::Result<()> {
        engine::serve(protocol, self.listeners, config, &self.shutdown)
    }
}
