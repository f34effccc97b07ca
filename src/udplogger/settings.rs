//! The `udplogger:` section of the configuration and the command-line
//! options that override it: one place for each receiver option's name,
//! default, range and meaning.
//!
//! [`UdpLoggerConfig`] is what serde fills from YAML (unknown keys are
//! refused); [`UdpLoggerConfig::apply_args`] lays the command line over
//! it; [`UdpLoggerConfig::compile`] checks everything and returns the
//! typed [`Settings`] the receiver runs on, or every problem with its YAML
//! path. Adding an option touches this file (field, default, range or
//! check, `Settings`, and `UdpLoggerArgs` if it has a flag),
//! config/watchdog.yaml and docs/udplogger.md.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::allow::Cidr;
use super::clock::{Period, Zone};
use super::extended::Window;
use super::output::OutputConfig;
use super::socket::parse_listen;
use crate::error::{ConfigError, Problems};

/// How datagrams are read (`udplogger.input`, `--input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// Extended when the datagram has the header, plain otherwise.
    Auto,
    /// Console text only, even if it looks like an extended header.
    Plain,
    /// Extended netconsole records (`+` in `netconsole=`).
    Extended,
}

/// What a log line looks like (`udplogger.output_format`, `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Text,
    Json,
}

/// Which files lines go to (`udplogger.layout`, `--per-sender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One file per period for every sender.
    Single,
    /// One directory of files per sender.
    PerSender,
}

/// `udplogger.workers`: a number of receiving threads, or `auto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WorkersConfig {
    Count(u64),
    Name(String),
}

impl WorkersConfig {
    /// `N` or `auto`, as `--workers` takes it.
    pub fn parse(s: &str) -> WorkersConfig {
        s.parse()
            .map_or(WorkersConfig::Name(s.to_string()), WorkersConfig::Count)
    }

    /// The thread count, or why not: `auto` is the online CPUs, at most
    /// [`MAX_WORKERS`].
    pub fn resolve(&self) -> Result<usize, String> {
        match self {
            WorkersConfig::Count(n) if (1..=MAX_WORKERS as u64).contains(n) => {
                Ok(usize::try_from(*n).unwrap_or(1))
            }
            WorkersConfig::Count(n) => Err(format!(
                "must be between 1 and {MAX_WORKERS} or \"auto\", found {n}"
            )),
            WorkersConfig::Name(s) if s == "auto" => Ok(std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(MAX_WORKERS)),
            WorkersConfig::Name(s) => Err(format!(
                "must be a number of threads or \"auto\", found {s:?}"
            )),
        }
    }
}

/// Receiving threads at most (`workers: auto` stops here).
pub const MAX_WORKERS: usize = 8;

/// Settings of `watchdog udplogger`; see config/watchdog.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpLoggerConfig {
    pub listen: Vec<String>,
    pub dir: String,
    pub receive_buffer_bytes: usize,
    pub input: InputFormat,
    pub output_format: OutputFormat,
    pub rotate: Period,
    pub timezone: Zone,
    pub max_file_bytes: u64,
    pub layout: Layout,
    pub file_mode: String,
    pub partial_timeout_ms: u64,
    pub max_line_bytes: usize,
    pub max_senders: usize,
    pub max_buffered_bytes: usize,
    pub allow: Vec<String>,
    pub fault_hold_bytes: usize,
    pub retry_max_ms: u64,
    pub metrics_file: String,
    pub workers: WorkersConfig,
    pub reorder_records: u64,
    pub reorder_ms: u64,
    pub hosts: BTreeMap<String, String>,
    pub hosts_file: String,
    pub detect: bool,
    pub event_log: String,
    pub event_log_max_bytes: u64,
    pub event_log_keep: u32,
    pub last_words_lines: usize,
    /// Syslog receivers every line and marker is also sent to.
    pub forward: Vec<crate::forward::TargetConfig>,
}

