//! Systems whose gateway asks for API keys: the bootstrap admin key, collections and keys made
//! through the admin routes, and requests sent with a key (or without one).

use facematch_core::api_key::generate_key;
use gateway::auth::{Auth, AuthMode};
use poem::http::{HeaderMap, Method};

use crate::{Options, System};

/// One answer: status, JSON body (a string when not JSON) and headers.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub headers: HeaderMap,
}

/// A key made through `POST /keys`.
#[derive(Debug, Clone)]
pub struct MadeKey {
    pub key: String,
    pub id: String,
}

impl System {
    /// A system whose gateway requires keys, and its bootstrap admin key.
    pub async fn secured(tag: &str) -> (Self, String) {
        let admin = generate_key();
        let system = Self::with(
            tag,
            Options {
                auth: Auth::new(AuthMode::Required, Some(&admin)),
                ..Options::default()
            },
        )
        .await;
        (system, admin)
    }

    /// Sends `method path` with `key` as bearer (none when `None`) and `body`.
    pub async fn send_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self.client.request(method, path).body(body);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let resp = request.send().await.0;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.into_body().into_string().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Answer {
            status,
            body,
            headers,
        }
    }

    /// `POST /collections` with `admin`; panics unless it is created.
    pub async fn create_collection(&self, admin: &str, name: &str) {
        let body = serde_json::json!({ "name": name }).to_string().into_bytes();
        let answer = self
            .send_as(Some(admin), Method::POST, "/collections", body)
            .await;
        assert_eq!(
            answer.status, 201,
            "create collection {name}: {}",
            answer.body
        );
    }

    /// `POST /keys` with `admin`; panics unless it is created.
    pub async fn create_key(&self, admin: &str, collection: &str, scopes: &[&str]) -> MadeKey {
        let body = serde_json::json!({ "collection": collection, "scopes": scopes })
            .to_string()
            .into_bytes();
        let answer = self.send_as(Some(admin), Method::POST, "/keys", body).await;
        assert_eq!(answer.status, 201, "create key: {}", answer.body);
        MadeKey {
            key: answer.body["key"].as_str().expect("key").to_owned(),
            id: answer.body["id"].as_str().expect("id").to_owned(),
        }
    }

    /// Uploads `bytes` as `name` with `key`; returns the answer.
    pub async fn upload_as(&self, key: &str, name: &str, bytes: Vec<u8>) -> Answer {
        self.send_as(
            Some(key),
            Method::POST,
            &format!("/scan/image/{name}"),
            bytes,
        )
        .await
    }

    /// GETs `path` with `key`.
    pub async fn get_as(&self, key: &str, path: &str) -> Answer {
        self.send_as(Some(key), Method::GET, path, Vec::new()).await
    }
}
