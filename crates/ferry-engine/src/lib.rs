//! Ferry's upload engine. It knows nothing of Tauri, axum or any UI: front ends (the desktop app,
//! the `ferry` CLI) call into it and receive its events.

#![warn(missing_docs)]

pub mod dialect;
pub mod secret;
