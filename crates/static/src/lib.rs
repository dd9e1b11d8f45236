//! Static files served as a gatekit [`App`](gatekit_core::App).
