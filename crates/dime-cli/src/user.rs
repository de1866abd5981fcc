//! `dime user request`.

use crate::cli::UserRequestArgs;
use crate::files::{ensure_dir, passphrase, write_new};
use crate::signet_cmd::describe_fingerprints;
use anyhow::{Context, bail};
use dime_core::crypto::{Argon2Params, default_provider};
use dime_signet::{UserKeys, armor, create_rotation_ssr, create_ssr, keyfile};
use rand_core::OsRng;
use std::io::Write;

pub(crate) fn request(a: UserRequestArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let provider = default_provider();
    let key_path = a.out.join("user.key");
    let ssr_path = a.out.join("user.ssr");
    for p in [&key_path, &ssr_path] {
        if p.exists() {
            bail!("{} exists already: refusing to overwrite it", p.display());
        }
    }
    let previous = match &a.previous_key {
        Some(p) => match crate::org::read_keys(provider, p, &a.passphrase)? {
            keyfile::KeySet::User(k) => Some(k),
            keyfile::KeySet::Org(_) => {
                bail!("{} is an org key file, not a user key file", p.display())
            }
        },
        None => None,
    };
    let pass = passphrase(&a.passphrase, previous.is_none())?;
    let keys = UserKeys::generate(&mut OsRng);
    let ssr = match &previous {
        Some(prev) => create_rotation_ssr(provider, &keys, prev),
        None => create_ssr(provider, &keys),
    }
    .context("cannot create the signing request")?;
    let key_bytes = match pass.as_deref() {
        Some(p) => keys
            .to_encrypted_bytes(provider, &mut OsRng, p.as_bytes(), &Argon2Params::DEFAULT)
            .context("cannot encrypt the user key file")?,
        None => {
            keys.to_insecure_plaintext_bytes().context("cannot encode the user key file")?.to_vec()
        }
    };
    let key_text = armor::encode(&key_bytes).context("cannot armor the user key file")?;
    ensure_dir(&a.out)?;
    write_new(&key_path, key_text.as_bytes(), true)?;
    write_new(&ssr_path, ssr.to_armor().as_bytes(), false)?;
    writeln!(out, "signing key: {}", keys.signing_key(provider))?;
    describe_fingerprints(provider, &ssr, out)?;
    if previous.is_some() {
        writeln!(out, "rotation: the request carries a chain-of-custody signature (field 4)")?;
    }
    writeln!(
        out,
        "key file: {} ({})",
        key_path.display(),
        if pass.is_some() { "encrypted under the passphrase" } else { "NOT ENCRYPTED" }
    )?;
    writeln!(
        out,
        "request: {} (send it to your organisation for `dime org sign-user`)",
        ssr_path.display()
    )?;
    Ok(())
}
