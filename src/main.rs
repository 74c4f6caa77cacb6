//! The `kmsim` binary: everything is in the library; see `kmsim --help`.

#![forbid(unsafe_code)]

// Every KMS call boxes its operation and every record carries it to the sinks: mimalloc makes
// that churn of small allocations cheap (measured: see README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kmsim::cli::main()
}
