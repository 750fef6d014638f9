//! The library half of the `socp` binary: the pieces its subcommands share,
//! kept here so integration tests can reach them.
//!
//! - [`store`]: the SQLite [`Store`](socp_core::server::Store) a server
//!   persists to (SOCP §15 tables).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Library code must not panic on bad input or a broken database: errors are returned.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod store;
