//! `kanta token create`.

use anyhow::Context;
use kanta_store::{Scope, Secret};

use super::with_store;
use crate::UsageError;
use crate::cli::{StoreArgs, TokenCreateArgs, TokenListArgs, TokenRevokeArgs};

pub fn list(args: &TokenListArgs) -> anyhow::Result<()> {
    let tokens = with_store(&args.store, async |store| Ok(store.list_tokens().await?))?;
    outln!("{:>4}  {:<7}  {:<20}  {:<20}  name", "id", "scope", "created", "revoked")?;
    for t in tokens {
        outln!(
            "{:>4}  {:<7}  {:<20}  {:<20}  {}",
            t.id,
            t.scope,
            t.created_at.get(..19).unwrap_or(&t.created_at),
            t.revoked_at.as_deref().and_then(|r| r.get(..19)).unwrap_or("-"),
            t.name.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

pub fn revoke(args: &TokenRevokeArgs) -> anyhow::Result<()> {
    let id = args.id;
    if with_store(&args.store, async |store| Ok(store.revoke_token(id, kanta_store::now_micros()).await?))? {
        eprintln!("revoked token {id}");
        Ok(())
    } else {
        Err(UsageError(format!("no active token with id {id} (see `kanta token list`)")).into())
    }
}

pub fn create(args: &TokenCreateArgs) -> anyhow::Result<()> {
    let scope = Scope::parse(&args.scope).with_context(|| format!("unknown scope `{}`", args.scope))?;
    let token = make(&args.store, scope, args.name.as_deref())?;
    // Alone on the last line, so `TOKEN=$(kanta token create … | tail -n 1)` works.
    outln!("{token}")?;
    Ok(())
}

/// Makes a token of `scope` in the store; returns it (the store keeps only its hash).
pub fn make(store: &StoreArgs, scope: Scope, name: Option<&str>) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let settings = store.settings()?;
    let url = &settings.database.url;
    let secret = Secret::generate().context("reading randomness from the operating system")?;
    runtime.block_on(async {
        let store = settings.database.open().await?;
        store.insert_token(&secret.hash(), scope, name, kanta_store::now_micros()).await.context("storing the token")
    })?;
    eprintln!("Created a `{scope}` token in {url}. It is shown once; the store keeps only its hash.");
    Ok(secret.expose().to_owned())
}
