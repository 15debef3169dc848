//! `toolkit passwd FILE USER`: add, change or delete a user in a mosquitto
//! password file.
//!
//! Entries are `$7$` (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte random
//! salt), exactly as `mosquitto_passwd` writes them, so the same file works
//! with mosquitto and with this workspace's broker (`--password-file`). The
//! file is rewritten through a temporary file (`tempfile`, persisted over
//! the old one), with mode 0600:
//! a crash never leaves half a file, and the hashes are not world-readable.

use std::io::{BufRead, IsTerminal, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use credentials::password::{DEFAULT_ITERATIONS, SALT_LEN, hash_password};

use crate::exit::usage;

/// Flags of `toolkit passwd`.
#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    /// The password file (created if missing).
    pub file: PathBuf,
    /// The user to add, change or delete.
    pub user: String,
    /// The password; without it, it is read from standard input (asked
    /// twice, without echo, on a terminal).
    #[arg(long, short = 'b', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Start a new file, dropping every other user in it.
    #[arg(long, short = 'c')]
    pub create: bool,
    /// Delete the user instead.
    #[arg(long, short = 'D', conflicts_with_all = ["password", "create"])]
    pub delete: bool,
    /// PBKDF2 iterations.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ITERATIONS)]
    pub iterations: u32,
}

/// Runs `toolkit passwd`.
pub fn run(args: PasswdArgs) -> anyhow::Result<()> {
    if args.user.is_empty() || args.user.contains(':') || args.user.contains('\n') {
        return Err(usage(format!(
            "user name {:?} cannot be used: it must be non-empty and hold no ':' or newline",
            args.user
        )));
    }
    if args.iterations == 0 {
        return Err(usage("--iterations must be at least 1".to_owned()));
    }
    let existing = if args.create {
        String::new()
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.delete => String::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", args.file.display()));
            }
        }
    };
    let prefix = format!("{}:", args.user);
    let mut lines: Vec<String> = Vec::new();
    let mut found = false;
    for line in existing.lines() {
        if line.starts_with(&prefix) {
            found = true;
        } else {
            lines.push(line.to_owned());
        }
    }
    if args.delete {
        if !found {
            bail!("user {} is not in {}", args.user, args.file.display());
        }
        write_file(&args.file, &lines)?;
        println!("deleted {} from {}", args.user, args.file.display());
        return Ok(());
    }
    let password = match args.password {
        Some(p) => p,
        None => read_password()?,
    };
    if password.is_empty() {
        return Err(usage("the password is empty".to_owned()));
    }
    let salt: [u8; SALT_LEN] = rand::random();
    lines.push(format!(
        "{}:{}",
        args.user,
        hash_password(password.as_bytes(), &salt, args.iterations)
    ));
    write_file(&args.file, &lines)?;
    println!(
        "{} {} in {}",
        if found { "changed" } else { "added" },
        args.user,
        args.file.display()
    );
    Ok(())
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
