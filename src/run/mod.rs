//! What `watchdog run` owns besides its loop (`crate::daemon`): its
//! configuration section and its metrics.
//!
//! - [`settings`]: the `run:` section, its defaults and its validation
//! - [`metrics`]: the counters exported to node_exporter

pub mod metrics;
pub mod settings;
