//! watchdog: keeps enterprise Linux servers ready to explain their own
//! hangs, OOM kills and crashes.
//!
//! The binary is a thin shell over this library: [`cli`] parses arguments
//! and dispatches to the subcommands. Every read of the kernel goes through
//! [`host::Host`], which holds the root directory (`--root`).

pub mod check;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod eventlog;
pub mod events;
pub mod fuzzing;
pub mod host;
pub mod incident;
pub mod kernel;
pub mod marker;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod parse;
pub mod run;
pub mod scan;
pub mod sys;
pub mod triggers;
pub mod udplogger;
