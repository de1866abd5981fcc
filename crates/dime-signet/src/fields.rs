//! The field tables of the three signet kinds (`spec/signet.md` §3, §4).
//!
//! A field id's *class* fixes how its length is written (the "width"); its *entry* in the
//! table of the signet kind says whether it is defined, required, unique, and what it is.

/// The three signet kinds (`spec/signet.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignetKind {
    /// A signet signing request (magic 1215): a user's keys, self-signed.
    Ssr,
    /// An organisational signet (magic 1776).
    Org,
    /// A user signet (magic 1789): an SSR countersigned by its organisation.
    User,
}

impl SignetKind {
    /// The magic number of this kind (`spec/signet.md` §2).
    pub fn magic(self) -> u16 {
        match self {
            SignetKind::Ssr => crate::MAGIC_SSR,
            SignetKind::Org => crate::MAGIC_ORG_SIGNET,
            SignetKind::User => crate::MAGIC_USER_SIGNET,
        }
    }

    /// The kind of a magic number, if it is a signet magic.
    pub fn from_magic(magic: u16) -> Option<SignetKind> {
        match magic {
            crate::MAGIC_SSR => Some(SignetKind::Ssr),
            crate::MAGIC_ORG_SIGNET => Some(SignetKind::Org),
            crate::MAGIC_USER_SIGNET => Some(SignetKind::User),
            _ => None,
        }
    }

    /// The field table entry for `id` in this kind.
    pub fn field_info(self, id: u8) -> FieldInfo {
        field_info(self, id)
    }

    /// The field whose signature ends the crypto section: org 4, user 6 (`spec/signet.md` §7).
    /// An SSR has none.
    pub fn crypto_signature_field(self) -> Option<u8> {
        match self {
            SignetKind::Ssr => None,
            SignetKind::Org => Some(4),
            SignetKind::User => Some(6),
        }
    }

    /// A short lower-case name: `ssr`, `org`, `user`.
    pub fn name(self) -> &'static str {
        match self {
            SignetKind::Ssr => "ssr",
            SignetKind::Org => "org",
            SignetKind::User => "user",
        }
    }
}

/// How a field's length is written (`spec/signet.md` §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// A 64-byte Ed25519 signature with no length prefix.
    Signature,
    /// A 1-byte length (ids 1-159 and 254).
    U8,
    /// A 2-byte big-endian length (ids 160-250).
    U16,
    /// `[name len u8][name][data len u16][data]` (id 251).
    Named,
    /// A 3-byte big-endian length (id 252).
    U24,
}

/// Whether and how a field id is defined in a kind's table (`spec/signet.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Definition {
    /// A named field of the table.
    Defined(&'static str),
    /// An id the table leaves undefined but well-formed: carried and reported, not rejected.
    Undefined,
    /// A reserved id (0, and the gaps before the profile range): rejected as malformed.
    Reserved,
}

/// One entry of a field table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldInfo {
    /// The field id.
    pub id: u8,
    /// Defined, undefined or reserved.
    pub definition: Definition,
    /// How its length is written.
    pub width: Width,
    /// Whether at most one field of this id may appear.
    pub unique: bool,
}

impl FieldInfo {
    /// The field's name, `Undefined` or `Reserved`.
    pub fn name(&self) -> &'static str {
        match self.definition {
            Definition::Defined(n) => n,
            Definition::Undefined => "Undefined",
            Definition::Reserved => "Reserved",
        }
    }
}

/// Is `id` a signature field in `kind` (fixed 64 bytes, no length)? (`spec/signet.md` §3.2)
pub fn is_signature_field(kind: SignetKind, id: u8) -> bool {
    match kind {
        SignetKind::Org => matches!(id, 4 | 253 | 255),
        SignetKind::User | SignetKind::Ssr => matches!(id, 4 | 5 | 6 | 253 | 255),
    }
}

fn width_of(kind: SignetKind, id: u8) -> Width {
    if is_signature_field(kind, id) {
        return Width::Signature;
    }
    match id {
        251 => Width::Named,
        252 => Width::U24,
        254 => Width::U8,
        160..=250 => Width::U16,
        _ => Width::U8,
    }
}

/// Names of the profile fields 16-27, shared by org and user tables.
const COMMON_PROFILE: [&str; 12] = [
    "Name",
    "Address",
    "Province",
    "Country",
    "Postal-Code",
    "Phone-Number",
    "Language",
    "Currency",
    "Cryptocurrency",
    "Motto",
    "Extensions",
    "Message-Size-Limit",
];

const ORG_200: [&str; 12] = [
    "Contact-Abuse",
    "Contact-Admin",
    "Contact-Support",
    "Web-Access-Host",
    "Web-Access-Location",
    "Web-Access-Certificate",
    "Mail-Access-Host",
    "Mail-Access-Certificate",
    "Onion-Access-Host",
    "Onion-Access-Certificate",
    "Onion-Delivery-Host",
    "Onion-Delivery-Certificate",
];

const USER_93: [&str; 7] = [
    "Supported-Codecs",
    "Title",
    "Employer",
    "Gender",
    "Alma-Mater",
    "Supervisor",
    "Political-Party",
];

