//! `GET /openapi.json`, generated from the handlers' annotations and types.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "kanta", description = "Customer store and ingestion API of kanta, the customer-retention engine."),
    paths(
        crate::ingest::customers, crate::ingest::orders, crate::ingest::events, crate::ingest::feedback, crate::inbound::receive,
        crate::customers::view, crate::customers::list, crate::customers::export, crate::customers::erase,
        crate::customers::audit, crate::segments::preview, crate::segments::create, crate::segments::list,
        crate::segments::show, crate::segments::delete, crate::segments::refresh, crate::segments::customers,
        crate::segments::transitions, crate::webhooks::list, crate::webhooks::deliveries, crate::webhooks::resume,
        crate::insights::feedback, crate::scores::runs,
        crate::journeys::apply, crate::journeys::list, crate::journeys::show, crate::journeys::pause,
        crate::journeys::resume, crate::journeys::runs, crate::journeys::report, crate::journeys::version, crate::journeys::bounce,
        crate::unsubscribe::page, crate::unsubscribe::confirm,
        crate::healthz, crate::metrics::render, spec,
    ),
    modifiers(&Bearer),
    tags((name = "ingest", description = "Batches of up to 10,000 records, atomic and idempotent"),
         (name = "customers", description = "The customer 360 view, listing, export and erasure"),
         (name = "segments", description = "Segment expressions over customers"),
         (name = "scores", description = "Scoring runs: RFM, lifecycle stages and the fitted customer models"),
         (name = "insights", description = "What the data says: feedback (NPS, CSAT, topics before lapse, who to call)"),
         (name = "webhooks", description = "Outbound webhook endpoints (configured in kanta.toml) and their delivery log"),
         (name = "journeys", description = "Lifecycle journeys: documents and versions, runs, pausing; bounces and complaints"),
         (name = "unsubscribe", description = "The pages behind the List-Unsubscribe links of marketing email (no token: the link is the authority)"),
         (name = "operations", description = "Health, metrics and this document")),
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, body = Object)))]
pub async fn spec() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
