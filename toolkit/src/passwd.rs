//! `toolkit passwd`: add, change or delete a user in a mosquitto password
//! file, with `mosquitto_passwd`'s arguments:
//!
//! ```text
//! toolkit passwd [-c | -D] FILE USER        password from standard input
//! toolkit passwd [-c] -b FILE USER PASSWORD batch: password on the command line
//! toolkit passwd -U FILE                    hash a file of `user:password` lines
//! ```
//!
//! Entries are `$7$` (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte random
//! salt), exactly as `mosquitto_passwd` writes them, so the same file works
//! with mosquitto and with this workspace's broker (`--password-file`). The
//! file is rewritten through a temporary file (`tempfile`, persisted over
//! the old one), with mode 0600:
//! a crash never leaves half a file, and the hashes are not world-readable.
//!
//! Issue 12: `-b` used to take the password as its value, so
//! `toolkit passwd -b FILE USER PASSWORD` (mosquitto_passwd's order) wrote
//! a file named USER. Now `-b` is a switch as in mosquitto_passwd, and a
//! third argument without `-b` is refused rather than guessed at.

use std::io::{BufRead, IsTerminal, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use credentials::password::{DEFAULT_ITERATIONS, SALT_LEN, hash_password};

use crate::exit::usage;

/// Flags of `toolkit passwd`.
#[derive(Debug, clap::Args)]
#[command(override_usage = "toolkit passwd [-c | -D] FILE USER\n       \
                      toolkit passwd [-c] -b FILE USER PASSWORD\n       \
                      toolkit passwd -U FILE")]
pub struct PasswdArgs {
    /// Batch mode: the password is the third argument (visible to other
    /// users in the process list and in the shell history).
    #[arg(short = 'b', conflicts_with_all = ["delete", "update"])]
    pub batch: bool,
    /// Create a new file, overwriting an existing one and every user in it.
    #[arg(short = 'c', conflicts_with_all = ["delete", "update"])]
    pub create: bool,
    /// Delete USER from the file.
    #[arg(short = 'D', conflicts_with = "update")]
    pub delete: bool,
    /// Convert FILE, whose lines are `user:password` in plain text, to
    /// hashed passwords in place.
    #[arg(short = 'U')]
    pub update: bool,
    /// The password file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The user to add, change or delete.
    #[arg(value_name = "USER", required_unless_present = "update")]
    pub user: Option<String>,
    /// With -b: the password. Without -b it is read from standard input
    /// (asked twice, without echo, on a terminal).
    #[arg(value_name = "PASSWORD")]
    pub password: Option<String>,
    /// The password, as a flag (the spelling before -b became a switch).
    #[arg(
        long = "password",
        value_name = "PASSWORD",
        hide = true,
        conflicts_with_all = ["password", "delete", "update"]
    )]
    pub password_flag: Option<String>,
    /// PBKDF2 iterations.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ITERATIONS)]
    pub iterations: u32,
}

/// What the arguments ask for, checked.
enum Action {
    /// Add or change `user`; with `password` none, read it from standard input.
    Set {
        user: String,
        password: Option<String>,
        create: bool,
    },
    /// Delete `user`.
    Delete { user: String },
    /// Hash every plain-text password in the file.
    Update,
}

impl PasswdArgs {
    /// The action, or a usage error for arguments mosquitto_passwd refuses
    /// too: a password without `-b`, `-b` without one, a user with `-U`.
    fn action(&self) -> anyhow::Result<Action> {
        if self.update {
            if let Some(user) = &self.user {
                return Err(usage(format!(
                    "-U takes only the password file; {user} is one argument too many"
                )));
            }
            return Ok(Action::Update);
        }
        // clap requires USER unless -U.
        let user = self.user.clone().unwrap_or_default();
        check_user(&user)?;
        if self.delete {
            if self.password.is_some() {
                return Err(usage("-D takes only FILE and USER".to_owned()));
            }
            return Ok(Action::Delete { user });
        }
        let password = match (self.batch, &self.password, &self.password_flag) {
            (true, Some(p), _) => Some(p.clone()),
            (true, None, _) => {
                return Err(usage(
                    "-b needs the password as the third argument: toolkit passwd -b FILE USER PASSWORD"
                        .to_owned(),
                ));
            }
            (false, Some(_), _) => {
                return Err(usage(
                    "a password on the command line needs -b: toolkit passwd -b FILE USER PASSWORD (without it, the password is read from standard input)"
                        .to_owned(),
                ));
            }
            (false, None, flag) => flag.clone(),
        };
        Ok(Action::Set {
            user,
            password,
            create: self.create,
        })
    }
}

