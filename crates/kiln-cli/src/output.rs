//! Standard output that never panics. `println!` panics when stdout is a closed pipe (`kiln … |
//! head`) or a full disk; these macros end the process the way a Unix tool does instead: quietly
//! with status 141 (128 + SIGPIPE, what the shell reports for a tool killed by the signal) when
//! the reader has gone, and with an `error:` line and status 2 on any other write error.
//! `eprintln!` panics too when stderr cannot be written (`2>/dev/full`); [`errln!`] writes what
//! it can and goes on, since there is nowhere left to report the failure.

use std::fmt;
use std::io::{self, Write};

/// Writes `args` and a newline to stdout; see the module docs for what happens on failure.
pub fn write_line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let result = out.write_fmt(args).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
    if let Err(e) = result {
        fail(&e);
    }
}

/// Writes `args` to stdout without a newline; see the module docs for what happens on failure.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        fail(&e);
    }
}

/// Writes `args` and a newline to stderr, ignoring failure (see the module docs).
pub fn write_err_line(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

fn fail(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    // stderr may be gone too; nothing more can be said then.
    let _ = writeln!(io::stderr(), "error: writing to standard output: {e}");
    std::process::exit(2);
}

/// `println!` that ends the process cleanly when stdout cannot be written.
macro_rules! outln {
    () => {
        $crate::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

/// `print!` that ends the process cleanly when stdout cannot be written.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a line on stderr if stderr can take it.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_err_line(format_args!($($arg)*))
    };
}

pub(crate) use {errln, out, outln};
