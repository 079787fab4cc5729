//! Finding the customer, order, time and amount columns by name.
//!
//! Names are compared after lower-casing and dropping everything but letters and digits, so
//! `Customer ID`, `customer_id` and `CustomerID` all match `customerid`. Each role has a list
//! of candidates in order of preference; the first candidate present wins, and the choice is
//! reported so a wrong guess is visible (`kanta analyze` prints it, `--json` includes it).

use std::fmt;

use crate::error::ReadError;

/// Columns named explicitly by the user (flags); `None` means "detect".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnSpec {
    /// `--customer-col`.
    pub customer: Option<String>,
    /// `--order-col`; the special value `none` means the file has no order ids.
    pub order: Option<String>,
    /// `--time-col`.
    pub time: Option<String>,
    /// `--amount-col`.
    pub amount: Option<String>,
    /// `--quantity-col`.
    pub quantity: Option<String>,
    /// `--price-col`.
    pub unit_price: Option<String>,
    /// `--product-col` (only read by importers that keep order lines).
    pub product: Option<String>,
    /// `--category-col` (only read by importers that keep order lines).
    pub category: Option<String>,
}

/// Where the amount of a line comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountSource {
    /// A column holding the line amount.
    Column(usize),
    /// quantity × unit price.
    Product {
        /// Quantity column.
        quantity: usize,
        /// Unit price column.
        unit_price: usize,
    },
}

/// The columns chosen for each role, as indices into the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// All column names, as in the file.
    pub names: Vec<String>,
    /// Customer id.
    pub customer: usize,
    /// Order id, if any.
    pub order: Option<usize>,
    /// Order time.
    pub time: usize,
    /// Amount.
    pub amount: AmountSource,
    /// Which roles were detected rather than named by a flag.
    pub detected: Vec<&'static str>,
    /// The product columns of a line, when the caller keeps lines and the file has a product
    /// column ([`Columns::resolve_lines`]).
    pub lines: Option<LineColumns>,
}

/// Where a line's product, category, quantity and unit price are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineColumns {
    /// Product id or SKU.
    pub product: usize,
    /// Product category, if the file has one.
    pub category: Option<usize>,
    /// Quantity; without one a line is one unit.
    pub quantity: Option<usize>,
    /// Unit price; without one it is the line amount ÷ quantity.
    pub unit_price: Option<usize>,
}

impl Columns {
    /// The highest column index used.
    pub fn max_index(&self) -> usize {
        let mut m = self.customer.max(self.time);
        if let Some(o) = self.order {
            m = m.max(o);
        }
        match self.amount {
            AmountSource::Column(a) => m.max(a),
            AmountSource::Product { quantity, unit_price } => m.max(quantity).max(unit_price),
        }
    }

    /// The name of column `index`.
    pub fn name(&self, index: usize) -> &str {
        self.names.get(index).map_or("?", String::as_str)
    }
}

impl fmt::Display for Columns {
    /// `customer = customer_id, order = InvoiceNo, time = InvoiceDate (detected), amount = Quantity × UnitPrice (detected)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = |role: &str| if self.detected.contains(&role) { " (detected)" } else { "" };
        write!(f, "customer = {}{}", self.name(self.customer), tag("customer"))?;
        match self.order {
            Some(o) => write!(f, ", order = {}{}", self.name(o), tag("order"))?,
            None => write!(f, ", order = none (each row is an order)")?,
        }
        write!(f, ", time = {}{}", self.name(self.time), tag("time"))?;
        match self.amount {
            AmountSource::Column(a) => write!(f, ", amount = {}{}", self.name(a), tag("amount"))?,
            AmountSource::Product { quantity, unit_price } => {
                write!(f, ", amount = {} × {}{}", self.name(quantity), self.name(unit_price), tag("amount"))?
            }
        }
        if let Some(lines) = &self.lines {
            write!(f, ", product = {}{}", self.name(lines.product), tag("product"))?;
            if let Some(c) = lines.category {
                write!(f, ", category = {}{}", self.name(c), tag("category"))?;
            }
        }
        Ok(())
    }
}