fn check_user(user: &str) -> anyhow::Result<()> {
    if user.is_empty() || user.contains(':') || user.contains('\n') {
        return Err(usage(format!(
            "user name '{}' cannot be used: it must be non-empty and hold no ':' or newline",
            user.escape_debug()
        )));
    }
    Ok(())
}

/// Runs `toolkit passwd`.
pub fn run(args: PasswdArgs) -> anyhow::Result<()> {
    if args.iterations == 0 {
        return Err(usage("--iterations must be at least 1".to_owned()));
    }
    let (user, password, create) = match args.action()? {
        Action::Update => return update(&args.file, args.iterations),
        Action::Delete { user } => return delete(&args.file, &user),
        Action::Set {
            user,
            password,
            create,
        } => (user, password, create),
    };
    let existing = if create {
        String::new()
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", args.file.display()));
            }
        }
    };
    let (mut lines, found) = without_user(&existing, &user);
    let password = match password {
        Some(p) => p,
        None => read_password()?,
    };
    if password.is_empty() {
        return Err(usage("the password is empty".to_owned()));
    }
    lines.push(entry(&user, &password, args.iterations));
    write_file(&args.file, &lines)?;
    println!(
        "{} {} in {}",
        if found { "changed" } else { "added" },
        user,
        args.file.display()
    );
    Ok(())
}

/// `-D`: removes `user`; an error when the file or the user is missing.
fn delete(file: &Path, user: &str) -> anyhow::Result<()> {
    let existing =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (lines, found) = without_user(&existing, user);
    if !found {
        bail!("user {user} is not in {}", file.display());
    }
    write_file(file, &lines)?;
    println!("deleted {user} from {}", file.display());
    Ok(())
}

/// `-U`: replaces each `user:password` line by `user:$7$...`. Unlike
/// mosquitto_passwd, a file holding an entry that is already hashed is
/// refused (hashing the hash would lock that user out), with every such line
/// named, and nothing is written.
fn update(file: &Path, iterations: u32) -> anyhow::Result<()> {
    let existing =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut count = 0;
    for (number, line) in existing.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            lines.push(line.to_owned());
            continue;
        }
        match line.split_once(':') {
            Some((_, password)) if password.starts_with("$6$") || password.starts_with("$7$") => {
                problems.push(format!("line {}: already hashed", number + 1));
            }
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                lines.push(entry(user, password, iterations));
                count += 1;
            }
            _ => problems.push(format!("line {}: not user:password", number + 1)),
        }
    }
    if !problems.is_empty() {
        return Err(usage(format!(
            "{} was left unchanged: {}",
            file.display(),
            problems.join("; ")
        )));
    }
    write_file(file, &lines)?;
    println!(
        "hashed {count} password{} in {}",
        if count == 1 { "" } else { "s" },
        file.display()
    );
    Ok(())
}

/// The file's lines without `user`'s entry, and whether it had one.
fn without_user(text: &str, user: &str) -> (Vec<String>, bool) {
    let prefix = format!("{user}:");
    let mut found = false;
    let lines = text
        .lines()
        .filter(|line| {
            let matches = line.starts_with(&prefix);
            found |= matches;
            !matches
        })
        .map(str::to_owned)
        .collect();
    (lines, found)
}

