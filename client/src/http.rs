//! The gateway's HTTP API as typed calls (README, "API"): uploads, URL scans, image status,
//! matches. Every failure is classified once, as [`ApiError`], so commands can tell a refused
//! item (exit 1) from an unreachable gateway (exit 2).

use std::time::Duration;

use facematch_core::ImageHash;
use reqwest::{Response, StatusCode, Url};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// How long to wait for a TCP connection to the gateway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one request may take, beyond any long-poll it asks for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a call to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No HTTP answer at all: refused connection, DNS, TLS, timeout.
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The gateway answered with its JSON error document.
    #[error("the gateway refused it (HTTP {status}): {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The gateway answered something that is not the documented shape.
    #[error("unexpected answer from the gateway (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
    /// The `--gateway` URL cannot carry the request.
    #[error("invalid gateway URL {0:?}: it must be an http(s) URL")]
    BadBase(String),
    /// The `--key` cannot be sent in a header.
    #[error("the API key holds characters a header cannot carry")]
    BadKey,
}

impl ApiError {
    /// True when the run cannot go on (exit 2): the gateway never answered, or it refused the
    /// key, which every later request would repeat.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::BadBase(_) | Self::BadKey
        ) || matches!(self, Self::Refused { status: 401, .. })
    }

    /// The gateway's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// `{"error": {"code", "message"}}`, the shape of every gateway error.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct ScanAnswer {
    hash: ImageHash,
}

#[derive(Debug, Serialize)]
struct ScanUrlRequest<'a> {
    url: &'a str,
}

/// `GET /images/{hash}`: the fields the client uses, kept as sent for `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageDoc {
    pub hash: String,
    pub state: String,
    #[serde(default)]
    pub names: Vec<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub face_count: Option<u32>,
    #[serde(default)]
    pub faces: Vec<FaceDoc>,
    pub model: Option<String>,
    pub error: Option<String>,
    pub created_at: Option<u64>,
    pub updated_at: Option<u64>,
}

impl ImageDoc {
    /// `done` or `failed`: nothing more will happen to the image.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed")
    }
}

/// One detected face of [`ImageDoc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceDoc {
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: BoxDoc,
    #[serde(default)]
    pub landmarks: Vec<Vec<f32>>,
}

/// A box in image pixels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoxDoc {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// `GET /match/{hash}/details`: one matched image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatchEntry {
    pub hash: String,
    pub distance: f32,
    #[serde(default)]
    pub names: Vec<String>,
}

/// A cheap-to-clone handle on one gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    base: Url,
    http: reqwest::Client,
}

