//! The SQL dialects of the engines: how a name is quoted, a value bound, a date turned into a
//! day number, money into exact integers, and a table kept for the run.
//!
//! Every statement of the push-down is written once (`plan`) against this small vocabulary;
//! nothing a user typed reaches SQL but through [`Dialect::ident`] / [`Dialect::table_name`]
//! (names) or [`Dialect::bind`] (values), except the `--query` the user writes as SQL.

use std::fmt;

/// An engine's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (and Citus): `"names"`, `$n` parameters bound by the driver.
    Postgres,
    /// Spark SQL: `` `names` ``, values written as literals (the dialect formats them; only
    /// numbers reach SQL this way).
    Spark,
}

/// A value a statement needs: only numbers and booleans (the push-down binds no text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param {
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
}

/// A statement with its bound values (PostgreSQL's `$n`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sql {
    /// The text.
    pub text: String,
    /// The values of `$1`, `$2`, … in order.
    pub params: Vec<Param>,
}

impl fmt::Display for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The kind of a source column, as far as the push-down cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// Text of any length.
    Text,
    /// An integer of any width.
    Integer,
    /// An exact decimal.
    Decimal,
    /// A binary float.
    Float,
    /// A calendar day.
    Date,
    /// A timestamp without a time zone (its day is the day written).
    Timestamp,
    /// A timestamp with a time zone (its day is the UTC day).
    TimestampTz,
    /// Anything else, by the engine's name for it.
    Other(String),
}

impl ColumnType {
    /// The type from PostgreSQL's name (`sqlx`'s `PgTypeInfo::name`).
    pub fn postgres(name: &str) -> ColumnType {
        match name.to_ascii_uppercase().as_str() {
            "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "CITEXT" => ColumnType::Text,
            "INT2" | "INT4" | "INT8" => ColumnType::Integer,
            "NUMERIC" => ColumnType::Decimal,
            "FLOAT4" | "FLOAT8" => ColumnType::Float,
            "DATE" => ColumnType::Date,
            "TIMESTAMP" => ColumnType::Timestamp,
            "TIMESTAMPTZ" => ColumnType::TimestampTz,
            other => ColumnType::Other(other.to_ascii_lowercase()),
        }
    }

    /// The type from Spark's simple type string (`string`, `decimal(12,2)`, `timestamp_ntz`, …).
    pub fn spark(name: &str) -> ColumnType {
        let lower = name.to_ascii_lowercase();
        match lower.split('(').next().unwrap_or("") {
            "string" | "varchar" | "char" => ColumnType::Text,
            "tinyint" | "smallint" | "int" | "integer" | "bigint" | "byte" | "short" | "long" => ColumnType::Integer,
            "decimal" => ColumnType::Decimal,
            "float" | "double" | "real" => ColumnType::Float,
            "date" => ColumnType::Date,
            "timestamp_ntz" => ColumnType::Timestamp,
            "timestamp" | "timestamp_ltz" => ColumnType::TimestampTz,
            _ => ColumnType::Other(lower),
        }
    }

    /// In a message: "text", "a date", ….
    pub fn describe(&self) -> String {
        match self {
            ColumnType::Text => "text".into(),
            ColumnType::Integer => "an integer".into(),
            ColumnType::Decimal => "a decimal".into(),
            ColumnType::Float => "a float".into(),
            ColumnType::Date => "a date".into(),
            ColumnType::Timestamp => "a timestamp".into(),
            ColumnType::TimestampTz => "a timestamp with time zone".into(),
            ColumnType::Other(name) => format!("of type {name}"),
        }
    }
}

