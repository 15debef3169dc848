//! Help on `--help` only: `-h` is the host in `probe`, `conformance` and
//! `bench`, as in mosquitto_pub and mosquitto_sub, so it must never print
//! help (a CI step `toolkit conformance -h broker` that printed help would
//! exit 0 without testing anything). Applied to the whole command tree, so
//! every subcommand behaves the same.

use clap::{Arg, ArgAction, Command};

/// `command` and all its subcommands with clap's `-h`/`--help` flag replaced
/// by a `--help` flag alone.
pub fn long_only(command: Command) -> Command {
    command
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("Print help"),
        )
        .mut_subcommands(long_only)
}
