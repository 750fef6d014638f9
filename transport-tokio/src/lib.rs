//! socp-tokio: drives socp-core state machines over tokio and tokio-tungstenite.
//!
//! Not built yet: the adapter arrives with the tokio adapter issue. This crate is
//! an empty placeholder so that the workspace layout is fixed from the start.
