//! The Redis key schema. Nothing outside this module spells a key.
//!
//! Every key starts with one configurable prefix (default `fm:`). A collection's keys then carry
//! the collection's name as a Redis Cluster hash tag, `fm:{name}:…`, so each collection lives on
//! one shard and every multi-key script stays within it. The keys of the deployment as a whole
//! (API keys, the list of collections) share the tag `{_}`, which no collection can have.

use crate::{Collection, ImageHash};

/// The tag of the deployment-wide keys (a collection name cannot start with `_`).
const GLOBAL_TAG: &str = "{_}:";

/// Builds every Redis key of one collection under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    collection: Collection,
    /// `{prefix}{collection}:`, what every key of the collection starts with.
    scope: String,
}

impl Keys {
    /// The `default` collection's keys under `prefix`; tests give each run its own prefix.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self::scoped(prefix.into(), Collection::default())
    }

    fn scoped(prefix: String, collection: Collection) -> Self {
        let scope = format!("{prefix}{{{collection}}}:");
        Self {
            prefix,
            collection,
            scope,
        }
    }

    /// The same prefix, another collection.
    pub fn for_collection(&self, collection: &Collection) -> Self {
        Self::scoped(self.prefix.clone(), collection.clone())
    }

    /// The prefix every key of the deployment starts with, whatever its collection.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The collection these keys belong to.
    pub fn collection(&self) -> &Collection {
        &self.collection
    }

    /// The start of every key of this collection (`{prefix}{name}:`).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `file:{name}` — string: a filename → the hash of its latest upload.
    ///
    /// Filenames and URLs live in separate namespaces (`file:` / `url:`, `files:` / `urls:`), so
    /// no filename, whatever its spelling, can ever be read as a URL or rebind one.
    pub fn file_name(&self, name: &str) -> String {
        format!("{}file:{name}", self.scope)
    }

    /// `url:{url}` — string: a scanned URL → the hash it is bound to forever.
    pub fn url(&self, url: &str) -> String {
        format!("{}url:{url}", self.scope)
    }

    /// `files:{hash}` — set: every filename of one image.
    pub fn file_names(&self, hash: ImageHash) -> String {
        format!("{}files:{hash}", self.scope)
    }

    /// `urls:{hash}` — set: every URL bound to one image.
    pub fn urls(&self, hash: ImageHash) -> String {
        format!("{}urls:{hash}", self.scope)
    }

    /// `image:{hash}` — hash: state, face count, size, model, error, timestamps.
    pub fn image(&self, hash: ImageHash) -> String {
        format!("{}image:{hash}", self.scope)
    }

    /// What every `image:` key of the collection starts with.
    pub fn image_prefix(&self) -> String {
        format!("{}image:", self.scope)
    }

    /// `faces:{hash}` — string: JSON array of the image's faces.
    pub fn faces(&self, hash: ImageHash) -> String {
        format!("{}faces:{hash}", self.scope)
    }

    /// `thumbs:{hash}` — hash: face number → a small JPEG of that face (absent when the worker
    /// keeps no face images).
    pub fn thumbnails(&self, hash: ImageHash) -> String {
        format!("{}thumbs:{hash}", self.scope)
    }

    /// `pending` — sorted set: hash → when its image was claimed `pending` (ms), until its
    /// publish is confirmed; what [`super::Store::sweep_pending`] looks through. The gateway's
    /// scripts derive it from an image key (`…image:{hash}` → `…pending`).
    pub fn pending(&self) -> String {
        format!("{}pending", self.scope)
    }

    /// `matches:{hash}` — sorted set: matched hash → best face distance.
    pub fn matches(&self, hash: ImageHash) -> String {
        format!("{}matches:{hash}", self.scope)
    }

    /// `facelog` — stream: every stored face of the collection once, in its global order.
    pub fn facelog(&self) -> String {
        format!("{}facelog", self.scope)
    }

    /// `epoch` — string: the collection's incarnation, new each time it is created, so a
    /// worker's index of a deleted collection is never taken for one of its successor.
    pub fn epoch(&self) -> String {
        format!("{}epoch", self.scope)
    }

    /// `alignment` — string: the detector and descriptor crop every face of the deployment
    /// was made with (`gpu_worker::service::DescriptorSetting`).
    pub fn alignment(&self) -> String {
        format!("{}alignment", self.prefix)
    }

    /// `schema` — string: the layout version of the keys (`2`: collections), set once a
    /// store made before collections has been moved into `default`.
    pub fn schema(&self) -> String {
        format!("{}schema", self.prefix)
    }

    /// `schema-lock` — string: held by the one process moving an old store into `default`.
    pub fn schema_lock(&self) -> String {
        format!("{}schema-lock", self.prefix)
    }

    /// `{_}:collections` — hash: collection name → its record (JSON).
    pub fn collections(&self) -> String {
        format!("{}{GLOBAL_TAG}collections", self.prefix)
    }

    /// `{_}:apikey:{digest}` — hash: one API key's record, found by the SHA-256 of the key.
    pub fn api_key(&self, digest: &str) -> String {
        format!("{}{GLOBAL_TAG}apikey:{digest}", self.prefix)
    }

    /// `{_}:settled` — a pub/sub channel, not a key: `{collection} {hash}` is published on it
    /// each time an image reaches `done` or `failed` or is erased, so long-polls wake.
    pub fn settled_channel(&self) -> String {
        format!("{}{GLOBAL_TAG}settled", self.prefix)
    }

    /// `{_}:apikeys` — hash: key id → digest, for listing and revoking by id.
    pub fn api_key_ids(&self) -> String {
        format!("{}{GLOBAL_TAG}apikeys", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_prefix_and_a_collections_tag() {
        let keys = Keys::new("t1:");
        let h = ImageHash::of(b"a");
        let scoped = [
            keys.file_name("x.jpg"),
            keys.url("http://host/x.jpg"),
            keys.file_names(h),
            keys.urls(h),
            keys.image(h),
            keys.faces(h),
            keys.thumbnails(h),
            keys.matches(h),
            keys.facelog(),
            keys.epoch(),
        ];
        for key in &scoped {
            assert!(key.starts_with("t1:{default}:"), "{key}");
        }
        for key in [keys.collections(), keys.api_key("ab"), keys.api_key_ids()] {
            assert!(key.starts_with("t1:{_}:"), "{key}");
        }
        assert_eq!(keys.image(h), format!("t1:{{default}}:image:{h}"));
        assert_ne!(
            keys.file_name("http://host/x.jpg"),
            keys.url("http://host/x.jpg")
        );
        let other = keys.for_collection(&"team-b".parse().expect("name"));
        assert_eq!(other.image(h), format!("t1:{{team-b}}:image:{h}"));
        assert_eq!(other.prefix(), "t1:");
    }
}
