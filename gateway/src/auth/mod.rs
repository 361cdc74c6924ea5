//! Who is asking: every API request carries `Authorization: Bearer <key>`; the key names one
//! collection and the scopes it may use. The request then acts in that collection only.
//!
//! - [`Auth`] is the gateway's side of it: the mode (`required` or `off`), the bootstrap admin
//!   key, a short-lived cache of key lookups ([`cache`]) and the brake on guessing
//!   ([`throttle`]).
//! - [`Caller`] is the extractor handlers take, typed by the scope their route needs; it
//!   declares the bearer scheme in the OpenAPI spec.
//!
//! Answers: 401 with `WWW-Authenticate: Bearer` for a missing, malformed, unknown or revoked
//! key; 403 for a key without the route's scope; 429 for a client address that failed too
//! often. Keys never appear in logs, traces or errors; the key id may.

mod cache;
mod caller;
mod throttle;

use std::{net::IpAddr, sync::Arc, time::Duration};

use facematch_core::{
    Collection,
    api_key::{Scope, Scopes, constant_time_eq, key_digest, looks_like_key},
    store::Store,
};

pub use self::caller::{AdminScope, Caller, DeleteScope, NeedsScope, ReadScope, ScanScope};
use self::{
    cache::{Cached, KeyCache},
    throttle::Throttle,
};
use crate::error::ApiError;

/// Whether requests need a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Every API route needs a key (the default).
    Required,
    /// No key is asked for; every request acts in the `default` collection with every scope.
    Off,
}

/// How long a key lookup is trusted: a revocation on any gateway takes effect on every other
/// one within this time (the acceptance bound is one second).
pub const KEY_CACHE_TTL: Duration = Duration::from_millis(500);

/// Who a request acts as, once its key is checked.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's id; `None` with auth off.
    pub key_id: Option<Arc<str>>,
    pub collection: Collection,
    pub scopes: Scopes,
    /// The collection's epoch when the key was looked up (carried by its jobs); `None` for
    /// `default`, which cannot be deleted.
    pub epoch: Option<String>,
}

impl Principal {
    /// Auth off: the `default` collection, every scope.
    fn anonymous() -> Self {
        Self {
            key_id: None,
            collection: Collection::default(),
            scopes: Scopes::all(),
            epoch: None,
        }
    }
}

/// The gateway's authentication state (cheap to clone).
#[derive(Debug, Clone)]
pub struct Auth {
    mode: AuthMode,
    /// SHA-256 of the bootstrap admin key (`FACEMATCH_ADMIN_KEY_FILE`), when one is set.
    admin_digest: Option<Arc<str>>,
    cache: KeyCache,
    throttle: Throttle,
}

/// Why a request's key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Missing,
    Malformed,
    Unknown,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
        }
    }
}

impl Auth {
    /// Authentication in `mode`, with an optional bootstrap admin key.
    pub fn new(mode: AuthMode, admin_key: Option<&str>) -> Self {
        Self {
            mode,
            admin_digest: admin_key.map(|k| Arc::from(key_digest(k))),
            cache: KeyCache::new(KEY_CACHE_TTL),
            throttle: Throttle::default(),
        }
    }

    /// The same, braking an address after `failures` failed authentications a minute
    /// (0: never).
    pub fn with_failure_limit(self, failures: u32) -> Self {
        Self {
            throttle: Throttle::new(failures),
            ..self
        }
    }

    /// No keys: everything acts in `default` (tests, and loopback development).
    pub fn off() -> Self {
        Self::new(AuthMode::Off, None)
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The caller of a request that needs `scope`, or the answer refusing it.
    pub async fn authenticate(
        &self,
        store: &Store,
        header: Option<&str>,
        client: Option<IpAddr>,
        scope: Scope,
    ) -> Result<Principal, ApiError> {
        if self.mode == AuthMode::Off {
            return Ok(Principal::anonymous());
        }
        if let Some(ip) = client
            && self.throttle.is_blocked(ip)
        {
            crate::metrics::auth("throttled");
            return Err(ApiError::auth_throttled(self.throttle.retry_after()));
        }
        let principal = match self.identify(store, header).await {
            Ok(principal) => principal,
            Err(Ok(refusal)) => {
                crate::metrics::auth(refusal.label());
                if let Some(ip) = client {
                    self.throttle.failed(ip);
                }
                return Err(ApiError::unauthorized(refusal == Refusal::Missing));
            }
            Err(Err(store_error)) => return Err(store_error),
        };
        if !principal.scopes.contains(scope) {
            crate::metrics::auth("forbidden");
            return Err(ApiError::forbidden(scope));
        }
        crate::metrics::auth("ok");
        Ok(principal)
    }

    /// The principal a header names. `Err(Ok(_))` is a refusal, `Err(Err(_))` a store failure.
    async fn identify(
        &self,
        store: &Store,
        header: Option<&str>,
    ) -> Result<Principal, Result<Refusal, ApiError>> {
        let header = header.ok_or(Ok(Refusal::Missing))?;
        let key = bearer_token(header).ok_or(Ok(Refusal::Malformed))?;
        if !looks_like_key(key) {
            return Err(Ok(Refusal::Malformed));
        }
        let digest = key_digest(key);
        if let Some(admin) = &self.admin_digest
            && constant_time_eq(admin.as_bytes(), digest.as_bytes())
        {
            return Ok(Principal {
                key_id: Some(Arc::from("bootstrap-admin")),
                ..Principal::anonymous()
            });
        }
        match self.cache.get(&digest) {
            Some(Cached::Key(principal)) => return Ok(principal),
            Some(Cached::Unknown) => return Err(Ok(Refusal::Unknown)),
            None => {}
        }
        let looked_up = self
            .cache
            .load(store, &digest)
            .await
            .map_err(|e| Err(ApiError::from(e)))?;
        match looked_up {
            Cached::Key(principal) => Ok(principal),
            Cached::Unknown => Err(Ok(Refusal::Unknown)),
        }
    }

    /// Forgets every cached lookup (after a revocation made through this gateway, so it takes
    /// effect here at once; other gateways follow within [`KEY_CACHE_TTL`]).
    pub fn forget_cached_keys(&self) {
        self.cache.clear();
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer fmk_x"), Some("fmk_x"));
        assert_eq!(bearer_token("bearer  fmk_x "), Some("fmk_x"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
