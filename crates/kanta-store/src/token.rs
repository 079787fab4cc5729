//! API tokens: generation, hashing and scopes.
//!
//! A token is `kanta_` followed by 64 hex digits (256 random bits from the operating system).
//! The store keeps only its SHA-256: a leaked database does not leak working tokens, and a fast
//! hash is enough because the input is random, not a password. Lookups go by hash, and the
//! found hash is compared again in constant time, so response timing tells nothing about how
//! much of a guessed token was right.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a token may do. `ingest` and `read` are separate, so a dashboard's read token cannot
/// write and a shop's ingest token cannot read personal data back; `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Write customers, orders, events and feedback.
    Ingest,
    /// Read customers (360 view, lists).
    Read,
    /// Everything, including export and erasure of personal data.
    Admin,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// A scope from its name.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// Whether a token with this scope may make a call that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self == needed || self == Scope::Admin
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new token in clear text. Shown once to the user; `Debug` does not print it.
pub struct Secret(String);

impl Secret {
    /// A fresh random token.
    pub fn generate() -> Result<Secret, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Secret(format!("kanta_{}", hex(&bytes))))
    }

    /// The token text, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its stored hash.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The SHA-256 of a token, in hex: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl TokenHash {
    /// The hash of a presented token.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(hex(&Sha256::digest(token.as_bytes())))
    }

    /// Constant-time equality (no early exit on the first differing byte).
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

pub use kanta_domain::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed_with_sha256() {
        let a = Secret::generate().expect("os randomness");
        let b = Secret::generate().expect("os randomness");
        assert!(a.expose().starts_with("kanta_") && a.expose().len() == 6 + 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "Secret(…)");
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(TokenHash::of("abc").0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        let h = TokenHash::of("x");
        assert!(h.ct_eq(&TokenHash::of("x")));
        assert!(!h.ct_eq(&TokenHash::of("y")));
        assert!(!h.ct_eq(&TokenHash("ab".into())));
    }

    #[test]
    fn admin_may_do_everything_and_the_others_only_their_own() {
        assert!(Scope::Admin.allows(Scope::Read) && Scope::Admin.allows(Scope::Ingest));
        assert!(Scope::Read.allows(Scope::Read) && Scope::Ingest.allows(Scope::Ingest));
        assert!(!Scope::Ingest.allows(Scope::Read) && !Scope::Read.allows(Scope::Ingest));
        assert!(!Scope::Read.allows(Scope::Admin));
        for s in [Scope::Ingest, Scope::Read, Scope::Admin] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }
}
