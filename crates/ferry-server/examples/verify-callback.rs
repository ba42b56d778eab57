//! Checks one captured provider callback, offline: reads
//! `{"provider": "oss", "method", "path", "query", "headers": [[name, value]…], "body",
//! "public_key_pem"}` (or, for `obs`, `"secret_base64"`) on stdin and prints `{"valid": true}`
//! or `{"valid": false, "reason": "…"}`. Nothing is fetched: the key is in the case.
//!
//! `cargo run -q -p ferry-server --example verify-callback < case.json`

use std::io::Read;

fn main() {
    let mut input = String::new();
    let verdict = match std::io::stdin().read_to_string(&mut input) {
        Err(err) => Err(format!("reading stdin failed: {err}")),
        Ok(_) => serde_json::from_str::<ferry_server::CallbackCase>(&input)
            .map_err(|err| format!("the case is not valid JSON of the expected shape: {err}"))
            .and_then(|case| ferry_server::verify_callback(&case)),
    };
    let out = match verdict {
        Ok(()) => serde_json::json!({"valid": true}),
        Err(reason) => serde_json::json!({"valid": false, "reason": reason}),
    };
    println!("{out}");
}
