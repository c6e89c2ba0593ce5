//! Qualification batches on the one engine: scores, revokes and blocks from a CSV, exactly
//! once — by the real binary, through the real SDK, into the emulator.

use std::collections::BTreeMap;
use std::time::Duration;

use payout::emulator::{EmulatorConfig, EmulatorHandle, FaultScope};

use crate::support::*;

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn id(h: &EmulatorHandle, name: &str) -> String {
    h.qualification_type_id(name)
        .unwrap_or_else(|| panic!("no type named {name}"))
}

#[test]
fn the_website_example_with_two_update_columns_and_a_block_column_is_processed() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let file = example("workers.csv");
    let cmd = args(
        &[
            "run",
            &file,
            "--create-missing",
            "--notify",
            "--block-reason",
            "Failed the attention checks",
            "--json",
        ],
        &t,
    );
    let out = s.run(&cmd);
    assert_eq!(out.code, 0, "{out:?}");
    let v = json_output(&out);
    assert_eq!(v["summary"]["kind"], "qualification");
    assert_eq!(v["summary"]["failed"], 0);
    let h = emu.handle();
    let tagger = id(&h, "Good Tagger");
    let past = id(&h, "Past participants");
    assert_eq!(h.qualification_score(&tagger, "A1Q6OEGSBHT2P5"), Some(95));
    assert_eq!(h.qualification_score(&tagger, "A2R7PTHWDJFK9L"), Some(50));
    assert_eq!(h.qualification_score(&past, "A2R7PTHWDJFK9L"), Some(1));
    // Revokes of what the worker never held end in the state asked for.
    assert_eq!(h.qualification_score(&tagger, "A3JZBDH4WQKRAE"), None);
    assert!(h.blocked("A3JZBDH4WQKRAE"));
    assert_eq!(
        h.block_reason("A3JZBDH4WQKRAE").as_deref(),
        Some("Failed the attention checks")
    );
    assert!(!h.blocked("A17VQ8PCXM3ZEH"));
    assert_eq!(h.notifications("A1Q6OEGSBHT2P5", &tagger), 1);
    assert_eq!(h.notifications("A2R7PTHWDJFK9L", &past), 1);
    // The report locates each operation by line and column.
    let report = s.run(&["report", "--format", "json"]);
    let lines: Vec<serde_json::Value> = serde_json::from_str(&report.stdout).unwrap();
    assert!(
        lines.iter().any(|l| l["line"] == 4
            && l["column"] == "UPDATE-BlockStatus"
            && l["outcome"] == "blocked"),
        "{lines:#?}"
    );
    // Again: nothing left, nobody e-mailed twice.
    let again = s.run(&cmd);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(h.notifications("A1Q6OEGSBHT2P5", &tagger), 1);
}

