//! Test helpers: an in-memory transport (wsgiref's `BaseCGIHandler` over
//! `BytesIO`, the `ErrorHandler` of test_wsgiref) and a shared buffer.
//!
//! Available with the `testing` feature.

use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex, PoisonError};

use crate::util::setup_testing_defaults;
use crate::{Config, Environ, Gateway, StreamTransport};

/// A cloneable in-memory byte sink: what is written through one clone can be
/// read through another.
#[derive(Debug, Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// An empty buffer.
    #[must_use]
    pub fn new() -> SharedBuf {
        SharedBuf::default()
    }

    /// A copy of what was written.
    #[must_use]
    pub fn contents(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What was written, as (lossy) text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.contents()).into_owned()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The in-memory transport: input from a byte vector, output to a `Vec<u8>`,
/// errors to a [`SharedBuf`].
pub type MemoryTransport = StreamTransport<Cursor<Vec<u8>>, Vec<u8>, SharedBuf>;

/// A gateway over memory for one request, plus its error log: the
/// test_wsgiref `ErrorHandler`. `vars` are completed by
/// [`setup_testing_defaults`].
#[must_use]
pub fn memory_gateway(
    vars: &[(&str, &[u8])],
    input: &[u8],
    config: Config,
) -> (Gateway<MemoryTransport>, SharedBuf) {
    let mut env: Environ = vars.iter().map(|(k, v)| (*k, v.to_vec())).collect();
    setup_testing_defaults(&mut env);
    let pairs = env.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    let errors = SharedBuf::new();
    let transport = StreamTransport::new(
        Cursor::new(input.to_vec()),
        Vec::new(),
        errors.clone(),
        pairs,
    );
    (Gateway::new(transport, config), errors)
}
