//! States asked for now: a file of scores, revokes, blocks or unblocks ends with the platform
//! holding what it asks, whatever earlier batches did — and no worker is e-mailed twice for
//! a grant they already hold. By the real binary, into the emulator.

use payout::emulator::EmulatorHandle;

use crate::support::*;

const W1: &str = "A1STATEWORKER1";
const W2: &str = "A2STATEWORKER2";
const W3: &str = "A3STATEWORKER3";

/// A website worker file: one line per worker, `UPDATE-Panel` and `UPDATE-BlockStatus` cells.
fn website(rows: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("Worker ID,UPDATE-Panel,UPDATE-BlockStatus\n");
    for (w, panel, block) in rows {
        s.push_str(&format!("{w},{panel},{block}\n"));
    }
    s
}

/// What the emulator holds for a worker: their Panel score (if granted) and whether blocked.
fn standing(h: &EmulatorHandle, worker: &str) -> (Option<i32>, bool) {
    let panel = h.qualification_type_id("Panel");
    (
        panel.and_then(|id| h.qualification_score(&id, worker)),
        h.blocked(worker),
    )
}

fn run_file(s: &Scratch, t: &[String], file: &std::path::Path) -> Outcome {
    let f = file.to_str().unwrap();
    let out = s.run(&args(
        &[
            "run",
            f,
            "--create-missing",
            "--notify",
            "--block-reason",
            "Failed the attention checks",
        ],
        t,
    ));
    assert_eq!(out.code, 0, "{out:?}");
    out
}

#[test]
fn five_files_in_a_row_each_end_with_what_the_latest_asked_and_nobody_is_emailed_twice() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let h = emu.handle();
    let scores = s.write(
        "scores.csv",
        &website(&[(W1, "40", ""), (W2, "50", ""), (W3, "70", "")]),
    );
    run_file(&s, &t, &scores);
    assert_eq!(standing(&h, W1), (Some(40), false));
    assert_eq!(standing(&h, W2), (Some(50), false));
    assert_eq!(standing(&h, W3), (Some(70), false));

    let revokes = s.write(
        "revokes.csv",
        &website(&[(W1, "Revoke", ""), (W2, "70", ""), (W3, "", "Block")]),
    );
    run_file(&s, &t, &revokes);
    assert_eq!(standing(&h, W1), (None, false));
    assert_eq!(standing(&h, W2), (Some(70), false));
    assert_eq!(standing(&h, W3), (Some(70), true));

    let blocks = s.write(
        "blocks.csv",
        &website(&[(W1, "60", ""), (W2, "", "Block"), (W3, "", "Unblock")]),
    );
    run_file(&s, &t, &blocks);
    assert_eq!(standing(&h, W1), (Some(60), false));
    assert_eq!(standing(&h, W2), (Some(70), true));
    assert_eq!(standing(&h, W3), (Some(70), false));

    // Score 40 → revoke → score 60 → revoke; block → unblock → block.
    let unblocks = s.write(
        "unblocks.csv",
        &website(&[(W1, "Revoke", ""), (W2, "", "Unblock"), (W3, "", "Block")]),
    );
    let out = run_file(&s, &t, &unblocks);
    assert!(!out.stderr.contains("already done"), "{out:?}");
    assert_eq!(standing(&h, W1), (None, false));
    assert_eq!(standing(&h, W2), (Some(70), false));
    assert_eq!(standing(&h, W3), (Some(70), true));

    // The first file again, as it was: its scores hold again (it is not "continued" as the
    // finished batch it once was).
    let out = run_file(&s, &t, &scores);
    assert!(!out.stderr.contains("Continuing batch"), "{out:?}");
    assert_eq!(standing(&h, W1), (Some(40), false));
    assert_eq!(standing(&h, W2), (Some(50), false));
    assert_eq!(standing(&h, W3), (Some(70), true));

    // One e-mail per grant asked with --notify that changed the score: W1 40, 60, 40; W2 50,
    // 70, 50; W3 70 once (the repeat found it held).
    let panel = h.qualification_type_id("Panel").unwrap();
    assert_eq!(h.notifications(W1, &panel), 3);
    assert_eq!(h.notifications(W2, &panel), 3);
    assert_eq!(h.notifications(W3, &panel), 1);

    // And once more: everything already holds, nothing is sent, nobody is e-mailed again.
    let before = h.stats().calls;
    let out = run_file(&s, &t, &scores);
    assert!(out.stderr.contains("3 operations already done"), "{out:?}");
    let after = h.stats().calls;
    assert_eq!(
        before.get("AssociateQualificationWithWorker"),
        after.get("AssociateQualificationWithWorker")
    );
    assert_eq!(h.notifications(W1, &panel), 3);
    assert_eq!(h.notifications(W3, &panel), 1);
}

