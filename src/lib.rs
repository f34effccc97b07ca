//! watchdog: keeps enterprise Linux servers ready to explain their own
//! hangs, OOM kills and crashes.
//!
//! The binary is a thin shell over this library: [`cli`] parses arguments
//! and dispatches to the subcommands. Every read of the kernel goes through
//! [`host::Host`], which holds the root directory (`--root`).
//!
//! Modules are private unless another crate uses them: the binary (`cli`),
//! the integration tests (`config`, `host`, `incident`, which build
//! bundles the way the daemon does), the fuzz crate (through its own
//! facade) and the benchmark's load generator (`floor`). Everything else
//! is reachable only from here, so the compiler reports code nothing
//! uses.

mod check;
pub mod cli;
mod collectors;
pub mod config;
mod daemon;
mod engine;
mod error;
mod eventlog;
mod events;
mod forward;
pub mod fuzzing;
/// For the benchmark's load generator (`examples/udpload.rs`): the
/// receive loop alone, the floor under udplogger's figures.
#[doc(hidden)]
pub mod floor {
    pub use crate::udplogger::floor::{receive, Received};
}
/// For the benchmark's load generator: workers fed made-up datagrams
/// without sockets, one-worker path or staged.
#[doc(hidden)]
pub mod replay {
    pub use crate::udplogger::replay::{replay, Replayed};
}
pub mod host;
pub mod incident;
pub mod journal;
mod kernel;
mod lastboot;
mod marker;
mod metrics;
mod notify;
mod output;
mod parse;
mod patterns;
mod run;
mod scan;
mod sys;
#[cfg(test)]
mod testing;
mod triggers;
mod udplogger;
