//! Accounts: creation, login, password change, recovery, rotation, deletion
//! (`spec/storage.md` §6).

use crate::backend::{Backend, ReadTxn, Table, WriteTxn};
use crate::codec::{Dec, Enc, open_record, seal_record};
use crate::keys::{
    KeyringEntry, SALT_LEN, Session, account_subkey, decode_keyring, derive, encode_keyring, open,
    seal, server_salt,
};
use crate::{
    AccountError, AccountId, Accounts, Inner, MAX_PASSWORD_LEN, MailboxId, Store, StoreError,
    Timestamp, quarantine,
};
use dime_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, Argon2Memory, Argon2Params, X25519PublicKey, X25519Secret,
};
use dime_core::{CryptoRngCore, Mailbox, Secret};
use dime_signet::{OrgKeys, OrgSigner, Profile, Signet, UserKeys};
use zeroize::Zeroizing;

pub(crate) const KIND_PASSWORD: u8 = 1;
pub(crate) const KIND_RECOVERY_CODE: u8 = 2;
pub(crate) const KIND_ESCROW: u8 = 3;
pub(crate) const KIND_KEYRING: u8 = 4;
pub(crate) const KIND_DIRECTORY: u8 = 5;

/// Octets of a recovery code's entropy (`spec/storage.md` §6.3).
const RECOVERY_CODE_LEN: usize = 20;

/// How an account can be recovered when its password is lost (`spec/storage.md` §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// None ("high security"): a lost password loses the mail. Tell the user so.
    None,
    /// A high-entropy recovery code, shown once at creation.
    Code,
    /// The organisation's escrow key (an X25519 public key): the organisation can reset the
    /// password.
    Escrow(X25519PublicKey),
}

impl Recovery {
    fn code(&self) -> u8 {
        match self {
            Recovery::None => 0,
            Recovery::Code => 1,
            Recovery::Escrow(_) => 2,
        }
    }
}

impl Recovery {
    /// The recovery of an account record's code (`spec/storage.md` §3.1): "none", "code",
    /// "escrow".
    fn name_of(code: u8) -> &'static str {
        match code {
            0 => "none",
            1 => "code",
            2 => "escrow",
            _ => "unknown",
        }
    }
}

/// One account as [`Accounts::accounts`](crate::Accounts::accounts) lists it: what the
/// operator sees of it (no key, no mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account.
    pub id: AccountId,
    /// Its address (none when its directory entry does not open: a damaged record).
    pub address: Option<Mailbox>,
    /// Its current key generation.
    pub generation: u32,
    /// Its recovery: "none", "code" or "escrow".
    pub recovery: &'static str,
    /// Its quota, octets.
    pub quota_bytes: u64,
    /// The octets its mail takes.
    pub used_bytes: u64,
    /// Its messages.
    pub messages: u64,
}

/// What [`Accounts::create_account`](crate::Accounts::create_account) needs.
#[derive(Debug)]
pub struct NewAccount<'a> {
    /// The account's address.
    pub address: &'a Mailbox,
    /// The initial password.
    pub password: &'a [u8],
    /// The recovery choice.
    pub recovery: Recovery,
    /// The quota, in octets of stored envelopes.
    pub quota_bytes: u64,
}

/// A recovery code: shown to the user once, never stored.
pub struct RecoveryCode(Secret<String>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl RecoveryCode {
    /// The code's text (groups of hex digits). Show it once; never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Parses a code as the user types it back (case, spaces and dashes are ignored).
    pub fn parse(s: &str) -> Option<RecoveryCode> {
        let hex: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if hex.len() != RECOVERY_CODE_LEN * 2 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        Some(RecoveryCode(Secret::new(hex)))
    }

    fn generate(rng: &mut dyn CryptoRngCore) -> RecoveryCode {
        let mut b = Zeroizing::new([0u8; RECOVERY_CODE_LEN]);
        rng.fill_bytes(&mut b[..]);
        let mut s = String::new();
        for (i, byte) in b.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push_str(&format!("{byte:02x}"));
        }
        RecoveryCode(Secret::new(s))
    }

    /// The code's octets (the key derivation's input), from its hex digits.
    fn bytes(&self) -> Zeroizing<Vec<u8>> {
        let hex: Zeroizing<Vec<u8>> =
            Zeroizing::new(self.0.expose().bytes().filter(u8::is_ascii_hexdigit).collect());
        // `parse` and `generate` make exactly 2 × RECOVERY_CODE_LEN hex digits.
        let octet = |pair: &[u8]| {
            std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok())
        };
        Zeroizing::new(hex.chunks(2).map(|pair| octet(pair).unwrap_or(0)).collect())
    }
}

/// What [`Accounts::create_account`](crate::Accounts::create_account) returns.
#[derive(Debug)]
pub struct Created {
    /// The new account.
    pub account: AccountId,
    /// The user signet, signed by the organisation.
    pub signet: Signet,
    /// The recovery code, when [`Recovery::Code`] was chosen: show it once.
    pub recovery_code: Option<RecoveryCode>,
}

/// The clear counters of an account (`spec/storage.md` §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccountRec {
    pub(crate) recovery: u8,
    pub(crate) quota: u64,
    pub(crate) used: u64,
    pub(crate) count: u64,
    pub(crate) next_msg: u64,
    pub(crate) next_mbox: u32,
    pub(crate) key_gen: u32,
}

impl AccountRec {
    fn encode(&self) -> Vec<u8> {
        Enc::new()
            .u8(1)
            .u8(self.recovery)
            .u64(self.quota)
            .u64(self.used)
            .u64(self.count)
            .u64(self.next_msg)
            .u32(self.next_mbox)
            .u32(self.key_gen)
            .finish()
    }
    fn decode(b: &[u8]) -> Result<AccountRec, StoreError> {
        let mut d = Dec::new(b, "account record");
        if d.u8()? != 1 {
            return Err(StoreError::Corrupt { what: "account record" });
        }
        let r = AccountRec {
            recovery: d.u8()?,
            quota: d.u64()?,
            used: d.u64()?,
            count: d.u64()?,
            next_msg: d.u64()?,
            next_mbox: d.u32()?,
            key_gen: d.u32()?,
        };
        d.finish()?;
        Ok(r)
    }
}

/// Reads and checks a record; `None` when absent.
pub(crate) fn get_body(
    inner: &Inner,
    t: &dyn ReadTxn,
    table: Table,
    key: &[u8],
    what: &'static str,
) -> Result<Option<Vec<u8>>, StoreError> {
    match t.get(table, key)? {
        None => Ok(None),
        Some(v) => Ok(Some(open_record(inner.p, table, key, &v, what)?.to_vec())),
    }
}

