//! Standard output that never panics. `println!` panics when stdout is a closed pipe (`kiln … |
//! head`) or a full disk; these macros end the process the way a Unix tool does instead: quietly
//! with status 141 (128 + SIGPIPE, what the shell reports for a tool killed by the signal) when
//! the reader has gone, and with an `error:` line and status 2 on any other write error.

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

pub(crate) use {out, outln};
