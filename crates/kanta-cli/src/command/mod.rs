//! One module per sub-command.

pub mod analyze;
pub mod demo;
pub mod fit;
pub mod generate;
pub mod import;
pub mod predict;
pub mod retention;
pub mod score;
pub mod serve;
pub mod token;
