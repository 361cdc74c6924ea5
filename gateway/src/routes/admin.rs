//! Keys and collections (scope `admin`): create, list and revoke API keys; create, list and
//! delete collections. Each change is logged on the `logs` exchange (key id, collection,
//! scopes; never a key). An admin key manages every collection, whichever its own is.

use facematch_core::{
    Collection,
    api_key::{Scopes, generate_key, generate_key_id, key_digest},
    store::{ApiKeyRecord, Store},
};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use serde::Deserialize;

use crate::{
    auth::{AdminScope, Caller},
    error::ApiError,
    extract::AnyJson,
    failure::{self, Failure},
    state::AppState,
};

/// `POST /keys` body.
#[derive(Debug, Object, Deserialize)]
pub struct NewKeyRequest {
    /// The collection the key acts in (it must exist).
    #[oai(validator(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub collection: String,
    /// One or more of `scan`, `read`, `delete`, `admin`.
    #[oai(validator(min_items = 1, pattern = "^(scan|read|delete|admin)$"))]
    pub scopes: Vec<String>,
}

/// A key as listed: never the key itself.
#[derive(Debug, Object)]
pub struct KeyInfo {
    pub id: String,
    pub collection: String,
    pub scopes: Vec<String>,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds of its last use (updated about twice a second at most).
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<u64>,
}

/// A new key: the only answer that ever holds it.
#[derive(Debug, Object)]
pub struct NewKey {
    /// The key, `fmk_` and 64 hex characters. Shown once: the server keeps only its SHA-256.
    pub key: String,
    #[oai(flatten)]
    pub info: KeyInfo,
}

/// `POST /collections` body.
#[derive(Debug, Object, Deserialize)]
pub struct NewCollectionRequest {
    /// 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit.
    #[oai(validator(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub name: String,
}

/// A collection.
#[derive(Debug, Object)]
pub struct CollectionInfo {
    pub name: String,
    /// Unix milliseconds.
    pub created_at: u64,
}

/// What deleting a collection removed.
#[derive(Debug, Object)]
pub struct CollectionDeleted {
    pub name: String,
    /// Images removed (with their names, faces and matches).
    pub images: u64,
    /// Redis keys removed.
    pub redis_keys: u64,
    /// API keys revoked.
    pub api_keys: u64,
}

#[derive(Debug, ApiResponse)]
pub enum CreatedKey {
    /// The key was created; this is the only time it is shown.
    #[oai(status = 201)]
    Created(Json<NewKey>),
}

#[derive(Debug, ApiResponse)]
pub enum CreatedCollection {
    /// The collection was created.
    #[oai(status = 201)]
    Created(Json<CollectionInfo>),
}

