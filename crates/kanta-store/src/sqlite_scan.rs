//! The scoring job's read of every purchase from a SQLite file ([`crate::OrderStore::purchases`]),
//! stepping through the rows with rusqlite: orders on one thread, the categories of their lines
//! on another, a chunk of order ids at a time.
//!
//! Why not the driver: sqlx hands over each row as an object through a channel (about 1.2 µs a
//! row), and having SQLite print a chunk into strings that are parsed back (the PostgreSQL way,
//! `PURCHASE_CHUNK_SQL`) still cost about 0.6 µs an order and 0.9 µs a line with the join to its
//! order. Stepping a prepared statement and reading integers costs about a quarter of that, and
//! the lines need no join in SQL: they are read by the same order id ranges and joined to their
//! orders in memory ([`ChunkJoin`]).
//!
//! Each chunk is its own statement, so its own short read transaction (WAL lets the writer go
//! on meanwhile), as with the driver. The connections are opened read-only, beside the store's
//! pools, on the file the store opened.

use std::path::Path;
use std::sync::LazyLock;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use kanta_domain::purchase::{IN_LOG_SQL, SIGNED_AMOUNT_SQL};
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::purchases::{CHUNK, ChunkJoin, Purchases, Tagged};

/// The orders of the ids `?1 < id ≤ ?2` that an order log carries, with their signed amounts
/// (refunds negative, cancellations left out: `kanta_domain::purchase`). Times are floored to
/// seconds in Rust.
static ORDERS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT o.id, o.customer_id, o.time, {SIGNED_AMOUNT_SQL} \
         FROM orders o WHERE o.id > ?1 AND o.id <= ?2 AND {IN_LOG_SQL}"
    )
});

/// The categorised lines of the orders `?1 < order_id ≤ ?2` (the primary key's index).
const LINES_SQL: &str = "SELECT order_id, category FROM order_lines \
     WHERE order_id > ?1 AND order_id <= ?2 AND category IS NOT NULL";

/// Read the purchases of order ids up to `max` from `file` into `out`, chunk by chunk, with
/// their lines' categories when `lines`. Stops early, without an error, when `out`'s receiver
/// is gone.
pub(crate) fn purchases(
    file: &Path,
    max: i64,
    lines: bool,
    out: &tokio::sync::mpsc::Sender<Purchases>,
) -> Result<(), StoreError> {
    let chunks = max / CHUNK + 1;
    std::thread::scope(|scope| {
        // The line reader runs a chunk or two ahead; it stops when this side drops `line_rx`.
        let (line_tx, line_rx) = sync_channel::<Result<Lines, StoreError>>(2);
        if lines {
            scope.spawn(move || {
                let read = || -> Result<(), StoreError> {
                    let conn = open(file)?;
                    let mut statement = conn.prepare(LINES_SQL)?;
                    for k in 0..chunks {
                        let mut chunk = Lines::default();
                        let mut rows = statement.query([k * CHUNK, (k + 1) * CHUNK])?;
                        while let Some(row) = rows.next()? {
                            let category = row.get_ref(1)?.as_str();
                            let category = category.map_err(|e| StoreError::Corrupt(format!("line category: {e}")))?;
                            chunk.push(row.get(0)?, category);
                        }
                        if line_tx.send(Ok(chunk)).is_err() {
                            break;
                        }
                    }
                    Ok(())
                };
                if let Err(e) = read() {
                    let _ = line_tx.send(Err(e));
                }
            });
        } else {
            drop(line_tx);
        }

        let conn = open(file)?;
        let mut statement = conn.prepare(&ORDERS_SQL)?;
        let mut join = ChunkJoin::default();
        let mut ids = Vec::new();
        for k in 0..chunks {
            let lo = k * CHUNK;
            let mut chunk = Purchases::default();
            ids.clear();
            let mut rows = statement.query([lo, lo + CHUNK])?;
            while let Some(row) = rows.next()? {
                ids.push(row.get::<_, i64>(0)?);
                chunk.customer.push(row.get(1)?);
                chunk.time.push(row.get::<_, i64>(2)?.div_euclid(1_000_000));
                chunk.amount.push(row.get(3)?);
            }
            drop(rows);
            if lines {
                let read = line_rx.recv().map_err(|_| StoreError::Worker("the line reader stopped".into()))??;
                join.start(lo, CHUNK as usize, &ids, &chunk);
                for (id, category) in read.iter() {
                    join.line(id, category, &mut chunk);
                }
            }
            if !chunk.customer.is_empty() && out.blocking_send(chunk).is_err() {
                break;
            }
        }
        Ok(())
    })
}

/// One chunk's categorised lines: the categories tagged with their order ids.
type Lines = Tagged<i64>;

fn open(file: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}
