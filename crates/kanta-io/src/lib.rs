//! Reading order logs and writing customer tables.
//!
//! **API Boundary:** this crate turns files into [`kanta_core`] values and back. It owns every
//! file-format concern (delimiters, quoting, BOM, gzip, Parquet types, column names) and every
//! message that points at a file, line, column and value; `kanta-core` never sees a file.

pub mod columns;
mod decimal;
mod delimited;
pub mod error;
pub mod lines;
mod parquet;
mod pipeline;
pub mod read;
mod rows;
pub mod summary;
mod text;
pub mod write;

pub use error::{Location, ReadError, RowError};
pub use lines::LineDetail;
pub use pipeline::LineSink;
pub use read::{Delimiter, Format, Input, Progress, ReadOptions, ReadSummary, read_orders, read_orders_with_lines};
