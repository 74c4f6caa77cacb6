//! The `kmsim` binary: everything is in the library; see `kmsim --help`.
fn main() -> std::process::ExitCode {
    kmsim::cli::main()
}
