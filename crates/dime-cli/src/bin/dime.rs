//! `dime`: the admin and user command-line tool. See `dime --help`.

fn main() -> std::process::ExitCode {
    dime_cli::main_entry()
}
