//! The command line's standard output. `println!` panics when the reader has gone away
//! (`entctl orgs list | head`: the standard library ignores SIGPIPE, so the write fails with
//! `BrokenPipe`); [`outln!`](crate::outln) and [`out!`](crate::out) return that error from the
//! command instead, and `main` ends quietly on it ([`is_closed_pipe`]).

use std::io::Write;

/// The exit status of a command whose reader closed the pipe early: what a shell reports for
/// a process ended by SIGPIPE (128 + 13), as `grep … | head` gives.
pub const CLOSED_PIPE: u8 = 141;

/// Writes `args` to standard output; a closed pipe is an error for the caller, not a panic.
pub fn write(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    std::io::stdout().lock().write_fmt(args)
}

/// Whether a command failed only because standard output was closed under it.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `println!` for a command: returns the write error (a closed pipe) from the enclosing function.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write(format_args!("\n"))? };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))? };
}

/// `print!` for a command: returns the write error (a closed pipe) from the enclosing function.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*))? };
}
