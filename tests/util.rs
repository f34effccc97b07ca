//! Helpers for integration tests: run the real binary, each test in its own
//! temporary directory, and on failure show everything that was printed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The crate's own directory (fixtures live under it).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture tree under tests/fixtures, its file times set from its
/// `mtimes.txt` first (see [`stamp_mtimes`]).
pub fn fixture(name: &str) -> PathBuf {
    let dir = repo().join("tests/fixtures").join(name);
    stamp_mtimes(&dir);
    dir
}

/// Git keeps no file times, but `check` compares some (the kdump initramfs
/// with the kernel and kdump.conf): a fixture's `mtimes.txt` lists
/// `<Unix time> <path>` lines, applied here before the tree is used.
/// Setting the same times again is harmless, so parallel tests may race.
pub fn stamp_mtimes(dir: &Path) {
    let Ok(list) = std::fs::read_to_string(dir.join("mtimes.txt")) else {
        return;
    };
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let (secs, rel) = line.split_once(' ').expect("mtimes.txt: <secs> <path>");
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(secs.parse().expect("mtimes.txt: seconds"));
        // futimens(2) needs ownership, not write access: open to read.
        std::fs::File::open(dir.join(rel))
            .and_then(|f| f.set_modified(t))
            .unwrap_or_else(|e| panic!("{}: {rel}: {e}", dir.display()));
    }
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub cmdline: String,
}

impl Run {
    /// Panics with the whole output when the exit code differs.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.dump());
        self
    }

    pub fn dump(&self) -> String {
        format!(
            "--- command: {}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.dump()))
    }
}

/// A temporary working directory for one test.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Runs `watchdog ARGS` with this directory as the working directory.
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args, None)
    }

    /// Runs with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run_in(self.path(), args, Some(input))
    }
}

/// Copies a directory tree (fixtures are copied before a test changes them).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if ty.is_symlink() {
            let link = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(link, target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            // Keep the file times: checks compare them.
            let t = entry.metadata().unwrap().modified().unwrap();
            std::fs::File::open(&target)
                .and_then(|f| f.set_modified(t))
                .unwrap();
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_watchdog")
}

pub fn run_in(cwd: &Path, args: &[&str], input: Option<&[u8]>) -> Run {
    run_env(cwd, args, input, &[])
}

/// [`run_in`] with extra environment variables.
pub fn run_env(cwd: &Path, args: &[&str], input: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(bin());
    cmd.envs(env.iter().copied());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn watchdog");
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        cmdline: format!("watchdog {}", args.join(" ")),
    }
}

/// A long-running `watchdog` (e.g. `udplogger`): stderr is collected as
/// it arrives so a test can wait for a message; `stop` sends SIGTERM.
pub struct Daemon {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    pub cmdline: String,
}

impl Daemon {
    pub fn start(cwd: &Path, args: &[&str]) -> Daemon {
        Daemon::start_program(cwd, bin(), args)
    }

    /// Starts another program that ends up exec'ing watchdog (e.g.
    /// `unshare -n sh -c '... exec watchdog ...'`), so the pid is the same.
    pub fn start_program(cwd: &Path, program: &str, args: &[&str]) -> Daemon {
        use std::io::Read;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watchdog");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon {
            child,
            stderr,
            cmdline: format!("watchdog {}", args.join(" ")),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 20 s) until stderr contains `needle`; panics with
    /// what was printed otherwise.
    pub fn wait_stderr(&mut self, needle: &str) -> String {
        wait_until(&format!("stderr to contain {needle:?}"), || {
            let s = self.stderr();
            s.contains(needle).then_some(s)
        })
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// SIGTERM, then waits (at most 20 s, then SIGKILL) for the exit.
    pub fn stop(mut self) -> Run {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        // Let the reader thread take the last bytes.
        std::thread::sleep(std::time::Duration::from_millis(50));
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: self.stderr(),
            cmdline: self.cmdline.clone(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sh -c` script that runs `"$0" "$@"` with at most `n` descriptors
/// and, as systemd would start it, none open below 10 but the standard
/// three: descriptors a test inherits (a `flock` around CI, a job
/// server's pipe) would otherwise take slots below the limit and change
/// what the test measures. (sh redirects only single-digit descriptors;
/// those at 10 and above take no slot below a limit of 10.)
pub fn nofile_script(n: u32) -> String {
    format!(
        "for f in /proc/$$/fd/*; do d=${{f##*/}}; case $d in [3-9]) eval \"exec $d>&-\" ;; esac; done; ulimit -n {n} && exec \"$0\" \"$@\""
    )
}

/// Polls `f` every 20 ms for at most 20 s.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The (first) address `watchdog udplogger` says it listens on, from its
/// stderr (`listening on ADDR, …`).
pub fn listen_addr(stderr: &str) -> std::net::SocketAddr {
    stderr
        .lines()
        .find_map(|l| l.split("listening on ").nth(1))
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no listen address in {stderr}"))
        .parse()
        .unwrap()
}

/// `watchdog udplogger` on an ephemeral loopback port, writing into
/// `DIR/logs` (UTC file names); returns it and the address it listens on.
pub fn udplogger_on_loopback(dir: &Dir, extra: &[&str]) -> (Daemon, std::net::SocketAddr) {
    let logs = dir.join("logs");
    let mut args = vec![
        "udplogger",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        logs.to_str().unwrap(),
        "--utc",
    ];
    args.extend_from_slice(extra);
    let mut d = Daemon::start(dir.path(), &args);
    let err = d.wait_stderr("writing to");
    let addr = listen_addr(&err);
    (d, addr)
}

/// The events of a JSON-lines file whose writer has finished: every
/// line, the last one too, must be JSON (a torn line fails the test,
/// naming the file).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    read_json_lines(path, false)
}

/// The events of a JSON-lines file a running daemon may be appending to:
/// its whole lines. A reader can catch a line's first half while the
/// write is under way; that line is read whole at the next poll. A whole
/// line that is not JSON fails the test, naming the file.
pub fn json_lines_so_far(path: &Path) -> Vec<serde_json::Value> {
    read_json_lines(path, true)
}

fn read_json_lines(path: &Path, whole_only: bool) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| !whole_only || l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}
