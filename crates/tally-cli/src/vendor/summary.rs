//! Reading license files for people: the typed document (verified or not) and its summary.

use std::fmt::Write;

use tally_crypto::VerifyingKey;
use tally_crypto::document::{DocumentKind, read_unverified, verify_activated, verify_license};
use tally_proto::license::{ActivatedLicense, License, LicenseItem};

use super::dates;

/// An issued or an activated license file's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    License(License),
    Activated(ActivatedLicense),
}

/// Whether a document's signature was checked, which a summary must always say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    Verified,
    Unchecked,
}

impl Trust {
    pub fn status(self) -> &'static str {
        match self {
            Trust::Verified => "signature valid",
            Trust::Unchecked => {
                "signature NOT checked (give --vendor-public KEY or --vendor-key FILE to verify)"
            }
        }
    }
}

/// The `-----BEGIN TALLY …` kinds a file may claim to be.
fn detect(text: &str) -> anyhow::Result<DocumentKind> {
    match DocumentKind::detect(text) {
        Some(DocumentKind::ServerCertificate) => Err(anyhow::anyhow!(
            "this is a server certificate (what a server shows its clients); inspect the \
             activated license file that contains it"
        )),
        Some(kind) => Ok(kind),
        None => Err(anyhow::anyhow!(
            "not a Tally license file (it must start with `-----BEGIN TALLY LICENSE-----` or \
             `-----BEGIN TALLY ACTIVATED LICENSE-----`)"
        )),
    }
}

impl Document {
    /// Verifies a file of either kind against the vendor key.
    pub fn verify(text: &str, key: &VerifyingKey) -> anyhow::Result<Self> {
        Ok(match detect(text)? {
            DocumentKind::ActivatedLicense => Document::Activated(verify_activated(text, key)?),
            _ => Document::License(verify_license(text, key)?),
        })
    }

    /// Reads a file of either kind without checking its signature.
    pub fn read_unverified(text: &str) -> anyhow::Result<Self> {
        detect(text)?;
        let (kind, value) = read_unverified(text)?;
        let what = kind.description();
        Ok(match kind {
            DocumentKind::License | DocumentKind::ServerCertificate => Document::License(
                serde_json::from_value(value)
                    .map_err(|e| anyhow::anyhow!("the payload is not a valid {what}: {e}"))?,
            ),
            DocumentKind::ActivatedLicense => Document::Activated(
                serde_json::from_value(value)
                    .map_err(|e| anyhow::anyhow!("the payload is not a valid {what}: {e}"))?,
            ),
        })
    }

    pub fn kind(&self) -> DocumentKind {
        match self {
            Document::License(_) => DocumentKind::License,
            Document::Activated(_) => DocumentKind::ActivatedLicense,
        }
    }

    pub fn license(&self) -> &License {
        match self {
            Document::License(l) => l,
            Document::Activated(a) => &a.license,
        }
    }

    /// `<kind> <license id> for <org>`, plus the servers of an activated file.
    pub fn headline(&self) -> String {
        let l = self.license();
        let mut line = format!(
            "{} {} for {} (org {})",
            self.kind().description(),
            l.license_id,
            l.organization.name,
            l.organization.id
        );
        if let Document::Activated(a) = self {
            let servers = if a.servers.len() == 1 {
                "server"
            } else {
                "servers"
            };
            line.push_str(&format!(", bound to {servers} {}", a.server_uuids()));
        }
        line
    }

    /// A multi-line summary; its first line names the kind and whether the signature was checked.
    pub fn describe(&self, trust: Trust) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}: {}", self.kind().description(), trust.status());
        let l = self.license();
        let format = match self {
            Document::License(l) => &l.format,
            Document::Activated(a) => &a.format,
        };
        let _ = writeln!(out, "  format        {format}");
        if let Document::Activated(a) = self {
            for server in &a.servers {
                let _ = writeln!(out, "  server uuid   {}", server.uuid);
            }
            let _ = writeln!(out, "  activated     {}", dates::show(a.activated_at));
        }
        let _ = writeln!(out, "  license id    {}", l.license_id);
        let _ = writeln!(
            out,
            "  organization  {} (id {})",
            l.organization.name, l.organization.id
        );
        let _ = writeln!(out, "  alias         {}", l.alias);
        let _ = writeln!(out, "  issued        {}", dates::show(l.issued_at));
        let _ = writeln!(out, "  items         {}", l.items.len());
        for item in &l.items {
            describe_item(&mut out, item);
        }
        out
    }
}

