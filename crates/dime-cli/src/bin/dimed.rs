//! `dimed`: the dime mail server. See `dimed --help` and `spec/dimed.md`.

fn main() -> std::process::ExitCode {
    dime_cli::dimed_main()
}
