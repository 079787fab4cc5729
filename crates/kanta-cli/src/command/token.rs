//! `kanta token create`.

use anyhow::Context;
use kanta_store::{Scope, Secret};

use crate::cli::TokenCreateArgs;

pub fn create(args: &TokenCreateArgs) -> anyhow::Result<()> {
    let scope = Scope::parse(&args.scope).with_context(|| format!("unknown scope `{}`", args.scope))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let settings = args.store.settings()?;
    let url = &settings.database.url;
    let secret = Secret::generate().context("reading randomness from the operating system")?;
    runtime.block_on(async {
        let store = kanta_store::open(url.expose()).await.with_context(|| format!("opening the store {url}"))?;
        store
            .insert_token(&secret.hash(), scope, args.name.as_deref(), kanta_store::now_micros())
            .await
            .context("storing the token")
    })?;
    eprintln!("Created a `{scope}` token in {url}. It is shown once; the store keeps only its hash.");
    // Alone on the last line, so `TOKEN=$(kanta token create … | tail -n 1)` works.
    println!("{}", secret.expose());
    Ok(())
}