#[test]
fn a_grant_done_quietly_is_sent_again_with_notify_once() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let h = emu.handle();
    let file = s.write("panel.csv", &website(&[(W1, "5", "")]));
    let f = file.to_str().unwrap();
    let quiet = s.run(&args(&["run", f, "--create-missing"], &t));
    assert_eq!(quiet.code, 0, "{quiet:?}");
    let panel = h.qualification_type_id("Panel").unwrap();
    assert_eq!(h.notifications(W1, &panel), 0);
    let plan = s.run(&args(&["run", f, "--notify", "--dry-run"], &t));
    assert!(
        plan.stderr.contains("1 grant the workers already hold"),
        "{plan:?}"
    );
    for _ in 0..2 {
        let told = s.run(&args(&["run", f, "--notify"], &t));
        assert_eq!(told.code, 0, "{told:?}");
        assert_eq!(h.notifications(W1, &panel), 1, "{told:?}");
    }
    assert_eq!(h.qualification_score(&panel, W1), Some(5));
}

#[test]
fn a_state_changed_on_the_platform_since_is_done_again_by_a_file_that_asks_for_it() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let h = emu.handle();
    let file = s.write(
        "w.csv",
        &website(&[(W1, "50", ""), (W2, "", "Block"), (W3, "30", "")]),
    );
    run_file(&s, &t, &file);
    let panel = h.qualification_type_id("Panel").unwrap();
    // Changed by hand since (the website, another tool): W1's score taken away, W2 unblocked.
    let client = crate::names::sdk_client(&emu);
    crate::names::block_on(async {
        client
            .disassociate_qualification_from_worker()
            .worker_id(W1)
            .qualification_type_id(&panel)
            .send()
            .await
            .unwrap();
        client
            .delete_worker_block()
            .worker_id(W2)
            .reason("by hand")
            .send()
            .await
            .unwrap();
    });
    assert_eq!(standing(&h, W1), (None, false));
    assert_eq!(standing(&h, W2), (None, false));
    let dry = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--notify",
            "--block-reason",
            "Failed the attention checks",
            "--dry-run",
        ],
        &t,
    ));
    assert!(
        dry.stderr
            .contains("2 states an earlier batch did but MTurk shows otherwise now"),
        "{dry:?}"
    );
    let out = run_file(&s, &t, &file);
    assert!(
        out.stderr
            .contains("2 states an earlier batch did but MTurk shows otherwise now"),
        "{out:?}"
    );
    assert!(out.stderr.contains("1 operation already done"), "{out:?}");
    assert_eq!(standing(&h, W1), (Some(50), false));
    assert_eq!(standing(&h, W2), (None, true), "{out:?}");
    assert_eq!(standing(&h, W3), (Some(30), false));
    // W3 held 30 all along: not granted (nor e-mailed) again.
    assert_eq!(h.notifications(W3, &panel), 1);
    assert_eq!(h.notifications(W1, &panel), 2);
}

#[test]
fn many_states_of_one_type_are_confirmed_from_its_list_of_workers() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let h = emu.handle();
    let workers: Vec<String> = (0..120).map(|i| format!("A{i:012}")).collect();
    let rows: Vec<(&str, &str, &str)> = workers.iter().map(|w| (w.as_str(), "7", "")).collect();
    let file = s.write("many.csv", &website(&rows));
    run_file(&s, &t, &file);
    let panel = h.qualification_type_id("Panel").unwrap();
    let client = crate::names::sdk_client(&emu);
    crate::names::block_on(async {
        client
            .disassociate_qualification_from_worker()
            .worker_id(&workers[17])
            .qualification_type_id(&panel)
            .send()
            .await
            .unwrap();
    });
    let scores_before = h.stats().calls.get("GetQualificationScore").copied();
    let out = run_file(&s, &t, &file);
    assert!(
        out.stderr
            .contains("1 state an earlier batch did but MTurk shows otherwise now"),
        "{out:?}"
    );
    assert_eq!(h.qualification_score(&panel, &workers[17]), Some(7));
    let calls = h.stats().calls;
    assert!(
        calls
            .get("ListWorkersWithQualificationType")
            .copied()
            .unwrap_or(0)
            >= 2
    );
    assert_eq!(calls.get("GetQualificationScore").copied(), scores_before);
}
