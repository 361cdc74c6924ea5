//! Downloads an image for `/scan/url`, safely: http/https only, allowed ports only, every
//! address checked (IP literals here, names in [`GuardedResolver`]), at most three redirects
//! each re-checked, connect and total timeouts, body streamed and cut at the size limit, its
//! memory reserved in the gateway's budget as it grows.

use std::{collections::HashMap, error::Error as StdError, net::IpAddr, time::Duration};

use futures_util::StreamExt;
use reqwest::redirect;
use url::{Host, Url};

use crate::{
    limits::{BoundedBuffer, Overflow, Reservation},
    ssrf::{ForbiddenAddress, GuardedResolver, forbidden_reason},
};

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
const MAX_REDIRECTS: usize = 3;

/// Fetch policy.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Let URLs reach loopback/private addresses (local testing only).
    pub allow_private: bool,
    /// Ports allowed; `None` means any (tests). Default: 80 and 443.
    pub allowed_ports: Option<Vec<u16>>,
    pub max_bytes: usize,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// Fixed host → address mappings, trusted like curl's `--resolve` (tests, split DNS).
    pub static_hosts: HashMap<String, Vec<IpAddr>>,
}

impl FetchConfig {
    /// The production policy for a given size limit.
    pub fn new(max_bytes: usize, allow_private: bool) -> Self {
        Self {
            allow_private,
            allowed_ports: Some(vec![80, 443]),
            max_bytes,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            static_hosts: HashMap::new(),
        }
    }
}

/// Why a URL was not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Not a URL at all (400).
    #[error("{0}")]
    Invalid(String),
    /// A URL we refuse to fetch (422).
    #[error("{0}")]
    Rejected(String),
    /// The body is over the limit (422).
    #[error("the image at the URL is larger than {0} bytes")]
    TooLarge(usize),
    /// The server could not be fetched or answered an error (422).
    #[error("{0}")]
    Failed(String),
    /// The gateway's memory budget is spent (429).
    #[error("the gateway's memory for downloads is in use; retry shortly")]
    Busy,
}

/// Parses and checks a URL against the policy, without any network access.
pub fn check_url(raw: &str, config: &FetchConfig) -> Result<Url, FetchError> {
    if raw.is_empty() {
        return Err(FetchError::Invalid("the url is empty".into()));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(FetchError::Invalid(format!(
            "the url is longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(raw).map_err(|e| FetchError::Invalid(format!("not a valid url: {e}")))?;
    check_parsed(&url, config)?;
    Ok(url)
}

fn check_parsed(url: &Url, config: &FetchConfig) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Rejected(format!(
            "only http and https urls are scanned, not {:?}",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Rejected(
            "urls with credentials are refused".into(),
        ));
    }
    let port = url.port_or_known_default().unwrap_or(0);
    if let Some(ports) = &config.allowed_ports
        && !ports.contains(&port)
    {
        return Err(FetchError::Rejected(format!("port {port} is not allowed")));
    }
    let ip = match url.host() {
        None => return Err(FetchError::Rejected("the url has no host".into())),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip
        && !config.allow_private
        && let Some(reason) = forbidden_reason(ip)
    {
        return Err(FetchError::Rejected(format!("{ip} is {reason}")));
    }
    Ok(())
}

/// A reusable HTTP client bound to one policy.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> Result<Self, reqwest::Error> {
        let policy_config = config.clone();
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(FetchError::Rejected(format!(
                    "more than {MAX_REDIRECTS} redirects"
                )));
            }
            match check_parsed(attempt.url(), &policy_config) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(
                config.allow_private,
                config.static_hosts.clone(),
            ))
            .redirect(policy)
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .no_proxy()
            .user_agent("facematch-gateway")
            .build()?;
        Ok(Self { client, config })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Downloads `url` (already checked with [`check_url`]) up to the size limit, growing
    /// `reservation` as the body grows; returns the body and the reservation covering it.
    pub async fn fetch(
        &self,
        url: &Url,
        reservation: Reservation,
    ) -> Result<(Vec<u8>, Reservation), FetchError> {
        let limit = self.config.max_bytes;
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(classify)?;
        if !resp.status().is_success() {
            return Err(FetchError::Failed(format!(
                "the server answered {}",
                resp.status()
            )));
        }
        let overflow = |o| match o {
            Overflow::TooLarge => FetchError::TooLarge(limit),
            Overflow::Budget | Overflow::AddressShare => FetchError::Busy,
        };
        let declared = match resp.content_length().map(usize::try_from) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return Err(FetchError::TooLarge(limit)),
            None => None,
        };
        let mut body = BoundedBuffer::new(reservation, limit, declared).map_err(overflow)?;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.push(&chunk.map_err(classify)?).map_err(overflow)?;
        }
        Ok(body.into_parts())
    }
}

/// Turns a client error into ours, finding our own refusals in its source chain.
fn classify(err: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(ours) = e.downcast_ref::<FetchError>() {
            return ours.clone();
        }
        if let Some(forbidden) = e.downcast_ref::<ForbiddenAddress>() {
            return FetchError::Rejected(forbidden.to_string());
        }
        source = e.source();
    }
    if err.is_timeout() {
        FetchError::Failed("fetching the url timed out".into())
    } else if err.is_connect() {
        FetchError::Failed("cannot connect to the url's server".into())
    } else {
        FetchError::Failed(format!("fetching the url failed: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> FetchConfig {
        FetchConfig::new(1024, false)
    }

    #[test]
    fn accepts_public_http_and_https() {
        assert!(check_url("https://example.com/a.jpg", &strict()).is_ok());
        assert!(check_url("http://93.184.216.34/a.jpg", &strict()).is_ok());
    }

    #[test]
    fn refuses_by_scheme_port_literal_address_and_credentials() {
        let cfg = strict();
        for (url, invalid) in [
            ("", true),
            ("not a url", true),
            ("ftp://example.com/a.jpg", false),
            ("file:///etc/passwd", false),
            ("http://example.com:8080/a.jpg", false),
            ("http://127.0.0.1/a.jpg", false),
            ("http://0x7f.1/a.jpg", false),
            ("http://[::1]/a.jpg", false),
            ("http://[::ffff:127.0.0.1]/a.jpg", false),
            ("http://10.0.0.1/a.jpg", false),
            ("http://169.254.169.254/latest/meta-data/", false),
            ("http://user:pw@example.com/a.jpg", false),
        ] {
            match check_url(url, &cfg) {
                Err(FetchError::Invalid(_)) if invalid => {}
                Err(FetchError::Rejected(_)) if !invalid => {}
                other => panic!("{url:?} gave {other:?}"),
            }
        }
    }
}
