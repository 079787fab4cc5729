//! kanta's domain vocabulary: pure, synchronous, IO-free types shared across the crates.
//!
//! **Architecture Invariant:** nothing here reads a file, a socket, an environment variable or
//! the system clock directly, except [`SystemClock`], the one production implementation of
//! [`Clock`]. Code that decides what is due takes a `&dyn Clock` so tests can move time.

pub mod clock;
pub mod contact;
pub mod model;
pub mod money;
pub mod purchase;
pub mod record;
pub mod stable;
pub mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use contact::{Currency, CustomerId, Email, Invalid, Locale, Phone, TimeZoneName};
pub use model::{ModelKind, UnknownModel};
pub use money::Money;
pub use time::{TimeBounds, TimeRange, TimeRangeError, Timestamp};

/// Lower-case hex of `bytes` (token hashes, derived event ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
