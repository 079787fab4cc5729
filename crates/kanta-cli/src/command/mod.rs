//! One module per sub-command.

pub mod analyze;
pub mod demo;
pub mod generate;
