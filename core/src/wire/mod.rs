//! The SOCP v1.3 wire layer.

pub mod b64;
mod error_code;

pub use error_code::ErrorCode;
