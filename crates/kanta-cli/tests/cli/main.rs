//! End-to-end tests of the `kanta` binary. All CLI tests compile into this one binary.

mod cdnow;
mod crash;
mod degenerate;
mod errors;
mod formats;
mod import;
mod insights;
mod journeys;
mod live;
mod logs;
mod mail;
mod models;
mod pipes;
mod pushdown;
mod readme;
mod report;
mod score;
mod serve;
mod support;
mod tidy;
