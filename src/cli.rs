//! Command line: argument definitions, dispatch, and the one table that
//! maps failures to exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::check::{self, Baseline, Report, Selection, CHECKS};
use crate::config::{Config, DEFAULT_YAML};
use crate::error::ConfigErrors;
use crate::host::Host;
use crate::output::{ColorChoice, Format};
use crate::scan::ScanArgs;
use crate::udplogger::settings::UdpLoggerArgs;

#[derive(Debug, Parser)]
#[command(
    name = "watchdog",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("WATCHDOG_GIT_COMMIT"), ")"),
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
    /// The always-on guard: watch the kernel log, tracefs and /proc for hung
    /// tasks, OOM kills, signal deaths and dentry pressure, and act on the
    /// configured rules (SysRq dumps, ftrace snapshots, kdump checks)
    #[command(
        after_help = "Events and actions go to the event log (run.event_log, or --events) as JSON lines, and a one-line summary of each to stderr with a journald priority prefix. SIGHUP re-reads the --config file (keeping the running one if it has errors) and reopens the event log; SIGTERM cleans up tracefs and exits."
    )]
    Run(RunCliArgs),
    /// Audit whether this host will leave evidence when it hangs, panics or
    /// reboots (kdump, sysrq, console, log buffer, hung-task detector, ...)
    Check(CheckArgs),
    /// Roll up many hosts' `check --format json` documents: per check ID
    /// the count of hosts in each status and the worst hosts, per host its
    /// worst findings
    #[command(
        after_help = "Examples:\n  watchdog report /srv/fleet/checks/\n  watchdog report --format csv host1.json host2.json > fleet.csv\n\nDirectories are searched for *.json files. Exit code: the worst host's status (0 OK/INFO, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, also when a file is not a check report and no host is worse)."
    )]
    Report(ReportArgs),
    /// Print or validate the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The incident bundles `run` recorded under run.evidence_dir/incidents:
    /// list, show, pack (.tar.gz for a support case), prune
    #[command(subcommand)]
    Incidents(crate::incident::cli::IncidentsCommand),
    /// Write man pages and shell completions (for packaging)
    #[command(hide = true)]
    GenerateDocs {
        /// Directory for the man pages (watchdog.8, watchdog-check.8, ...)
        #[arg(long, value_name = "DIR")]
        man: Option<PathBuf>,
        /// Directory for bash, zsh and fish completions
        #[arg(long, value_name = "DIR")]
        completions: Option<PathBuf>,
        /// The command's installed name (packages install it as
        /// watchdog-evidence, beside the distribution's watchdog daemon)
        #[arg(long, default_value = "watchdog")]
        name: String,
    },
    /// Read saved kernel logs and print the events `run` would have
    /// reported: hung tasks, OOM kills, signal deaths, soft lockups, RCU
    /// stalls, oopses, panics, SysRq commands, lost messages
    #[command(
        long_about = "Read saved kernel logs and print the events `run` would have reported, one \
JSON object per line: hung_task, oom_kill, signal_death, soft_lockup, rcu_stall, oops, panic, \
sysrq, lost.\n\n\
The log format is detected per line: dmesg (with or without -r, -T, caller ids), raw \
/dev/kmsg records, /var/log/messages and other syslog files, journalctl -k (short, \
short-precise, short-iso, short-full, short-unix, short-monotonic, -o json), watchdog \
udplogger and extended netconsole output, vmcore-dmesg.txt, serial console captures. gzip and xz \
input is unpacked. Formats and kernel versions: docs/scan.md.",
        after_help = "Examples:\n  watchdog scan /var/crash/*/vmcore-dmesg.txt\n  journalctl -k -b -1 -o json | watchdog scan --kind hung_task,oom_kill\n  watchdog scan --format text --summary /var/log/messages*\n\nExit status: 0 when every input was read, 3 when one could not be (the others are still scanned)."
    )]
    Scan(ScanArgs),
    /// Receive netconsole / serial-over-UDP console text and write it to
    /// daily (or hourly) files, one line per console line, stamped with
    /// the receive time and the sender (see docs/udplogger.md)
    #[command(
        after_help = "Each line written: `<receive time, RFC 3339 with microseconds> <source> <text>`, source being a.b.c.d:port or [v6addr]:port. Lines whose source is `udplogger` are the receiver's own markers (sequence gaps, kernel drops, cut lines, lines dropped while the disk was full). SIGHUP reopens the files (logrotate); SIGTERM writes unfinished lines and exits 0."
    )]
    Udplogger(UdpLoggerArgs),
    /// What ended the previous boot: pstore records, kdump's
    /// vmcore-dmesg.txt, the journal or /var/log/messages, and `run`'s own
    /// record, classified (panic, oops, hung_task_panic, ..., clean_shutdown,
    /// reboot, no_evidence)
    #[command(
        after_help = "The same analysis `watchdog run` makes once per boot at start (see docs/last-boot.md). --format json prints the JSON lines `run` writes: the previous_boot event, then the incidents of that boot marked \"previous_boot\": true.\n\nExit status: 0 the previous boot ended cleanly (clean_shutdown, reboot), 1 it crashed or left no evidence, 3 nothing could be read."
    )]
    LastBoot(LastBootArgs),
}

