//! Command line: argument definitions, dispatch, and the one table that
//! maps failures to exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check::{self, Baseline, Report, Selection, CHECKS};
use crate::config::{Config, ConfigErrors, DEFAULT_YAML};
use crate::host::Host;
use crate::output::ColorChoice;

#[derive(Debug, Parser)]
#[command(
    name = "watchdog",
    version,
    about = "Keeps a Linux server ready to explain its own hangs, OOM kills and crashes",
    after_help = "Exit codes of `check` follow the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also: could not start)."
)]
pub struct Cli {
    /// Root directory of the host to look at: a fixture tree or a mounted
    /// system image instead of the running system
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Configuration file (default: the embedded configuration, see
    /// `watchdog config default`)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit whether this host will leave evidence when it hangs, panics or
    /// reboots (kdump, sysrq, console, log buffer, hung-task detector, ...)
    Check(CheckArgs),
    /// Print or validate the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Receive netconsole / serial-over-UDP console text and write it to
    /// daily (or hourly) files, one line per console line, stamped with
    /// the receive time and the sender (see docs/udplogger.md)
    #[command(
        after_help = "Each line written: `<receive time, RFC 3339 with microseconds> <source> <text>`, source being a.b.c.d:port or [v6addr]:port. Lines whose source is `udplogger` are the receiver's own markers (sequence gaps, kernel drops, cut lines, lines dropped while the disk was full). SIGHUP reopens the files (logrotate); SIGTERM writes unfinished lines and exits 0."
    )]
    Udplogger(UdpLoggerArgs),
}

#[derive(Debug, Args)]
pub struct UdpLoggerArgs {
    /// Address to receive on: ADDR:PORT, [IPV6]:PORT, ADDR or PORT
    /// (repeatable; default [::]:6666, dual-stack)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,
    /// Directory of the log files (default /var/log/udplogger)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Accept only senders in this network (CIDR; repeatable)
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// How to read datagrams
    #[arg(long, value_enum)]
    pub input: Option<InputArg>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputArg {
    Auto,
    Plain,
    Extended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Run only these checks (comma-separated IDs)
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// Do not run these checks (comma-separated IDs)
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub skip: Vec<String>,
    /// List the check IDs and what each looks at, then exit
    #[arg(long)]
    pub list: bool,
    /// Show every value read under each finding (text format)
    #[arg(long, short)]
    pub verbose: bool,
    /// Colour the text output
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Record every value the checks read into FILE (JSON)
    #[arg(long, value_name = "FILE")]
    pub save_baseline: Option<PathBuf>,
    /// Report every value that changed since the baseline in FILE
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration, with its comments
    Default,
    /// Validate a configuration file (or --config), reporting every error
    Check {
        /// The file to check (default: the --config file)
        file: Option<PathBuf>,
    },
}

/// Why a subcommand could not do its job at all.
#[derive(Debug)]
pub enum MainError {
    Config(ConfigErrors),
    Usage(String),
    Io(String),
}

impl std::fmt::Display for MainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MainError::Config(e) => write!(f, "{e}"),
            MainError::Usage(s) | MainError::Io(s) => f.write_str(s),
        }
    }
}

