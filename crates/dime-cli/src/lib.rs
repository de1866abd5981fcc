//! `dime-cli`: the command-line tools of dime.
//!
//! The binary `dime` is a thin shell over [`run`]: argument parsing (clap), reading and writing
//! files, passphrases, and printing. All formats and checks live in the library crates
//! (`dime-signet`, `dime-core`). Errors are reported as `error: ...` with a non-zero exit
//! status; a panic (a bug) is reported without Rust's panic text.

mod cli;
mod dimed_cmd;
mod doctor;
mod files;
mod lookup_cmd;
mod mail_cmd;
mod message;
mod org;
mod record_cmd;
mod signet_cmd;
mod store_cmd;
mod user;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

pub use cli::Cli;
pub use dimed_cmd::dimed_main;

/// The process's one rustls crypto provider (ring), built here, by the binary, and passed down
/// to every TLS and QUIC configuration and certificate verifier; no library crate builds one
/// (`ARCHITECTURE.md`, "Crypto provider seam"). `dimed serve` calls it once; `dime` builds no
/// TLS configuration.
pub(crate) fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// What both binaries do first: a panic prints one line naming `bin` (never a backtrace or a
/// value), then the arguments are parsed; a usage error exits 2, `--help` and `--version` 0.
pub(crate) fn start<P: Parser>(bin: &'static str) -> Result<P, ExitCode> {
    std::panic::set_hook(Box::new(move |_| {
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error in {bin} (a bug: please report it with the command you ran)"
        );
    }));
    P::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS }
    })
}

/// Runs the CLI with the process's arguments, printing to stdout and stderr.
pub fn main_entry() -> ExitCode {
    let cli = match start::<Cli>("dime") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command, writing its normal output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Docs(a) => {
            write_docs(<Cli as clap::CommandFactory>::command(), "dime", &a.out, out)
        }
        cli::Command::Org(cli::OrgCommand::Init(a)) => org::init(a, out),
        cli::Command::Org(cli::OrgCommand::SignUser(a)) => org::sign_user(a, out),
        cli::Command::User(cli::UserCommand::Request(a)) => user::request(a, out),
        cli::Command::User(cli::UserCommand::Store(c)) => store_cmd::run(c, out),
        cli::Command::Signet(cli::SignetCommand::Inspect(a)) => signet_cmd::inspect(a, out),
        cli::Command::Record(cli::RecordCommand::Parse(a)) => record_cmd::parse(a, out),
        cli::Command::Record(cli::RecordCommand::Format(a)) => record_cmd::format(a, out),
        cli::Command::Message(cli::MessageCommand::Inspect(a)) => message::inspect(a, out),
        cli::Command::Lookup(a) => lookup_cmd::lookup(a, out),
        cli::Command::Doctor(a) => doctor::dime_doctor(a, out),
        cli::Command::Send(a) => mail_cmd::send(a, out),
        cli::Command::Inbox(a) => mail_cmd::inbox(a, out),
        cli::Command::Read(a) => mail_cmd::read(a, out),
        cli::Command::Status(a) => mail_cmd::status(a, out),
    }
}

/// Writes the man pages of `cmd` (one per command and subcommand, `out/man/NAME[-SUB].1`) and
/// its completions for bash, zsh and fish (`out/completions/`), generated from the grammar.
pub(crate) fn write_docs(
    mut cmd: clap::Command,
    name: &'static str,
    dir: &std::path::Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    cmd = cmd.name(name).bin_name(name);
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("cannot write the man pages in {}", man.display()))?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish]
    {
        clap_complete::generate_to(shell, &mut cmd, name, &completions).with_context(|| {
            format!("cannot write the completions in {}", completions.display())
        })?;
    }
    writeln!(out, "wrote {} and {}", man.display(), completions.display())?;
    Ok(())
}
