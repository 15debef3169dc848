//! Keeping the data directory and the store file private.
//!
//! The store holds every retained message and queued payload, so, as
//! mosquitto does for `mosquitto.db`, the broker creates the directory
//! 0700 and the file 0600 (issue 14: the file was 0644). redb would create
//! the file with the process's umask, so it is created here first, empty,
//! and redb initialises it. A file that already exists keeps its mode: the
//! operator may have chosen it; a mode readable by others is logged once
//! at WARN with the command that fixes it.

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents; those created are 0700 on Unix.
pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes the creation or removal of `path`'s directory entry durable: a
/// file's name must survive a crash as well as its bytes.
pub(super) fn sync_dir_of(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Creates the store file 0600 if it does not exist; warns if an existing
/// one is readable or writable by group or others.
pub(super) fn create_or_check_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            warn_if_shared(path)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:03o}"),
            "store file is accessible to other users; to keep it private: chmod 600 {}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_new_store_is_private() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("data").join("nested");
        let store = super::super::Store::open(&dir).expect("opens");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("data")), 0o700);
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn an_existing_looser_file_is_left_as_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(super::super::STORE_FILE);
        std::fs::write(&path, b"").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = super::super::Store::open(dir.path()).expect("opens");
        assert_eq!(mode(store.path()), 0o644);
    }
}
