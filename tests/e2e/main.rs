//! End-to-end tests across Ferry's parts, against a real server on `127.0.0.1:0`.

mod aws_cli;
mod callbacks_oss;
mod cli_data_dir;
mod cli_profile;
mod cli_resume;
mod crash_trials;
mod credential_status;
mod credential_storm;
mod desktop;
mod engine_accounts;
mod engine_bad_input;
mod engine_dialects;
mod engine_queue;
mod engine_upload;
mod engine_watch;
mod faults;
mod keychain;
mod sdk_clients;
mod server_abuse;
mod server_api;
mod server_security;
mod store_dialects;
mod store_obs;
mod store_oss;
mod store_rules;