impl Default for UdpLoggerConfig {
    fn default() -> Self {
        UdpLoggerConfig {
            listen: vec!["[::]:6666".into()],
            dir: "/var/log/udplogger".into(),
            receive_buffer_bytes: 32 << 20,
            input: InputFormat::Auto,
            output_format: OutputFormat::Text,
            rotate: Period::Daily,
            timezone: Zone::Local,
            max_file_bytes: 0,
            layout: Layout::Single,
            file_mode: "0600".into(),
            partial_timeout_ms: 10_000,
            max_line_bytes: 16384,
            max_senders: 1024,
            max_buffered_bytes: 16 << 20,
            allow: Vec::new(),
            fault_hold_bytes: 64 << 20,
            retry_max_ms: 30_000,
            metrics_file: String::new(),
            workers: WorkersConfig::Count(1),
            reorder_records: 512,
            reorder_ms: 1000,
            hosts: BTreeMap::new(),
            hosts_file: String::new(),
            detect: true,
            event_log: String::new(),
            event_log_max_bytes: 16 << 20,
            event_log_keep: 4,
            last_words_lines: 200,
            forward: Vec::new(),
        }
    }
}

/// Everything the receiver needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    /// The default listen address may fall back to IPv4 only.
    pub listen_is_default: bool,
    pub receive_buffer: usize,
    pub format: InputFormat,
    pub zone: Zone,
    pub period: Period,
    pub output: OutputConfig,
    pub partial_timeout: Duration,
    /// Prometheus textfile, rewritten every [`super::METRICS_EVERY`].
    pub metrics_file: Option<PathBuf>,
    pub max_line: usize,
    pub max_senders: usize,
    pub max_buffered: usize,
    pub allow: Vec<Cidr>,
    /// Receiving threads, each with its own `SO_REUSEPORT` socket per
    /// listen address.
    pub workers: usize,
    pub window: Window,
    /// The `hosts` map, checked.
    pub hosts: HashMap<IpAddr, String>,
    pub hosts_file: Option<PathBuf>,
    /// Run the parser on every sender's lines.
    pub detect: bool,
    /// Where detected events go (`-`: stdout); `None`: nowhere but the
    /// metrics.
    pub event_log: Option<String>,
    pub event_log_max_bytes: u64,
    pub event_log_keep: u32,
    pub last_words_lines: usize,
    /// Syslog targets (`udplogger.forward`, `--forward`).
    pub forward: Vec<crate::forward::Target>,
}

/// The command-line options of `watchdog udplogger`; each one given
/// replaces its `udplogger.*` setting (see [`UdpLoggerConfig::apply_args`]).
#[derive(Debug, Args)]
pub struct UdpLoggerArgs {
    /// Address to receive on: ADDR:PORT, [IPV6]:PORT, ADDR or PORT
    /// (repeatable; default [::]:6666, dual-stack)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,
    /// Directory of the log files (default /var/log/udplogger)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Write Prometheus metrics to FILE (*.prom, for node_exporter's
    /// textfile collector), every 15 s and at exit
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Accept only senders in this network (CIDR; repeatable)
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Also send every line and marker to this syslog receiver:
    /// syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT or
    /// syslog+tls://HOST:PORT?ca=FILE (repeatable; replaces udplogger.forward)
    #[arg(long, value_name = "URL")]
    pub forward: Vec<String>,
    /// How to read datagrams
    #[arg(long, value_enum)]
    pub input: Option<InputFormat>,
    /// Write JSON lines instead of text lines
    #[arg(long)]
    pub json: bool,
    /// One file per hour instead of per day
    #[arg(long)]
    pub hourly: bool,
    /// Name files and stamp lines in UTC instead of local time
    #[arg(long)]
    pub utc: bool,
    /// One directory of files per sender
    #[arg(long)]
    pub per_sender: bool,
    /// Continue in a new file part past this size (bytes; 0 = no limit)
    #[arg(long, value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Receive buffer to ask for, per socket (bytes)
    #[arg(long, value_name = "BYTES")]
    pub receive_buffer: Option<usize>,
    /// Write an unfinished line after this many milliseconds
    #[arg(long, value_name = "MS")]
    pub partial_timeout_ms: Option<u64>,
    /// Receiving threads: a number, or auto (online CPUs, at most 8)
    #[arg(long, value_name = "N|auto")]
    pub workers: Option<String>,
    /// Write detected events (JSON lines) to FILE; - for stdout
    #[arg(long, value_name = "FILE")]
    pub event_log: Option<String>,
    /// Names of senders, in /etc/hosts format (read again on SIGHUP)
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// Do not run the kernel-log parser on received lines
    #[arg(long)]
    pub no_detect: bool,
    /// Start the wall clock at this RFC 3339 time (tests only)
    #[arg(long, hide = true, value_name = "TIME")]
    pub fake_clock_start: Option<String>,
    /// Read the wall clock from this file, an RFC 3339 time (tests only)
    #[arg(
        long,
        hide = true,
        value_name = "FILE",
        conflicts_with = "fake_clock_start"
    )]
    pub fake_clock_file: Option<PathBuf>,
}