/// Writes a record with its checksum.
pub(crate) fn put_body(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    table: Table,
    key: &[u8],
    body: Vec<u8>,
) -> Result<(), StoreError> {
    t.put(table, key, &seal_record(inner.p, table, key, body))
}

pub(crate) fn load_account(
    inner: &Inner,
    t: &dyn ReadTxn,
    a: AccountId,
) -> Result<AccountRec, StoreError> {
    let b = get_body(inner, t, Table::Accounts, &a.0, "account record")?
        .ok_or(StoreError::UnknownAccount)?;
    AccountRec::decode(&b)
}

pub(crate) fn save_account(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    r: &AccountRec,
) -> Result<(), StoreError> {
    put_body(inner, t, Table::Accounts, &a.0, r.encode())
}

pub(crate) fn key_key(a: AccountId, kind: u8) -> Vec<u8> {
    let mut k = a.0.to_vec();
    k.push(kind);
    k
}

/// Keys of every record whose key starts with `prefix` sort below this bound.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut e = prefix.to_vec();
    e.extend_from_slice(&[0xff; 32]);
    e
}

impl Inner {
    /// The keyed tag under which an address is indexed: the address itself is never stored.
    pub(crate) fn address_tag(&self, address: &Mailbox) -> Result<[u8; 32], StoreError> {
        let norm = address.to_string().to_lowercase();
        let k =
            derive(self.p, self.pepper.expose(), norm.as_bytes(), &[b"dime-store address tag"])?;
        Ok(*k.expose())
    }

    pub(crate) fn account_of(&self, address: &Mailbox) -> Result<AccountId, StoreError> {
        let tag = self.address_tag(address)?;
        let mut out = None;
        self.backend.read(&mut |t| {
            out = t.get(Table::Addresses, &tag)?;
            Ok(())
        })?;
        let v = out.ok_or(StoreError::UnknownAccount)?;
        let body = open_record(self.p, Table::Addresses, &tag, &v, "address index")?;
        Ok(AccountId(body.try_into().map_err(|_| StoreError::Corrupt { what: "address index" })?))
    }

    pub(crate) fn shred_key(&self, a: AccountId) -> Result<Secret<[u8; 32]>, StoreError> {
        let mut out = None;
        self.vault.read(&mut |t| {
            out = t.get(Table::Vault, &a.0)?;
            Ok(())
        })?;
        let v = out.ok_or(StoreError::Shredded)?;
        let body = open_record(self.p, Table::Vault, &a.0, &v, "shredding key")?;
        Ok(Secret::new(body.try_into().map_err(|_| StoreError::Corrupt { what: "shredding key" })?))
    }

    pub(crate) fn password_body(
        &self,
        rng: &mut dyn CryptoRngCore,
        a: AccountId,
        shred: &Secret<[u8; 32]>,
        password: &[u8],
        account_key: &Secret<[u8; 32]>,
    ) -> Result<Vec<u8>, StoreError> {
        let params = self.argon2;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let kek =
            self.password_kek(a, shred, password, &params, &salt, &mut Argon2Memory::new())?;
        let aad = password_aad(a, &params, &salt);
        let sealed = seal(self.p, rng, &kek, &aad, account_key.expose());
        Ok(Enc::new()
            .u32(params.m_kib)
            .u32(params.t)
            .u32(params.p)
            .raw(&salt)
            .bytes(&sealed)
            .finish())
    }

    fn password_kek(
        &self,
        a: AccountId,
        shred: &Secret<[u8; 32]>,
        password: &[u8],
        params: &Argon2Params,
        salt: &[u8],
        memory: &mut Argon2Memory,
    ) -> Result<dime_core::crypto::AeadKey, StoreError> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(StoreError::TooLarge { what: "password", limit: MAX_PASSWORD_LEN });
        }
        params.check().map_err(StoreError::HostileParams)?;
        let mut stretched = Secret::new([0u8; 32]);
        self.p.password_kdf.argon2id_in(password, salt, params, stretched.expose_mut(), memory)?;
        let ss = server_salt(self.pepper.expose(), shred.expose());
        derive(self.p, &ss, stretched.expose(), &[b"dime-store password kek", &a.0])
    }

    fn unwrap_password(
        &self,
        a: AccountId,
        shred: &Secret<[u8; 32]>,
        body: &[u8],
        password: &[u8],
        memory: &mut Argon2Memory,
    ) -> Result<Secret<[u8; 32]>, StoreError> {
        let mut d = Dec::new(body, "wrapped key");
        let params = Argon2Params { m_kib: d.u32()?, t: d.u32()?, p: d.u32()? };
        let salt = d.array::<SALT_LEN>()?;
        let sealed = d.bytes()?;
        d.finish()?;
        let kek = self.password_kek(a, shred, password, &params, &salt, memory)?;
        let pt = open(self.p, &kek, &password_aad(a, &params, &salt), sealed)
            .map_err(|_| StoreError::LoginFailed)?;
        to_key(&pt)
    }

    /// The work of [`Inner::unwrap_password`] for a login that has no password record to try
    /// (an unknown address, a deleted account): the Argon2id of the store's parameters, the key
    /// derivation and an AEAD open that fails, so that it takes as long as a wrong password
    /// (`spec/dimed.md`, Logins). Its result is discarded.
    fn dummy_unwrap(&self, password: &[u8], memory: &mut Argon2Memory) {
        let a = AccountId([0; 16]);
        let shred = Secret::new([0u8; 32]);
        let salt = [0u8; SALT_LEN];
        // The shape of a wrapped account key: nonce ‖ 32 octets ‖ tag.
        let sealed = [0u8; AEAD_NONCE_LEN + 32 + AEAD_TAG_LEN];
        if let Ok(kek) = self.password_kek(a, &shred, password, &self.argon2, &salt, memory) {
            let _ = open(self.p, &kek, &password_aad(a, &self.argon2, &salt), &sealed);
        }
    }

    fn session(
        &self,
        a: AccountId,
        address: &Mailbox,
        account_key: Secret<[u8; 32]>,
        now: Timestamp,
    ) -> Result<Session, StoreError> {
        let mut ring = None;
        self.backend.read(&mut |t| {
            ring = get_body(self, t, Table::Keys, &key_key(a, KIND_KEYRING), "keyring")?;
            Ok(())
        })?;
        let ring = ring.ok_or(StoreError::Corrupt { what: "keyring" })?;
        let rk = account_subkey(self.p, &account_key, a, b"keyring")?;
        let pt = open(self.p, &rk, &key_key(a, KIND_KEYRING), &ring)
            .map_err(|_| StoreError::Corrupt { what: "keyring" })?;
        let keyring = decode_keyring(&pt)?;
        let meta_key = account_subkey(self.p, &account_key, a, b"meta")?;
        let read_key = account_subkey(self.p, &account_key, a, b"read")?;
        Ok(Session {
            read_key,
            account: a,
            address: address.clone(),
            account_key,
            meta_key,
            keyring,
            last_active: now,
            idle_timeout_secs: self.idle_timeout_secs,
            expired: false,
        })
    }

    pub(crate) fn directory_body(
        &self,
        rng: &mut dyn CryptoRngCore,
        a: AccountId,
        shred: &Secret<[u8; 32]>,
        dir: &DirectoryRec,
    ) -> Result<Vec<u8>, StoreError> {
        let k = self.directory_key(a, shred)?;
        Ok(seal(self.p, rng, &k, &key_key(a, KIND_DIRECTORY), &dir.encode()))
    }

    fn directory_key(
        &self,
        a: AccountId,
        shred: &Secret<[u8; 32]>,
    ) -> Result<dime_core::crypto::AeadKey, StoreError> {
        let ss = server_salt(self.pepper.expose(), shred.expose());
        derive(self.p, &ss, b"", &[b"dime-store directory", &a.0])
    }

    /// The directory record of account `a` (read with the pepper).
    pub(crate) fn directory(&self, a: AccountId) -> Result<DirectoryRec, StoreError> {
        let shred = self.shred_key(a)?;
        let kk = key_key(a, KIND_DIRECTORY);
        let mut body = None;
        self.backend.read(&mut |t| {
            body = get_body(self, t, Table::Keys, &kk, "directory entry")?;
            Ok(())
        })?;
        let body = body.ok_or(StoreError::Corrupt { what: "directory entry" })?;
        let pt = open(self.p, &self.directory_key(a, &shred)?, &kk, &body)
            .map_err(|_| StoreError::Corrupt { what: "directory entry" })?;
        DirectoryRec::decode(&pt)
    }
}

