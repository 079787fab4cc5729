//! API tokens: generation, hashing and scopes, and their storage ([`TokenStore`]).
//!
//! A token is `kanta_` followed by 64 hex digits (256 random bits from the operating system).
//! The store keeps only its SHA-256: a leaked database does not leak working tokens, and a fast
//! hash is enough because the input is random, not a password. Lookups go by hash, and the
//! found hash is compared again in constant time, so response timing tells nothing about how
//! much of a guessed token was right.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dialect::Dialect;
use crate::sql::{Row, query};
use crate::store::Store;
use crate::{StoreError, TokenInfo, TokenRow, rfc3339};

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

/// API tokens, stored as hashes.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// Store a token hash; returns its id.
    async fn insert_token(
        &self,
        hash: &TokenHash,
        scope: Scope,
        name: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError>;

    /// Find an unrevoked token by hash.
    async fn find_token(&self, hash: &TokenHash) -> Result<Option<TokenRow>, StoreError>;

    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;

    /// Revoke a token; returns whether an unrevoked token with that id existed.
    async fn revoke_token(&self, id: i64, now: i64) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
impl<DB: Dialect> TokenStore for Store<DB> {
    async fn insert_token(
        &self,
        hash: &TokenHash,
        scope: Scope,
        name: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let id: i64 = query("INSERT INTO tokens (hash, scope, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(&hash.0)
            .bind(scope.as_str())
            .bind(name)
            .bind(now)
            .fetch_one(&self.writer)
            .await?
            .try_get(0)?;
        Ok(id)
    }

    async fn find_token(&self, hash: &TokenHash) -> Result<Option<TokenRow>, StoreError> {
        let row = query("SELECT id, hash, scope FROM tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(&hash.0)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let scope: String = row.try_get("scope")?;
        Ok(Some(TokenRow {
            id: row.try_get("id")?,
            hash: TokenHash(row.try_get("hash")?),
            scope: Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope `{scope}`")))?,
        }))
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = query("SELECT id, scope, name, created_at, revoked_at FROM tokens ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("scope")?;
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    scope: Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("token scope `{scope}`")))?,
                    name: r.try_get("name")?,
                    created_at: rfc3339(r.try_get("created_at")?),
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(rfc3339),
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

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
