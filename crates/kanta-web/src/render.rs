//! The templates, compiled into the binary and parsed once. Every value is escaped for HTML
//! (minijinja escapes templates named `*.html`); only the SVG charts drawn by
//! `kanta_report::charts` are marked safe, and those escape their own text.

use axum::response::Html;
use minijinja::Environment;
use serde::Serialize;

use crate::WebError;
use crate::session::Session;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("overview.html", include_str!("../templates/overview.html")),
    ("customers.html", include_str!("../templates/customers.html")),
    ("customer.html", include_str!("../templates/customer.html")),
    ("segments.html", include_str!("../templates/segments.html")),
    ("segment_new.html", include_str!("../templates/segment_new.html")),
    ("segment.html", include_str!("../templates/segment.html")),
    ("journeys.html", include_str!("../templates/journeys.html")),
    ("journey.html", include_str!("../templates/journey.html")),
    ("journey_uplift.html", include_str!("../templates/journey_uplift.html")),
    ("journey_simulation.html", include_str!("../templates/journey_simulation.html")),
    ("feedback.html", include_str!("../templates/feedback.html")),
    ("settings.html", include_str!("../templates/settings.html")),
];

/// The parsed templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Parses every template (a syntax error is a defect, found by the first test).
    pub fn new() -> Result<Templates, WebError> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Templates { env })
    }

    /// Renders `name` with `page` and the layout's context (who is logged in, the form token,
    /// which navigation entry is current).
    pub fn page<T: Serialize>(
        &self,
        name: &str,
        nav: &str,
        session: Option<&Session>,
        page: T,
    ) -> Result<Html<String>, WebError> {
        let layout = session.map(|s| {
            minijinja::context! {
                scope => s.scope.as_str(),
                admin => s.is_admin(),
                who => s.token_name.clone().unwrap_or_else(|| format!("token {}", s.token_id)),
                csrf => s.csrf.clone(),
            }
        });
        let context = minijinja::context! {
            session => layout,
            nav => nav,
            version => env!("CARGO_PKG_VERSION"),
            page => page,
        };
        Ok(Html(self.env.get_template(name)?.render(context)?))
    }
}