impl UdpLoggerConfig {
    /// Lays the command line over the configuration: an option given
    /// replaces the setting, a flag turns its choice on.
    pub fn apply_args(&mut self, args: &UdpLoggerArgs) {
        if !args.listen.is_empty() {
            self.listen.clone_from(&args.listen);
        }
        if let Some(d) = &args.dir {
            self.dir = d.display().to_string();
        }
        if let Some(m) = &args.metrics {
            self.metrics_file = m.display().to_string();
        }
        if !args.allow.is_empty() {
            self.allow.clone_from(&args.allow);
        }
        if !args.forward.is_empty() {
            self.forward = args
                .forward
                .iter()
                .map(|u| crate::forward::TargetConfig::Url(u.clone()))
                .collect();
        }
        if let Some(i) = args.input {
            self.input = i;
        }
        if args.json {
            self.output_format = OutputFormat::Json;
        }
        if args.hourly {
            self.rotate = Period::Hourly;
        }
        if args.utc {
            self.timezone = Zone::Utc;
        }
        if args.per_sender {
            self.layout = Layout::PerSender;
        }
        if let Some(v) = args.max_file_bytes {
            self.max_file_bytes = v;
        }
        if let Some(v) = args.receive_buffer {
            self.receive_buffer_bytes = v;
        }
        if let Some(v) = args.partial_timeout_ms {
            self.partial_timeout_ms = v;
        }
        if let Some(v) = &args.workers {
            self.workers = WorkersConfig::parse(v);
        }
        if let Some(v) = &args.event_log {
            self.event_log.clone_from(v);
        }
        if let Some(v) = &args.hosts_file {
            self.hosts_file = v.display().to_string();
        }
        if args.no_detect {
            self.detect = false;
        }
    }

