//! Order lines with their product, for importers that store lines and not only order totals.
//!
//! `kanta analyze` needs nothing but the customer, order, time and amount of a line, so the
//! product columns are decoded only when a caller asks for lines
//! ([`crate::read_orders_with_lines`]); the analysis path pays one branch per row for it.

use kanta_core::money::{Money, SCALE};

use crate::columns::LineColumns;
use crate::rows::FieldProblem;

/// The product side of one accepted order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineDetail<'a> {
    /// Product id or SKU, trimmed.
    pub product: &'a str,
    /// Category, trimmed; `None` when the file has no category column or the cell is empty.
    pub category: Option<&'a str>,
    /// Units bought, always positive (a return line's sign moves to the price).
    pub quantity: Money,
    /// Price of one unit; `quantity × unit_price` is the line amount.
    pub unit_price: Money,
}

/// The raw cells of a line's product columns, before checking.
pub(crate) struct DetailCells<'a> {
    pub(crate) product: &'a [u8],
    pub(crate) category: Option<&'a [u8]>,
    pub(crate) quantity: Option<Money>,
    pub(crate) unit_price: Option<Money>,
}

/// Checks a line's product cells against its amount.
///
/// - an empty product cell gives no line (the order keeps its total);
/// - a missing quantity column means one unit; a missing unit price column means
///   `amount ÷ quantity`, rounded half away from zero to four decimals;
/// - a negative quantity (a return written as `-1 × 9.99`) becomes a positive quantity with a
///   negative price, so the line's value keeps its sign and quantities stay positive, as the
///   store requires;
/// - a zero quantity gives no line: nothing was bought.
pub(crate) fn check<'a>(
    columns: &LineColumns,
    cells: DetailCells<'a>,
    amount: Money,
) -> Result<Option<LineDetail<'a>>, FieldProblem> {
    let product = utf8(cells.product, columns.product)?;
    if product.is_empty() {
        return Ok(None);
    }
    let category = match (cells.category, columns.category) {
        (Some(bytes), Some(column)) => Some(utf8(bytes, column)?).filter(|c| !c.is_empty()),
        _ => None,
    };
    let quantity = cells.quantity.unwrap_or(Money::from_raw(SCALE));
    if quantity == Money::ZERO {
        return Ok(None);
    }
    let unit_price = match cells.unit_price {
        Some(p) => p,
        None => divide(amount, quantity).ok_or_else(|| FieldProblem {
            column: columns.quantity,
            reason: format!("the unit price {} ÷ {} is out of range", amount.to_f64(), quantity.to_f64()),
        })?,
    };
    let (quantity, unit_price) = if quantity.raw() < 0 {
        (Money::from_raw(-quantity.raw()), Money::from_raw(-unit_price.raw()))
    } else {
        (quantity, unit_price)
    };
    Ok(Some(LineDetail { product, category, quantity, unit_price }))
}

fn utf8(bytes: &[u8], column: usize) -> Result<&str, FieldProblem> {
    std::str::from_utf8(bytes).map(str::trim).map_err(|_| FieldProblem {
        column: Some(column),
        reason: format!("`{}` is not valid UTF-8", String::from_utf8_lossy(bytes)),
    })
}

/// `amount ÷ quantity` in four-decimal fixed point, rounded half away from zero; `None` when
/// the quantity is zero or the result does not fit.
fn divide(amount: Money, quantity: Money) -> Option<Money> {
    let q = i128::from(quantity.raw());
    if q == 0 {
        return None;
    }
    let n = i128::from(amount.raw()) * i128::from(SCALE);
    let (n, q) = if q < 0 { (-n, -q) } else { (n, q) };
    let rounded = if n >= 0 { (n + q / 2) / q } else { (n - q / 2) / q };
    i64::try_from(rounded).ok().map(Money::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        Money::parse(text, false).unwrap()
    }

    const ALL: LineColumns = LineColumns { product: 0, category: Some(1), quantity: Some(2), unit_price: Some(3) };

    fn cells<'a>(product: &'a str, category: &'a str, q: Option<&str>, p: Option<&str>) -> DetailCells<'a> {
        DetailCells {
            product: product.as_bytes(),
            category: Some(category.as_bytes()),
            quantity: q.map(money),
            unit_price: p.map(money),
        }
    }

    #[test]
    fn a_line_keeps_its_cells_trimmed() {
        let d = check(&ALL, cells(" P1 ", " coffee ", Some("2"), Some("3.25")), money("6.50")).unwrap().unwrap();
        assert_eq!(
            d,
            LineDetail { product: "P1", category: Some("coffee"), quantity: money("2"), unit_price: money("3.25") }
        );
    }

    #[test]
    fn an_empty_category_is_none_and_an_empty_product_is_no_line() {
        let d = check(&ALL, cells("P1", "  ", Some("1"), Some("5")), money("5")).unwrap().unwrap();
        assert_eq!(d.category, None);
        assert_eq!(check(&ALL, cells(" ", "coffee", Some("1"), Some("5")), money("5")).unwrap(), None);
    }

    #[test]
    fn without_quantity_and_price_columns_a_line_is_one_unit_of_its_amount() {
        let only_product = LineColumns { product: 0, category: None, quantity: None, unit_price: None };
        let d = check(&only_product, cells("P1", "ignored", None, None), money("12.5")).unwrap().unwrap();
        assert_eq!((d.quantity, d.unit_price, d.category), (money("1"), money("12.5"), None));
    }

    #[test]
    fn without_a_price_column_the_price_is_amount_over_quantity_rounded_half_away() {
        let no_price = LineColumns { unit_price: None, ..ALL };
        // 10 / 3 = 3.33333… → 3.3333; 0.0005 / 3 → 0.0002 (1.6667e-4 rounds to 2e-4).
        let d = check(&no_price, cells("P", "c", Some("3"), None), money("10")).unwrap().unwrap();
        assert_eq!(d.unit_price, money("3.3333"));
        assert_eq!(divide(money("0.0005"), money("3")), Some(money("0.0002")));
        assert_eq!(divide(money("-0.0005"), money("2")), Some(money("-0.0003")));
        assert_eq!(divide(money("1"), Money::ZERO), None);
    }

    #[test]
    fn a_negative_quantity_moves_its_sign_to_the_price_and_zero_is_no_line() {
        let d = check(&ALL, cells("P", "c", Some("-2"), Some("4.5")), money("-9")).unwrap().unwrap();
        assert_eq!((d.quantity, d.unit_price), (money("2"), money("-4.5")));
        assert_eq!(d.unit_price.times_quantity(d.quantity), Some(money("-9")));
        assert_eq!(check(&ALL, cells("P", "c", Some("0"), Some("4.5")), money("0")).unwrap(), None);
    }

    #[test]
    fn invalid_utf8_names_the_column() {
        let bad = DetailCells { product: b"P\xff", category: None, quantity: None, unit_price: None };
        let problem = check(&ALL, bad, money("1")).unwrap_err();
        assert_eq!(problem.column, Some(0));
        assert!(problem.reason.contains("not valid UTF-8"), "{}", problem.reason);
    }
}