impl Dialect {
    /// The engine's name in messages.
    pub fn engine(self) -> &'static str {
        match self {
            Dialect::Postgres => "PostgreSQL",
            Dialect::Spark => "Spark",
        }
    }

    /// A quoted identifier: any text, quote characters doubled, so it can only name.
    pub fn ident(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Dialect::Spark => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// A table name as the user gave it to `--table` or `--into`: dot-separated parts
    /// (`schema.table`, `catalog.db.table`), each quoted. A part may itself be quoted the
    /// engine's way to hold a dot (`"my.schema".orders`).
    pub fn table_name(self, name: &str) -> Result<String, String> {
        let parts = split_name(name, self.quote_char())?;
        Ok(parts.iter().map(|p| self.ident(p)).collect::<Vec<_>>().join("."))
    }

    fn quote_char(self) -> char {
        match self {
            Dialect::Postgres => '"',
            Dialect::Spark => '`',
        }
    }

    /// A value in `sql`: PostgreSQL binds it (`$n`); Spark gets a literal the dialect writes
    /// itself from the number (shortest round-trip digits, so a double reads back to the same
    /// bits).
    pub fn bind(self, sql: &mut Sql, value: Param) -> String {
        match self {
            Dialect::Postgres => {
                sql.params.push(value);
                match value {
                    Param::Int(_) => format!("CAST(${} AS BIGINT)", sql.params.len()),
                    Param::Float(_) => format!("CAST(${} AS DOUBLE PRECISION)", sql.params.len()),
                }
            }
            Dialect::Spark => match value {
                Param::Int(v) => format!("CAST({v} AS BIGINT)"),
                Param::Float(v) if v.is_finite() => {
                    let mut buffer = ryu::Buffer::new();
                    format!("{}D", buffer.format(v))
                }
                Param::Float(v) if v.is_nan() => "CAST('NaN' AS DOUBLE)".into(),
                Param::Float(v) if v > 0.0 => "CAST('Infinity' AS DOUBLE)".into(),
                Param::Float(_) => "CAST('-Infinity' AS DOUBLE)".into(),
            },
        }
    }

    /// A string literal of text kanta itself writes (segment and stage names).
    pub fn string(self, text: &str) -> String {
        match self {
            Dialect::Postgres => format!("'{}'", text.replace('\'', "''")),
            Dialect::Spark => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        }
    }

    /// The name of a type.
    pub fn ty(self, ty: SqlType) -> &'static str {
        match (self, ty) {
            (_, SqlType::Int) => "INT",
            (_, SqlType::BigInt) => "BIGINT",
            (Dialect::Postgres, SqlType::Double) => "DOUBLE PRECISION",
            (Dialect::Spark, SqlType::Double) => "DOUBLE",
            (Dialect::Postgres, SqlType::Text) => "TEXT",
            (Dialect::Spark, SqlType::Text) => "STRING",
            (_, SqlType::Date) => "DATE",
            (_, SqlType::Money) => "DECIMAL(38,4)",
        }
    }

    /// `CAST(expr AS type)`.
    pub fn cast(self, expr: &str, ty: SqlType) -> String {
        format!("CAST({expr} AS {})", self.ty(ty))
    }

    /// Integer division of two integer expressions, truncating (both are ≥ 0 where used).
    pub fn div(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Postgres => format!("(({a}) / ({b}))"),
            Dialect::Spark => format!("(({a}) DIV ({b}))"),
        }
    }

    /// The day of a source value as days since 1970-01-01: a date's day, a timestamp's day as
    /// written, a time-zoned timestamp's UTC day (the day `kanta analyze` gives a time with an
    /// offset).
    pub fn epoch_day(self, expr: &str, ty: &ColumnType) -> Option<String> {
        let date = match (self, ty) {
            (_, ColumnType::Date) => expr.to_owned(),
            (Dialect::Postgres, ColumnType::Timestamp) => format!("CAST({expr} AS DATE)"),
            // sqlx opens its sessions in UTC already; the conversion is written out so the
            // day does not depend on a session setting (a pooler's, say).
            (Dialect::Postgres, ColumnType::TimestampTz) => format!("CAST(({expr}) AT TIME ZONE 'UTC' AS DATE)"),
            // The session runs in UTC (set when it opens), so `to_date` takes the UTC day.
            (Dialect::Spark, ColumnType::Timestamp | ColumnType::TimestampTz) => format!("to_date({expr})"),
            _ => return None,
        };
        Some(self.day_number(&date))
    }

    /// Days since 1970-01-01 of a DATE expression.
    pub fn day_number(self, date: &str) -> String {
        match self {
            Dialect::Postgres => format!("(({date}) - DATE '1970-01-01')"),
            Dialect::Spark => format!("unix_date({date})"),
        }
    }

    /// The month index (year × 12 + month − 1) of a day number.
    pub fn month_index(self, day: &str) -> String {
        match self {
            Dialect::Postgres => format!(
                "(CAST(EXTRACT(YEAR FROM DATE '1970-01-01' + ({day})) AS INT) * 12 + CAST(EXTRACT(MONTH FROM DATE '1970-01-01' + ({day})) AS INT) - 1)"
            ),
            Dialect::Spark => {
                format!("(year(date_from_unix_date({day})) * 12 + month(date_from_unix_date({day})) - 1)")
            }
        }
    }

    /// The DATE of a day number.
    pub fn date_of(self, day: &str) -> String {
        match self {
            Dialect::Postgres => format!("(DATE '1970-01-01' + CAST({day} AS INT))"),
            Dialect::Spark => format!("date_from_unix_date(CAST({day} AS INT))"),
        }
    }

    /// An amount in money's raw units (1/10,000), rounded half away from zero like
    /// `kanta_domain::money::Money`: exact for integers and decimals.
    pub fn money(self, expr: &str, ty: &ColumnType) -> Option<String> {
        let exact = match (self, ty) {
            (_, ColumnType::Integer) => return Some(format!("(CAST({expr} AS BIGINT) * 10000)")),
            (Dialect::Postgres, ColumnType::Decimal | ColumnType::Float) => format!("CAST({expr} AS NUMERIC)"),
            (Dialect::Spark, ColumnType::Decimal) => expr.to_owned(),
            (Dialect::Spark, ColumnType::Float) => format!("CAST({expr} AS DECIMAL(38,10))"),
            _ => return None,
        };
        Some(format!("CAST(ROUND({exact} * 10000) AS BIGINT)"))
    }

    /// quantity × unit price in raw money units, rounded like `Money`'s product.
    pub fn money_product(self, quantity: (&str, &ColumnType), price: (&str, &ColumnType)) -> Option<String> {
        let exact = |(expr, ty): (&str, &ColumnType)| -> Option<String> {
            match (self, ty) {
                (Dialect::Postgres, ColumnType::Integer | ColumnType::Decimal | ColumnType::Float) => {
                    Some(format!("CAST({expr} AS NUMERIC)"))
                }
                (Dialect::Spark, ColumnType::Integer | ColumnType::Decimal | ColumnType::Float) => {
                    Some(format!("CAST({expr} AS DECIMAL(38,10))"))
                }
                _ => None,
            }
        };
        Some(format!("CAST(ROUND({} * {} * 10000) AS BIGINT)", exact(quantity)?, exact(price)?))
    }

    /// A statement that keeps `select`'s rows for the rest of the run as `name`: a temporary
    /// table in PostgreSQL (gone with the session), a cached temporary view in Spark (computed
    /// once, kept in the executors' memory).
    pub fn keep(self, name: &str, select: &str) -> String {
        match self {
            Dialect::Postgres => format!("CREATE TEMPORARY TABLE {name} AS {select}"),
            Dialect::Spark => format!("CACHE TABLE {name} AS {select}"),
        }
    }

    /// Drops what [`Dialect::keep`] made, if it exists.
    pub fn drop_kept(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("DROP TABLE IF EXISTS {name}"),
            Dialect::Spark => format!("DROP VIEW IF EXISTS {name}"),
        }
    }

    /// The statement that creates the permanent table `name` from `select` (after a `DROP TABLE
    /// IF EXISTS`: `REPLACE TABLE` needs a v2 catalog in Spark, whose session catalog's Parquet
    /// tables are v1).
    pub fn create_table(self, name: &str, select: &str) -> String {
        match self {
            Dialect::Postgres => format!("CREATE TABLE {name} AS {select}"),
            Dialect::Spark => format!("CREATE TABLE {name} USING parquet AS {select}"),
        }
    }
}

