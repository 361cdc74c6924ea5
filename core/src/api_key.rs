//! API keys: what a key is allowed to do (its scopes), how a new key is made, and the digest the
//! store keeps instead of the key itself.
//!
//! A key is `fmk_` followed by 64 hex characters: 256 bits from the operating system's random
//! source. Since a key is that random, one SHA-256 of it is all the store needs to find it and
//! nothing it holds lets anyone rebuild it (a slow password hash protects guessable secrets;
//! these are not).

use std::{fmt, str::FromStr};

use sha2::{Digest, Sha256};

/// What every key starts with, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "fmk_";

/// One permission of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `POST /scan/...`.
    Scan,
    /// `GET /match/...`, `GET /images/...`.
    Read,
    /// Erasing images.
    Delete,
    /// Keys and collections, for every collection.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Scan, Scope::Read, Scope::Delete, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Read => "read",
            Self::Delete => "delete",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: the scopes are scan, read, delete and admin")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| UnknownScope(s.chars().take(40).collect()))
    }
}

/// A key's scopes: a small set, written `scan,read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope (the bootstrap admin key).
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes held, in their fixed order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, s| bits | 1 << s as u8))
    }
}

impl FromStr for Scopes {
    type Err = UnknownScope;

    /// `scan,read` (spaces allowed, repeats ignored); empty is no scope.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// A new key: 256 random bits, hex, behind [`KEY_PREFIX`].
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
    key.push_str(KEY_PREFIX);
    for b in bytes {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// A new key id: 64 random bits, hex, behind `key_` (shown in lists, logs and audit lines).
pub fn generate_key_id() -> String {
    format!("key_{:016x}", rand::random::<u64>())
}

/// What the store keeps of a key: its SHA-256, hex.
pub fn key_digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a presented string has the shape of a key (checked before any lookup).
pub fn looks_like_key(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + 64
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares two equal-length secrets (or digests) in time that does not depend on where they
/// first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_digested() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(looks_like_key(&a), "{a}");
        assert!(!looks_like_key(&a[..a.len() - 1]));
        assert!(!looks_like_key(&a.to_uppercase()));
        assert_eq!(key_digest(&a).len(), 64);
        assert_ne!(key_digest(&a), key_digest(&b));
        assert!(!key_digest(&a).contains(&a[4..20]));
        assert!(generate_key_id().starts_with("key_"));
    }

    #[test]
    fn scopes_parse_and_print() {
        let s: Scopes = "read, scan,read".parse().expect("scopes");
        assert!(s.contains(Scope::Scan) && s.contains(Scope::Read));
        assert!(!s.contains(Scope::Admin));
        assert_eq!(s.to_string(), "scan,read");
        assert_eq!(Scopes::all().to_string(), "scan,read,delete,admin");
        assert!("scan,write".parse::<Scopes>().is_err());
        assert!("".parse::<Scopes>().expect("empty").is_empty());
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
