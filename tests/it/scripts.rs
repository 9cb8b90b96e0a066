//! The README's scripts' own parts, without Nix: the stage record scripts/stack and
//! scripts/test keep (scripts/stages.sh) and that `rdma-nix stages` reads.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::common::rdma_nix;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_stage_the_scripts_record_is_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Each script's stage names, in order, as it calls them.
    for script in ["scripts/stack", "scripts/test"] {
        let text = fs::read_to_string(repo().join(script)).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("stage "))
            .map(|l| l.split_whitespace().next().unwrap())
            .filter(|n| *n != "done")
            .collect();
        assert!(names.len() >= 4, "{script}: stages {names:?}");
        // The same calls through the sourced helper, in a scratch directory.
        let mut sh = format!(
            "set -e\ncd {}\nstages_file=target/stages.jsonl\nsource {}/scripts/stages.sh\n",
            dir.path().display(),
            repo().display()
        );
        for n in &names {
            sh.push_str(&format!("stage {n} \"{n} title\"\nsleep 0.1\n"));
        }
        sh.push_str("stage done\n");
        let out = Command::new("bash").arg("-c").arg(&sh).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            printed.contains("] fetch title") && printed.contains("== done in "),
            "{printed}"
        );
        let record = dir.path().join("target/stages.jsonl");
        let json = rdma_nix()
            .args(["stages", "--json", "--stages"])
            .arg(&record)
            .output()
            .unwrap();
        assert!(
            json.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&json.stderr)
        );
        let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let read: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["stage"].as_str().unwrap())
            .collect();
        assert_eq!(read, names, "{script}");
        for r in rows.as_array().unwrap() {
            let s = r["seconds"].as_f64().unwrap();
            assert!(s >= 0.1, "{script}: {r} timed less than its sleep");
        }
    }
}
