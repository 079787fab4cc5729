//! What counts as a purchase: the rule stated once, in Rust and in SQL.
//!
//! A stored order has a status (`completed`, `refunded`, `cancelled`) and an amount (in
//! `Money`'s 1/10,000 units). The analysis reads orders the way `kanta analyze` reads an order
//! log, where a return is a negative line:
//!
//! - a **cancelled** order was never fulfilled: it is not in the log at all;
//! - a **refunded** order is a return: its amount counts negative, whatever sign it was stored with;
//! - a **completed** order counts with its amount as stored (a negative one is a return too).
//!
//! That is the order's [`signed_amount`]. Its sign decides what the order is ([`Kind`]): positive
//! is a **purchase**, negative a **return**, zero neither (`kanta analyze` drops zero-amount
//! orders unless `--keep-zero`). So a purchase is exactly a completed order with a positive
//! amount ([`is_purchase`], [`PURCHASE_SQL`]).
//!
//! The SQL fragments are over an `orders` table aliased `o` (the columns `o.status` and
//! `o.amount`); the store, the API's snapshot and the segment compiler use them, and
//! kanta-store's tests check on both databases that they agree with the Rust functions here.

use crate::record::OrderStatus;

/// The stored status of a fulfilled order.
pub const COMPLETED: &str = "completed";
/// The stored status of an order that was paid and then refunded.
pub const REFUNDED: &str = "refunded";
/// The stored status of an order that was never fulfilled.
pub const CANCELLED: &str = "cancelled";

/// What an order counts as, by the sign of its [`signed_amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A positive amount: a purchase.
    Purchase,
    /// A negative amount: a return (a refund, or a completed order stored negative).
    Return,
    /// A zero amount: neither (dropped by the analysis unless it keeps zero-amount orders).
    Zero,
}

impl Kind {
    /// What an order with this signed amount (see [`signed_amount`]) counts as.
    pub fn of(signed_amount: i64) -> Kind {
        match signed_amount.signum() {
            1 => Kind::Purchase,
            -1 => Kind::Return,
            _ => Kind::Zero,
        }
    }
}

/// An order's amount as an order log carries it: `None` for a cancelled order (not in the log),
/// `-|amount|` for a refunded one, the stored amount of a completed one.
pub fn signed_amount(status: OrderStatus, amount: i64) -> Option<i64> {
    match status {
        OrderStatus::Cancelled => None,
        OrderStatus::Refunded => Some(amount.saturating_abs().saturating_neg()),
        OrderStatus::Completed => Some(amount),
    }
}

/// Whether the order is a purchase: a completed order with a positive amount.
pub fn is_purchase(status: OrderStatus, amount: i64) -> bool {
    signed_amount(status, amount).is_some_and(|a| Kind::of(a) == Kind::Purchase)
}

/// SQL: the order is in the log (see [`signed_amount`]): it was not cancelled.
pub const IN_LOG_SQL: &str = "o.status <> 'cancelled'";

/// SQL: the order's [`signed_amount`], for orders that are [`IN_LOG_SQL`].
pub const SIGNED_AMOUNT_SQL: &str = "CASE WHEN o.status = 'refunded' THEN -ABS(o.amount) ELSE o.amount END";

/// SQL: the order is a purchase ([`is_purchase`]): completed, with a positive amount.
pub const PURCHASE_SQL: &str = "o.status = 'completed' AND o.amount > 0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_signs_decide_what_an_order_is() {
        let cases = [
            (OrderStatus::Completed, 500, Some(500), Kind::Purchase),
            (OrderStatus::Completed, -500, Some(-500), Kind::Return),
            (OrderStatus::Completed, 0, Some(0), Kind::Zero),
            (OrderStatus::Refunded, 500, Some(-500), Kind::Return),
            (OrderStatus::Refunded, -500, Some(-500), Kind::Return),
            (OrderStatus::Refunded, 0, Some(0), Kind::Zero),
        ];
        for (status, amount, signed, kind) in cases {
            assert_eq!(signed_amount(status, amount), signed, "{status:?} {amount}");
            assert_eq!(Kind::of(signed.unwrap_or_default()), kind, "{status:?} {amount}");
            assert_eq!(is_purchase(status, amount), kind == Kind::Purchase, "{status:?} {amount}");
        }
        for amount in [500, -500, 0] {
            assert_eq!(signed_amount(OrderStatus::Cancelled, amount), None);
            assert!(!is_purchase(OrderStatus::Cancelled, amount));
        }
    }

    #[test]
    fn the_sql_names_the_stored_statuses() {
        let stored = [OrderStatus::Completed, OrderStatus::Refunded, OrderStatus::Cancelled].map(OrderStatus::as_str);
        assert_eq!(stored, [COMPLETED, REFUNDED, CANCELLED]);
        assert!(IN_LOG_SQL.contains(&format!("'{CANCELLED}'")));
        assert!(SIGNED_AMOUNT_SQL.contains(&format!("'{REFUNDED}'")));
        assert!(PURCHASE_SQL.contains(&format!("'{COMPLETED}'")));
    }

    #[test]
    fn the_largest_refund_does_not_overflow() {
        assert_eq!(signed_amount(OrderStatus::Refunded, i64::MIN), Some(-i64::MAX));
    }
}
