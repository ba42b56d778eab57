//! End-to-end tests across Ferry's parts, against a real server on `127.0.0.1:0`.

mod aws_cli;
mod cli_resume;
mod credential_status;
mod desktop;
mod engine_upload;
mod engine_watch;
mod keychain;
mod server_api;
mod store_rules;
