//! The command line's standard output. `println!` panics when the reader has gone away
//! (`entctl orgs list | head`: the standard library ignores SIGPIPE, so the write fails with
//! `BrokenPipe`); [`outln!`](crate::outln) and [`out!`](crate::out) return that error from the
//! command instead, and `main` ends quietly on it ([`is_closed_pipe`]).
//!
//! The command line's standard error: `errln!` panics the same way when it is a pipe
//! whose reader has gone (the process then exits with 101, whatever the command's own
//! status); [`errln!`](crate::errln) writes through [`write_err`], which ignores that error.

use std::io::Write;

/// The exit status of a command whose reader closed the pipe early: what a shell reports for
/// a process ended by SIGPIPE (128 + 13), as `grep … | head` gives.
pub const CLOSED_PIPE: u8 = 141;

/// Writes `args` to standard output; a closed pipe is an error for the caller, not a panic.
pub fn write(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    std::io::stdout().lock().write_fmt(args)
}

/// Writes `args` to standard error, ignoring a write error: a message nobody can read any
/// more (standard error closed or a broken pipe) must not turn into a panic that hides the
/// command's exit status.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
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

/// `errln!` for a command: a standard error closed under it is ignored, never a panic.
#[macro_export]
macro_rules! errln {
    () => { $crate::output::write_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}
