//! socp-smol: drives socp-core state machines over smol and async-tungstenite.
//!
//! Not built yet: the adapter arrives with the smol adapter issue. This crate is
//! an empty placeholder so that the workspace layout is fixed from the start.
