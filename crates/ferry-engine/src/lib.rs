//! Ferry's upload engine. It knows nothing of Tauri, axum or any UI: front ends (the desktop app,
//! the `ferry` CLI) call into it and receive its events.

#![warn(missing_docs)]

pub mod api;
mod blocking;
pub mod conflict;
pub mod credentials;
pub mod diagnostics;
pub mod dialect;
mod engine;
mod error;
pub mod events;
pub mod journal;
mod key;
pub mod keychain;
pub mod network;
pub mod policy;
pub mod profile;
pub use ferry_sign::secret;
mod queue;
mod retry;
pub mod session;
mod storage;
pub mod token_server;
pub mod transfer;
pub mod watch;

pub use crate::engine::{
    ConnectionCheck, Engine, EngineConfig, Given, NetworkReady, Status, check_server, read_status,
};
pub use crate::error::{Error, Result};
