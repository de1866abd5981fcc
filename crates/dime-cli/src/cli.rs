//! Command-line grammar (clap).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// dime: the user's and the administrator's tool of the Dark Internet Mail Environment: keys,
/// signets and DNS records, accounts, and mail through a running `dimed`.
#[derive(Debug, Parser)]
#[command(name = "dime", version)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Organisation keys and signets.
    #[command(subcommand)]
    Org(OrgCommand),
    /// User keys and signing requests.
    #[command(subcommand)]
    User(UserCommand),
    /// Signets: inspect and check.
    #[command(subcommand)]
    Signet(SignetCommand),
    /// The `_dx` DNS management record.
    #[command(subcommand)]
    Record(RecordCommand),
    /// Envelopes (layered messages): inspect.
    #[command(subcommand)]
    Message(MessageCommand),
    /// Key discovery: the `_dx` record of a domain or address, its DNSSEC proof and the
    /// resolver's decision (`spec/discovery.md`).
    Lookup(LookupArgs),
    /// Check a DIME domain from outside (`spec/dimed.md` §7): its `_dx` record and DNSSEC,
    /// its delivery hosts over QUIC and TLS (certificate and org signet), the certificate's
    /// expiry; one line per check, a non-zero exit status when a check fails.
    Doctor(DoctorArgs),
    /// Send a text message as a user through dimed's submission socket.
    Send(crate::mail_cmd::SendArgs),
    /// List a user's inbox through dimed's submission socket.
    Inbox(crate::mail_cmd::InboxArgs),
    /// Read one message of a user's inbox (opened and verified) through dimed.
    Read(crate::mail_cmd::ReadArgs),
    /// Show what became of a message the user sent (`dime send`'s queue id) through dimed.
    Status(crate::mail_cmd::StatusArgs),
    /// Write this program's man pages (`DIR/man/`) and shell completions for bash, zsh and
    /// fish (`DIR/completions/`).
    Docs(DocsArgs),
}

/// `dime docs --out DIR` (and `dimed docs`).
#[derive(Debug, Args)]
pub(crate) struct DocsArgs {
    /// The directory to write into (created).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: std::path::PathBuf,
}

/// `dime lookup DOMAIN|ADDRESS`.
#[derive(Debug, Args)]
pub(crate) struct LookupArgs {
    /// A domain (`example.com`) or an address (`alice@example.com`).
    pub(crate) target: String,
    /// The DNS resolver to ask, IP:PORT (default: the first nameserver of /etc/resolv.conf).
    #[arg(long)]
    pub(crate) resolver: Option<std::net::SocketAddr>,
    /// A file of DNSKEY lines to use as trust anchor instead of the IANA root keys.
    #[arg(long)]
    pub(crate) trust_anchor: Option<std::path::PathBuf>,
    /// Local strict policy: no CA-TLS stand-in, unchained user signets refused.
    #[arg(long)]
    pub(crate) strict: bool,
    /// The org signet to validate against the record (until DMTP fetches it).
    #[arg(long)]
    pub(crate) org_signet: Option<std::path::PathBuf>,
    /// The user signet to validate under the org signet (with an address).
    #[arg(long)]
    pub(crate) user_signet: Option<std::path::PathBuf>,
}