fn describe_item(out: &mut String, item: &LicenseItem) {
    let modules = if item.modules.is_empty() {
        "(none)".to_owned()
    } else {
        item.modules.join(", ")
    };
    let versions = match item.versions {
        None => "all".to_owned(),
        Some(v) if v.min_major == v.max_major => v.min_major.to_string(),
        Some(v) => format!("{}-{}", v.min_major, v.max_major),
    };
    let _ = writeln!(out, "  item {}", item.id);
    let _ = writeln!(out, "    product     {}", item.product);
    let _ = writeln!(out, "    type        {}", item.license_type.as_str());
    let _ = writeln!(out, "    quantity    {}", item.quantity);
    let _ = writeln!(out, "    modules     {modules}");
    let _ = writeln!(out, "    versions    {versions}");
    let _ = writeln!(out, "    start       {}", dates::show(item.start));
    let _ = writeln!(out, "    end         {}", dates::show(item.end));
    let _ = writeln!(out, "    grace       {}%", item.grace_percent);
    let _ = writeln!(out, "    window      {}", item.active_window.as_str());
    let _ = writeln!(
        out,
        "    offline     {} days at most",
        item.offline_days_cap()
    );
    let _ = writeln!(
        out,
        "    after end   works until {} (grace)",
        dates::show(item.grace_end())
    );
    if let Some(metric) = &item.metric {
        let _ = writeln!(out, "    metric      {metric}");
    }
}

/// The signed JSON payload exactly as it is in the file (between the armor lines).
pub fn payload_text(text: &str) -> Option<&str> {
    let (_, body) = text.split_once('\n')?;
    let end = body.find("\n-----BEGIN TALLY SIGNATURE-----\n")?;
    Some(&body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::{
        ActiveWindow, LICENSE_FORMAT, LicenseType, Organization, VersionRange,
    };

    fn sample() -> License {
        License {
            format: LICENSE_FORMAT.into(),
            license_id: "L-1".into(),
            organization: Organization {
                id: "1001".into(),
                name: "Acme".into(),
            },
            alias: "Acme 2026".into(),
            issued_at: 1_767_225_600 + 3_600,
            items: vec![LicenseItem {
                id: "L-1-1".into(),
                product: "scanner".into(),
                versions: Some(VersionRange {
                    min_major: 2,
                    max_major: 3,
                }),
                modules: vec!["qr".into(), "pdf417".into()],
                license_type: LicenseType::PerDevice,
                quantity: 5,
                start: 1_767_225_600,
                end: 1_798_761_600,
                grace_percent: 10,
                active_window: ActiveWindow::Days30,
                metric: None,
                max_offline_days: None,
                grace_days: None,
            }],
        }
    }

    #[test]
    fn the_summary_shows_every_field_readably() {
        let text = Document::License(sample()).describe(Trust::Unchecked);
        for needle in [
            "license file: signature NOT checked",
            "license id    L-1",
            "organization  Acme (id 1001)",
            "alias         Acme 2026",
            "issued        2026-01-01 01:00:00 UTC",
            "item L-1-1",
            "product     scanner",
            "type        per-device",
            "quantity    5",
            "modules     qr, pdf417",
            "versions    2-3",
            "start       2026-01-01",
            "end         2027-01-01",
            "grace       10%",
            "window      30d",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn signed_files_read_back_with_and_without_the_key() {
        let key = tally_crypto::SigningKey::generate().unwrap();
        let text = tally_crypto::document::issue_license(&sample(), &key).unwrap();
        let verified = Document::verify(&text, &key.verifying_key()).unwrap();
        assert_eq!(verified, Document::License(sample()));
        assert_eq!(Document::read_unverified(&text).unwrap(), verified);
        assert_eq!(verified.headline(), "license file L-1 for Acme (org 1001)");
        let payload: License = serde_json::from_str(payload_text(&text).unwrap()).unwrap();
        assert_eq!(payload, sample());
        let err = Document::read_unverified("hello\n").unwrap_err();
        assert!(
            err.to_string().contains("not a Tally license file"),
            "{err}"
        );
    }
}
