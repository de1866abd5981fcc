//! `dime message inspect`.

use crate::cli::MessageInspectArgs;
use crate::files::read_bytes;
use anyhow::Context;
use dime_core::crypto::default_provider;
use dime_envelope::{ActorSecret, Inspection, inspect as inspect_message};
use dime_signet::keyfile::KeySet;
use std::io::Write;

pub(crate) fn inspect(a: MessageInspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let p = default_provider();
    let msg = read_bytes(&a.file)?;
    let key = match &a.key {
        Some(path) => Some(
            match crate::org::read_keys(p, path, &a.passphrase)? {
                KeySet::User(k) => ActorSecret::from_user_keys(p, &k),
                KeySet::Org(k) => ActorSecret::from_org_keys(p, &k),
            }
            .with_context(|| format!("{} cannot open v2 messages", path.display()))?,
        ),
        None => None,
    };
    let i = inspect_message(p, &msg, key.as_ref());
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&to_json(&i))?)?;
    } else {
        to_text(&i, key.is_some(), out)?;
    }
    if let Some(e) = &i.error {
        anyhow::bail!("message is not valid: {e}");
    }
    Ok(())
}

fn to_text(i: &Inspection, keyed: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    match i.kind {
        Some(k) => writeln!(out, "kind: {k:?}")?,
        None => writeln!(out, "kind: unknown (header does not decode)")?,
    }
    if let Some(id) = i.message_id {
        writeln!(out, "message id: {}", hex::encode(id))?;
    }
    writeln!(out, "size: {} bytes, {} chunks", i.size, i.chunks.len())?;
    for c in &i.chunks {
        let opened = match (c.opened_as, c.padded_size) {
            (Some(r), Some(n)) => format!(", opened as {r:?} ({n} bytes padded)"),
            (Some(r), None) => format!(", opened as {r:?}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  chunk {:>3} {:?} at {}: {} bytes, {} segments, slots {:?}{opened}",
            c.index, c.chunk_type, c.offset, c.size, c.segments, c.slots
        )?;
    }
    if keyed {
        if i.key_roles.is_empty() {
            writeln!(out, "the key opens no slot of this message")?;
        } else {
            writeln!(out, "the key opens the slots of: {:?}", i.key_roles)?;
        }
    }
    if let Some(e) = &i.error {
        writeln!(out, "error: {e}")?;
    }
    Ok(())
}

fn to_json(i: &Inspection) -> serde_json::Value {
    serde_json::json!({
        "kind": i.kind.map(|k| format!("{k:?}")),
        "message_id": i.message_id.map(hex::encode),
        "size": i.size,
        "chunks": i.chunks.iter().map(|c| serde_json::json!({
            "index": c.index,
            "type": format!("{:?}", c.chunk_type),
            "offset": c.offset,
            "size": c.size,
            "segments": c.segments,
            "slots": c.slots.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
            "opened_as": c.opened_as.map(|r| format!("{r:?}")),
            "padded_size": c.padded_size,
        })).collect::<Vec<_>>(),
        "key_roles": i.key_roles.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
        "error": i.error,
    })
}