impl From<ApiKeyRecord> for KeyInfo {
    fn from(r: ApiKeyRecord) -> Self {
        Self {
            id: r.id,
            collection: r.collection.to_string(),
            scopes: r.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

fn parse_collection(name: &str) -> Result<Collection, ApiError> {
    name.parse()
        .map_err(|e: facematch_core::InvalidCollection| {
            ApiError::bad_request("invalid_collection", e.to_string())
        })
}

async fn existing_collection(store: &Store, name: &str) -> Result<Collection, ApiError> {
    let collection = parse_collection(name)?;
    if !store.collection_exists(&collection).await? {
        return Err(ApiError::not_found(format!(
            "no collection is named {collection:?}; create it first (POST /collections)"
        )));
    }
    Ok(collection)
}

/// Keys and collections.
#[derive(Debug)]
pub struct AdminApi;

#[OpenApi]
impl AdminApi {
    /// Create an API key
    ///
    /// A new key for one collection with the given scopes. The answer is the only place the key
    /// ever appears.
    #[oai(path = "/keys", method = "post", operation_id = "createKey")]
    async fn create_key(
        &self,
        state: Data<&AppState>,
        caller: Caller<AdminScope>,
        body: AnyJson<NewKeyRequest>,
    ) -> Result<CreatedKey, Failure<{ failure::CREATION | failure::NOT_FOUND }>> {
        let request = body.value;
        let scopes: Scopes = request
            .scopes
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: facematch_core::api_key::UnknownScope| {
                ApiError::bad_request("invalid_scopes", e.to_string())
            })?;
        if scopes.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_scopes",
                "a key needs at least one scope: scan, read, delete or admin",
            )
            .into());
        }
        let collection = existing_collection(&state.store, &request.collection).await?;
        let key = generate_key();
        let record = ApiKeyRecord::new(generate_key_id(), collection, scopes);
        if !state
            .store
            .create_api_key(&record, &key_digest(&key))
            .await?
        {
            return Err(ApiError::unavailable("a key id collided; try again").into());
        }
        tracing::info!(target: "gateway::audit", by = caller.key_id(), key_id = %record.id, collection = %record.collection, scopes = %record.scopes, "api key created");
        Ok(CreatedKey::Created(Json(NewKey {
            key,
            info: record.into(),
        })))
    }

    /// List API keys
    ///
    /// Every key of every collection, oldest first, without the keys themselves.
    #[oai(path = "/keys", method = "get", operation_id = "listKeys")]
    async fn list_keys(
        &self,
        state: Data<&AppState>,
        _caller: Caller<AdminScope>,
    ) -> Result<Json<Vec<KeyInfo>>, Failure<{ failure::LISTING }>> {
        let keys = state.store.list_api_keys().await?;
        Ok(Json(keys.into_iter().map(KeyInfo::from).collect()))
    }

    /// Revoke an API key
    ///
    /// Takes effect on this gateway at once and on every other within half a second.
    #[oai(path = "/keys/:id", method = "delete", operation_id = "revokeKey")]
    async fn revoke_key(
        &self,
        state: Data<&AppState>,
        caller: Caller<AdminScope>,
        /// The key's id (`key_...`).
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> Result<Json<KeyInfo>, Failure<{ failure::DELETION }>> {
        let Some(record) = state.store.revoke_api_key(&id).await? else {
            return Err(ApiError::not_found(format!("no API key has id {:?}", id.0)).into());
        };
        state.auth.forget_cached_keys();
        tracing::info!(target: "gateway::audit", by = caller.key_id(), key_id = %record.id, collection = %record.collection, scopes = %record.scopes, "api key revoked");
        Ok(Json(record.into()))
    }

    /// Create a collection
    #[oai(
        path = "/collections",
        method = "post",
        operation_id = "createCollection"
    )]
    async fn create_collection(
        &self,
        state: Data<&AppState>,
        caller: Caller<AdminScope>,
        body: AnyJson<NewCollectionRequest>,
    ) -> Result<CreatedCollection, Failure<{ failure::CREATION | failure::CONFLICT }>> {
        let collection = parse_collection(&body.value.name)?;
        let Some(created_at) = state.store.create_collection(&collection).await? else {
            return Err(ApiError::conflict(format!(
                "a collection named {collection:?} exists already"
            ))
            .into());
        };
        tracing::info!(target: "gateway::audit", by = caller.key_id(), %collection, "collection created");
        Ok(CreatedCollection::Created(Json(CollectionInfo {
            name: collection.to_string(),
            created_at,
        })))
    }

    /// List collections
    #[oai(
        path = "/collections",
        method = "get",
        operation_id = "listCollections"
    )]
    async fn list_collections(
        &self,
        state: Data<&AppState>,
        _caller: Caller<AdminScope>,
    ) -> Result<Json<Vec<CollectionInfo>>, Failure<{ failure::LISTING }>> {
        let all = state.store.list_collections().await?;
        Ok(Json(
            all.into_iter()
                .map(|(c, created_at)| CollectionInfo {
                    name: c.to_string(),
                    created_at,
                })
                .collect(),
        ))
    }

    /// Delete a collection
    ///
    /// Erases every image, name, URL, face and match of the collection and revokes its keys.
    /// Workers refuse its queued jobs and drop its index. `default` cannot be deleted.
    #[oai(
        path = "/collections/:name",
        method = "delete",
        operation_id = "deleteCollection"
    )]
    async fn delete_collection(
        &self,
        state: Data<&AppState>,
        caller: Caller<AdminScope>,
        /// The collection's name.
        #[oai(validator(max_length = 64))]
        name: Path<String>,
    ) -> Result<Json<CollectionDeleted>, Failure<{ failure::DELETION }>> {
        let collection = parse_collection(&name)?;
        if collection == Collection::default() {
            return Err(ApiError::bad_request(
                "default_collection",
                "the default collection cannot be deleted",
            )
            .into());
        }
        let Some(erased) = state.store.delete_collection(&collection).await? else {
            return Err(
                ApiError::not_found(format!("no collection is named {collection:?}")).into(),
            );
        };
        state.auth.forget_cached_keys();
        tracing::info!(target: "gateway::audit", by = caller.key_id(), %collection, images = erased.images, redis_keys = erased.redis_keys, api_keys = erased.api_keys, "collection deleted");
        Ok(Json(CollectionDeleted {
            name: collection.to_string(),
            images: erased.images,
            redis_keys: erased.redis_keys,
            api_keys: erased.api_keys,
        }))
    }
}
