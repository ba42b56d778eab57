//! Integration tests of the engine's public API.

mod oracles;
mod sigv4_suite;
