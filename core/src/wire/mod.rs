//! The SOCP v1.3 wire layer.