/// Where the gateway is and the key to show it (`--gateway`, `--key`).
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Base URL of the facematch gateway.
    #[arg(
        long,
        global = true,
        env = "FACEMATCH_GATEWAY",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway: String,

    /// The API key (`fmk_...`) sent as `Authorization: Bearer`; not needed when the gateway
    /// runs with keys off.
    #[arg(long, global = true, env = "FACEMATCH_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl Gateway {
    /// A client for the gateway of `args`.
    pub fn connect(args: &GatewayArgs) -> Result<Self, ApiError> {
        Self::with_key(&args.gateway, args.key.as_deref())
    }

    /// A client for the gateway at `base` (`http://host:port`, optionally with a path prefix).
    #[cfg(test)]
    pub fn new(base: &str) -> Result<Self, ApiError> {
        Self::with_key(base, None)
    }

    /// A client for the gateway at `base` that sends `key`, if any, with every request.
    pub fn with_key(base: &str, key: Option<&str>) -> Result<Self, ApiError> {
        let url = Url::parse(base).map_err(|_| ApiError::BadBase(base.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ApiError::BadBase(base.to_owned()));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = key {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                    .map_err(|_| ApiError::BadKey)?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("facematch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self { base: url, http })
    }

    /// `base` + path segments, each percent-encoded (a filename may hold any character).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `GET /healthz`: fails only when the gateway cannot be reached.
    pub async fn ping(&self) -> Result<(), ApiError> {
        let resp = self.send(self.http.get(self.url(&["healthz"]))).await?;
        drop(resp);
        Ok(())
    }

    /// `POST /scan/image/{name}` with the raw bytes.
    pub async fn scan_image(&self, name: &str, bytes: Vec<u8>) -> Result<ImageHash, ApiError> {
        let request = self
            .http
            .post(self.url(&["scan", "image", name]))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        let answer: ScanAnswer = self.json(request).await?;
        Ok(answer.hash)
    }

    /// `POST /scan/url`.
    pub async fn scan_url(&self, url: &str) -> Result<ImageHash, ApiError> {
        let request = self
            .http
            .post(self.url(&["scan", "url"]))
            .json(&ScanUrlRequest { url });
        let answer: ScanAnswer = self.json(request).await?;
        Ok(answer.hash)
    }

    /// `GET /images/{hash}`, long-polling up to `wait` seconds (the gateway caps it at 60).
    pub async fn image(&self, hash: ImageHash, wait: u64) -> Result<ImageDoc, ApiError> {
        let mut url = self.url(&["images", &hash.to_string()]);
        if wait > 0 {
            url.query_pairs_mut().append_pair("wait", &wait.to_string());
        }
        self.json(self.http.get(url)).await
    }

    /// `GET /match/{hash}`: the names of every other image sharing a face.
    pub async fn matches(&self, hash: ImageHash) -> Result<Vec<String>, ApiError> {
        self.json(self.http.get(self.url(&["match", &hash.to_string()])))
            .await
    }

    /// Every page of `GET /match/{hash}/details`, closest first.
    pub async fn match_details(&self, hash: ImageHash) -> Result<Vec<MatchEntry>, ApiError> {
        const PAGE: usize = 1000;
        let url = self.url(&["match", &hash.to_string(), "details"]);
        let mut all = Vec::new();
        loop {
            let mut page_url = url.clone();
            page_url
                .query_pairs_mut()
                .append_pair("limit", &PAGE.to_string())
                .append_pair("offset", &all.len().to_string());
            let page: Vec<MatchEntry> = self.json(self.http.get(page_url)).await?;
            let last = page.len() < PAGE;
            all.extend(page);
            if last {
                return Ok(all);
            }
        }
    }

    /// `POST path` with a JSON body; the answer's JSON.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        self.json(self.http.post(self.url(segments)).json(body))
            .await
    }

    /// `GET path`; the answer's JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ApiError> {
        self.json(self.http.get(self.url(segments))).await
    }

    /// `GET url` (made by [`Self::url`], with a query); the answer's JSON.
    pub async fn get_url<T: DeserializeOwned>(&self, url: Url) -> Result<T, ApiError> {
        self.json(self.http.get(url)).await
    }

    /// `DELETE path`; the answer's JSON.
    pub async fn delete_json<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ApiError> {
        self.json(self.http.delete(self.url(segments))).await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let resp = self.send(request).await?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| self.unreachable(&e))?;
        serde_json::from_str(&body).map_err(|_| ApiError::Unexpected {
            status,
            body: shorten(&body),
        })
    }

    /// Sends; any non-2xx answer becomes [`ApiError::Refused`] (or `Unexpected`).
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, ApiError> {
        let resp = request
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(refusal(status, &body))
    }

    fn unreachable(&self, e: &reqwest::Error) -> ApiError {
        ApiError::Unreachable {
            url: self.base.as_str().trim_end_matches('/').to_owned(),
            reason: error_chain(e),
        }
    }
}

fn refusal(status: StatusCode, body: &str) -> ApiError {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => ApiError::Refused {
            status: status.as_u16(),
            code: e.error.code,
            message: if status == StatusCode::UNAUTHORIZED {
                format!(
                    "{} (give a key with --key or FACEMATCH_API_KEY)",
                    e.error.message
                )
            } else {
                e.error.message
            },
        },
        Err(_) => ApiError::Unexpected {
            status: status.as_u16(),
            body: shorten(body),
        },
    }
}

/// An error's sources, `a: b: c`: reqwest's own message ("error sending request for url")
/// says little, its causes say why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let Some(first) = e.source() else {
        return e.to_string();
    };
    let mut text = first.to_string();
    let mut source = first.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn shorten(body: &str) -> String {
    const MAX: usize = 300;
    let body = body.trim();
    match body.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_percent_encoded_as_one_segment() {
        let gw = Gateway::new("http://127.0.0.1:8080").expect("valid");
        let url = gw.url(&["scan", "image", "a b/c?#%é.jpg"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/scan/image/a%20b%2Fc%3F%23%25%C3%A9.jpg"
        );
        let prefixed = Gateway::new("http://h/api/").expect("valid");
        assert_eq!(prefixed.url(&["healthz"]).as_str(), "http://h/api/healthz");
    }

    #[test]
    fn refusals_keep_the_gateways_code_and_message() {
        let e = refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            r#"{"error":{"code":"unsupported_media_type","message":"not an image"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "the gateway refused it (HTTP 415): unsupported_media_type: not an image"
        );
        assert!(!e.is_connection());
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, "<html>"),
            ApiError::Unexpected { status: 502, .. }
        ));
    }

    #[test]
    fn only_http_gateways() {
        assert!(Gateway::new("ftp://x").is_err());
        assert!(Gateway::new("not a url").is_err());
    }
}
