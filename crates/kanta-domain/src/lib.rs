//! kanta's domain vocabulary: pure, synchronous, IO-free types shared across the crates.
//!
//! **Architecture Invariant:** nothing here reads a file, a socket, an environment variable or
//! the system clock directly, except [`SystemClock`], the one production implementation of
//! [`Clock`]. Code that decides what is due takes a `&dyn Clock` so tests can move time.

pub mod clock;
pub mod model;
pub mod purchase;
pub mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use model::{ModelKind, UnknownModel};
pub use time::{TimeBounds, TimeRange, TimeRangeError, Timestamp};
