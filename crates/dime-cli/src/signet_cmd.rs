//! `dime signet inspect`, and signet helpers shared by the other commands.

use crate::cli::InspectArgs;
use crate::files::read_bytes;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use dime_core::crypto::{CryptoProvider, default_provider};
use dime_signet::fields::{Width, field_info};
use dime_signet::{
    FingerprintKind, Object, Signet, SignetKind, SignetState, Validation, Verifier, decode_any,
};
use std::io::Write;
use std::path::Path;

/// Reads a signet (binary, base64 or armor) from a file.
pub(crate) fn load_signet(path: &Path) -> anyhow::Result<Signet> {
    let bytes = read_bytes(path)?;
    match decode_any(&bytes)
        .with_context(|| format!("{} is not a readable signet", path.display()))?
    {
        Object::Signet(s) => Ok(s),
        Object::KeyFile(_) | Object::EncryptedKeyFile(_) => {
            bail!("{} is a private key file, not a signet", path.display())
        }
    }
}

const FINGERPRINTS: [(FingerprintKind, &str); 4] = [
    (FingerprintKind::Ssr, "ssr"),
    (FingerprintKind::Crypto, "crypto"),
    (FingerprintKind::Full, "full"),
    (FingerprintKind::Id, "id"),
];

/// Prints every fingerprint the signet has, one per line.
pub(crate) fn describe_fingerprints(
    provider: &CryptoProvider,
    signet: &Signet,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for (kind, name) in FINGERPRINTS {
        if let Some(fp) = signet.fingerprint(provider, kind) {
            writeln!(out, "fingerprint {name}: {fp}")?;
        }
    }
    Ok(())
}

/// How a field's value is shown: text for printable UTF-8 profile fields, base64 otherwise.
fn show_value(kind: SignetKind, id: u8, data: &[u8]) -> (String, &'static str) {
    let info = field_info(kind, id);
    let keyish = matches!(info.width, Width::Signature) || id <= 6 || id == 252;
    match std::str::from_utf8(data) {
        Ok(s) if !keyish && !s.chars().any(char::is_control) => (s.to_owned(), "text"),
        _ => (STANDARD_NO_PAD.encode(data), "base64"),
    }
}

pub(crate) fn inspect(a: InspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let provider = default_provider();
    let bytes = read_bytes(&a.file)?;
    let signet = match decode_any(&bytes) {
        Ok(Object::Signet(s)) => s,
        Ok(Object::KeyFile(_)) => {
            bail!("{} is a plaintext private key file: not shown", a.file.display())
        }
        Ok(Object::EncryptedKeyFile(_)) => {
            bail!("{} is an encrypted private key file: not shown", a.file.display())
        }
        Err(e) => {
            if a.json {
                let j = serde_json::json!({"state": "Malformed", "problem": e.to_string()});
                writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
            }
            return Err(e)
                .with_context(|| format!("{} is not a readable signet", a.file.display()));
        }
    };
    let org = a.org.as_deref().map(load_signet).transpose()?;
    let previous = a.previous.as_deref().map(load_signet).transpose()?;
    let mut verifier = Verifier::new();
    if let Some(o) = &org {
        verifier = verifier.org(o);
    }
    if let Some(p) = &previous {
        verifier = verifier.previous(p);
    }
    let v = signet.validate(provider, &verifier);
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&to_json(provider, &signet, &v))?)?;
    } else {
        to_text(provider, &signet, &v, out)?;
    }
    if v.state() < SignetState::Ssr {
        bail!(
            "signet is not valid: {:?}{}",
            v.state(),
            v.problem().map(|p| format!(": {p}")).unwrap_or_default()
        );
    }
    Ok(())
}

fn to_text(
    provider: &CryptoProvider,
    s: &Signet,
    v: &Validation,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(out, "kind: {} (magic {})", s.kind().name(), s.kind().magic())?;
    writeln!(
        out,
        "format: {}",
        if s.is_v2() {
            "v2 (X25519 encryption key)"
        } else {
            "v1 (secp256k1 encryption key, carried only)"
        }
    )?;
    writeln!(out, "payload: {} bytes, {} fields", s.payload().len(), s.fields().len())?;
    for f in s.fields() {
        let info = field_info(s.kind(), f.id);
        let (value, how) = show_value(s.kind(), f.id, f.data);
        let name = match f.name {
            Some(n) => format!("{} \"{}\"", info.name(), String::from_utf8_lossy(n)),
            None => info.name().to_owned(),
        };
        writeln!(out, "  field {:>3} {name} ({} bytes, {how}): {value}", f.id, f.data.len())?;
    }
    if let Ok(k) = s.signing_key() {
        writeln!(out, "signing key: {k}")?;
    }
    writeln!(out, "state: {:?}", v.state())?;
    if let Some(p) = v.problem() {
        writeln!(out, "stopped because: {p}")?;
    }
    if let Some(k) = v.signed_by() {
        writeln!(out, "org signatures by: {k}")?;
    }
    if v.custody_checked() {
        writeln!(out, "chain of custody: verified against the previous signet")?;
    }
    describe_fingerprints(provider, s, out)
}

fn to_json(provider: &CryptoProvider, s: &Signet, v: &Validation) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = s
        .fields()
        .map(|f| {
            let info = field_info(s.kind(), f.id);
            let (value, how) = show_value(s.kind(), f.id, f.data);
            serde_json::json!({
                "id": f.id,
                "name": info.name(),
                "field_name": f.name.map(|n| String::from_utf8_lossy(n).into_owned()),
                "length": f.data.len(),
                "encoding": how,
                "value": value,
            })
        })
        .collect();
    let mut fps = serde_json::Map::new();
    for (kind, name) in FINGERPRINTS {
        if let Some(fp) = s.fingerprint(provider, kind) {
            fps.insert(name.to_owned(), serde_json::Value::String(fp.to_string()));
        }
    }
    serde_json::json!({
        "kind": s.kind().name(),
        "magic": s.kind().magic(),
        "v2": s.is_v2(),
        "payload_length": s.payload().len(),
        "fields": fields,
        "signing_key": s.signing_key().ok().map(|k| k.to_string()),
        "state": format!("{:?}", v.state()),
        "problem": v.problem().map(|p| p.to_string()),
        "org_signed_by": v.signed_by().map(|k| k.to_string()),
        "custody_checked": v.custody_checked(),
        "fingerprints": fps,
    })
}
