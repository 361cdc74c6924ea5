//! The Redis key schema (DESIGN §4). Nothing outside this module spells a key.

use crate::ImageHash;

/// Builds every Redis key under one configurable prefix (default `fm:`).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`; tests give each run its own prefix.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `file:{name}` — string: a filename → the hash of its latest upload.
    ///
    /// Filenames and URLs live in separate namespaces (`file:` / `url:`, `files:` / `urls:`), so
    /// no filename, whatever its spelling, can ever be read as a URL or rebind one.
    pub fn file_name(&self, name: &str) -> String {
        format!("{}file:{name}", self.prefix)
    }

    /// `url:{url}` — string: a scanned URL → the hash it is bound to forever.
    pub fn url(&self, url: &str) -> String {
        format!("{}url:{url}", self.prefix)
    }

    /// `files:{hash}` — set: every filename of one image.
    pub fn file_names(&self, hash: ImageHash) -> String {
        format!("{}files:{hash}", self.prefix)
    }

    /// `urls:{hash}` — set: every URL bound to one image.
    pub fn urls(&self, hash: ImageHash) -> String {
        format!("{}urls:{hash}", self.prefix)
    }

    /// `image:{hash}` — hash: state, face count, size, model, error, timestamps.
    pub fn image(&self, hash: ImageHash) -> String {
        format!("{}image:{hash}", self.prefix)
    }

    /// `faces:{hash}` — string: JSON array of the image's faces.
    pub fn faces(&self, hash: ImageHash) -> String {
        format!("{}faces:{hash}", self.prefix)
    }

    /// `matches:{hash}` — sorted set: matched hash → best face distance.
    pub fn matches(&self, hash: ImageHash) -> String {
        format!("{}matches:{hash}", self.prefix)
    }

    /// `facelog` — stream: every stored face once, in global order.
    pub fn facelog(&self) -> String {
        format!("{}facelog", self.prefix)
    }

    /// `alignment` — string: the descriptor crop every face of this store was made with.
    pub fn alignment(&self) -> String {
        format!("{}alignment", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_prefix() {
        let keys = Keys::new("t1:");
        let h = ImageHash::of(b"a");
        for key in [
            keys.file_name("x.jpg"),
            keys.url("http://host/x.jpg"),
            keys.file_names(h),
            keys.urls(h),
            keys.image(h),
            keys.faces(h),
            keys.matches(h),
            keys.facelog(),
            keys.alignment(),
        ] {
            assert!(key.starts_with("t1:"), "{key}");
        }
        assert_eq!(keys.image(h), format!("t1:image:{h}"));
        assert_ne!(
            keys.file_name("http://host/x.jpg"),
            keys.url("http://host/x.jpg")
        );
    }
}
