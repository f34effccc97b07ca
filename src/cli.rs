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
