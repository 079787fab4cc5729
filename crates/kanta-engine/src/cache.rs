//! The compiled journeys: every version a run asked for, parsed and compiled once, and the
//! current heads, reloaded when the store's `journeys_generation` changes (the CLI applies,
//! pauses and resumes journeys in another process).
//!
//! **Architecture Invariant:** a run renders its own version's templates. Each loaded version
//! builds its [`Templates`] from the templates it carries ([`Journey::template_files`]); the
//! engine has no templates folder, so an edited and re-applied template reaches new runs (the
//! new version) and never a run in progress.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kanta_journey::{Compiled, Journey};
use kanta_mail::Templates;
use kanta_store::Storage;

use crate::EngineError;

/// One journey version, as the engine walks it.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The version.
    pub(crate) version: i64,
    /// The document.
    pub(crate) journey: Journey,
    /// Its step graph.
    pub(crate) compiled: Compiled,
    /// The templates it carries, ready to render.
    pub(crate) templates: Templates,
    /// Whether the global holdout applies ([`Journey::is_marketing`]).
    pub(crate) marketing: bool,
}

/// A journey's current version and pause switch.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// Whether it admits new customers.
    pub(crate) paused: bool,
    /// The current version.
    pub(crate) loaded: Arc<Loaded>,
}

/// The cache. The lock is a std `Mutex` held only between awaits, never across one: the
/// store is read unlocked and the result swapped in.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    generation: Option<i64>,
    heads: BTreeMap<String, Head>,
    versions: HashMap<(String, i64), Arc<Loaded>>,
}

fn load(name: &str, version: i64, definition: &str) -> Result<Arc<Loaded>, EngineError> {
    let journey = Journey::from_json(definition).map_err(|problems| EngineError::StoredJourney {
        name: name.to_owned(),
        version,
        problem: problems.to_string(),
    })?;
    let compiled = journey.compile();
    // Checked when applied; a stored template that no longer compiles (a newer mailer with
    // stricter rules) makes the version unusable rather than rendering something else.
    let templates = Templates::from_sources(journey.template_files()).map_err(|e| EngineError::StoredJourney {
        name: name.to_owned(),
        version,
        problem: e.to_string(),
    })?;
    let marketing = journey.is_marketing();
    Ok(Arc::new(Loaded { version, journey, compiled, templates, marketing }))
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the maps half-written (each write is one insert).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every journey's head, by name, reloaded first when the generation moved. A head whose
    /// stored document no longer validates is left out (and logged), not fatal for the rest.
    pub(crate) async fn heads(&self, store: &dyn Storage) -> Result<BTreeMap<String, Head>, EngineError> {
        let generation = store.journeys_generation().await?;
        if self.lock().generation == Some(generation) {
            return Ok(self.lock().heads.clone());
        }
        let mut heads = BTreeMap::new();
        for head in store.journey_heads().await? {
            let cached = self.lock().versions.get(&(head.name.clone(), head.version)).cloned();
            let loaded = match cached {
                Some(loaded) => loaded,
                None => match load(&head.name, head.version, &head.definition) {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        tracing::warn!("journey engine: skipping journey `{}`: {e}", head.name);
                        continue;
                    }
                },
            };
            heads.insert(head.name.clone(), Head { paused: head.paused, loaded });
        }
        let mut state = self.lock();
        for (name, head) in &heads {
            state.versions.insert((name.clone(), head.loaded.version), head.loaded.clone());
        }
        state.generation = Some(generation);
        state.heads = heads.clone();
        Ok(heads)
    }

    /// One version (runs keep the version they started on).
    pub(crate) async fn version(
        &self,
        store: &dyn Storage,
        name: &str,
        version: i64,
    ) -> Result<Arc<Loaded>, EngineError> {
        if let Some(loaded) = self.lock().versions.get(&(name.to_owned(), version)) {
            return Ok(loaded.clone());
        }
        let stored =
            store.journey_version(name, version).await?.ok_or_else(|| EngineError::UnknownJourney(name.to_owned()))?;
        let loaded = load(name, version, &stored.definition)?;
        self.lock().versions.insert((name.to_owned(), version), loaded.clone());
        Ok(loaded)
    }
}