    /// `file_mode` as permission bits, if valid.
    pub fn file_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.file_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
    }

    /// The receiver's settings, or every problem of the section at YAML
    /// path `path`, in document order.
    pub fn compile(&self, path: &str) -> Result<Settings, Vec<ConfigError>> {
        let mut p = Problems::new(path);
        if let Some(e) = crate::metrics::file_error(&self.metrics_file) {
            p.at("metrics_file", e);
        }
        if self.listen.is_empty() {
            p.at("listen", "name at least one address");
        }
        let mut listen = Vec::with_capacity(self.listen.len());
        for (i, l) in self.listen.iter().enumerate() {
            match parse_listen(l) {
                Ok(a) => listen.push(a),
                Err(e) => p.at(&format!("listen[{i}]"), e),
            }
        }
        let mut allow = Vec::with_capacity(self.allow.len());
        for (i, a) in self.allow.iter().enumerate() {
            match Cidr::parse(a) {
                Ok(c) => allow.push(c),
                Err(e) => p.at(&format!("allow[{i}]"), e),
            }
        }
        if self.dir.is_empty() {
            p.at("dir", "must name a directory");
        }
        let mut forward = Vec::with_capacity(self.forward.len());
        for (i, t) in self.forward.iter().enumerate() {
            match t.compile() {
                Ok(t) => forward.push(t),
                Err(e) => p.at(&format!("forward[{i}]"), e),
            }
        }
        let file_mode = self.file_mode();
        if file_mode.is_none() {
            p.at(
                "file_mode",
                format!(
                    "{:?}: must be octal permissions such as \"0600\"",
                    self.file_mode
                ),
            );
        }
        let workers = self.workers.resolve().unwrap_or_else(|e| {
            p.at("workers", e);
            1
        });
        let (hosts, bad) = super::names::parse_configured(&self.hosts);
        for (key, e) in bad {
            p.at(&format!("hosts.{key}"), e);
        }
        if !self.hosts_file.is_empty() {
            if let Err(e) =
                super::names::Names::new(HashMap::new(), Some(self.hosts_file.clone().into()))
            {
                p.at("hosts_file", e);
            }
        }
        if self.event_log_max_bytes < 4096 {
            p.at(
                "event_log_max_bytes",
                format!("must be at least 4096, found {}", self.event_log_max_bytes),
            );
        }
        let ranges: [(&str, u64, u64, u64); 10] = [
            ("reorder_records", self.reorder_records, 1, 65_536),
            ("reorder_ms", self.reorder_ms, 0, 60_000),
            ("last_words_lines", self.last_words_lines as u64, 0, 100_000),
            (
                "receive_buffer_bytes",
                self.receive_buffer_bytes as u64,
                4096,
                1 << 30,
            ),
            ("partial_timeout_ms", self.partial_timeout_ms, 1, 3_600_000),
            ("max_line_bytes", self.max_line_bytes as u64, 64, 1 << 20),
            ("max_senders", self.max_senders as u64, 1, 1 << 20),
            (
                "max_buffered_bytes",
                self.max_buffered_bytes as u64,
                1024,
                1 << 32,
            ),
            ("fault_hold_bytes", self.fault_hold_bytes as u64, 0, 1 << 34),
            ("retry_max_ms", self.retry_max_ms, 100, 3_600_000),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                p.at(name, format!("must be between {lo} and {hi}, found {v}"));
            }
        }
        if self.max_file_bytes != 0 && self.max_file_bytes < 4096 {
            p.at(
                "max_file_bytes",
                format!(
                    "must be 0 (no limit) or at least 4096, found {}",
                    self.max_file_bytes
                ),
            );
        }
        p.finish(Settings {
            listen,
            listen_is_default: self.listen == UdpLoggerConfig::default().listen,
            receive_buffer: self.receive_buffer_bytes,
            format: self.input,
            zone: self.timezone,
            period: self.rotate,
            output: OutputConfig {
                dir: self.dir.clone().into(),
                per_sender: self.layout == Layout::PerSender,
                json: self.output_format == OutputFormat::Json,
                max_file_bytes: self.max_file_bytes,
                file_mode: file_mode.unwrap_or(0o600),
                hold_bytes: self.fault_hold_bytes,
                retry_max: Duration::from_millis(self.retry_max_ms),
            },
            partial_timeout: Duration::from_millis(self.partial_timeout_ms),
            metrics_file: (!self.metrics_file.is_empty())
                .then(|| PathBuf::from(&self.metrics_file)),
            max_line: self.max_line_bytes,
            max_senders: self.max_senders,
            max_buffered: self.max_buffered_bytes,
            allow,
            workers,
            window: Window {
                records: self.reorder_records,
                wait: Duration::from_millis(self.reorder_ms),
            },
            hosts,
            hosts_file: (!self.hosts_file.is_empty()).then(|| PathBuf::from(&self.hosts_file)),
            detect: self.detect,
            event_log: (!self.event_log.is_empty()).then(|| self.event_log.clone()),
            event_log_max_bytes: self.event_log_max_bytes,
            event_log_keep: self.event_log_keep,
            last_words_lines: self.last_words_lines,
            forward,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: UdpLoggerArgs,
    }

    fn args(argv: &[&str]) -> UdpLoggerArgs {
        Cmd::try_parse_from(std::iter::once("udplogger").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn errors_name_their_paths() {
        let c = UdpLoggerConfig {
            listen: vec!["nowhere:1".into(), "127.0.0.1:6666".into()],
            allow: vec!["10.0.0.0/99".into()],
            file_mode: "rw".into(),
            max_senders: 0,
            ..UdpLoggerConfig::default()
        };
        let e = c.compile("udplogger").unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "udplogger.listen[0]",
                "udplogger.allow[0]",
                "udplogger.file_mode",
                "udplogger.max_senders"
            ]
        );
    }

    #[test]
    fn defaults_compile() {
        let s = UdpLoggerConfig::default().compile("udplogger").unwrap();
        assert_eq!(s.listen, ["[::]:6666".parse().unwrap()]);
        assert!(s.listen_is_default);
        assert_eq!(s.output.file_mode, 0o600);
        assert_eq!(
            (s.format, s.zone, s.period),
            (InputFormat::Auto, Zone::Local, Period::Daily)
        );
        assert!(!s.output.per_sender && !s.output.json);
        assert_eq!(s.metrics_file, None);
    }

    #[test]
    fn command_line_overrides_the_section() {
        let mut c = UdpLoggerConfig {
            dir: "/from/yaml".into(),
            receive_buffer_bytes: 1 << 20,
            ..UdpLoggerConfig::default()
        };
        c.apply_args(&args(&[
            "--listen",
            "127.0.0.1:7000",
            "--input",
            "extended",
            "--json",
            "--hourly",
            "--utc",
            "--per-sender",
            "--max-file-bytes",
            "8192",
            "--partial-timeout-ms",
            "250",
            "--metrics",
            "/m/u.prom",
        ]));
        let s = c.compile("udplogger").unwrap();
        assert_eq!(s.listen, ["127.0.0.1:7000".parse().unwrap()]);
        assert!(!s.listen_is_default);
        assert_eq!(s.format, InputFormat::Extended);
        assert_eq!((s.zone, s.period), (Zone::Utc, Period::Hourly));
        assert!(s.output.json && s.output.per_sender);
        assert_eq!(s.output.max_file_bytes, 8192);
        assert_eq!(s.partial_timeout, Duration::from_millis(250));
        assert_eq!(s.metrics_file, Some(PathBuf::from("/m/u.prom")));
        // Options not given keep the configuration's values.
        assert_eq!(s.output.dir, PathBuf::from("/from/yaml"));
        assert_eq!(s.receive_buffer, 1 << 20);
        c.apply_args(&args(&["--receive-buffer", "100"]));
        let e = c.compile("udplogger").unwrap_err();
        assert_eq!(e[0].path, "udplogger.receive_buffer_bytes");
    }

    #[test]
    fn workers_window_names_and_detection() {
        let c: UdpLoggerConfig = serde_yaml::from_str(
            "workers: auto\nreorder_records: 64\nreorder_ms: 250\nhosts: {\"10.0.0.5\": web1}\nevent_log: /e.jsonl\nlast_words_lines: 50\n",
        )
        .unwrap();
        let s = c.compile("udplogger").unwrap();
        assert!((1..=MAX_WORKERS).contains(&s.workers));
        assert_eq!(
            s.window,
            Window {
                records: 64,
                wait: Duration::from_millis(250)
            }
        );
        assert_eq!(
            s.hosts
                .get(&"10.0.0.5".parse().unwrap())
                .map(String::as_str),
            Some("web1")
        );
        assert_eq!(s.event_log.as_deref(), Some("/e.jsonl"));
        assert!(s.detect);
        assert_eq!(s.last_words_lines, 50);
        let d = UdpLoggerConfig::default().compile("u").unwrap();
        assert_eq!((d.workers, d.event_log, d.last_words_lines), (1, None, 200));
        let mut c = UdpLoggerConfig::default();
        c.apply_args(&args(&[
            "--workers",
            "2",
            "--no-detect",
            "--event-log",
            "-",
        ]));
        let s = c.compile("u").unwrap();
        assert_eq!(
            (s.workers, s.detect, s.event_log.as_deref()),
            (2, false, Some("-"))
        );
        for (bad, want) in [
            ("0", "between 1 and 8"),
            ("9", "between 1 and 8"),
            ("many", "\"many\""),
        ] {
            let mut c = UdpLoggerConfig::default();
            c.apply_args(&args(&["--workers", bad]));
            let e = c.compile("udplogger").unwrap_err();
            assert_eq!(e[0].path, "udplogger.workers");
            assert!(e[0].message.contains(want), "{}", e[0].message);
        }
        let c = UdpLoggerConfig {
            hosts: [("nope".to_string(), "x".to_string())].into(),
            reorder_records: 0,
            ..UdpLoggerConfig::default()
        };
        let paths: Vec<String> = c
            .compile("udplogger")
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["udplogger.hosts.nope", "udplogger.reorder_records"]);
    }

    #[test]
    fn one_enum_serves_yaml_and_the_command_line() {
        for v in InputFormat::value_variants() {
            let name = v.to_possible_value().unwrap().get_name().to_string();
            let yaml: InputFormat = serde_yaml::from_str(&name).unwrap();
            assert_eq!(yaml, *v, "{name}");
        }
    }
}