/// The exit-code table: anything that stops a subcommand before it could
/// report is 3, Nagios' UNKNOWN, so monitoring never mistakes a broken
/// invocation for a healthy or a failing host.
impl From<&MainError> for ExitCode {
    fn from(e: &MainError) -> ExitCode {
        match e {
            MainError::Config(_) | MainError::Usage(_) | MainError::Io(_) => ExitCode::from(3),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("watchdog: {e}");
            ExitCode::from(&e)
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, MainError> {
    match &cli.config {
        Some(path) => Config::load(path).map_err(MainError::Config),
        None => Ok(Config::embedded()),
    }
}

fn host(cli: &Cli) -> Result<Host, MainError> {
    if !cli.root.is_dir() {
        return Err(MainError::Usage(format!(
            "--root {}: not a directory",
            cli.root.display()
        )));
    }
    Ok(Host::new(&cli.root))
}

pub fn run(cli: Cli) -> Result<ExitCode, MainError> {
    match &cli.command {
        Command::Check(args) => run_check(&cli, args),
        Command::Udplogger(args) => run_udplogger(&cli, args),
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_YAML}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file.as_ref().or(cli.config.as_ref()).ok_or_else(|| {
                MainError::Usage("config check: name a FILE or give --config FILE".into())
            })?;
            Config::load(path).map_err(MainError::Config)?;
            println!("{}: OK", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_check(cli: &Cli, args: &CheckArgs) -> Result<ExitCode, MainError> {
    if args.list {
        let width = CHECKS.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in CHECKS {
            println!("{:<width$}  {}", c.id, c.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(cli)?;
    let host = host(cli)?;
    let sel = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
    };
    let unknown = sel.unknown_ids();
    if !unknown.is_empty() {
        return Err(MainError::Usage(format!(
            "unknown check id{} {} (see `watchdog check --list`)",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )));
    }
    // Read the old baseline before anything is written, so that one file
    // given to both options compares against the past, then records now.
    let old = match &args.baseline {
        Some(p) => Some(Baseline::load(p).map_err(|e| MainError::Io(e.to_string()))?),
        None => None,
    };
    let mut findings = check::run_checks(&host, &config.check, &sel);
    if let Some(path) = &args.save_baseline {
        let saved = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Baseline::from_findings(&findings, host.hostname(), host.kernel_release(), saved)
            .save(path)
            .map_err(|e| MainError::Io(e.to_string()))?;
    }
    if let Some(old) = old {
        let drift = old.drift(&findings, config.check.baseline.drift_status);
        findings.extend(drift);
    }
    let report = Report::new(&host, findings);
    let text = match args.format {
        Format::Json => check::render_json(&report),
        Format::Text => check::render_text(&report, args.color.enabled(), args.verbose),
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a different exit code.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(ExitCode::from(report.exit_code))
}

fn run_udplogger(cli: &Cli, args: &UdpLoggerArgs) -> Result<ExitCode, MainError> {
    use crate::config::{UdpInput, UdpLayout, UdpOutputFormat, UdpRotate, UdpTimezone};
    use crate::udplogger::clock::{parse_rfc3339, Clock, FileClock, ShiftedClock, SystemClock};
    let mut config = load_config(cli)?;
    let u = &mut config.udplogger;
    if !args.listen.is_empty() {
        u.listen.clone_from(&args.listen);
    }
    if let Some(d) = &args.dir {
        u.dir = d.display().to_string();
    }
    if !args.allow.is_empty() {
        u.allow.clone_from(&args.allow);
    }
    if let Some(i) = args.input {
        u.input = match i {
            InputArg::Auto => UdpInput::Auto,
            InputArg::Plain => UdpInput::Plain,
            InputArg::Extended => UdpInput::Extended,
        };
    }
    if args.json {
        u.output_format = UdpOutputFormat::Json;
    }
    if args.hourly {
        u.rotate = UdpRotate::Hourly;
    }
    if args.utc {
        u.timezone = UdpTimezone::Utc;
    }
    if args.per_sender {
        u.layout = UdpLayout::PerSender;
    }
    if let Some(v) = args.max_file_bytes {
        u.max_file_bytes = v;
    }
    if let Some(v) = args.receive_buffer {
        u.receive_buffer_bytes = v;
    }
    if let Some(v) = args.partial_timeout_ms {
        u.partial_timeout_ms = v;
    }
    let errors = config.validate();
    if !errors.is_empty() {
        return Err(MainError::Config(ConfigErrors {
            source: "command line and configuration".into(),
            errors,
        }));
    }
    let clock: Box<dyn Clock> = match (&args.fake_clock_start, &args.fake_clock_file) {
        (Some(t), _) => Box::new(ShiftedClock::starting_at(
            parse_rfc3339(t).map_err(MainError::Usage)?,
        )),
        (None, Some(f)) => Box::new(FileClock::new(f)),
        (None, None) => Box::new(SystemClock),
    };
    crate::udplogger::run(config.udplogger.settings(), clock.as_ref()).map_err(MainError::Io)?;
    Ok(ExitCode::SUCCESS)
}
