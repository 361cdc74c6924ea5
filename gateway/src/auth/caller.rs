//! [`Caller`]: the extractor every API handler takes first, typed by the scope its route needs
//! (`Caller<ScanScope>`, `Caller<ReadScope>`, ...). It checks the request's key before any body
//! is read and declares the `bearerAuth` scheme on the operation in the OpenAPI spec, so `/docs`
//! can send a key and a test can find every route that needs one.

use std::marker::PhantomData;

use facematch_core::{Collection, api_key::Scope, store::Store};
use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use super::Principal;
use crate::{error::ApiError, state::AppState};

/// The scheme's name in the spec.
pub const SCHEME: &str = "bearerAuth";

/// The scope a route needs, as a type.
pub trait NeedsScope: Send + Sync {
    const SCOPE: Scope;
}

/// `POST /scan/...`.
#[derive(Debug)]
pub struct ScanScope;
/// `GET /match/...`, `GET /images/...`.
#[derive(Debug)]
pub struct ReadScope;
/// Erasure.
#[derive(Debug)]
pub struct DeleteScope;
/// Keys and collections.
#[derive(Debug)]
pub struct AdminScope;

impl NeedsScope for ScanScope {
    const SCOPE: Scope = Scope::Scan;
}
impl NeedsScope for ReadScope {
    const SCOPE: Scope = Scope::Read;
}
impl NeedsScope for DeleteScope {
    const SCOPE: Scope = Scope::Delete;
}
impl NeedsScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// An authenticated request that holds scope `S`, and the store of its collection.
#[derive(Debug)]
pub struct Caller<S> {
    pub principal: Principal,
    /// The store seen from the caller's collection: nothing else is reachable through it.
    pub store: Store,
    _scope: PhantomData<S>,
}

impl<S> Caller<S> {
    pub fn collection(&self) -> &Collection {
        &self.principal.collection
    }

    /// The key id for logs and audit lines (`-` with auth off).
    pub fn key_id(&self) -> &str {
        self.principal.key_id.as_deref().unwrap_or("-")
    }
}

impl<'a, S: NeedsScope> ApiExtractor<'a> for Caller<S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "An API key (`fmk_...`) as `Authorization: Bearer <key>`. Each key acts in \
                     one collection with its scopes: scan, read, delete, admin.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("fmk_<64 hex>"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = request.data::<AppState>().ok_or_else(|| {
            ApiError::from_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR, "no state")
        })?;
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let client = crate::extract::client_address(request);
        let principal = state
            .auth
            .authenticate(&state.store, header, client, S::SCOPE)
            .await?;
        let store = if principal.collection == *state.store.collection() {
            state.store.clone()
        } else {
            state.store.in_collection(&principal.collection)
        };
        Ok(Self {
            principal,
            store,
            _scope: PhantomData,
        })
    }
}