/// Earlier signets a directory record keeps, the newest (`spec/storage.md` §6.5): as many as
/// one DMTP HIST answer carries.
pub const MAX_SIGNET_HISTORY: usize = 64;
/// Former addresses a directory record keeps, the newest.
pub const MAX_FORMER_ADDRESSES: usize = 16;

/// An account's directory record (`spec/storage.md` §6.5): its address, its key generation,
/// its current user signet, the earlier signets of its chain of custody (oldest first), and
/// the addresses it had before it moved (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRec {
    /// The account's address.
    pub address: Mailbox,
    /// Its current key generation.
    pub generation: u32,
    /// Its current user signet.
    pub signet: Signet,
    /// Its earlier user signets, oldest first (at most [`MAX_SIGNET_HISTORY`]).
    pub history: Vec<Signet>,
    /// The addresses it had on the hosts it moved from, oldest first (at most
    /// [`MAX_FORMER_ADDRESSES`]).
    pub former: Vec<Mailbox>,
}

impl DirectoryRec {
    /// The chain, oldest first, the current signet last.
    pub fn chain(&self) -> Vec<Signet> {
        let mut c = self.history.clone();
        c.push(self.signet.clone());
        c
    }

    /// The record after a new signet: the current one joins the history.
    pub(crate) fn rotated(&self, generation: u32, signet: Signet) -> DirectoryRec {
        let mut history = self.history.clone();
        history.push(self.signet.clone());
        let over = history.len().saturating_sub(MAX_SIGNET_HISTORY);
        history.drain(..over);
        DirectoryRec { generation, signet, history, ..self.clone() }
    }

    /// `address || u32 generation || signet || u32 n || n signets || u32 m || m addresses`,
    /// each signet and address u32-length-prefixed. A record of the first format ends after
    /// the signet: no history, no former address.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new()
            .bytes(self.address.to_string().as_bytes())
            .u32(self.generation)
            .bytes(self.signet.as_bytes())
            .u32(u32::try_from(self.history.len()).unwrap_or(u32::MAX));
        for s in &self.history {
            e = e.bytes(s.as_bytes());
        }
        e = e.u32(u32::try_from(self.former.len()).unwrap_or(u32::MAX));
        for m in &self.former {
            e = e.bytes(m.to_string().as_bytes());
        }
        e.finish()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<DirectoryRec, StoreError> {
        let bad = StoreError::Corrupt { what: "directory entry" };
        let mut d = Dec::new(b, "directory entry");
        let address = mailbox_of(d.bytes()?).ok_or(bad.clone())?;
        let generation = d.u32()?;
        let signet = Signet::decode(d.bytes()?).map_err(|_| bad.clone())?;
        let (mut history, mut former) = (Vec::new(), Vec::new());
        if !d.is_empty() {
            let n = d.u32()? as usize;
            if n > MAX_SIGNET_HISTORY {
                return Err(bad);
            }
            for _ in 0..n {
                history.push(Signet::decode(d.bytes()?).map_err(|_| bad.clone())?);
            }
            let m = d.u32()? as usize;
            if m > MAX_FORMER_ADDRESSES {
                return Err(bad);
            }
            for _ in 0..m {
                former.push(mailbox_of(d.bytes()?).ok_or(bad.clone())?);
            }
        }
        d.finish()?;
        Ok(DirectoryRec { address, generation, signet, history, former })
    }
}

fn mailbox_of(b: &[u8]) -> Option<Mailbox> {
    std::str::from_utf8(b).ok().and_then(|s| Mailbox::parse(s).ok())
}

fn password_aad(a: AccountId, params: &Argon2Params, salt: &[u8]) -> Vec<u8> {
    Enc::new()
        .raw(b"dime-store password")
        .raw(&a.0)
        .u32(params.m_kib)
        .u32(params.t)
        .u32(params.p)
        .raw(salt)
        .finish()
}

fn to_key(pt: &[u8]) -> Result<Secret<[u8; 32]>, StoreError> {
    let k: [u8; 32] = pt.try_into().map_err(|_| StoreError::Corrupt { what: "wrapped key" })?;
    Ok(Secret::new(k))
}

fn signet_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Signet(e.to_string())
}

