//! Integration tests: one binary, one module per area (ripgrep's layout).

mod util;

mod check;
mod incidents;
mod lastboot;
mod layout;
mod metrics;
mod regression;
mod run;
mod scan;
mod systemd;
mod udplogger;
mod vm;
