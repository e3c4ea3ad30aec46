//! Human-readable summaries of license files.

use std::fmt::Write;

use tally_crypto::VerifyingKey;
use tally_crypto::document::{DocumentKind, verify_activated, verify_license};
use tally_proto::license::{ActivatedLicense, License};

use super::dates;

/// A verified document.
pub enum Verified {
    License(License),
    Activated(ActivatedLicense),
}

impl Verified {
    pub fn headline(&self) -> String {
        match self {
            Verified::License(l) => {
                format!("license file {} for {}", l.license_id, l.organization.id)
            }
            Verified::Activated(a) => format!(
                "activated license file {} for {}, server {}",
                a.license.license_id, a.license.organization.id, a.server.uuid
            ),
        }
    }
}

pub fn verify(text: &str, key: &VerifyingKey) -> anyhow::Result<Verified> {
    match DocumentKind::detect(text) {
        Some(DocumentKind::ActivatedLicense) => {
            Ok(Verified::Activated(verify_activated(text, key)?))
        }
        _ => Ok(Verified::License(verify_license(text, key)?)),
    }
}

/// Describes a payload (issued or activated) without trusting it.
pub fn describe(value: &serde_json::Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let license: License = if value.get("license").is_some() {
        let a: ActivatedLicense = serde_json::from_value(value.clone())?;
        writeln!(out, "activated license file")?;
        writeln!(out, "  server     {}", a.server.uuid)?;
        writeln!(out, "  activated  {}", dates::show(a.activated_at))?;
        a.license
    } else {
        writeln!(out, "license file")?;
        serde_json::from_value(value.clone())?
    };
    writeln!(out, "  license    {}", license.license_id)?;
    writeln!(
        out,
        "  org        {} ({})",
        license.organization.id, license.organization.name
    )?;
    writeln!(out, "  alias      {}", license.alias)?;
    writeln!(out, "  issued     {}", dates::show(license.issued_at))?;
    for item in &license.items {
        writeln!(
            out,
            "  item {}: {} {} x{} from {} to {}, grace {}%, window {}{}{}",
            item.id,
            item.product,
            item.license_type.as_str(),
            item.quantity,
            dates::show(item.start),
            dates::show(item.end),
            item.grace_percent,
            item.active_window.as_str(),
            if item.modules.is_empty() {
                String::new()
            } else {
                format!(", modules {}", item.modules.join("+"))
            },
            item.versions
                .map(|v| format!(", versions {}-{}", v.min_major, v.max_major))
                .unwrap_or_default(),
        )?;
    }
    Ok(out)
}