fn definition(kind: SignetKind, id: u8) -> (Definition, bool) {
    use Definition::{Defined as D, Reserved as R, Undefined as U};
    let common = |id: u8| -> Option<(Definition, bool)> {
        match id {
            16..=27 => {
                let name = COMMON_PROFILE.get(usize::from(id - 16)).copied().unwrap_or("");
                Some((D(name), id != 21))
            }
            160 => Some((D("Website"), true)),
            251 => Some((D("Undefined-Field"), false)),
            252 => Some((D("Photo"), true)),
            253 => Some((D("Full-Signature"), true)),
            254 => Some((D("Signet-Identifier"), true)),
            255 => Some((D("Identifiable-Signature"), true)),
            _ => None,
        }
    };
    match kind {
        SignetKind::Ssr => match id {
            1 => (D("Signing-Key"), true),
            2 => (D("Encryption-Key"), true),
            3 => (D("Alternate-Encryption-Key"), false),
            4 => (D("Custody-Signature"), true),
            5 => (D("User-Signature"), true),
            _ => (R, true),
        },
        SignetKind::Org => match id {
            1 => (D("Primary-Organizational-Key"), true),
            2 => (D("Secondary-Organizational-Key"), false),
            3 => (D("Encryption-Key"), true),
            4 => (D("Crypto-Signature"), true),
            0 | 5..=15 => (R, true),
            200..=211 => (D(ORG_200.get(usize::from(id - 200)).copied().unwrap_or("")), true),
            _ => common(id).unwrap_or((U, true)),
        },
        SignetKind::User => match id {
            1 => (D("Signing-Key"), true),
            2 => (D("Encryption-Key"), true),
            3 => (D("Alternate-Encryption-Key"), false),
            4 => (D("Custody-Signature"), true),
            5 => (D("User-Signature"), true),
            6 => (D("Org-Signature"), true),
            0 | 7..=15 => (R, true),
            93..=99 => (D(USER_93.get(usize::from(id - 93)).copied().unwrap_or("")), true),
            200 => (D("Alternate-Address"), true),
            201 => (D("Resume"), true),
            202 => (D("Endorsements"), false),
            _ => common(id).unwrap_or((U, true)),
        },
    }
}

/// The table entry for `id` in `kind` (`spec/signet.md` §4).
pub fn field_info(kind: SignetKind, id: u8) -> FieldInfo {
    let (definition, unique) = definition(kind, id);
    FieldInfo { id, definition, width: width_of(kind, id), unique }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_id_classes() {
        assert_eq!(field_info(SignetKind::Org, 4).width, Width::Signature);
        assert_eq!(field_info(SignetKind::Org, 5).width, Width::U8);
        assert_eq!(field_info(SignetKind::User, 5).width, Width::Signature);
        assert_eq!(field_info(SignetKind::User, 6).width, Width::Signature);
        assert_eq!(field_info(SignetKind::Org, 159).width, Width::U8);
        assert_eq!(field_info(SignetKind::Org, 160).width, Width::U16);
        assert_eq!(field_info(SignetKind::Org, 250).width, Width::U16);
        assert_eq!(field_info(SignetKind::Org, 251).width, Width::Named);
        assert_eq!(field_info(SignetKind::Org, 252).width, Width::U24);
        assert_eq!(field_info(SignetKind::Org, 253).width, Width::Signature);
        assert_eq!(field_info(SignetKind::Org, 254).width, Width::U8);
        assert_eq!(field_info(SignetKind::User, 255).width, Width::Signature);
    }

    #[test]
    fn uniqueness_matches_libdime() {
        let multi_org: Vec<u8> =
            (0..=255).filter(|&i| !field_info(SignetKind::Org, i).unique).collect();
        assert_eq!(multi_org, vec![2, 21, 251]);
        let multi_user: Vec<u8> =
            (0..=255).filter(|&i| !field_info(SignetKind::User, i).unique).collect();
        assert_eq!(multi_user, vec![3, 21, 202, 251]);
    }

    #[test]
    fn reserved_and_undefined_ids() {
        for id in 5..=15 {
            assert_eq!(field_info(SignetKind::Org, id).definition, Definition::Reserved);
        }
        assert_eq!(field_info(SignetKind::User, 7).definition, Definition::Reserved);
        assert_eq!(field_info(SignetKind::User, 6).name(), "Org-Signature");
        assert_eq!(field_info(SignetKind::Org, 28).definition, Definition::Undefined);
        assert_eq!(field_info(SignetKind::Org, 93).definition, Definition::Undefined);
        assert_eq!(field_info(SignetKind::User, 93).name(), "Supported-Codecs");
        assert_eq!(field_info(SignetKind::Org, 211).name(), "Onion-Delivery-Certificate");
        assert_eq!(field_info(SignetKind::Org, 212).definition, Definition::Undefined);
        assert_eq!(field_info(SignetKind::Org, 27).name(), "Message-Size-Limit");
        assert_eq!(field_info(SignetKind::Ssr, 6).definition, Definition::Reserved);
        assert_eq!(field_info(SignetKind::Ssr, 16).definition, Definition::Reserved);
    }
}
