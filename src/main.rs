//! The `watchdog` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    watchdog::cli::main()
}
