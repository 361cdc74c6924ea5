//! Command-line / environment arguments every binary shares (README, "Configuration").

use clap::Args;

/// Where the message broker is and which names to use.
#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    /// AMQP URL of the broker (RabbitMQ).
    #[arg(
        long,
        env = "FACEMATCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,

    /// Prefix for every exchange and queue name (empty = the seed's exact names).
    #[arg(long, env = "FACEMATCH_AMQP_PREFIX", default_value = "")]
    pub amqp_prefix: String,
}

/// Where Redis is and which key prefix to use.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL.
    #[arg(
        long,
        env = "FACEMATCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// Prefix of every Redis key.
    #[arg(long, env = "FACEMATCH_KEY_PREFIX", default_value = "fm:")]
    pub key_prefix: String,
}

/// What every service process (the gateway, a worker) is told: its broker, its store and
/// where its traces go.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Tracing export.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// OTLP collector (Jaeger) endpoint, e.g. http://127.0.0.1:4318; unset = no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// A URL with its password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
