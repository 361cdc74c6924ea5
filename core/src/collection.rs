//! `Collection`: the name of an independent face space. Every image, name, URL, face, match and
//! index row belongs to exactly one, and nothing of one is visible from another.

use std::{fmt, str::FromStr, sync::Arc};

/// A collection's name: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter
/// or digit. The characters are chosen so a name can sit inside a Redis Cluster hash tag
/// (`{name}`) and a URL path unescaped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Collection(Arc<str>);

/// A string that is not a collection name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a collection name is 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter \
     or digit; got {0:?}"
)]
pub struct InvalidCollection(pub String);

impl Collection {
    /// The name of the collection every image belongs to when auth is off, and where a store
    /// made before collections existed is moved.
    pub const DEFAULT: &'static str = "default";

    /// Longest name accepted.
    pub const MAX_LEN: usize = 64;

    /// The `default` collection.
    pub fn default_collection() -> Self {
        Self(Arc::from(Self::DEFAULT))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Collection {
    type Err = InvalidCollection;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if valid {
            Ok(Self(Arc::from(s)))
        } else {
            Err(InvalidCollection(s.chars().take(80).collect()))
        }
    }
}

impl Default for Collection {
    fn default() -> Self {
        Self::default_collection()
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Collection({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["default", "a", "team-7", "x_y", &"a".repeat(64)] {
            assert_eq!(
                good.parse::<Collection>().map(|c| c.to_string()),
                Ok(good.into())
            );
        }
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "a b",
            "a{b}",
            "a:b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(bad.parse::<Collection>().is_err(), "{bad:?}");
        }
    }
}
