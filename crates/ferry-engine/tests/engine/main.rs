//! Integration tests of the engine's public API.

mod sigv4_suite;
