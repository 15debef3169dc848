//! Text and JSON renderings of [`CertInfo`]s.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::inspect::{CertInfo, ValidityStatus};

/// One file and what it held.
pub(super) type Report = (PathBuf, Vec<CertInfo>);

/// Aligned `label: value` lines, one block per certificate.
pub(super) fn text(reports: &[Report]) -> String {
    let mut out = String::new();
    for (file, infos) in reports {
        for (i, info) in infos.iter().enumerate() {
            if !out.is_empty() {
                out.push('\n');
            }
            writeln!(
                out,
                "{} certificate {} of {}",
                file.display(),
                i + 1,
                infos.len()
            )
            .ok();
            block(&mut out, info);
        }
    }
    out
}

fn block(out: &mut String, c: &CertInfo) {
    let mut line = |label: &str, value: &str| {
        writeln!(out, "  {label:<19} {value}").ok();
    };
    line("subject:", &c.subject);
    let issuer = if c.self_issued {
        format!("{} (self-signed)", c.issuer)
    } else {
        c.issuer.clone()
    };
    line("issuer:", &issuer);
    line("serial:", &c.serial);
    line("SANs:", &or_none(&c.sans));
    line("not before:", &c.not_before);
    line("not after:", &c.not_after);
    line("status:", &status_text(c));
    let key = if c.key_bits > 0 {
        format!("{} ({} bits)", c.key_algorithm, c.key_bits)
    } else {
        c.key_algorithm.clone()
    };
    line("key:", &key);
    line("signature:", &c.signature_algorithm);
    line("SHA-256:", &c.sha256_fingerprint);
    let ca = match (c.is_ca, c.path_len) {
        (true, Some(n)) => format!("yes (path length {n})"),
        (true, None) => "yes".to_owned(),
        (false, _) => "no".to_owned(),
    };
    line("CA:", &ca);
    line("key usage:", &or_none(&c.key_usage));
    line("extended key usage:", &or_none(&c.extended_key_usage));
}

/// "valid, 364 days left" / "EXPIRED 3 days ago" / "NOT YET VALID".
pub fn status_text(c: &CertInfo) -> String {
    match c.status {
        ValidityStatus::Valid => format!("valid, {} left", days(c.days_left)),
        ValidityStatus::Expired => format!("EXPIRED {} ago", days(-c.days_left)),
        ValidityStatus::NotYetValid => "NOT YET VALID".to_owned(),
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

#[derive(Serialize)]
struct FileJson<'a> {
    file: String,
    certificates: &'a [CertInfo],
}

/// `[{"file": …, "certificates": [CertInfo…]}, …]`, pretty-printed.
pub(super) fn json(reports: &[Report]) -> anyhow::Result<String> {
    let files: Vec<FileJson<'_>> = reports
        .iter()
        .map(|(file, infos)| FileJson {
            file: file.display().to_string(),
            certificates: infos,
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&files)?;
    text.push('\n');
    Ok(text)
}
