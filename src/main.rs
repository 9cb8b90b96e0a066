use std::process::ExitCode;

fn main() -> ExitCode {
    match rdma_nix::cli::run() {
        Ok(code) => code,
        Err(e) => {
            // One line: the outermost context, then its causes.
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("rdma-nix: error: {}", msg.join(": "));
            ExitCode::from(1)
        }
    }
}
