//! Pure, IO-free retention analytics: the core of `kanta analyze`.
//!
//! Readers (in `kanta-io`) push order lines into an [`aggregate::Aggregator`]; its
//! [`aggregate::CustomerBase`] goes to [`analysis::analyze`], which returns one
//! [`analysis::CustomerSummary`] per customer and a [`analysis::BusinessSummary`].
//!
//! **Architecture Invariant:** this crate does no IO, is not async and knows nothing about
//! files, HTTP or databases; everything here is a function of its inputs.

pub mod aggregate;
pub mod analysis;
pub mod crosssell;
pub mod feedback;
pub mod intern;
pub mod lifecycle;
/// Exact money lives in the domain vocabulary; re-exported so `kanta_core::money` paths stay.
pub use kanta_domain::money;
pub mod rfm;
pub mod summary;
pub mod tier;
pub mod time;
