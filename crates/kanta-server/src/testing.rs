//! The test harness: the whole [`Application`] on a loopback port over a fresh store.
//!
//! [`TestApp::spawn`] builds the application from [`settings`] (or the caller's changes to
//! them) over a new SQLite file or a new PostgreSQL database (`kanta_store::testing`), with a
//! [`ManualClock`] for every part that reads the time, and hands back its base URL, a token of
//! each scope, the store and the clock. The API, the scheduler and the webhook workers run as
//! they do under `kanta serve`; [`TestApp::stop`] shuts them down the way SIGTERM does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kanta_domain::{Clock, ManualClock, SystemClock, Timestamp};
use kanta_store::testing::TestDb;
use kanta_store::{Scope, Secret, Storage};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::settings::{DatabaseUrl, Every, Settings};
use crate::{Application, ServerError};

/// Settings for a test server: a free loopback port, a grace period of one second, and no
/// scheduled scoring (a test that wants the scheduler sets `scoring.every`); everything else
/// is the defaults. [`TestApp::spawn`] fills in the database URL.
pub fn settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.grace_seconds = 1;
    settings.scoring.every = Every(None);
    settings
}

/// A running application.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The address it listens on.
    pub address: SocketAddr,
    /// A token of scope `ingest`.
    pub ingest: String,
    /// A token of scope `read`.
    pub read: String,
    /// A token of scope `admin`.
    pub admin: String,
    /// The application's store.
    pub store: Arc<dyn Storage>,
    /// The clock of the API, the scheduler and the webhook workers; it stands where it was
    /// started until the test moves it.
    pub clock: Arc<ManualClock>,
    /// The database (its file or server database), for inspecting what is stored.
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestApp {
    /// The application with `settings` over `db`, its clock at the wall clock's time.
    pub async fn spawn(db: TestDb, settings: Settings) -> TestApp {
        TestApp::spawn_at(db, settings, SystemClock.now()).await
    }

    /// The application with `settings` over `db`, its clock at `start`.
    pub async fn spawn_at(db: TestDb, mut settings: Settings, start: Timestamp) -> TestApp {
        settings.database.url = DatabaseUrl::new(db.url.clone());
        let clock = Arc::new(ManualClock::new(start));
        let app = Application::build(settings, clock.clone()).await.expect("the application starts");
        let store = app.store();
        let mut tokens = Vec::new();
        for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
            let secret = Secret::generate().expect("randomness");
            store.insert_token(&secret.hash(), scope, None, 0).await.expect("a token");
            tokens.push(secret.expose().to_string());
        }
        let [ingest, read, admin] = <[String; 3]>::try_from(tokens).expect("three tokens");
        let address = app.address();
        let (stop, stopped) = oneshot::channel::<()>();
        // A dropped sender stops the application too, so a test that panics leaves nothing running.
        let running = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            base: format!("http://{address}"),
            address,
            ingest,
            read,
            admin,
            store,
            clock,
            db,
            stop: Some(stop),
            running: Some(running),
        }
    }

    /// Stops the application as SIGTERM does and waits for it (at most the grace period and
    /// the scheduler's shutdown wait, plus a margin); its result.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let running = self.running.take().expect("running until stopped");
        let limit = Duration::from_secs(10);
        match tokio::time::timeout(limit, running).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => panic!("the application panicked: {e}"),
            Err(_) => panic!("the application did not stop within {limit:?}"),
        }
    }
}
