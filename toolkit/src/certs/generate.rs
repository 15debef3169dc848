//! Writing a CA and server certificate, a self-signed server certificate, or
//! a client certificate, through [`credentials::certs`].

use std::path::{Path, PathBuf};

use credentials::certs::{
    CertError, CertificateAuthority, Overwrite, PairPaths, PemPair, SubjectNames, Validity,
    self_signed_server, write_pairs,
};

use super::{ClientArgs, CommonArgs, ServerArgs};
use crate::exit::{Failure, Status, usage};

/// File stem of the CA pair.
const CA_STEM: &str = "ca";
/// File stem of the server pair.
const SERVER_STEM: &str = "mqtt_server";

/// `toolkit certs` without a subcommand.
pub(super) fn server(args: &ServerArgs) -> anyhow::Result<()> {
    let names = subject_names(args)?;
    let validity = validity(&args.common, args.common.days);
    let dir = &args.common.out;
    let server_paths = PairPaths::in_dir(dir, SERVER_STEM);
    let shown = |p: &Path| p.display().to_string();
    let names_text = names_text(&names);

    if args.self_signed {
        let pair = self_signed_server(&names, validity).map_err(cert_error)?;
        write(&[(pair, server_paths.clone())], &args.common)?;
        println!(
            "wrote {} (self-signed server certificate for {names_text}; {})",
            shown(&server_paths.cert),
            until(validity)
        );
        println!(
            "wrote {} (its private key, mode 0600)",
            shown(&server_paths.key)
        );
        println!(
            "clients trust it with: --cafile {}  (mosquitto_pub/sub and toolkit probe)",
            shown(&server_paths.cert)
        );
        return Ok(());
    }

    let ca_validity = self::validity(&args.common, args.ca_days);
    let ca_name = format!("MQTT toolkit CA {}", &crate::unique::nonce()[..8]);
    let ca = CertificateAuthority::generate(&ca_name, ca_validity).map_err(cert_error)?;
    let server = ca.issue_server(&names, validity).map_err(cert_error)?;
    let ca_paths = PairPaths::in_dir(dir, CA_STEM);
    write(
        &[
            (ca.pem_pair(), ca_paths.clone()),
            (server, server_paths.clone()),
        ],
        &args.common,
    )?;
    println!(
        "wrote {} (CA certificate \"{ca_name}\"; {})",
        shown(&ca_paths.cert),
        until(ca_validity)
    );
    println!(
        "wrote {} (CA private key, mode 0600; keep it to sign client certificates)",
        shown(&ca_paths.key)
    );
    println!(
        "wrote {} (server certificate for {names_text}; {})",
        shown(&server_paths.cert),
        until(validity)
    );
    println!(
        "wrote {} (server private key, mode 0600)",
        shown(&server_paths.key)
    );
    println!(
        "broker: certfile {} keyfile {} cafile {}",
        shown(&absolute(&server_paths.cert)),
        shown(&absolute(&server_paths.key)),
        shown(&absolute(&ca_paths.cert))
    );
    println!("clients: --cafile {}", shown(&ca_paths.cert));
    Ok(())
}

/// `toolkit certs client`.
pub(super) fn client(args: &ClientArgs) -> anyhow::Result<()> {
    let dir = &args.common.out;
    let default_ca = PairPaths::in_dir(dir, CA_STEM);
    let ca_paths = PairPaths {
        cert: args.ca_cert.clone().unwrap_or(default_ca.cert),
        key: args.ca_key.clone().unwrap_or(default_ca.key),
    };
    for path in [&ca_paths.cert, &ca_paths.key] {
        if !path.exists() {
            return Err(usage(format!(
                "CA file {} not found: run `toolkit certs --out {}` first, or pass --ca-cert and --ca-key",
                path.display(),
                dir.display()
            )));
        }
    }
    let ca = CertificateAuthority::load(&ca_paths).map_err(cert_error)?;
    if args.name.contains(['/', '\\']) || args.name.starts_with('.') {
        return Err(usage(format!(
            "--name {:?} is also a file name: use letters, digits, '-' or '_' (no '/', no leading '.')",
            args.name
        )));
    }
    let validity = validity(&args.common, args.common.days);
    let pair = ca.issue_client(&args.name, validity).map_err(cert_error)?;
    let paths = PairPaths::in_dir(dir, &args.name);
    write(&[(pair, paths.clone())], &args.common)?;
    println!(
        "wrote {} (client certificate \"{}\" signed by {}; {})",
        paths.cert.display(),
        args.name,
        ca_paths.cert.display(),
        until(validity)
    );
    println!("wrote {} (its private key, mode 0600)", paths.key.display());
    println!(
        "clients: --cert {} --key {}",
        paths.cert.display(),
        paths.key.display()
    );
    Ok(())
}

fn subject_names(args: &ServerArgs) -> anyhow::Result<SubjectNames> {
    if args.no_default_names && args.hostname.is_empty() && args.ip.is_empty() {
        return Err(usage(
            "--no-default-names leaves the certificate without names: add --hostname or --ip",
        ));
    }
    if args.hostname.is_empty() && args.ip.is_empty() {
        return Ok(SubjectNames::localhost());
    }
    let given = SubjectNames::new(args.hostname.clone(), args.ip.clone())
        .map_err(|e| usage(format!("--hostname: {e}")))?;
    Ok(if args.no_default_names {
        given
    } else {
        given.merged_with(&SubjectNames::localhost())
    })
}

fn validity(common: &CommonArgs, days: u32) -> Validity {
    Validity::days_from_now(days).backdated(common.backdate)
}

fn write(pairs: &[(PemPair, PairPaths)], common: &CommonArgs) -> anyhow::Result<()> {
    let overwrite = if common.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    write_pairs(pairs, overwrite).map_err(cert_error)
}

/// Maps library errors to what the user should do.
fn cert_error(err: CertError) -> anyhow::Error {
    match err {
        CertError::Exists { path } => Failure::new(
            Status::Failure,
            format!(
                "{} already exists; nothing was written: pass --force to replace it, or --out DIR to write elsewhere",
                path.display()
            ),
        )
        .into(),
        e @ (CertError::Read { .. }
        | CertError::BadCaCertificate { .. }
        | CertError::BadKey { .. }
        | CertError::KeyMismatch { .. }
        | CertError::InvalidHostname { .. }
        | CertError::EmptyClientName
        | CertError::NoNames) => usage(e.to_string()),
        e => anyhow::Error::new(e).context("making certificates"),
    }
}

fn names_text(names: &SubjectNames) -> String {
    names
        .hostnames()
        .iter()
        .cloned()
        .chain(names.ips().iter().map(ToString::to_string))
        .collect::<Vec<_>>()
        .join(", ")
}

fn until(validity: Validity) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    let end = validity.not_after();
    let text = end.format(&fmt).unwrap_or_else(|_| end.to_string());
    if end <= time::OffsetDateTime::now_utc() {
        format!("EXPIRED at {text}")
    } else {
        format!("valid until {text}")
    }
}

fn absolute(path: &Path) -> PathBuf {
    // Only for the hint printed to the user; the relative path still works.
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