const CUSTOMER: &[&str] = &[
    "customerid",
    "customer",
    "customernumber",
    "customerno",
    "custid",
    "clientid",
    "client",
    "userid",
    "user",
    "buyerid",
    "memberid",
    "accountid",
    "contactid",
    "customeremail",
    "email",
    "emailaddress",
];
const ORDER: &[&str] = &[
    "orderid",
    "order",
    "ordernumber",
    "orderno",
    "ordername",
    "invoiceno",
    "invoice",
    "invoiceid",
    "invoicenumber",
    "transactionid",
    "receiptid",
    "receiptno",
    "salesorder",
    "basketid",
    "checkoutid",
];
const TIME: &[&str] = &[
    "orderdate",
    "ordertime",
    "orderedat",
    "invoicedate",
    "purchasedate",
    "purchasedat",
    "transactiondate",
    "createdat",
    "created",
    "date",
    "datetime",
    "timestamp",
    "ts",
    "time",
    "processedat",
    "paidat",
];
const AMOUNT: &[&str] = &[
    "amount",
    "total",
    "revenue",
    "ordertotal",
    "totalamount",
    "totalprice",
    "linetotal",
    "lineamount",
    "sales",
    "salesamount",
    "saleamount",
    "value",
    "ordervalue",
    "dollarvalue",
    "netamount",
    "grossamount",
    "subtotal",
    "totalsales",
    "pricetotal",
    "spend",
];
const QUANTITY: &[&str] = &["quantity", "qty", "units", "count", "numberofitems"];
const UNIT_PRICE: &[&str] = &["unitprice", "price", "itemprice", "priceeach", "priceperunit"];
const PRODUCT: &[&str] = &[
    "productid",
    "product",
    "sku",
    "productsku",
    "stockcode",
    "itemid",
    "item",
    "itemsku",
    "lineitemsku",
    "variantid",
    "articleid",
    "article",
    "productcode",
];
const CATEGORY: &[&str] =
    &["category", "productcategory", "categoryname", "itemcategory", "productgroup", "producttype", "department"];

