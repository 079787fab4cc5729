//! Journeys as data: lifecycle conversations (a welcome series, a next-purchase reminder, a
//! win-back offer) written as YAML or JSON documents, checked with every problem's position, and
//! the pure rules that decide when a step is due and whether a message may go.
//!
//! Pure and IO-free: the store keeps documents and runs, the server's engine drives them with the
//! injected clock, and `kanta-mail` renders and sends what this crate decides.
//!
//! The rules of what is due and what may go (every instant is an argument, nothing reads a
//! clock): [`zone`] (IANA zones, the customer → journey → settings → UTC chain, the one rule for
//! DST gaps and folds), [`when`] (`wait_until` a local time on allowed weekdays), [`guard`]
//! (consent, suppression, frequency cap and quiet hours, combined by [`guard::decide`]),
//! [`reentry`], [`dates`] (date and predicted-purchase triggers, catch-up after downtime),
//! [`cron`] (schedules), [`split`] (stable weighted splits), [`backoff`](mod@backoff) (retry
//! waits) and [`duration`] (`90d`, `3/7d`'s window).

/// Retry waits after temporary delivery failures: exponential, capped, deterministic jitter.
pub mod backoff;
/// Cron schedules evaluated on a zone's wall clock.
pub mod cron;
/// Date triggers, predicted-purchase triggers and the catch-up of missed days.
pub mod dates;
/// Written durations (`90d`) and saturating instant arithmetic.
pub mod duration;
/// The send-time guardrails and their combination.
pub mod guard;
/// Whether a customer may enter a journey again.
pub mod reentry;
/// Weighted random splits, stable per customer.
pub mod split;
/// `wait_until`: the next local time of day on allowed weekdays.
pub mod when;
/// Time zones and the local-time rules every other module uses.
pub mod zone;

pub use backoff::{Backoff, backoff};
pub use cron::{Schedule, ScheduleError};
pub use dates::{CatchUp, DateTrigger, MAX_CATCH_UP_DAYS, catch_up_days, predicted_day, too_late};
pub use duration::{DurationError, parse_duration};
pub use guard::{
    Cap, ConsentMode, ConsentState, Decision, FrequencyCap, Guardrails, MessageKind, QuietHours, Recipient,
    SettingError, SkipReason, decide,
};
pub use reentry::{Entry, PreviousRun, Reentry};
pub use when::{Weekdays, WeekdaysError, next_local_time};
pub use zone::{EffectiveZone, OutOfRange, UnknownZone, ZoneSource, effective_zone, local_day, parse_zone};