impl Store {
    /// [`Accounts::login`], with Argon2id working in `memory` (the caller bounds how many run
    /// at once and keeps one memory per slot, `spec/dimed.md`, Logins). An unknown address, a
    /// deleted account or an account without a password does the same work as a wrong password
    /// (a dummy Argon2id of the store's parameters, then an AEAD open that fails) before its
    /// error, so that the time taken does not tell them apart.
    ///
    /// # Errors
    /// As [`Accounts::login`].
    pub fn login_in(
        &self,
        address: &Mailbox,
        password: &[u8],
        now: Timestamp,
        memory: &mut Argon2Memory,
    ) -> Result<Session, AccountError> {
        let inner = &*self.inner;
        let found = inner.account_of(address).and_then(|a| {
            let shred = inner.shred_key(a)?;
            let body = self.key_record(a, KIND_PASSWORD)?.ok_or(StoreError::LoginFailed)?;
            Ok((a, shred, body))
        });
        let (a, shred, body) = match found {
            Ok(found) => found,
            Err(
                e @ (StoreError::UnknownAccount | StoreError::Shredded | StoreError::LoginFailed),
            ) => {
                inner.dummy_unwrap(password, memory);
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let ak = inner.unwrap_password(a, &shred, &body, password, memory)?;
        Ok(inner.session(a, address, ak, now)?)
    }

    /// A short keyed tag of `address` (its normalised form), for login throttling and audit
    /// lines (`spec/dimed.md`, Logins): the same for the same address across restarts, whether
    /// or not it has an account, neither the address nor its index key, and useless without the
    /// store's pepper.
    ///
    /// # Errors
    /// [`AccountError::Backend`] if the key derivation fails.
    pub fn login_tag(&self, address: &Mailbox) -> Result<[u8; 8], AccountError> {
        let inner = &*self.inner;
        let norm = address.to_string().to_lowercase();
        let k =
            derive(inner.p, inner.pepper.expose(), norm.as_bytes(), &[b"dime-store login tag"])?;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&k.expose()[..8]);
        Ok(tag)
    }
}

impl Accounts for Store {
    fn create_account(
        &self,
        rng: &mut dyn CryptoRngCore,
        org: &OrgKeys,
        new: &NewAccount<'_>,
        now: Timestamp,
    ) -> Result<Created, AccountError> {
        let inner = &*self.inner;
        let p = inner.p;
        if new.password.len() > MAX_PASSWORD_LEN {
            return Err(AccountError::TooLarge { what: "password", limit: MAX_PASSWORD_LEN });
        }
        if inner.account_of(new.address).is_ok() {
            return Err(AccountError::AccountExists);
        }
        let keys = UserKeys::generate(rng);
        let ssr = dime_signet::create_ssr(p, &keys).map_err(signet_err)?;
        let signet = dime_signet::sign_user_signet(
            p,
            org,
            OrgSigner::Pok,
            &ssr,
            new.address,
            &Profile::new(),
        )
        .map_err(signet_err)?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let a = AccountId(id);
        let mut ak = Secret::new([0u8; 32]);
        rng.fill_bytes(ak.expose_mut());
        let mut shred = Secret::new([0u8; 32]);
        rng.fill_bytes(shred.expose_mut());

        // Records, built before the transaction (Argon2 runs outside it).
        let pw = inner.password_body(rng, a, &shred, new.password, &ak)?;
        let ring = encode_keyring(&[KeyringEntry { generation: 0, keys }])?;
        let rk = account_subkey(p, &ak, a, b"keyring")?;
        let ring_sealed = seal(p, rng, &rk, &key_key(a, KIND_KEYRING), &ring);
        let dir = inner.directory_body(
            rng,
            a,
            &shred,
            &DirectoryRec {
                address: new.address.clone(),
                generation: 0,
                signet: signet.clone(),
                history: Vec::new(),
                former: Vec::new(),
            },
        )?;
        let meta = account_subkey(p, &ak, a, b"meta")?;
        let inbox =
            crate::mail::new_mailbox_body(p, rng, &meta, a, MailboxId::INBOX, "INBOX", now)?;
        let mut recovery_code = None;
        let recovery_body = match new.recovery {
            Recovery::None => None,
            Recovery::Code => {
                let code = RecoveryCode::generate(rng);
                let kek = recovery_code_kek(inner, &shred, a, &code)?;
                let body = Enc::new()
                    .bytes(&seal(p, rng, &kek, &key_key(a, KIND_RECOVERY_CODE), ak.expose()))
                    .finish();
                recovery_code = Some(code);
                Some((KIND_RECOVERY_CODE, body))
            }
            Recovery::Escrow(org_pub) => {
                let eph = X25519Secret::generate(rng);
                let eph_pub = p.key_agreement.public_key(&eph);
                let shared = p.key_agreement.agree(&eph, &org_pub)?;
                let kek = escrow_kek(inner, &shred, a, shared.expose(), &eph_pub, &org_pub)?;
                let sealed = seal(p, rng, &kek, &key_key(a, KIND_ESCROW), ak.expose());
                Some((
                    KIND_ESCROW,
                    Enc::new().raw(&eph_pub.0).raw(&org_pub.0).bytes(&sealed).finish(),
                ))
            }
        };
        let tag = inner.address_tag(new.address)?;

        inner
            .vault
            .write(&mut |t| put_body(inner, t, Table::Vault, &a.0, shred.expose().to_vec()))?;
        let rec = AccountRec {
            recovery: new.recovery.code(),
            quota: new.quota_bytes,
            used: 0,
            count: 0,
            next_msg: 1,
            next_mbox: 1,
            key_gen: 0,
        };
        inner.backend.write(&mut |t| {
            if t.get(Table::Addresses, &tag)?.is_some() {
                return Err(StoreError::AccountExists);
            }
            put_body(inner, t, Table::Addresses, &tag, a.0.to_vec())?;
            save_account(inner, t, a, &rec)?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_PASSWORD), pw.clone())?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_KEYRING), ring_sealed.clone())?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_DIRECTORY), dir.clone())?;
            if let Some((kind, body)) = &recovery_body {
                put_body(inner, t, Table::Keys, &key_key(a, *kind), body.clone())?;
            }
            put_body(
                inner,
                t,
                Table::Mailboxes,
                &crate::mail::mbox_key(a, MailboxId::INBOX),
                inbox.clone(),
            )?;
            Ok(())
        })?;
        Ok(Created { account: a, signet, recovery_code })
    }

    fn account_of(&self, address: &Mailbox) -> Result<AccountId, AccountError> {
        Ok(self.inner.account_of(address)?)
    }

    fn login(
        &self,
        address: &Mailbox,
        password: &[u8],
        now: Timestamp,
    ) -> Result<Session, AccountError> {
        self.login_in(address, password, now, &mut Argon2Memory::new())
    }

    fn change_password(
        &self,
        rng: &mut dyn CryptoRngCore,
        session: &mut Session,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<(), AccountError> {
        session.touch(now)?;
        let inner = &*self.inner;
        let a = session.account;
        let shred = inner.shred_key(a)?;
        let body = inner.password_body(rng, a, &shred, new_password, &session.account_key)?;
        Ok(inner.backend.write(&mut |t| {
            put_body(inner, t, Table::Keys, &key_key(a, KIND_PASSWORD), body.clone())
        })?)
    }

    fn recover_with_code(
        &self,
        rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        code: &RecoveryCode,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<(Session, RecoveryCode), AccountError> {
        let inner = &*self.inner;
        let a = inner.account_of(address)?;
        let shred = inner.shred_key(a)?;
        let kk = key_key(a, KIND_RECOVERY_CODE);
        let body = self.key_record(a, KIND_RECOVERY_CODE)?.ok_or(StoreError::NoRecovery("code"))?;
        let mut d = Dec::new(&body, "recovery wrap");
        let sealed = d.bytes()?;
        d.finish()?;
        let kek = recovery_code_kek(inner, &shred, a, code)?;
        let pt = open(inner.p, &kek, &kk, sealed).map_err(|_| StoreError::LoginFailed)?;
        let ak = to_key(&pt)?;
        // Single use (spec/storage.md §6.3): the new password wrap and the new code's wrap
        // replace the old ones in one transaction, committed only while the code record is
        // still the one that opened (a concurrent recovery with the same code loses).
        let new_code = RecoveryCode::generate(rng);
        let new_kek = recovery_code_kek(inner, &shred, a, &new_code)?;
        let new_wrap = Enc::new().bytes(&seal(inner.p, rng, &new_kek, &kk, ak.expose())).finish();
        let pw = inner.password_body(rng, a, &shred, new_password, &ak)?;
        inner.backend.write(&mut |t| {
            if get_body(inner, t, Table::Keys, &kk, "wrapped key")?.as_deref() != Some(&body[..]) {
                return Err(StoreError::LoginFailed);
            }
            put_body(inner, t, Table::Keys, &key_key(a, KIND_PASSWORD), pw.clone())?;
            put_body(inner, t, Table::Keys, &kk, new_wrap.clone())
        })?;
        let session = inner.session(a, address, ak, now)?;
        Ok((session, new_code))
    }

    fn recover_with_escrow(
        &self,
        rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        org_secret: &X25519Secret,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<Session, AccountError> {
        let inner = &*self.inner;
        let a = inner.account_of(address)?;
        let shred = inner.shred_key(a)?;
        let body = self.key_record(a, KIND_ESCROW)?.ok_or(StoreError::NoRecovery("escrow"))?;
        let mut d = Dec::new(&body, "escrow wrap");
        let eph_pub = X25519PublicKey(d.array::<32>()?);
        let org_pub = X25519PublicKey(d.array::<32>()?);
        let sealed = d.bytes()?;
        d.finish()?;
        let shared = inner
            .p
            .key_agreement
            .agree(org_secret, &eph_pub)
            .map_err(|_| StoreError::LoginFailed)?;
        let kek = escrow_kek(inner, &shred, a, shared.expose(), &eph_pub, &org_pub)?;
        let pt = open(inner.p, &kek, &key_key(a, KIND_ESCROW), sealed)
            .map_err(|_| StoreError::LoginFailed)?;
        Ok(self.finish_recovery(rng, a, address, to_key(&pt)?, new_password, now)?)
    }

    fn signet(&self, address: &Mailbox) -> Result<(u32, Signet), AccountError> {
        let inner = &*self.inner;
        let dir = inner.directory(inner.account_of(address)?)?;
        Ok((dir.generation, dir.signet))
    }

    fn directory(&self, address: &Mailbox) -> Result<DirectoryRec, AccountError> {
        let inner = &*self.inner;
        Ok(inner.directory(inner.account_of(address)?)?)
    }

    fn rotate_keys(
        &self,
        rng: &mut dyn CryptoRngCore,
        session: &mut Session,
        org: &OrgKeys,
        now: Timestamp,
    ) -> Result<Signet, AccountError> {
        session.touch(now)?;
        let inner = &*self.inner;
        let p = inner.p;
        let a = session.account;
        let current = session.current_keys().ok_or(StoreError::SessionExpired)?;
        let generation = session
            .current_generation()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(StoreError::NotV2Keys)?;
        let new_keys = UserKeys::generate(rng);
        let ssr = dime_signet::create_rotation_ssr(p, &new_keys, current).map_err(signet_err)?;
        let signet = dime_signet::sign_user_signet(
            p,
            org,
            OrgSigner::Pok,
            &ssr,
            &session.address,
            &Profile::new(),
        )
        .map_err(signet_err)?;
        let mut ring: Vec<KeyringEntry> = session
            .keyring
            .iter()
            .map(|k| KeyringEntry { generation: k.generation, keys: k.keys.duplicate() })
            .collect();
        ring.push(KeyringEntry { generation, keys: new_keys });
        let rk = account_subkey(p, &session.account_key, a, b"keyring")?;
        let sealed = seal(p, rng, &rk, &key_key(a, KIND_KEYRING), &encode_keyring(&ring)?);
        let shred = inner.shred_key(a)?;
        let dir = inner.directory(a)?.rotated(generation, signet.clone());
        let dir = inner.directory_body(rng, a, &shred, &dir)?;
        inner.backend.write(&mut |t| {
            let mut rec = load_account(inner, t, a)?;
            rec.key_gen = generation;
            save_account(inner, t, a, &rec)?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_KEYRING), sealed.clone())?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_DIRECTORY), dir.clone())
        })?;
        session.keyring = ring;
        Ok(signet)
    }

    fn delete_account(&self, address: &Mailbox) -> Result<(), AccountError> {
        let inner = &*self.inner;
        let a = inner.account_of(address)?;
        inner.vault.write(&mut |t| t.delete(Table::Vault, &a.0).map(|_| ()))?;
        let tag = inner.address_tag(address)?;
        inner.backend.write(&mut |t| {
            t.delete(Table::Addresses, &tag)?;
            for table in [
                Table::Accounts,
                Table::Keys,
                Table::Mailboxes,
                Table::Entries,
                Table::Messages,
                Table::Blobs,
                Table::Overlays,
                Table::Jobs,
            ] {
                for (k, _) in t.range(table, &a.0, &prefix_end(&a.0), usize::MAX)? {
                    t.delete(table, &k)?;
                }
            }
            Ok(())
        })?;
        // Its envelopes leave the delivery log too (`spec/storage.md` §12).
        Ok(self.committer.erase_log()?)
    }

    fn accounts(
        &self,
        after: Option<AccountId>,
        max: usize,
    ) -> Result<Vec<AccountInfo>, AccountError> {
        let inner = &*self.inner;
        // Keys are 16 octets: the one after `after` is `after` ‖ 0x00 (a longer key sorts
        // after its prefix).
        let start = match after {
            Some(a) => {
                let mut k = a.0.to_vec();
                k.push(0);
                k
            }
            None => Vec::new(),
        };
        let mut listed = Vec::new();
        inner.backend.read(&mut |t| {
            listed.clear();
            for (k, _) in t.range(Table::Accounts, &start, &[0xff; 17], max)? {
                let Ok(id) = <[u8; 16]>::try_from(k.as_slice()) else { continue };
                let a = AccountId(id);
                listed.push((a, load_account(inner, t, a)));
            }
            Ok(())
        })?;
        let mut out = Vec::with_capacity(listed.len());
        for (a, rec) in listed {
            let dir = inner.directory(a).ok();
            let (recovery, quota_bytes, used_bytes, messages, generation) = match rec {
                Ok(r) => (Recovery::name_of(r.recovery), r.quota, r.used, r.count, r.key_gen),
                Err(_) => ("unknown", 0, 0, 0, 0),
            };
            out.push(AccountInfo {
                id: a,
                generation: dir.as_ref().map_or(generation, |d| d.generation),
                address: dir.map(|d| d.address),
                recovery,
                quota_bytes,
                used_bytes,
                messages,
            });
        }
        Ok(out)
    }
}

