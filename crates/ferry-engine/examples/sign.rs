//! Signs one request described in JSON on stdin and prints the result as JSON (see docs/signing.md):
//! `cargo run -q -p ferry-engine --example sign < case.json`.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("error: reading stdin: {err}");
        return ExitCode::FAILURE;
    }
    let output = ferry_engine::dialect::case::sign_json(&input)
        .map_err(|err| err.to_string())
        .and_then(|out| serde_json::to_string_pretty(&out).map_err(|err| err.to_string()));
    match output {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", err.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
