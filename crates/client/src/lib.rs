//! Clients for FastCGI, SCGI and HTTP backends.
