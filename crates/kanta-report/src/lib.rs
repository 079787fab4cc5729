//! Renders an analysis for people and scripts: a terminal table, `summary.json` and a
//! self-contained `report.html` with SVG charts; and a journey's uplift report as a page of its
//! own ([`uplift`]).
//!
//! **Architecture Invariant:** rendering is a pure function of the analysis and the input
//! description; the caller writes the strings wherever it wants.

pub mod charts;
pub mod format;
mod html;
pub mod simulation;
mod text;
pub mod uplift;

use kanta_core::analysis::BusinessSummary;
use kanta_score::{HoldoutReport, ModelSummary};
use serde::Serialize;

pub use html::render_html;

/// The stylesheet the HTML pages share, included inline by each (`templates/base.css`).
const BASE_CSS: &str = include_str!("../templates/base.css");
pub use text::render_text;

/// What was read, for the report header and `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputInfo {
    /// The input's name.
    pub file: String,
    /// `csv (,)`, `whitespace`, `parquet`, with `+ gzip` when compressed.
    pub format: String,
    /// The columns used, e.g. `customer = customer_id (detected), …`.
    pub columns: String,
    /// Data rows read.
    pub rows: u64,
    /// Bad rows skipped under `--max-errors`.
    pub rows_skipped: u64,
    /// Their messages (the first 100).
    pub skipped: Vec<String>,
    /// The unit of recency and T: `day` or `week`.
    pub period: String,
    /// The currency code for display, if given.
    pub currency: Option<String>,
}

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    /// kanta's version.
    pub kanta_version: &'static str,
    /// The input.
    pub input: InputInfo,
    /// The summary.
    pub summary: &'a BusinessSummary,
    /// The customer models, when they were fitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<&'a ModelSummary>,
    /// Why the models were not fitted (`--model none`, or a fit failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_skipped: Option<String>,
    /// The holdout validation (`--holdout-from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<&'a HoldoutReport>,
    /// What a push-down run moved (`kanta analyze --engine`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushdown: Option<PushdownInfo>,
}

/// What a push-down run (`kanta analyze --engine`) aggregated in the engine and moved to kanta.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushdownInfo {
    /// The engine, its URL without the password.
    pub engine: String,
    /// The score table written in the engine.
    pub score_table: String,
    /// Source rows aggregated in the engine.
    pub rows_aggregated: u64,
    /// Orders they summed into.
    pub orders: u64,
    /// Customers.
    pub customers: u64,
    /// Distinct (x, t_x, T) histories pulled to kanta.
    pub distinct_histories: u64,
    /// Distinct (x, repeat value) spend keys pulled.
    pub spend_keys: u64,
    /// Bytes of result values received from the engine.
    pub bytes_received: u64,
    /// Statements run in the engine.
    pub statements: u32,
    /// Seconds waiting for the engine.
    pub engine_seconds: f64,
    /// Seconds in kanta (fitting, predicting, summarising).
    pub kanta_seconds: f64,
    /// Seconds waiting for the engine per step, in the order the steps ran.
    pub steps: Vec<PushdownStep>,
}

/// One step of a push-down run and the engine's time on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushdownStep {
    /// What kanta asked for (`summing lines into orders`, …).
    pub step: String,
    /// Seconds.
    pub seconds: f64,
}

impl Report<'_> {
    /// `summary.json`: pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