#[derive(Debug, Args)]
pub struct LastBootArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// `watchdog run`'s state directory (default: the directory of
    /// run.state_file, under --root)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Do not run journalctl
    #[arg(long)]
    pub no_journal: bool,
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
    /// Print the changes that would turn the findings OK (keys of
    /// /etc/sysctl.d/90-watchdog.conf, kernel command-line edits with the
    /// distribution's tool, service steps) instead of the report; nothing
    /// is applied. With --format json: machine steps (sysctl keys,
    /// commands, whether a reboot is needed). The exit code is the report's.
    #[arg(long)]
    pub plan: bool,
    /// Also write the statuses as Prometheus metrics to FILE (for
    /// node_exporter's textfile collector; written atomically)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format: text for people, json, or csv (one row per host,
    /// one column per check ID)
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Check reports (`watchdog check --format json` output), or
    /// directories holding them
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
}

/// `watchdog report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct RunCliArgs {
    /// Write events here instead of run.event_log (`-` for stdout)
    #[arg(long, value_name = "FILE")]
    pub events: Option<String>,
    /// Decide and log, but act on nothing (action events say "dry_run": true)
    #[arg(long)]
    pub dry_run: bool,
    /// Validate the configuration (rules included) and exit
    #[arg(long)]
    pub check_config: bool,
    /// Also send every event and action to this syslog receiver:
    /// syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT or
    /// syslog+tls://HOST:PORT?ca=FILE (repeatable; replaces run.forward)
    #[arg(long, value_name = "URL")]
    pub forward: Vec<String>,
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

/// The command line, or the exit code once clap has printed why not
/// (usage errors exit 3; `--help` and `--version` exit 0).
fn parse_args() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        }
    })
}

