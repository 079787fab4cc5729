//! Re-entry: whether a customer who has been in a journey before may enter it again.
//!
//! "Re-entry once (default), after: 90d, or always" (issue 17). Two runs of one journey for one
//! customer (and key) never overlap: the store's unique index enforces that, and this rule agrees
//! with it by refusing entry while the previous run is active, whatever the policy.

use std::time::Duration;

use kanta_domain::time::Timestamp;

/// A journey's re-entry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reentry {
    /// A customer enters at most once, ever (the default).
    #[default]
    Once,
    /// A customer may enter again once this long has passed **since the previous entry**
    /// (`entered_at`), and that run has ended. Counting from the entry, not the exit, makes
    /// `after: 90d` mean "at most one entry per 90 days" however long a run lasts.
    After(Duration),
    /// A customer may enter again as soon as the previous run has ended.
    Always,
}

/// The customer's most recent run of the journey (for the same key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousRun {
    /// When it entered.
    pub entered_at: Timestamp,
    /// When it ended (completed, exited or was cancelled); `None` while it is still active.
    pub ended_at: Option<Timestamp>,
}

/// Whether a customer may enter now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Enter.
    Enter,
    /// The previous run is still active (never two concurrent runs).
    Active,
    /// The policy is `once` and the customer has been in the journey.
    AlreadyEntered,
    /// The policy is `after`; entry is allowed from this instant on.
    NotBefore(Timestamp),
}

impl Reentry {
    /// The rule: no previous run → `Enter`; an active one → `Active`; then by policy: `once` →
    /// `AlreadyEntered`, `always` → `Enter`, `after(d)` → `Enter` when `now ≥ entered_at + d`
    /// (exactly at that instant counts), else `NotBefore(entered_at + d)`.
    pub fn may_enter(self, previous: Option<&PreviousRun>, now: Timestamp) -> Entry {
        let Some(previous) = previous else {
            return Entry::Enter;
        };
        if previous.ended_at.is_none() {
            return Entry::Active;
        }
        match self {
            Reentry::Once => Entry::AlreadyEntered,
            Reentry::Always => Entry::Enter,
            Reentry::After(delay) => {
                let from = previous.entered_at.saturating_add(delay);
                if now >= from { Entry::Enter } else { Entry::NotBefore(from) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn ended() -> PreviousRun {
        PreviousRun { entered_at: t("2026-01-01T09:00:00Z"), ended_at: Some(t("2026-01-31T09:00:00Z")) }
    }

    const NINETY_DAYS: Duration = Duration::from_secs(90 * 86_400);

    #[test]
    fn a_first_entry_is_always_allowed() {
        for policy in [Reentry::Once, Reentry::After(NINETY_DAYS), Reentry::Always] {
            assert_eq!(policy.may_enter(None, t("2026-01-01T00:00:00Z")), Entry::Enter);
        }
        assert_eq!(Reentry::default(), Reentry::Once);
    }

    #[test]
    fn no_policy_enters_while_the_previous_run_is_active() {
        let active = PreviousRun { ended_at: None, ..ended() };
        let much_later = t("2030-01-01T00:00:00Z");
        for policy in [Reentry::Once, Reentry::After(NINETY_DAYS), Reentry::Always] {
            assert_eq!(policy.may_enter(Some(&active), much_later), Entry::Active);
        }
    }

    #[test]
    fn once_never_enters_again_and_always_enters_after_the_run() {
        assert_eq!(Reentry::Once.may_enter(Some(&ended()), t("2030-01-01T00:00:00Z")), Entry::AlreadyEntered);
        assert_eq!(Reentry::Always.may_enter(Some(&ended()), t("2026-01-31T09:00:00Z")), Entry::Enter);
    }

    #[test]
    fn after_90d_counts_from_the_previous_entry_to_the_microsecond() {
        let policy = Reentry::After(NINETY_DAYS);
        // Entered 2026-01-01 09:00Z: 90 days later is 2026-04-01 09:00Z (not 90 days after the
        // run ended on 2026-01-31).
        let from = t("2026-04-01T09:00:00Z");
        assert_eq!(policy.may_enter(Some(&ended()), t("2026-04-01T08:59:59.999999Z")), Entry::NotBefore(from));
        assert_eq!(policy.may_enter(Some(&ended()), from), Entry::Enter);
        assert_eq!(policy.may_enter(Some(&ended()), t("2026-02-15T00:00:00Z")), Entry::NotBefore(from));
    }

    #[test]
    fn an_enormous_delay_saturates_instead_of_wrapping() {
        let policy = Reentry::After(Duration::MAX);
        let never = Timestamp::from_micros(i64::MAX);
        assert_eq!(policy.may_enter(Some(&ended()), t("2026-06-01T00:00:00Z")), Entry::NotBefore(never));
    }
}