#[test]
fn a_missing_qualification_name_is_refused_before_any_call_and_created_once_across_a_crash() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        // The creation's answer takes long enough for a kill to land before it.
        latency: Duration::from_millis(300),
        ..signed_config()
    });
    let t = target_args(&emu);
    let file = s.write(
        "q.csv",
        "WorkerId,QualificationTypeId,IntegerValue\nA1B2C3D4E5F6,Follow-up panel,3\nA2B2C3D4E5F6,Follow-up panel,4\n",
    );
    let f = file.to_str().unwrap();
    let refused = s.run(&args(&["run", f], &t));
    assert_eq!(refused.code, 6, "{refused:?}");
    assert!(refused.stderr.contains("Follow-up panel"), "{refused:?}");
    assert!(refused.stderr.contains("--create-missing"), "{refused:?}");
    let calls = emu.handle().stats().calls;
    for mutating in [
        "CreateQualificationType",
        "AssociateQualificationWithWorker",
    ] {
        assert_eq!(calls.get(mutating), None, "{calls:?}");
    }
    // Killed while the creation is under way.
    let cmd = args(&["run", f, "--create-missing"], &t);
    let mut child = s.spawn(&cmd);
    assert!(emu.handle().wait_for(Duration::from_secs(30), |st| {
        st.calls
            .get("CreateQualificationType")
            .copied()
            .unwrap_or(0)
            >= 1
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    emu.handle().update_faults(|c| c.latency = Duration::ZERO);
    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    assert_eq!(
        emu.handle().stats().calls["CreateQualificationType"],
        1,
        "created exactly once"
    );
    let h = emu.handle();
    let panel = id(&h, "Follow-up panel");
    assert_eq!(h.qualification_score(&panel, "A1B2C3D4E5F6"), Some(3));
    assert_eq!(h.qualification_score(&panel, "A2B2C3D4E5F6"), Some(4));
}

/// The website file for `workers` workers: what each cell asks for is a function of the worker.
struct Plan {
    text: String,
    /// (worker, type name) → the score asked for, or `None` for a revoke.
    scores: BTreeMap<(String, &'static str), Option<i32>>,
    /// worker → blocked or not.
    blocks: BTreeMap<String, bool>,
    operations: usize,
}

fn worker(w: usize) -> String {
    format!("A{:012}", 50_000 + w)
}

fn initial(workers: usize) -> Plan {
    let mut p = Plan {
        text: String::from("Worker ID,UPDATE-Panel,UPDATE-Excluded,UPDATE-BlockStatus\n"),
        scores: BTreeMap::new(),
        blocks: BTreeMap::new(),
        operations: 0,
    };
    for w in 0..workers {
        let panel = (w < workers / 3 * 2).then_some(10);
        let excluded = (w >= workers / 6).then_some(1);
        let block = w >= workers / 12 * 11;
        let cell = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
        p.text.push_str(&format!(
            "{},{},{},{}\n",
            worker(w),
            cell(panel),
            cell(excluded),
            if block { "Block" } else { "" }
        ));
        for (name, v) in [("Panel", panel), ("Excluded", excluded)] {
            if let Some(v) = v {
                p.scores.insert((worker(w), name), Some(v));
                p.operations += 1;
            }
        }
        if block {
            p.blocks.insert(worker(w), true);
            p.operations += 1;
        }
    }
    p
}

/// Changes, grants, revokes, blocks and unblocks over the initial state.
fn mixed(workers: usize, before: &Plan) -> Plan {
    let mut p = Plan {
        text: String::from(
            "Worker ID,CURRENT-Panel,UPDATE-Panel,UPDATE-Excluded,CURRENT BlockStatus,UPDATE-BlockStatus\n",
        ),
        scores: before.scores.clone(),
        blocks: before.blocks.clone(),
        operations: 0,
    };
    for w in 0..workers {
        let panel = match w % 4 {
            0 => Some(Some(20 + (w % 50) as i32)),
            1 => Some(None),
            2 => Some(Some(77)),
            _ => None,
        };
        let excluded = match w % 3 {
            0 => Some(None),
            1 => Some(Some(5)),
            _ => None,
        };
        let was_blocked = before.blocks.get(&worker(w)).copied().unwrap_or(false);
        let block = if w % 5 == 0 {
            Some(true)
        } else if was_blocked && w % 5 == 1 {
            Some(false)
        } else {
            None
        };
        let cell = |v: Option<Option<i32>>| match v {
            Some(Some(v)) => v.to_string(),
            Some(None) => "Revoke".into(),
            None => String::new(),
        };
        p.text.push_str(&format!(
            "{},,{},{},,{}\n",
            worker(w),
            cell(panel),
            cell(excluded),
            match block {
                Some(true) => "Block",
                Some(false) => "Unblock",
                None => "",
            }
        ));
        for (name, v) in [("Panel", panel), ("Excluded", excluded)] {
            if let Some(v) = v {
                p.scores.insert((worker(w), name), v);
                p.operations += 1;
            }
        }
        if let Some(b) = block {
            p.blocks.insert(worker(w), b);
            p.operations += 1;
        }
    }
    p
}

#[test]
fn a_thousand_mixed_operations_under_faults_and_kills_end_exactly_as_the_file_asks() {
    let workers = 620;
    let first = initial(workers);
    let second = mixed(workers, &first);
    assert!(
        second.operations >= 1000,
        "{} operations",
        second.operations
    );
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        seed: 7,
        latency: Duration::from_millis(1),
        latency_jitter: Duration::from_millis(3),
        ..signed_config()
    });
    let h = emu.handle();
    let t = target_args(&emu);
    let f1 = s.write("initial.csv", &first.text);
    let setup = s.run(&args(
        &[
            "run",
            f1.to_str().unwrap(),
            "--create-missing",
            "--block-reason",
            "initial block",
            "--rate",
            "5000",
            "--concurrency",
            "16",
        ],
        &t,
    ));
    assert_eq!(setup.code, 0, "{setup:?}");
    assert!(
        h.notification_counts().values().all(|n| *n == 0),
        "no e-mail without --notify"
    );
    // Lost answers, 5xx after the apply, dropped connections before it, and kills.
    h.update_faults(|c| {
        c.lost_rate = 0.05;
        c.fault_after_rate = 0.05;
        c.drop_before_rate = 0.05;
        c.fault_scope = FaultScope::Mutating;
    });
    let f2 = s.write("mixed.csv", &second.text);
    let cmd = args(
        &[
            "run",
            f2.to_str().unwrap(),
            "--notify",
            "--block-reason",
            "mixed block",
            "--rate",
            "5000",
            "--concurrency",
            "16",
            "--max-attempts",
            "30",
        ],
        &t,
    );
    let mut rng = crash_rng();
    for at in [rng.u64(20..400), rng.u64(20..700)] {
        run_and_kill_at(&s, &emu, &cmd, KillAt::Requests(at));
    }
    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    let stats = h.stats();
    assert!(
        stats.lost > 0 && stats.faulted_after_apply > 0 && stats.dropped_before_apply > 0,
        "{stats:?}"
    );
    let panel = id(&h, "Panel");
    let excluded = id(&h, "Excluded");
    for ((w, name), want) in &second.scores {
        let type_id = if *name == "Panel" { &panel } else { &excluded };
        assert_eq!(h.qualification_score(type_id, w), *want, "{w} {name}");
    }
    for w in 0..workers {
        let want = second.blocks.get(&worker(w)).copied().unwrap_or(false);
        assert_eq!(h.blocked(&worker(w)), want, "{}", worker(w));
    }
    // Every grant of the mixed file e-mailed its worker exactly once.
    for ((w, name), want) in &second.scores {
        let type_id = if *name == "Panel" { &panel } else { &excluded };
        let granted_now = want.is_some() && first.scores.get(&(w.clone(), name)) != Some(want);
        let n = h.notifications(w, type_id);
        assert!(n <= 1, "{w} {name} e-mailed {n} times");
        if granted_now {
            assert_eq!(n, 1, "{w} {name} not e-mailed");
        }
    }
}

#[test]
fn a_dry_run_of_a_qualification_file_says_how_many_operations_would_change_nothing() {
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    // Someone (another journal, another tool) already gave A1 the score.
    let other = Scratch::new();
    let first = other.write(
        "first.csv",
        "WorkerId,QualificationTypeId,IntegerValue\nA1B2C3D4E5F6,Panel,3\n",
    );
    assert_eq!(
        other
            .run(&args(
                &["run", first.to_str().unwrap(), "--create-missing"],
                &t
            ))
            .code,
        0
    );
    let s = Scratch::new();
    let file = s.write(
        "q.csv",
        "WorkerId,QualificationTypeId,IntegerValue,Action\nA1B2C3D4E5F6,Panel,3,\nA2B2C3D4E5F6,Panel,4,\nA3B2C3D4E5F6,Panel,,revoke\n",
    );
    let out = s.run(&args(
        &["run", file.to_str().unwrap(), "--dry-run", "--json"],
        &t,
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("2 of the scores and revokes would change nothing"),
        "{out:?}"
    );
    let v = json_output(&out);
    assert_eq!(v["preflight"]["passed"], true, "unchanged is not a failure");
    assert_eq!(
        emu.handle()
            .stats()
            .calls
            .get("AssociateQualificationWithWorker"),
        Some(&1),
        "only the first run's grant"
    );
}
