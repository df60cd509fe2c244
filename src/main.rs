//! The `mia` command line. Everything here is presentation: parsing arguments, loading the
//! config, printing tables; the work is done by the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
