//! Journey documents and their versions: `journeys` holds every version ever applied, never
//! changed; `journey_heads` the version new runs start on, the pause switch, and a change
//! counter a polling server reads.

use kanta_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::StoreError;
use crate::dialect::Dialect;
use crate::journey::serialize_at;
use crate::sql::{Row, query};
use crate::store::Store;

/// What applying a document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Applied {
    /// The journey's current version after the call.
    pub version: i64,
    /// Whether that version was created by this call (false: the document was unchanged).
    pub created: bool,
}

/// One stored version of a journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JourneyVersion {
    /// The journey's name.
    pub name: String,
    /// 1, 2, …
    pub version: i64,
    /// The document, as the canonical JSON text it was applied with.
    pub definition: String,
    /// The document's digest, as given.
    pub digest: String,
    /// When it was applied, RFC 3339.
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_at")]
    pub created_at: Timestamp,
}

/// A journey's current version with its document: what the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyHead {
    /// The journey's name.
    pub name: String,
    /// The version new runs start on.
    pub version: i64,
    /// Paused: its runs and messages are not claimed.
    pub paused: bool,
    /// The document of that version.
    pub definition: String,
    /// Its digest.
    pub digest: String,
    /// When the version was applied or the journey last paused or resumed.
    pub updated_at: Timestamp,
}

pub(super) async fn apply<DB: Dialect>(
    store: &Store<DB>,
    name: &str,
    definition: &str,
    digest: &str,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    // A head row (version 0 until the first version is written) to lock, so that two
    // concurrent applies of one journey take turns instead of both writing the same version.
    query(
        "INSERT INTO journey_heads (name, version, paused, generation, updated_at) VALUES ($1, 0, FALSE, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now.micros())
    .execute(&mut tx)
    .await?;
    let current: i64 = query(&format!("SELECT version FROM journey_heads WHERE name = $1{}", DB::LOCK_ROW))
        .bind(name)
        .fetch_one(&mut tx)
        .await?
        .try_get(0)?;
    let current_digest: Option<String> = query("SELECT digest FROM journeys WHERE name = $1 AND version = $2")
        .bind(name)
        .bind(current)
        .fetch_optional(&mut tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    if current_digest.as_deref() == Some(digest) {
        tx.commit().await?;
        return Ok(Applied { version: current, created: false });
    }
    let version = current + 1;
    query("INSERT INTO journeys (name, version, definition, digest, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(name)
        .bind(version)
        .bind(definition)
        .bind(digest)
        .bind(now.micros())
        .execute(&mut tx)
        .await?;
    query("UPDATE journey_heads SET version = $2, generation = generation + 1, updated_at = $3 WHERE name = $1")
        .bind(name)
        .bind(version)
        .bind(now.micros())
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(Applied { version, created: true })
}

pub(super) async fn set_paused<DB: Dialect>(
    store: &Store<DB>,
    name: &str,
    paused: bool,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut tx = store.writer.begin_with(DB::BEGIN_WRITE).await?;
    let exists = query("SELECT version FROM journey_heads WHERE name = $1 AND version > 0")
        .bind(name)
        .fetch_optional(&mut tx)
        .await?
        .is_some();
    // Only a change counts as one, so pausing twice does not make servers reload.
    query(
        "UPDATE journey_heads SET paused = $2, generation = generation + 1, updated_at = $3 \
         WHERE name = $1 AND version > 0 AND paused <> $2",
    )
    .bind(name)
    .bind(paused)
    .bind(now.micros())
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(exists)
}

pub(super) async fn version<DB: Dialect>(
    store: &Store<DB>,
    name: &str,
    version: i64,
) -> Result<Option<JourneyVersion>, StoreError> {
    let row =
        query("SELECT name, version, definition, digest, created_at FROM journeys WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(&store.reader)
            .await?;
    row.map(|r| {
        Ok(JourneyVersion {
            name: r.try_get("name")?,
            version: r.try_get("version")?,
            definition: r.try_get("definition")?,
            digest: r.try_get("digest")?,
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
        })
    })
    .transpose()
}

pub(super) async fn heads<DB: Dialect>(store: &Store<DB>) -> Result<Vec<JourneyHead>, StoreError> {
    let rows = query(
        "SELECT h.name, h.version, h.paused, h.updated_at, j.definition, j.digest FROM journey_heads h \
         JOIN journeys j ON j.name = h.name AND j.version = h.version ORDER BY h.name",
    )
    .fetch_all(&store.reader)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JourneyHead {
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                paused: r.try_get("paused")?,
                definition: r.try_get("definition")?,
                digest: r.try_get("digest")?,
                updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
            })
        })
        .collect()
}

/// The sum of the heads' change counters: each change adds one to one row under that row's
/// lock, so the sum grows with every committed change and a reader never sees it stand still
/// across one (a maximum could: two concurrent changes may compute the same next value).
pub(super) async fn generation<DB: Dialect>(store: &Store<DB>) -> Result<i64, StoreError> {
    // PostgreSQL's SUM of BIGINT is NUMERIC.
    let row = query("SELECT CAST(COALESCE(SUM(generation), 0) AS BIGINT) FROM journey_heads")
        .fetch_one(&store.reader)
        .await?;
    Ok(row.try_get(0)?)
}
