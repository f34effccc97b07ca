//! The library surface the fuzz crate (`fuzz/`, cargo-fuzz) drives, and
//! nothing else: each fuzz target imports only from here, so the rest of
//! the crate may keep its modules private without breaking the fuzzers.
//! Not an API for other programs; it changes with the parsers it exposes.

/// Saved logs and /dev/kmsg records: line framing and incident assembly.
pub mod parse {
    pub use crate::parse::frame::MAX_LINE;
    pub use crate::parse::{Framer, Parser, Record};
}

/// Events as `scan` prints them and rules see them, and their schema.
pub mod events {
    pub use crate::events::{kind_schema, Event, FieldType};
}

/// The live /dev/kmsg reader, behind a record source the target fakes.
pub mod kmsg {
    pub use crate::collectors::kmsg::{Drained, Reader, RecordSource, Start};
}

/// The `udplogger` receive path: the whole receiver (datagram in, log
/// file out) and its pure parts.
pub mod udplogger {
    pub use crate::udplogger::assemble::{Assembler, End};
    pub use crate::udplogger::clock::{Period, Stamper, Zone};
    pub use crate::udplogger::settings::{InputFormat, Layout, OutputFormat, UdpLoggerConfig};
    pub use crate::udplogger::Receiver;
}

/// Configuration from YAML text.
pub mod config {
    pub use crate::config::Config;
}

/// The kernel's own text: /proc tables, command line, sizes, releases,
/// and the printk record header.
pub mod kernel {
    pub use crate::kernel::cmdline::Cmdline;
    pub use crate::kernel::printk::{self, Flag, Header, MAX_HEADER};
    pub use crate::kernel::size::{human, memparse, CrashKernel};
    pub use crate::kernel::tables::{
        headroom, kb_field, kconfig_value, loadavg_threads, uptime_secs, DentryState,
    };
    pub use crate::kernel::version::{compare_builds, KernelVersion};
    pub use crate::kernel::{parse_int, parse_uint, quote};
}

/// udplogger's marker lines, written and read back.
pub mod marker {
    pub use crate::marker::{parse_json, parse_line, Body, Kind, Marker, MAX_GAP, SOURCE};
}