/// The SQL types the push-down creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    BigInt,
    /// Double.
    Double,
    /// Text.
    Text,
    /// Calendar day.
    Date,
    /// Exact money (4 decimals).
    Money,
}

/// Splits `a.b."c.d"` into its parts; quotes are the dialect's, doubled inside.
fn split_name(name: &str, quote: char) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&quote) {
            chars.next();
            loop {
                match chars.next() {
                    Some(c) if c == quote => {
                        if chars.peek() == Some(&quote) {
                            chars.next();
                            part.push(quote);
                        } else {
                            break;
                        }
                    }
                    Some(c) => part.push(c),
                    None => return Err(format!("`{name}` has a quote that is not closed")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(format!(
                "`{name}` has an empty part; give a table as name, schema.name or catalog.schema.name"
            ));
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(c) => return Err(format!("`{name}`: `{c}` after a quoted part; parts are separated by dots")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_their_quotes_doubled() {
        assert_eq!(Dialect::Postgres.ident("order date"), "\"order date\"");
        assert_eq!(Dialect::Postgres.ident("x\"; DROP TABLE t; --"), "\"x\"\"; DROP TABLE t; --\"");
        assert_eq!(Dialect::Spark.ident("a`b"), "`a``b`");
    }

    #[test]
    fn table_names_split_on_dots_outside_quotes() {
        assert_eq!(Dialect::Postgres.table_name("public.orders").unwrap(), "\"public\".\"orders\"");
        assert_eq!(Dialect::Postgres.table_name("\"my.schema\".\"a\"\"b\"").unwrap(), "\"my.schema\".\"a\"\"b\"");
        assert_eq!(Dialect::Spark.table_name("`a.b`.c").unwrap(), "`a.b`.`c`");
        assert_eq!(
            Dialect::Postgres.table_name("orders; DROP TABLE x").unwrap(),
            "\"orders; DROP TABLE x\"",
            "no dot: one name, whatever it holds"
        );
        assert!(Dialect::Postgres.table_name("a..b").is_err());
        assert!(Dialect::Postgres.table_name("\"open").is_err());
        assert!(Dialect::Postgres.table_name("").is_err());
    }

    #[test]
    fn values_are_bound_in_postgres_and_written_exactly_in_spark() {
        let mut sql = Sql::default();
        assert_eq!(Dialect::Postgres.bind(&mut sql, Param::Int(7)), "CAST($1 AS BIGINT)");
        assert_eq!(Dialect::Postgres.bind(&mut sql, Param::Float(0.1)), "CAST($2 AS DOUBLE PRECISION)");
        assert_eq!(sql.params, [Param::Int(7), Param::Float(0.1)]);
        let mut spark = Sql::default();
        assert_eq!(Dialect::Spark.bind(&mut spark, Param::Int(-3)), "CAST(-3 AS BIGINT)");
        assert_eq!(Dialect::Spark.bind(&mut spark, Param::Float(0.1)), "0.1D");
        assert_eq!(Dialect::Spark.bind(&mut spark, Param::Float(1.5e-300)), "1.5e-300D");
        assert!(spark.params.is_empty());
        // The shortest digits read back to the same bits.
        let v = 2.0f64.sqrt();
        let text = Dialect::Spark.bind(&mut spark, Param::Float(v));
        assert_eq!(text.trim_end_matches('D').parse::<f64>().unwrap().to_bits(), v.to_bits());
    }

    #[test]
    fn string_literals_escape_the_quote_each_engine_reads() {
        assert_eq!(Dialect::Postgres.string("Can't lose them"), "'Can''t lose them'");
        assert_eq!(Dialect::Spark.string("Can't lose them"), "'Can\\'t lose them'");
        assert_eq!(Dialect::Spark.string("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn column_types_are_read_from_each_engines_names() {
        assert_eq!(ColumnType::postgres("int4"), ColumnType::Integer);
        assert_eq!(ColumnType::postgres("TIMESTAMPTZ"), ColumnType::TimestampTz);
        assert_eq!(ColumnType::postgres("JSONB"), ColumnType::Other("jsonb".into()));
        assert_eq!(ColumnType::spark("decimal(12,2)"), ColumnType::Decimal);
        assert_eq!(ColumnType::spark("timestamp_ntz"), ColumnType::Timestamp);
        assert_eq!(ColumnType::spark("timestamp"), ColumnType::TimestampTz);
        assert_eq!(ColumnType::spark("string"), ColumnType::Text);
    }
}
