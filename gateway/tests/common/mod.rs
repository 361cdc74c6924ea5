//! What the gateway's tests add to the workspace test kit (`facematch-testkit`, which holds
//! the harness itself): a counting HTTP server, fixed DNS answers, error codes.
#![allow(dead_code, unused_imports)]

pub mod gateway_process;
pub mod http_server;

use std::collections::HashMap;

pub use facematch_testkit::{
    AMQP_URL, Options, REDIS_URL, System, broker::header, images::png, unique,
};

/// The error code of a JSON error answer.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// Fixed host → address mappings for the fetcher.
pub fn hosts(pairs: &[(&str, &str)]) -> HashMap<String, Vec<std::net::IpAddr>> {
    pairs
        .iter()
        .map(|(h, ip)| ((*h).to_owned(), vec![ip.parse().expect("ip")]))
        .collect()
}