/// `dime doctor DOMAIN`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// The domain to check.
    pub(crate) domain: String,
    /// The DNS resolver to ask, IP:PORT (default: the nameservers of /etc/resolv.conf).
    #[arg(long)]
    pub(crate) resolver: Option<std::net::SocketAddr>,
    /// A file of DNSKEY lines to use as trust anchor instead of the IANA root keys.
    #[arg(long)]
    pub(crate) trust_anchor: Option<std::path::PathBuf>,
    /// A strict sender's view: an unsigned zone fails rather than warns.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Print JSON (one array of {check, status, detail}).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MessageCommand {
    /// Show a message's structure and sizes, and what a key can open.
    Inspect(MessageInspectArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MessageInspectArgs {
    /// The message (binary, as delivered).
    pub(crate) file: PathBuf,
    /// A user or organisation key file: shows which chunks it opens, as which actor.
    #[arg(long, value_name = "KEYFILE")]
    pub(crate) key: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OrgCommand {
    /// Create an organisation: key pair, signet, and the `_dx` record to publish.
    Init(OrgInitArgs),
    /// Sign a user's signing request (SSR) into a user signet.
    SignUser(SignUserArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user key pair and a signet signing request (SSR) for the organisation.
    Request(UserRequestArgs),
    /// Accounts of the zero-access store.
    #[command(flatten)]
    Store(crate::store_cmd::UserStoreCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SignetCommand {
    /// Show a signet's fields, validation state and fingerprints.
    Inspect(InspectArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RecordCommand {
    /// Parse a `_dx` record and show what it says.
    Parse(RecordParseArgs),
    /// Build a `_dx` record in canonical form.
    Format(RecordFormatArgs),
}

/// Where a key file's passphrase comes from.
#[derive(Debug, Args, Clone)]
pub(crate) struct PassphraseArgs {
    /// Read the passphrase from the first line of this file (else: `DIME_PASSPHRASE`, else a
    /// prompt on the terminal).
    #[arg(long, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// Write or read private keys WITHOUT encryption. Anyone who can read the file gets the
    /// keys: use only for throw-away test setups.
    #[arg(long)]
    pub(crate) insecure_plaintext: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OrgInitArgs {
    /// The organisation's mail domain.
    #[arg(long)]
    pub(crate) domain: String,
    /// Directory to write `org.key`, `org.signet` and `dx-record.txt` into (created if
    /// missing; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Organisation name (signet field 16).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Delivery hosts to list in the record (`dx=`), in preference order.
    #[arg(long = "dx", value_name = "HOST[:PORT]")]
    pub(crate) delivery_hosts: Vec<String>,
    /// Message policy for the record (`pol=`): experimental, mixed or strict.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SignUserArgs {
    /// The organisation's key file.
    #[arg(long, value_name = "FILE")]
    pub(crate) org_key: PathBuf,
    /// The organisation's signet.
    #[arg(long, value_name = "FILE")]
    pub(crate) org_signet: PathBuf,
    /// The user's signing request (binary, base64 or armor).
    #[arg(long, value_name = "FILE")]
    pub(crate) ssr: PathBuf,
    /// The user's mail address (signet identifier, field 254).
    #[arg(long)]
    pub(crate) address: String,
    /// Where to write the user signet (armored; never overwritten).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UserRequestArgs {
    /// Directory to write `user.key` and `user.ssr` into (created if missing; existing files
    /// are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Rotate: the user's current key file; the request then carries a chain-of-custody
    /// signature by that key.
    #[arg(long, value_name = "FILE")]
    pub(crate) previous_key: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The signet or request (binary, base64 or armor).
    pub(crate) file: PathBuf,
    /// The organisation's signet, to check a user signet's organisation signatures.
    #[arg(long, value_name = "FILE")]
    pub(crate) org: Option<PathBuf>,
    /// The previous signet of the same user, to check the chain of custody.
    #[arg(long, value_name = "FILE")]
    pub(crate) previous: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RecordParseArgs {
    /// The record: one argument per TXT character-string (joined without separator), or the
    /// whole text in one argument. Quotes as in a zone file are accepted.
    #[arg(required_unless_present = "file")]
    pub(crate) text: Vec<String>,
    /// Read the record from a file instead (zone-file presentation or plain text).
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    pub(crate) file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RecordFormatArgs {
    /// Primary organisational keys (43-character unpadded base64), at least one.
    #[arg(long = "pok", required = true)]
    pub(crate) poks: Vec<String>,
    /// TLS certificate pins (86-character unpadded base64).
    #[arg(long = "tls")]
    pub(crate) tls: Vec<String>,
    /// Message policy: experimental, mixed or strict.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    /// Syndicate hosts (`syn=`).
    #[arg(long = "syn", value_name = "HOST[:PORT]")]
    pub(crate) syndicates: Vec<String>,
    /// Delivery hosts (`dx=`), in preference order.
    #[arg(long = "dx", value_name = "HOST[:PORT]")]
    pub(crate) delivery_hosts: Vec<String>,
    /// Cache lifetime in days (`exp=`, 1 to 365).
    #[arg(long = "exp", value_name = "DAYS")]
    pub(crate) expiry_days: Option<u16>,
    /// Subdomain rule: strict, relaxed or explicit.
    #[arg(long = "sub")]
    pub(crate) subdomain: Option<String>,
    /// Print the zone-file form (quoted character-strings) instead of the plain text.
    #[arg(long)]
    pub(crate) zone: bool,
}