impl Store {
    fn finish_recovery(
        &self,
        rng: &mut dyn CryptoRngCore,
        a: AccountId,
        address: &Mailbox,
        ak: Secret<[u8; 32]>,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<Session, StoreError> {
        let mut s = self.inner.session(a, address, ak, now)?;
        self.change_password(rng, &mut s, new_password, now)?;
        Ok(s)
    }

    fn key_record(&self, a: AccountId, kind: u8) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = &*self.inner;
        let mut out = None;
        let kk = key_key(a, kind);
        let r = inner.backend.read(&mut |t| {
            out = get_body(inner, t, Table::Keys, &kk, "wrapped key")?;
            Ok(())
        });
        if let Err(StoreError::Corrupt { what }) = r {
            quarantine(inner, Table::Keys, &kk);
            return Err(StoreError::Corrupt { what });
        }
        r?;
        Ok(out)
    }
}

/// The key that wraps the account key under a recovery code (`spec/storage.md` §6.3).
fn recovery_code_kek(
    inner: &Inner,
    shred: &Secret<[u8; 32]>,
    a: AccountId,
    code: &RecoveryCode,
) -> Result<dime_core::crypto::AeadKey, StoreError> {
    let ss = server_salt(inner.pepper.expose(), shred.expose());
    derive(inner.p, &ss, &code.bytes(), &[b"dime-store recovery code", &a.0])
}

