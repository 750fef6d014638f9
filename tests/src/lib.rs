//! socp-tests: end-to-end tests over real sockets.
//!
//! The end-to-end suite arrives with the tokio adapter issue; until then the
//! workspace-level tests here exercise socp-core's public API as a user would.
