//! Integration tests: one binary, one module per area (ripgrep's layout).

// A test fails by panicking; the product's ban on unwrap/expect/panic
// (Cargo.toml [lints]) is for production code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod util;

mod check;
mod faults;
mod forward;
mod incidents;
mod journal;
mod lastboot;
mod layout;
mod metrics;
mod regression;
mod run;
mod scan;
mod systemd;
mod udplogger;
mod vm;
