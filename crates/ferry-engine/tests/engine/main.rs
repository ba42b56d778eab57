//! Integration tests of the engine's public API.

mod oracles;
mod signing_case;
mod sigv4_suite;
