//! The one helper the flag-parse tests of every subcommand share (tests
//! only): a subcommand's flags parsed exactly as clap parses them after
//! `toolkit NAME` (help on `--help` only), without a wrapper `Parser` struct
//! in each module.

/// Parses `args` as the flags `A` of the subcommand `name`.
pub fn parse_flags<A: clap::Args>(name: &'static str, args: &[&str]) -> Result<A, clap::Error> {
    let command = crate::help::long_only(A::augment_args(clap::Command::new(name)));
    let matches =
        command.try_get_matches_from(std::iter::once(name).chain(args.iter().copied()))?;
    A::from_arg_matches(&matches)
}