pub fn main() -> ExitCode {
    // The arguments are parsed on a thread of their own: building clap's
    // command tree takes deep stack frames, and a thread's stack is given
    // back when it ends, where the main thread's pages would stay resident
    // for the life of a daemon.
    let parsed = std::thread::Builder::new()
        .name("args".into())
        .spawn(parse_args)
        .map(|t| t.join());
    let cli = match parsed {
        Ok(Ok(Ok(c))) => c,
        Ok(Ok(Err(code))) => return code,
        // No thread (out of memory or tasks): parse here after all.
        Err(_) => match parse_args() {
            Ok(c) => c,
            Err(code) => return code,
        },
        // A panic inside clap: it has printed its message.
        Ok(Err(_)) => return ExitCode::from(3),
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
        Command::Report(args) => {
            let (files, errors) = check::fleet::inputs(&args.inputs);
            let r = check::fleet::rollup(&files, errors);
            let text = match args.format {
                ReportFormat::Text => r.text(),
                ReportFormat::Json => r.json(),
                ReportFormat::Csv => r.csv(),
            };
            for e in &r.errors {
                eprintln!("watchdog: report: {e}");
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            Ok(ExitCode::from(r.exit_code))
        }
        Command::Scan(args) => run_scan(&cli, args),
        Command::Incidents(cmd) => {
            let run = load_config(&cli)?.run;
            let settings = run.incidents.compile("run.incidents").map_err(|errors| {
                MainError::Config(ConfigErrors {
                    source: "configuration".into(),
                    errors,
                })
            })?;
            let dir = std::path::Path::new(&run.evidence_dir);
            crate::incident::cli::run(cmd, dir, &settings).map_err(MainError::Io)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Udplogger(args) => run_udplogger(&cli, args),
        Command::LastBoot(args) => run_last_boot(&cli, args),
        Command::Run(args) => {
            let mut config = load_config(&cli)?;
            if !args.forward.is_empty() {
                let list: Vec<crate::forward::TargetConfig> = args
                    .forward
                    .iter()
                    .map(|u| crate::forward::TargetConfig::Url(u.clone()))
                    .collect();
                if let Some(e) = crate::forward::target::validate(&list, "--forward")
                    .into_iter()
                    .next()
                {
                    return Err(MainError::Usage(format!("{}: {}", e.path, e.message)));
                }
                config.run.forward = list;
            }
            if args.check_config {
                println!(
                    "{}: OK ({} rules)",
                    cli.config
                        .as_ref()
                        .map_or("embedded configuration".to_string(), |p| p
                            .display()
                            .to_string()),
                    config.run.rules.len()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let host = host(&cli)?;
            crate::daemon::run(
                host,
                config,
                crate::daemon::RunArgs {
                    events: args.events.clone(),
                    dry_run: args.dry_run,
                    config_path: cli.config.clone(),
                },
            )
            .map_err(MainError::Io)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::GenerateDocs {
            man,
            completions,
            name,
        } => {
            if let Some(dir) = man {
                write_man_pages(dir, name)
                    .map_err(|e| MainError::Io(format!("{}: {e}", dir.display())))?;
            }
            if let Some(dir) = completions {
                write_completions(dir, name)
                    .map_err(|e| MainError::Io(format!("{}: {e}", dir.display())))?;
            }
            Ok(ExitCode::SUCCESS)
        }
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

fn run_scan(cli: &Cli, args: &ScanArgs) -> Result<ExitCode, MainError> {
    let mut opts = args.options().map_err(MainError::Usage)?;
    // Only the `patterns:` section applies to scan.
    opts.patterns = std::sync::Arc::new(load_config(cli)?.site_patterns());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let report = match crate::scan::scan(&opts, &mut out) {
        Ok(r) => r,
        // `| head` closed the pipe: what was wanted has been printed.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(MainError::Io(format!("writing output: {e}"))),
    };
    for e in &report.errors {
        eprintln!("watchdog: scan: {e}");
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn run_last_boot(cli: &Cli, args: &LastBootArgs) -> Result<ExitCode, MainError> {
    let host = host(cli)?;
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => {
            let run = load_config(cli)?.run;
            let file = host.path(&run.state_file);
            file.parent().map(|p| p.to_path_buf()).unwrap_or(file)
        }
    };
    let opts = crate::lastboot::Options {
        state_dir: Some(state_dir),
        journal: !args.no_journal,
        ..Default::default()
    };
    let report = crate::lastboot::analyze(&host, &opts);
    let text = match args.format {
        Format::Text => report.text(),
        Format::Json => {
            let mut s = report.json_lines(host.hostname()).join("\n");
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(ExitCode::from(report.exit_code()))
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
    if let Some(path) = &args.metrics {
        let text =
            check::metrics::from_findings(&report.findings) + &check::metrics::fleet(&report);
        crate::metrics::write_atomic(path, &text).map_err(|e| {
            MainError::Io(format!("cannot write metrics to {}: {e}", path.display()))
        })?;
    }
    let boot = check::Bootloader::for_host(&host);
    let text = match args.format {
        Format::Json if args.plan => check::render_plan_json(&report, &config.check, boot),
        _ if args.plan => check::render_plan(&report, &config.check, boot),
        Format::Json => check::render_json(&report),
        Format::Text => check::render_text(&report, args.color.enabled(), args.verbose),
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a different exit code.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(ExitCode::from(report.exit_code))
}

/// `watchdog.8` and one page per visible subcommand (`watchdog-check.8`).
fn write_man_pages(dir: &std::path::Path, name: &str) -> std::io::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    // The check IDs (a contract users grep for) belong in the man page; the
    // registry is the one list, so it is added here rather than copied.
    let ids: String = CHECKS
        .iter()
        .map(|c| format!("  {}: {}\n", c.id, c.about))
        .collect();
    let cmd = Cli::command()
        .name(name.to_string())
        .bin_name(name.to_string())
        .mut_subcommand("check", |c| {
            c.after_long_help(format!(
                "Check IDs (stable; --only, --skip and check.skip take them):\n{ids}\nExit codes (Nagios): 0 OK or INFO, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also: could not start).\n\nSOURCE_DATE_EPOCH (seconds since 1970), when set, is the report's time instead of now (reproducible output)."
            ))
        });
    let write = |name: &str, cmd: clap::Command| -> std::io::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).section("8").render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.8")), buf)
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page_name = format!("{name}-{}", sub.get_name());
        let page = sub.clone().name(page_name.clone());
        write(&page_name, page)?;
    }
    write(name, cmd)
}

/// bash, zsh and fish completions.
fn write_completions(dir: &std::path::Path, name: &str) -> std::io::Result<()> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        clap_complete::generate_to(shell, &mut cmd, name.to_string(), dir)?;
    }
    Ok(())
}

fn run_udplogger(cli: &Cli, args: &UdpLoggerArgs) -> Result<ExitCode, MainError> {
    use crate::udplogger::clock::{parse_rfc3339, Clock, FileClock, ShiftedClock, SystemClock};
    // Without a file, the section's defaults (the embedded file's, a test
    // holds them equal) without building the rest: `run`'s default rules
    // are YAML, and parsing them would keep the YAML parser's code
    // resident in a log server that never uses it.
    let mut config = match &cli.config {
        Some(_) => load_config(cli)?.udplogger,
        None => crate::udplogger::settings::UdpLoggerConfig::default(),
    };
    config.apply_args(args);
    let settings = config.compile("udplogger").map_err(|errors| {
        MainError::Config(ConfigErrors {
            source: "command line and configuration".into(),
            errors,
        })
    })?;
    let clock: Box<dyn Clock> = match (&args.fake_clock_start, &args.fake_clock_file) {
        (Some(t), _) => Box::new(ShiftedClock::starting_at(
            parse_rfc3339(t).map_err(MainError::Usage)?,
        )),
        (None, Some(f)) => Box::new(FileClock::new(f)),
        (None, None) => Box::new(SystemClock),
    };
    crate::udplogger::run(settings, clock.as_ref()).map_err(MainError::Io)?;
    Ok(ExitCode::SUCCESS)
}
