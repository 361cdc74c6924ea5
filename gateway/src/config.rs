//! The gateway's command line / environment (DESIGN §8).

use std::net::SocketAddr;

use clap::Parser;
use facematch_core::config::{AmqpArgs, RedisArgs, TelemetryArgs};

/// facematch gateway: hashes, records and queues images; answers matches.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// HTTP listen address.
    #[arg(long, env = "FACEMATCH_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Largest image accepted, uploaded or downloaded (e.g. 16MiB, 500KB, 1048576).
    #[arg(long, env = "FACEMATCH_MAX_BODY", default_value = "16MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Let /scan/url reach loopback and private addresses (local testing only).
    #[arg(long, env = "FACEMATCH_ALLOW_PRIVATE_URLS", default_value_t = false)]
    pub allow_private_urls: bool,

    /// Scans handled at once; more get 429.
    #[arg(long, env = "FACEMATCH_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
}

/// Parses `16MiB`, `500KB`, `2GB`, `1048576` (binary and decimal units).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: usize = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    num.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }
}
