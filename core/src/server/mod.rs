//! The SOCP v1.3 server and introducer, as a sans-IO state machine.

pub mod seen;
