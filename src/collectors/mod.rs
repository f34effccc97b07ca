//! Collectors: read the kernel, emit typed events, decide nothing.
//!
//! - [`kmsg`]: /dev/kmsg records through the shared parser.
//! - [`tracefs`]: signal deaths, OOM victims and slow shrinkers from an
//!   ftrace instance of our own, plus the flight recorder.
//! - [`proc`]: periodic /proc readings (dentry-state, vmstat, hung-task
//!   counters).
//! - [`psi`]: pressure-stall triggers in /proc/pressure, polled for
//!   POLLPRI (no periodic reads).
//! - [`settings`]: their parts of the `run:` configuration section.

pub mod kmsg;
pub mod proc;
pub mod psi;
pub mod settings;
pub mod tracefs;