/// A `user:$7$...` line with a fresh random salt.
fn entry(user: &str, password: &str, iterations: u32) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    format!(
        "{user}:{}",
        hash_password(password.as_bytes(), &salt, iterations)
    )
}

/// Reads the password from standard input: one line, or on a terminal a
/// prompt (twice, echo off, through `rpassword`) as mosquitto_passwd does.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let second =
        rpassword::prompt_password("Reenter password: ").context("reading the password")?;
    if first != second {
        return Err(usage("the passwords do not match".to_owned()));
    }
    Ok(first)
}

/// Replaces `path` with `lines`, mode 0600, through a temporary file in the
/// same directory that is renamed over it once written and synced.
fn write_file(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".passwd-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flag_parse::parse_flags;

    fn parse(args: &[&str]) -> Result<PasswdArgs, clap::Error> {
        parse_flags("passwd", args)
    }

    fn action(args: &[&str]) -> anyhow::Result<Action> {
        parse(args).unwrap().action()
    }

    #[test]
    fn file_and_user_are_positional() {
        let a = parse(&["pw", "alice"]).unwrap();
        assert_eq!(a.file, Path::new("pw"));
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert!(matches!(
            a.action().unwrap(),
            Action::Set {
                password: None,
                create: false,
                ..
            }
        ));
        assert!(parse(&["pw"]).is_err(), "USER is required");
    }

    /// Issue 12: mosquitto_passwd's order, `-b FILE USER PASSWORD`.
    #[test]
    fn b_is_batch_mode_with_the_password_third() {
        for args in [
            &["-b", "pw", "alice", "s3cret"][..],
            &["pw", "alice", "s3cret", "-b"],
            &["pw", "alice", "-b", "s3cret"],
        ] {
            let a = parse(args).unwrap();
            assert_eq!(a.file, Path::new("pw"), "{args:?}");
            match a.action().unwrap() {
                Action::Set { user, password, .. } => {
                    assert_eq!(user, "alice");
                    assert_eq!(password.as_deref(), Some("s3cret"));
                }
                _ => panic!("{args:?}"),
            }
        }
        // `-b` without a password, or a password without `-b`: refused,
        // never a guess at which argument is which.
        assert!(action(&["-b", "pw", "alice"]).is_err());
        assert!(action(&["pw", "alice", "s3cret"]).is_err());
        assert!(parse(&["-b", "pw", "alice", "s3cret", "extra"]).is_err());
    }

    #[test]
    fn c_creates() {
        assert!(matches!(
            action(&["-c", "-b", "pw", "alice", "x"]).unwrap(),
            Action::Set { create: true, .. }
        ));
        assert!(parse(&["-c", "-D", "pw", "alice"]).is_err());
    }

    #[test]
    fn d_deletes() {
        assert!(matches!(
            action(&["-D", "pw", "alice"]).unwrap(),
            Action::Delete { .. }
        ));
        assert!(parse(&["-D", "-b", "pw", "alice", "x"]).is_err());
        assert!(action(&["-D", "pw", "alice", "x"]).is_err());
    }

    #[test]
    fn u_converts_a_file() {
        assert!(matches!(action(&["-U", "pw"]).unwrap(), Action::Update));
        assert!(action(&["-U", "pw", "alice"]).is_err());
        for other in ["-b", "-c", "-D"] {
            assert!(parse(&["-U", other, "pw"]).is_err(), "{other}");
        }
    }

    #[test]
    fn password_flag_is_the_old_spelling() {
        match action(&["pw", "alice", "--password", "x"]).unwrap() {
            Action::Set { password, .. } => assert_eq!(password.as_deref(), Some("x")),
            _ => panic!("not a set"),
        }
        assert!(parse(&["pw", "alice", "y", "--password", "x"]).is_err());
    }

    #[test]
    fn iterations() {
        assert_eq!(parse(&["pw", "a"]).unwrap().iterations, DEFAULT_ITERATIONS);
        assert_eq!(
            parse(&["--iterations", "7", "pw", "a"]).unwrap().iterations,
            7
        );
    }
}
