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
}

impl Report<'_> {
    /// `summary.json`: pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