fn escrow_kek(
    inner: &Inner,
    shred: &Secret<[u8; 32]>,
    a: AccountId,
    shared: &[u8; 32],
    eph_pub: &X25519PublicKey,
    org_pub: &X25519PublicKey,
) -> Result<dime_core::crypto::AeadKey, StoreError> {
    let ss = server_salt(inner.pepper.expose(), shred.expose());
    derive(inner.p, &ss, shared, &[b"dime-store escrow", &a.0, &eph_pub.0, &org_pub.0])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::open_store;

    #[test]
    fn a_recovery_code_is_five_dashed_groups_of_eight_hex_digits_of_20_random_octets() {
        // spec/storage.md §6.3.
        let mut rng = dime_testkit::seeded_rng(1);
        for _ in 0..20 {
            let code = RecoveryCode::generate(&mut rng);
            let groups: Vec<&str> = code.expose().split('-').collect();
            assert_eq!(groups.len(), 5, "{groups:?}");
            for g in &groups {
                assert_eq!(g.len(), 8);
                assert!(g.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
            }
            let octets = code.bytes();
            assert_eq!(octets.len(), RECOVERY_CODE_LEN);
            assert_eq!(hex_of(&octets), groups.concat());
        }
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|o| format!("{o:02x}")).collect()
    }

    #[test]
    fn a_typed_recovery_code_gives_the_octets_it_shows() {
        let want: Vec<u8> = (0..20u8).map(|i| i.wrapping_mul(17).wrapping_add(0x0f)).collect();
        let text = hex_of(&want);
        for typed in [
            text.clone(),
            text.to_uppercase(),
            format!(" {}-{} ", &text[..8], &text[8..]),
            text.chars().flat_map(|c| [c, ' ']).collect(),
        ] {
            let code = RecoveryCode::parse(&typed).unwrap();
            assert_eq!(&code.bytes()[..], &want[..], "{typed:?}");
        }
    }

    #[test]
    fn a_recovery_code_of_the_wrong_length_or_with_other_characters_is_refused() {
        let text = "00112233445566778899aabbccddeeff01234567";
        assert!(RecoveryCode::parse(text).is_some());
        for bad in [
            &text[..39],
            &format!("{text}0"),
            "",
            &text.replace('a', "g"),
            &text.replace('0', "o"),
            &format!("{}+{}", &text[..20], &text[21..]),
        ] {
            assert!(RecoveryCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_password_wrap_opens_by_the_specs_formula_and_nothing_else() {
        // spec/storage.md §6: a second implementation opens the wrap from the spec alone.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(3);
        let org = OrgKeys::generate(&mut rng);
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let new = NewAccount {
            address: &alice,
            password: b"pw",
            recovery: Recovery::None,
            quota_bytes: 1,
        };
        let a = store.create_account(&mut rng, &org, &new, Timestamp(1)).unwrap().account;
        let session = store.login(&alice, b"pw", Timestamp(2)).unwrap();
        let body = store.key_record(a, KIND_PASSWORD).unwrap().unwrap();
        let u32_at = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
        let params = Argon2Params { m_kib: u32_at(0), t: u32_at(4), p: u32_at(8) };
        let salt = &body[12..28];
        let sealed = &body[32..];
        assert_eq!(u32_at(28) as usize, sealed.len());

        let p = dime_core::crypto::default_provider();
        let mut stretched = [0u8; 32];
        p.password_kdf.argon2id(b"pw", salt, &params, &mut stretched).unwrap();
        let server_salt = [&[7u8; 32][..], store.inner.shred_key(a).unwrap().expose()].concat();
        let info = [&b"dime-store password kek"[..], &a.0].concat();
        let mut kek = [0u8; 32];
        p.kdf.hkdf_sha512(&server_salt, &stretched, &info, &mut kek).unwrap();
        let mut aad = b"dime-store password".to_vec();
        aad.extend_from_slice(&a.0);
        for v in [params.m_kib, params.t, params.p] {
            aad.extend_from_slice(&v.to_be_bytes());
        }
        aad.extend_from_slice(salt);
        let (nonce, ct) = sealed.split_at(dime_core::crypto::AEAD_NONCE_LEN);
        let nonce = nonce.try_into().unwrap();
        let kek = dime_core::crypto::AeadKey::from_bytes(kek);
        let mut buf = ct.to_vec();
        p.aead.open(&kek, nonce, &aad, &mut buf).unwrap();
        assert_eq!(&buf[..], &session.account_key.expose()[..]);
        // The associated data and the server salt each matter.
        let mut buf = ct.to_vec();
        assert!(p.aead.open(&kek, nonce, &aad[..aad.len() - 1], &mut buf).is_err());
        let mut other = [0u8; 32];
        p.kdf.hkdf_sha512(&[7u8; 32], &stretched, &info, &mut other).unwrap();
        let mut buf = ct.to_vec();
        let other = dime_core::crypto::AeadKey::from_bytes(other);
        assert!(
            p.aead.open(&other, nonce, &aad, &mut buf).is_err(),
            "the shredding key is in the salt"
        );
    }

    #[test]
    fn a_password_of_the_longest_length_is_accepted_and_one_octet_more_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(4);
        let org = OrgKeys::generate(&mut rng);
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let longest = vec![b'x'; MAX_PASSWORD_LEN];
        let too_long = vec![b'x'; MAX_PASSWORD_LEN + 1];
        let new = |password| NewAccount {
            address: &alice,
            password,
            recovery: Recovery::None,
            quota_bytes: 1,
        };
        let refused = AccountError::TooLarge { what: "password", limit: MAX_PASSWORD_LEN };
        assert_eq!(
            store.create_account(&mut rng, &org, &new(&too_long), Timestamp(1)).unwrap_err(),
            refused
        );
        store.create_account(&mut rng, &org, &new(&longest), Timestamp(1)).unwrap();
        store.login(&alice, &longest, Timestamp(2)).unwrap();
        assert_eq!(store.login(&alice, &too_long, Timestamp(2)).unwrap_err(), refused);
    }

    #[test]
    fn accounts_lists_every_account_a_page_at_a_time_with_its_address_and_use() {
        // spec/storage.md §3.1, §6.5: the operator's list of accounts.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(3);
        let org = OrgKeys::generate(&mut rng);
        let mut want = Vec::new();
        for (i, recovery) in
            [Recovery::None, Recovery::Code, Recovery::None].into_iter().enumerate()
        {
            let address = Mailbox::parse(&format!("user{i}@example.org")).unwrap();
            let new = NewAccount { address: &address, password: b"pw", recovery, quota_bytes: 7 };
            store.create_account(&mut rng, &org, &new, Timestamp(1)).unwrap();
            want.push(address);
        }
        assert!(store.accounts(None, 0).unwrap().is_empty());
        let first = store.accounts(None, 2).unwrap();
        assert_eq!(first.len(), 2);
        let rest = store.accounts(Some(first[1].id), 2).unwrap();
        assert_eq!(rest.len(), 1, "the page after the second account holds the third only");
        let all: Vec<AccountInfo> = first.into_iter().chain(rest).collect();
        let mut got: Vec<String> =
            all.iter().map(|i| i.address.as_ref().unwrap().to_string()).collect();
        got.sort();
        let mut want: Vec<String> = want.iter().map(ToString::to_string).collect();
        want.sort();
        assert_eq!(got, want);
        assert!(all.iter().all(|i| i.quota_bytes == 7 && i.generation == 0), "{all:?}");
        assert_eq!(all.iter().filter(|i| i.recovery == "code").count(), 1);
        store.delete_account(&Mailbox::parse("user1@example.org").unwrap()).unwrap();
        assert_eq!(store.accounts(None, 10).unwrap().len(), 2, "a deleted account is gone");
    }

    #[test]
    fn the_account_record_says_which_recovery_the_account_has() {
        // spec/storage.md §3.1: u8 recovery, 0 none, 1 code, 2 escrow.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(2);
        let org = OrgKeys::generate(&mut rng);
        let escrow = X25519Secret::generate(&mut rng);
        let escrow = dime_core::crypto::default_provider().key_agreement.public_key(&escrow);
        for (user, recovery, code) in [
            ("none", Recovery::None, 0),
            ("code", Recovery::Code, 1),
            ("escrow", Recovery::Escrow(escrow), 2),
        ] {
            let address = Mailbox::parse(&format!("{user}@example.org")).unwrap();
            let new = NewAccount { address: &address, password: b"pw", recovery, quota_bytes: 1 };
            let a = store.create_account(&mut rng, &org, &new, Timestamp(1)).unwrap().account;
            let mut rec = None;
            store
                .inner
                .backend
                .read(&mut |t| {
                    rec = Some(load_account(&store.inner, t, a)?);
                    Ok(())
                })
                .unwrap();
            assert_eq!(rec.unwrap().recovery, code, "{user}");
        }
    }

    /// A password KDF that records, per thread, the parameters of each derivation and the
    /// memory it was given, then derives with the default provider.
    #[derive(Debug)]
    struct Recording;

    thread_local! {
        static DERIVED: std::cell::RefCell<Vec<(Argon2Params, usize)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }

    impl dime_core::crypto::PasswordKdf for Recording {
        fn argon2id(
            &self,
            password: &[u8],
            salt: &[u8],
            params: &Argon2Params,
            out: &mut [u8],
        ) -> Result<(), dime_core::crypto::CryptoError> {
            self.argon2id_in(password, salt, params, out, &mut Argon2Memory::new())
        }

        fn argon2id_in(
            &self,
            password: &[u8],
            salt: &[u8],
            params: &Argon2Params,
            out: &mut [u8],
            memory: &mut Argon2Memory,
        ) -> Result<(), dime_core::crypto::CryptoError> {
            let p = dime_core::crypto::default_provider();
            let r = p.password_kdf.argon2id_in(password, salt, params, out, memory);
            DERIVED.with(|d| d.borrow_mut().push((*params, memory.kib())));
            r
        }
    }

    fn derived() -> Vec<(Argon2Params, usize)> {
        DERIVED.with(|d| std::mem::take(&mut *d.borrow_mut()))
    }

    #[test]
    fn an_unknown_or_deleted_account_costs_the_argon2id_of_a_wrong_password() {
        // spec/dimed.md, Logins: the time of a failed login does not tell the cases apart.
        let provider: &'static dime_core::crypto::CryptoProvider =
            Box::leak(Box::new(dime_core::crypto::CryptoProvider {
                password_kdf: &Recording,
                ..*dime_core::crypto::default_provider()
            }));
        let dir = tempfile::tempdir().unwrap();
        let config = crate::testing::config(dir.path());
        let params = config.argon2;
        let store = Store::open(config, provider).unwrap();
        let mut rng = dime_testkit::seeded_rng(5);
        let org = OrgKeys::generate(&mut rng);
        let [alice, bob, nobody] = ["alice", "bob", "nobody"]
            .map(|u| Mailbox::parse(&format!("{u}@example.org")).unwrap());
        for who in [&alice, &bob] {
            let new = NewAccount {
                address: who,
                password: b"pw",
                recovery: Recovery::None,
                quota_bytes: 1,
            };
            store.create_account(&mut rng, &org, &new, Timestamp(1)).unwrap();
        }
        store.delete_account(&bob).unwrap();
        let kib = params.m_kib as usize;
        let mut memory = Argon2Memory::new();
        derived();
        for (who, password, want) in [
            (&alice, &b"wrong"[..], Some(AccountError::LoginFailed)),
            (&nobody, b"pw", Some(AccountError::UnknownAccount)),
            (&bob, b"pw", Some(AccountError::UnknownAccount)),
            (&alice, b"pw", None),
        ] {
            let r = store.login_in(who, password, Timestamp(2), &mut memory);
            assert_eq!(r.err(), want, "{who}");
            assert_eq!(derived(), [(params, kib)], "{who}: one Argon2id in the given memory");
        }
        // The memory is kept for the next login, and wiped (its Debug shows only its size).
        assert_eq!(format!("{memory:?}"), format!("Argon2Memory({kib} KiB)"));
        // The facet's login does the same, in a memory of its own.
        assert_eq!(
            store.login(&nobody, b"pw", Timestamp(2)).unwrap_err(),
            AccountError::UnknownAccount
        );
        assert_eq!(derived(), [(params, kib)]);
    }

    #[test]
    fn a_login_tag_is_short_stable_keyed_and_case_blind() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let tag = store.login_tag(&alice).unwrap();
        assert_eq!(store.login_tag(&Mailbox::parse("Alice@Example.org").unwrap()).unwrap(), tag);
        assert_ne!(store.login_tag(&Mailbox::parse("bob@example.org").unwrap()).unwrap(), tag);
        assert_ne!(&store.inner.address_tag(&alice).unwrap()[..8], &tag[..], "not the index key");
        let other = tempfile::tempdir().unwrap();
        let mut config = crate::testing::config(other.path());
        config.pepper = Secret::new(vec![8; 32]);
        let peppered = Store::open(config, dime_core::crypto::default_provider()).unwrap();
        assert_ne!(peppered.login_tag(&alice).unwrap(), tag, "keyed by the pepper");
    }

    #[test]
    fn a_directory_entry_keeps_its_history_and_former_addresses_and_reads_the_first_format() {
        let mut rng = dime_testkit::seeded_rng(3);
        let org = OrgKeys::generate(&mut rng);
        let p = dime_core::crypto::default_provider();
        let alice = Mailbox::parse("alice@a.test").unwrap();
        let signet = |rng: &mut dyn CryptoRngCore| {
            let ssr = dime_signet::create_ssr(p, &UserKeys::generate(rng)).unwrap();
            dime_signet::sign_user_signet(p, &org, OrgSigner::Pok, &ssr, &alice, &Profile::new())
                .unwrap()
        };
        let first = DirectoryRec {
            address: alice.clone(),
            generation: 0,
            signet: signet(&mut rng),
            history: Vec::new(),
            former: Vec::new(),
        };
        // The first format: address, generation, signet, and nothing after.
        let old = Enc::new().bytes(b"alice@a.test").u32(0).bytes(first.signet.as_bytes()).finish();
        assert_eq!(DirectoryRec::decode(&old).unwrap(), first);
        assert_eq!(DirectoryRec::decode(&first.encode()).unwrap(), first);
        // Each rotation moves the current signet into the history, oldest first.
        let second = first.rotated(1, signet(&mut rng));
        let third = second.rotated(2, signet(&mut rng));
        assert_eq!(third.history, [first.signet.clone(), second.signet.clone()]);
        assert_eq!(third.chain().len(), 3);
        let moved = DirectoryRec { former: vec![Mailbox::parse("alice@b.test").unwrap()], ..third };
        assert_eq!(DirectoryRec::decode(&moved.encode()).unwrap(), moved);
        // The history keeps the newest MAX_SIGNET_HISTORY; a longer one does not decode.
        let third_signet = moved.signet.clone();
        let mut long = moved.clone();
        for g in 0..MAX_SIGNET_HISTORY as u32 {
            long = long.rotated(g + 3, first.signet.clone());
        }
        assert_eq!(long.history.len(), MAX_SIGNET_HISTORY);
        assert_eq!(long.history[0], third_signet, "the two oldest went");
        let mut over = long.clone();
        over.history.push(first.signet.clone());
        assert!(DirectoryRec::decode(&over.encode()).is_err());
        let mut many = moved;
        many.former = vec![alice.clone(); MAX_FORMER_ADDRESSES + 1];
        assert!(DirectoryRec::decode(&many.encode()).is_err());
        // Cut or with a trailing octet: corrupt.
        let b = long.encode();
        assert!(DirectoryRec::decode(&b[..b.len() - 1]).is_err());
        assert!(DirectoryRec::decode(&[&b[..], &[0]].concat()).is_err());
    }
}
