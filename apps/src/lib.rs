//! The library half of the `socp` binary: the pieces its subcommands share,
//! kept here so integration tests can reach them.
//!
//! - [`store`]: the SQLite [`Store`](socp_core::server::Store) a server
//!   persists to (SOCP §15 tables);
//! - [`config`]: flags, environment variables, config files, introducer lists;
//! - [`keyfile`]: the server's key on disk; [`node`]: starting a server;
//! - [`runtime`]: one API over the tokio and smol adapters (`--runtime`);
//! - [`repl`] and [`render`]: `socp client`; [`demo`]: `socp demo`;
//! - [`logging`]: tracing setup.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Library code must not panic on bad input or a broken database: errors are returned.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod config;
pub mod demo;
pub mod keyfile;
pub mod logging;
pub mod node;
pub mod render;
pub mod repl;
pub mod runtime;
pub mod store;