/// Lower-case letters and digits only.
pub fn normalize(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

fn available(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn looked_for(candidates: &[&str]) -> String {
    let mut list: Vec<&str> = candidates.iter().take(8).copied().collect();
    list.push("…");
    list.join(", ")
}

fn explicit(path: &str, names: &[String], name: &str, flag: &'static str) -> Result<usize, ReadError> {
    names
        .iter()
        .position(|n| n == name)
        .or_else(|| names.iter().position(|n| normalize(n) == normalize(name)))
        .ok_or_else(|| ReadError::UnknownColumn {
            path: path.to_owned(),
            name: name.to_owned(),
            flag,
            available: available(names),
        })
}

fn detect(names: &[String], candidates: &[&str], taken: &[usize]) -> Option<usize> {
    let normalized: Vec<String> = names.iter().map(|n| normalize(n)).collect();
    candidates.iter().find_map(|c| normalized.iter().enumerate().position(|(i, n)| n == c && !taken.contains(&i)))
}

impl Columns {
    /// Chooses the columns for a header.
    pub fn resolve(path: &str, names: Vec<String>, spec: &ColumnSpec) -> Result<Columns, ReadError> {
        let mut detected = Vec::new();
        let missing = |role, candidates: &[&str], flag| ReadError::MissingColumn {
            path: path.to_owned(),
            role,
            looked_for: looked_for(candidates),
            available: available(&names),
            flag,
        };
        let customer = match &spec.customer {
            Some(name) => explicit(path, &names, name, "--customer-col")?,
            None => {
                detected.push("customer");
                detect(&names, CUSTOMER, &[]).ok_or_else(|| missing("customer id", CUSTOMER, "--customer-col"))?
            }
        };
        let time = match &spec.time {
            Some(name) => explicit(path, &names, name, "--time-col")?,
            None => {
                detected.push("time");
                detect(&names, TIME, &[customer]).ok_or_else(|| missing("order date", TIME, "--time-col"))?
            }
        };
        let order = match spec.order.as_deref() {
            Some("none") => None,
            Some(name) => Some(explicit(path, &names, name, "--order-col")?),
            None => {
                detected.push("order");
                detect(&names, ORDER, &[customer, time])
            }
        };
        let mut taken = vec![customer, time];
        taken.extend(order);
        let amount = match (&spec.amount, &spec.quantity, &spec.unit_price) {
            (Some(name), _, _) => AmountSource::Column(explicit(path, &names, name, "--amount-col")?),
            (None, Some(q), Some(p)) => AmountSource::Product {
                quantity: explicit(path, &names, q, "--quantity-col")?,
                unit_price: explicit(path, &names, p, "--price-col")?,
            },
            _ => {
                detected.push("amount");
                if let Some(a) = detect(&names, AMOUNT, &taken) {
                    AmountSource::Column(a)
                } else {
                    let quantity = match &spec.quantity {
                        Some(q) => Some(explicit(path, &names, q, "--quantity-col")?),
                        None => detect(&names, QUANTITY, &taken),
                    };
                    let unit_price = match &spec.unit_price {
                        Some(p) => Some(explicit(path, &names, p, "--price-col")?),
                        None => detect(&names, UNIT_PRICE, &taken),
                    };
                    match (quantity, unit_price) {
                        (Some(quantity), Some(unit_price)) => AmountSource::Product { quantity, unit_price },
                        _ => return Err(missing("amount", AMOUNT, "--amount-col (or --quantity-col and --price-col)")),
                    }
                }
            }
        };
        Ok(Columns { names, customer, order, time, amount, detected, lines: None })
    }

    /// Adds the product columns of a line, for importers that keep order lines: the product
    /// (detected from `product_id`, `sku`, `StockCode`, … or `--product-col`), its category,
    /// and the quantity and unit price. A file without a product column has no lines
    /// (`lines` stays `None`); a column named by a flag must exist.
    pub fn resolve_lines(&mut self, path: &str, spec: &ColumnSpec) -> Result<(), ReadError> {
        let names = &self.names;
        let mut taken = vec![self.customer, self.time];
        taken.extend(self.order);
        match self.amount {
            AmountSource::Column(a) => taken.push(a),
            AmountSource::Product { quantity, unit_price } => taken.extend([quantity, unit_price]),
        }
        let mut detected = Vec::new();
        let mut pick = |name: &Option<String>, flag, candidates: &[&str], role, taken: &[usize]| match name {
            Some(n) => explicit(path, names, n, flag).map(Some),
            None => {
                let found = detect(names, candidates, taken);
                if found.is_some() {
                    detected.push(role);
                }
                Ok(found)
            }
        };
        let Some(product) = pick(&spec.product, "--product-col", PRODUCT, "product", &taken)? else {
            return Ok(());
        };
        taken.push(product);
        let category = pick(&spec.category, "--category-col", CATEGORY, "category", &taken)?;
        let (quantity, unit_price) = match self.amount {
            AmountSource::Product { quantity, unit_price } => (Some(quantity), Some(unit_price)),
            AmountSource::Column(_) => {
                let quantity = match &spec.quantity {
                    Some(q) => Some(explicit(path, names, q, "--quantity-col")?),
                    None => detect(names, QUANTITY, &taken),
                };
                let unit_price = match &spec.unit_price {
                    Some(p) => Some(explicit(path, names, p, "--price-col")?),
                    None => detect(names, UNIT_PRICE, &taken),
                };
                (quantity, unit_price)
            }
        };
        self.detected.extend(detected);
        self.lines = Some(LineColumns { product, category, quantity, unit_price });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_the_online_retail_layout_with_quantity_times_price() {
        let cols = Columns::resolve(
            "x.csv",
            names(&["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]),
            &ColumnSpec::default(),
        )
        .unwrap();
        assert_eq!((cols.customer, cols.order, cols.time), (6, Some(0), 4));
        assert_eq!(cols.amount, AmountSource::Product { quantity: 3, unit_price: 5 });
        assert_eq!(
            cols.to_string(),
            "customer = CustomerID (detected), order = InvoiceNo (detected), time = InvoiceDate (detected), \
             amount = Quantity × UnitPrice (detected)"
        );
    }

    #[test]
    fn detects_cdnow_and_shopify_style_names() {
        let cdnow = Columns::resolve(
            "m",
            names(&["customer_id", "date", "number_of_cds", "dollar_value"]),
            &ColumnSpec::default(),
        )
        .unwrap();
        assert_eq!((cdnow.customer, cdnow.order, cdnow.time, cdnow.amount), (0, None, 1, AmountSource::Column(3)));
        let shop =
            Columns::resolve("s", names(&["Name", "Email", "Created at", "Total", "Subtotal"]), &ColumnSpec::default())
                .unwrap();
        assert_eq!((shop.customer, shop.time, shop.amount.clone()), (1, 2, AmountSource::Column(3)));
    }

    #[test]
    fn explicit_names_win_and_unknown_names_are_reported() {
        let spec = ColumnSpec { customer: Some("sample_id".into()), order: Some("none".into()), ..Default::default() };
        let cols =
            Columns::resolve("s", names(&["master_id", "sample_id", "date", "cds", "dollar_value"]), &spec).unwrap();
        assert_eq!((cols.customer, cols.order), (1, None));
        assert!(!cols.detected.contains(&"customer"));
        let bad = ColumnSpec { customer: Some("client".into()), ..Default::default() };
        let err = Columns::resolve("s.csv", names(&["id", "date"]), &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.csv: there is no column `client` (given with --customer-col); the columns are: `id`, `date`"
        );
    }

    #[test]
    fn a_missing_role_names_what_was_tried() {
        let err = Columns::resolve("o.csv", names(&["customer", "day", "amount"]), &ColumnSpec::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("o.csv: no order date column found (looked for orderdate, ordertime"), "{message}");
        assert!(
            message.ends_with("the columns are: `customer`, `day`, `amount`. Name it with --time-col"),
            "{message}"
        );
    }
}
