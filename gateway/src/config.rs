//! The gateway's command line / environment (README, "Configuration").

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use facematch_core::config::ServiceArgs;

use crate::auth::AuthMode;

/// facematch gateway: hashes, records and queues images; answers matches.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// HTTP listen address.
    #[arg(long, env = "FACEMATCH_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub service: ServiceArgs,

    /// Serve `/metrics` on this address instead of the API's, so that a Service, Ingress or load
    /// balancer in front of the API exposes nothing else (e.g. 0.0.0.0:9091).
    #[arg(long, env = "FACEMATCH_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Whether API routes need a key: `required`, or `off` (everything acts in the `default`
    /// collection, with no key).
    #[arg(long, env = "FACEMATCH_AUTH", value_enum, default_value = "required")]
    pub auth: AuthMode,

    /// A file holding the bootstrap admin key (`fmk_` and 64 hex characters; a Kubernetes or
    /// compose secret). It acts in the `default` collection with every scope and is never
    /// stored in Redis.
    #[arg(long, env = "FACEMATCH_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<std::path::PathBuf>,

    /// Serve with `--auth off` on an address other than loopback: anyone who reaches the port
    /// can then read every match. Needed on purpose, never by default.
    #[arg(
        long,
        env = "FACEMATCH_INSECURE_NO_AUTH_ON_PUBLIC_ADDRESS",
        default_value_t = false
    )]
    pub insecure_no_auth_on_public_address: bool,

    /// Largest image accepted, uploaded or downloaded (e.g. 16MiB, 500KB, 1048576).
    #[arg(long, env = "FACEMATCH_MAX_BODY", default_value = "16MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Largest image canvas accepted (width × height read from its header), the same budget
    /// the workers decode with (set both from one value).
    #[arg(
        long,
        env = "FACEMATCH_MAX_IMAGE_PIXELS",
        default_value_t = facematch_core::image_limits::MAX_IMAGE_PIXELS
    )]
    pub max_image_pixels: u64,

    /// Let /scan/url reach loopback and private addresses (local testing only).
    #[arg(long, env = "FACEMATCH_ALLOW_PRIVATE_URLS", default_value_t = false)]
    pub allow_private_urls: bool,

    /// Scans handled at once (counted from before the body is read); more get 429.
    #[arg(long, env = "FACEMATCH_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// Request and download bytes held in memory at once, over all requests; a request that
    /// would go over it gets 429 (e.g. 64MiB).
    #[arg(long, env = "FACEMATCH_MAX_BUFFERED", default_value = "64MiB", value_parser = parse_size)]
    pub max_buffered: usize,

    /// Longest time a client may take to send a request's headers (also the keep-alive idle
    /// limit), e.g. 10s.
    #[arg(long, env = "FACEMATCH_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Client connections open at once; more wait in the listen backlog.
    #[arg(long, env = "FACEMATCH_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Connections open at once from one client address; more are answered 429 and closed
    /// (0: no cap, for a gateway behind a proxy, where every client has the proxy's address).
    #[arg(
        long,
        env = "FACEMATCH_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 128
    )]
    pub max_connections_per_address: usize,

    /// Long-polls (`GET /images/{hash}?wait=`) waiting at once; more get 429 at once.
    #[arg(long, env = "FACEMATCH_MAX_WAITERS", default_value_t = 256)]
    pub max_waiters: usize,

    /// Long-polls waiting at once from one client address; more get 429 at once (0: no cap,
    /// behind a proxy).
    #[arg(long, env = "FACEMATCH_MAX_WAITERS_PER_ADDRESS", default_value_t = 32)]
    pub max_waiters_per_address: usize,

    /// Request and download bytes held in memory at once for one client address (e.g. 32MiB;
    /// 0: no cap); more get 429.
    #[arg(long, env = "FACEMATCH_MAX_BUFFERED_PER_ADDRESS", default_value = "32MiB", value_parser = parse_size)]
    pub max_buffered_per_address: usize,

    /// Longest silence within a request body (e.g. 10s): no byte for this long ends it with
    /// 408, however fast it came before.
    #[arg(long, env = "FACEMATCH_BODY_STALL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_stall_timeout: Duration,

    /// Longest time a client may take to send a request body, e.g. 120s.
    #[arg(long, env = "FACEMATCH_BODY_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Slowest average body upload accepted after the first 5 seconds, in bytes per second
    /// (e.g. 16KiB); slower clients get 408.
    #[arg(long, env = "FACEMATCH_MIN_BODY_RATE", default_value = "16KiB", value_parser = parse_size)]
    pub min_body_rate: usize,

    /// How long an image may stay `queued` before a re-upload of the same bytes publishes its
    /// job again (its message may have been lost), e.g. 15m.
    #[arg(long, env = "FACEMATCH_REQUEUE_AFTER", default_value = "15m", value_parser = parse_duration)]
    pub requeue_after: Duration,

    /// Failed authentications (missing, unknown or revoked key) one client address may make
    /// in a minute before its requests get 429 for the rest of it (0: no brake).
    #[arg(long, env = "FACEMATCH_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// How long an image may stay `pending` (claimed, its job not confirmed by the broker)
    /// before the sweep settles it: removed if nothing names it, else `failed` so that a
    /// re-upload queues it (e.g. 2m).
    #[arg(long, env = "FACEMATCH_PENDING_TIMEOUT", default_value = "2m", value_parser = parse_duration)]
    pub pending_timeout: Duration,

    /// The workers' `FACEMATCH_THRESHOLD`: which face pairs `GET /match/{hash}/details?faces=true`
    /// shows behind each match (set it as the workers have it).
    #[arg(long, env = "FACEMATCH_THRESHOLD", default_value_t = 0.6)]
    pub threshold: f32,
}

