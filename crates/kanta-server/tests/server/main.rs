//! The server's suites, one binary: each spawns the whole application (`kanta_server::testing`)
//! and drives it over HTTP or raw TCP.

mod api;
mod application;
mod dashboard;
mod dashboard_browser;
mod http_limits;
mod journeys;
