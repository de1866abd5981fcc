//! `dime org init` and `dime org sign-user`.

use crate::cli::{OrgInitArgs, PassphraseArgs, SignUserArgs};
use crate::files::{ensure_dir, passphrase, read_bytes, write_new};
use crate::signet_cmd::{describe_fingerprints, load_signet};
use anyhow::{Context, bail};
use dime_core::crypto::{Argon2Params, CryptoProvider, default_provider};
use dime_core::{Domain, Mailbox};
use dime_signet::record::{Host, Record};
use dime_signet::{
    FingerprintKind, Identifier, OrgKeys, OrgSigner, Profile, SignetKind, SignetState, Verifier,
    armor, create_org_signet, keyfile, sign_user_signet,
};
use rand_core::OsRng;
use std::io::Write;

pub(crate) fn init(a: OrgInitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let provider = default_provider();
    let domain =
        Domain::parse(&a.domain).with_context(|| format!("bad --domain {:?}", a.domain))?;
    let key_path = a.out.join("org.key");
    let signet_path = a.out.join("org.signet");
    let record_path = a.out.join("dx-record.txt");
    for p in [&key_path, &signet_path, &record_path] {
        if p.exists() {
            bail!("{} exists already: refusing to overwrite it", p.display());
        }
    }
    let mut record = Record::new(Vec::new());
    record.policy = a.policy.as_deref().map(crate::record_cmd::parse_policy).transpose()?;
    for h in &a.delivery_hosts {
        record.delivery_hosts.push(h.parse::<Host>().with_context(|| format!("bad --dx {h:?}"))?);
    }
    let pass = passphrase(&a.passphrase, true)?;

    let keys = OrgKeys::generate(&mut OsRng);
    let mut profile = Profile::new();
    if let Some(name) = &a.name {
        profile = profile.with(16, name.as_bytes().to_vec());
    }
    let signet = create_org_signet(provider, &keys, &domain, &profile)
        .context("cannot create the org signet")?;
    record.poks.push(keys.pok(provider));
    record.validate().context("the record to publish is not valid")?;

    let key_text = org_key_file(provider, &keys, pass.as_deref().map(String::as_bytes))?;
    ensure_dir(&a.out)?;
    write_new(&key_path, key_text.as_bytes(), true)?;
    write_new(&signet_path, signet.to_armor().as_bytes(), false)?;
    let zone_line = format!("{}. IN TXT {}\n", domain.dx_record_name(), record.to_zone_text());
    write_new(&record_path, zone_line.as_bytes(), false)?;

    writeln!(out, "organisation: {domain}")?;
    writeln!(out, "pok: {}", keys.pok(provider))?;
    describe_fingerprints(provider, &signet, out)?;
    writeln!(
        out,
        "key file: {} ({})",
        key_path.display(),
        if pass.is_some() { "encrypted under the passphrase" } else { "NOT ENCRYPTED" }
    )?;
    writeln!(out, "signet: {}", signet_path.display())?;
    writeln!(
        out,
        "publish this DNS record (DNSSEC-signed zone), also in {}:",
        record_path.display()
    )?;
    write!(out, "{zone_line}")?;
    Ok(())
}

fn org_key_file(
    provider: &CryptoProvider,
    keys: &OrgKeys,
    pass: Option<&[u8]>,
) -> anyhow::Result<String> {
    let bytes = match pass {
        Some(p) => keys
            .to_encrypted_bytes(provider, &mut OsRng, p, &Argon2Params::DEFAULT)
            .context("cannot encrypt the org key file")?,
        None => {
            keys.to_insecure_plaintext_bytes().context("cannot encode the org key file")?.to_vec()
        }
    };
    armor::encode(&bytes).context("cannot armor the org key file")
}

/// Reads a key file, asking for the passphrase only if it is encrypted.
pub(crate) fn read_keys(
    provider: &CryptoProvider,
    path: &std::path::Path,
    pass_args: &PassphraseArgs,
) -> anyhow::Result<keyfile::KeySet> {
    let bytes = zeroize::Zeroizing::new(read_bytes(path)?);
    let encrypted = keyfile::is_encrypted(&bytes)
        .with_context(|| format!("{} is not a key file", path.display()))?;
    let pass = if encrypted {
        let mut args = pass_args.clone();
        args.insecure_plaintext = false;
        passphrase(&args, false)?
    } else {
        None
    };
    keyfile::read(provider, &bytes, pass.as_deref().map(String::as_bytes))
        .with_context(|| format!("cannot read key file {}", path.display()))
}

pub(crate) fn sign_user(a: SignUserArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let provider = default_provider();
    let mailbox =
        Mailbox::parse(&a.address).with_context(|| format!("bad --address {:?}", a.address))?;
    if a.out.exists() {
        bail!("{} exists already: refusing to overwrite it", a.out.display());
    }
    let org_signet = load_signet(&a.org_signet)?;
    if org_signet.kind() != SignetKind::Org {
        bail!("{} is a {}, not an org signet", a.org_signet.display(), org_signet.kind().name());
    }
    let v = org_signet.validate(provider, &Verifier::new());
    if v.state() != SignetState::Id {
        bail!(
            "org signet {} is not valid: state {:?}{}",
            a.org_signet.display(),
            v.state(),
            v.problem().map(|p| format!(" ({p})")).unwrap_or_default()
        );
    }
    match org_signet.identifier() {
        Ok(Some(Identifier::Domain(d))) if &d == mailbox.domain() => {}
        Ok(Some(Identifier::Domain(d))) => {
            bail!("address domain {} differs from the org signet's domain {d}", mailbox.domain())
        }
        _ => bail!("org signet has no domain identifier"),
    }
    let keys = match read_keys(provider, &a.org_key, &a.passphrase)? {
        keyfile::KeySet::Org(k) => k,
        keyfile::KeySet::User(_) => {
            bail!("{} is a user key file, not an org key file", a.org_key.display())
        }
    };
    let signet_pok = org_signet.signing_key().context("org signet has no usable POK")?;
    if keys.pok(provider) != signet_pok {
        bail!("the org key file does not belong to the org signet (POKs differ)");
    }
    let ssr = load_signet(&a.ssr)?;
    if ssr.kind() != SignetKind::Ssr {
        bail!("{} is a {}, not a signing request", a.ssr.display(), ssr.kind().name());
    }
    let user = sign_user_signet(provider, &keys, OrgSigner::Pok, &ssr, &mailbox, &Profile::new())
        .context("cannot sign the request")?;
    let check = user.validate(provider, &Verifier::new().org(&org_signet));
    if check.state() != SignetState::Id {
        bail!("the new user signet does not validate: {:?}", check.state());
    }
    write_new(&a.out, user.to_armor().as_bytes(), false)?;
    writeln!(out, "user signet for {mailbox}: {}", a.out.display())?;
    describe_fingerprints(provider, &user, out)?;
    if let Some(fp) = user.fingerprint(provider, FingerprintKind::Ssr) {
        writeln!(out, "request fingerprint (ssr): {fp}")?;
    }
    Ok(())
}