impl Args {
    /// Refuses settings that would expose every face without a key, the way Redis's protected
    /// mode does: auth off on an address other than loopback, unless asked for by name.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.auth == AuthMode::Off
            && !self.listen.ip().is_loopback()
            && !self.insecure_no_auth_on_public_address
        {
            return Err(format!(
                "refusing to serve without API keys on {}, which is not a loopback address: \
                 anyone who can reach it could read every image's matches. Set \
                 FACEMATCH_AUTH=required (the default) with FACEMATCH_ADMIN_KEY_FILE, listen on \
                 127.0.0.1, or set FACEMATCH_INSECURE_NO_AUTH_ON_PUBLIC_ADDRESS=true if this \
                 is really what you want",
                self.listen
            ));
        }
        Ok(())
    }

    /// The bootstrap admin key from `--admin-key-file`, checked.
    pub fn admin_key(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.admin_key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read FACEMATCH_ADMIN_KEY_FILE {}: {e}",
                path.display()
            )
        })?;
        let key = text.trim();
        if !facematch_core::api_key::looks_like_key(key) {
            return Err(format!(
                "FACEMATCH_ADMIN_KEY_FILE {} does not hold a key: it must be `fmk_` and 64 \
                 lowercase hex characters (make one with `facematch keys generate`)",
                path.display()
            ));
        }
        Ok(Some(key.to_owned()))
    }
}

/// Parses `500ms`, `10s`, `15m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        other => return Err(format!("unknown duration unit {other:?}")),
    };
    num.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
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
    use std::time::Duration;

    use clap::Parser;

    use super::{Args, parse_duration, parse_size};

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from([&["gateway"], extra].concat()).expect("arguments")
    }

    #[test]
    fn auth_off_is_refused_on_a_public_address_unless_asked_for() {
        assert!(
            args(&["--auth", "off", "--listen", "0.0.0.0:8080"])
                .check_exposure()
                .is_err()
        );
        assert!(
            args(&["--auth", "off", "--listen", "[::]:8080"])
                .check_exposure()
                .is_err()
        );
        assert!(
            args(&["--auth", "off", "--listen", "127.0.0.1:8080"])
                .check_exposure()
                .is_ok()
        );
        assert!(
            args(&[
                "--auth",
                "off",
                "--listen",
                "0.0.0.0:8080",
                "--insecure-no-auth-on-public-address"
            ])
            .check_exposure()
            .is_ok()
        );
        assert!(args(&["--listen", "0.0.0.0:8080"]).check_exposure().is_ok());
    }

    #[test]
    fn the_admin_key_file_must_hold_a_key() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("admin.key");
        std::fs::write(&path, "hunter2\n").expect("write");
        let with_file = args(&["--admin-key-file", path.to_str().expect("path")]);
        assert!(with_file.admin_key().is_err());
        let key = facematch_core::api_key::generate_key();
        std::fs::write(&path, format!("{key}\n")).expect("write");
        assert_eq!(with_file.admin_key(), Ok(Some(key)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
