//! Integration tests: one binary, one module per area (ripgrep's layout).

mod util;

mod check;
mod udplogger;
