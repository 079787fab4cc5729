//! kanta's dashboard: the pages `kanta serve` shows at `/`, for the people who run retention day
//! to day.
//!
//! Server-rendered HTML: axum handlers read the store, [`minijinja`] templates (compiled into
//! the binary, auto-escaping every value) write the page, and the charts are the report's SVG
//! (`kanta_report::charts`), drawn on the server. No single-page app and no build step: the
//! one script (`assets/kanta.js`, served from the binary) only improves pages that work without
//! it, and nothing is loaded from another origin.
//!
//! Security (see `session` and `security`): a token is exchanged for a session at `/login`
//! (an `HttpOnly`, `SameSite=Strict` cookie, `Secure` over HTTPS, expiring, ended when its token
//! is revoked); the token's scope decides what the session may see and do; every form carries
//! the session's CSRF token and a cross-site request is refused; every page is sent with a
//! `Content-Security-Policy` that allows no inline script.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use kanta_domain::Clock;
use kanta_report::format::NumberFormat;
use kanta_store::Storage;

mod assets;
mod background;
mod error;
mod pages;
mod render;
mod security;
mod session;
pub mod simulation;

pub use error::WebError;

/// Largest form body the dashboard accepts (a segment expression, a login): far below the API's.
pub const FORM_LIMIT: usize = 64 * 1024;

/// How the dashboard is set up (`[dashboard]` in the settings).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// How long a session lasts after login.
    pub session: Duration,
    /// How numbers and money are written.
    pub format: NumberFormat,
    /// Whether session cookies are marked `Secure`: `None` decides per request (HTTPS seen
    /// through `X-Forwarded-Proto`, or a configured `https://` public URL).
    pub secure_cookies: Option<bool>,
    /// The public base URL, when one is configured (`[email] public_url`): an `https://` one
    /// makes cookies `Secure`.
    pub public_url: Option<String>,
    /// The settings in effect with every secret hidden (`kanta config show`), for the settings
    /// page.
    pub settings_text: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            session: Duration::from_secs(12 * 3600),
            format: NumberFormat::new("en", None).unwrap_or_else(|e| unreachable!("a built-in locale: {e}")),
            secure_cookies: None,
            public_url: None,
            settings_text: String::new(),
        }
    }
}

/// What every page handler shares.
#[derive(Clone)]
pub struct WebState {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    config: Arc<WebConfig>,
    templates: Arc<render::Templates>,
    /// Journeys' uplift reports, computed in the background (minutes at 10⁶ entries).
    uplift: Arc<background::Background<kanta_engine::uplift::JourneyUplift>>,
    /// Journeys' runs through each step, counted in the background.
    funnels: Arc<background::Background<Vec<kanta_store::journey::FunnelRow>>>,
    /// The feedback insights, computed in the background (every response is read).
    feedback: Arc<background::Background<kanta_core::feedback::FeedbackInsights>>,
    /// The journey engine, when journeys run, and the scoring settings' slipping threshold:
    /// what the simulation view projects with.
    engine: Option<(Arc<kanta_engine::Engine>, f64)>,
    /// Journeys' simulations, computed in the background.
    simulations: Arc<background::Background<kanta_engine::simulate::Simulation>>,
}

/// How old a journey's simulation may be before a view starts a new one.
pub const SIMULATION_TTL: Duration = Duration::from_secs(600);

/// How old the feedback insights may be before a view starts new ones.
pub const FEEDBACK_TTL: Duration = Duration::from_secs(300);

/// How old an uplift report may be before a view starts a new one.
pub const UPLIFT_TTL: Duration = Duration::from_secs(600);
/// How old a journey's per-step counts may be before a view starts a new count.
pub const FUNNEL_TTL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState").field("config", &self.config).finish_non_exhaustive()
    }
}

impl WebState {
    /// The dashboard over `store`, reading the time from `clock`.
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>, config: WebConfig) -> Result<WebState, WebError> {
        Ok(WebState {
            store,
            clock,
            config: Arc::new(config),
            templates: Arc::new(render::Templates::new()?),
            uplift: Arc::new(background::Background::new(UPLIFT_TTL)),
            funnels: Arc::new(background::Background::new(FUNNEL_TTL)),
            feedback: Arc::new(background::Background::new(FEEDBACK_TTL)),
            engine: None,
            simulations: Arc::new(background::Background::new(SIMULATION_TTL)),
        })
    }

    /// With the journey engine the server runs (the simulation view projects journeys with it)
    /// and the scoring settings' slipping threshold.
    pub fn with_engine(mut self, engine: Arc<kanta_engine::Engine>, slipping_below: f64) -> WebState {
        self.engine = Some((engine, slipping_below));
        self
    }

    /// Now, µs since the epoch.
    fn now(&self) -> i64 {
        self.clock.now().micros()
    }
}

/// The dashboard's routes (merge them beside the API's: they share no path).
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/customers", get(pages::customers::list))
        .route("/customers/{id}", get(pages::customers::show))
        .route("/customers/{id}/export", post(pages::customers::export))
        .route("/customers/{id}/erase", post(pages::customers::erase))
        .route("/segments", get(pages::segments::list).post(pages::segments::create))
        .route("/segments/new", get(pages::segments::editor))
        .route("/segments/preview", post(pages::segments::preview))
        .route("/segments/{id}", get(pages::segments::show))
        .route("/segments/{id}/refresh", post(pages::segments::refresh))
        .route("/segments/{id}/delete", post(pages::segments::delete))
        .route("/segments/{id}/members.csv", get(pages::segments::members_csv))
        .route("/journeys", get(pages::journeys::list))
        .route("/journeys/{name}", get(pages::journeys::show))
        .route("/journeys/{name}/pause", post(pages::journeys::pause))
        .route("/journeys/{name}/resume", post(pages::journeys::resume))
        .route("/journeys/{name}/uplift", get(pages::journeys::uplift))
        .route("/journeys/{name}/simulation", get(pages::journeys::simulation))
        .route("/feedback", get(pages::feedback::page))
        .route("/settings", get(pages::settings::page))
        .route("/settings/tokens", post(pages::settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(pages::settings::revoke_token))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(state)
}
