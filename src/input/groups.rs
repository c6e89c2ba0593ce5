//! Participant-group files (Prolific's qualifications and block lists): a header with a
//! participant column, a group column (a group's name or ID) and an optional action column
//! (`add`, the default, or `remove`); or a plain list of participant IDs, one a line, with
//! `--group`; or Prolific's submissions export with `--group` (its participant column is used,
//! the rest ignored). Every bad value is reported with its line; nothing is sent for a file
//! with any problem. Whether a file adds and removes the same participant in one group is told
//! once its groups are resolved (a name and an ID may be the same group).

use crate::ids::ParticipantId;
use crate::item::MemberAction;

use super::problems::{InputErrors, InputProblem};
use super::prolific::{AMOUNT, PARTICIPANT, errors, find, id_problem, norm, read_records};

/// One membership change a file asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub line: u64,
    pub participant: ParticipantId,
    /// The group as the row (or `--group`) names it: a name or an ID.
    pub group: String,
    pub action: MemberAction,
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct GroupOptions {
    /// `--group` (or `--block-list`): the group of rows that name none.
    pub group: Option<String>,
    /// `--add` / `--remove`: the action of rows that say none.
    pub action: Option<MemberAction>,
}

const GROUP: &[&str] = &[
    "group",
    "groupname",
    "groupid",
    "participantgroup",
    "participantgroupid",
    "participantgroupname",
];
const ACTION: &[&str] = &["action", "change", "membership"];

/// Whether a header is a group file's: a participant column and a group column, and no
/// amount (a bonus sheet often has a `group` column: the participant's condition).
pub fn looks_like_group_file(header: &[String]) -> bool {
    find(header, PARTICIPANT).is_some()
        && find(header, GROUP).is_some()
        && find(header, AMOUNT).is_none()
}

/// Whether a file's first line is a group file's header.
pub fn first_line_is_group_file(line: &str) -> bool {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.trim_start_matches('\u{feff}').as_bytes());
    match rdr.records().next() {
        Some(Ok(rec)) => looks_like_group_file(&rec.iter().map(str::to_owned).collect::<Vec<_>>()),
        _ => false,
    }
}

pub fn parse_groups(
    bytes: &[u8],
    file: &str,
    opts: &GroupOptions,
) -> Result<Vec<GroupRow>, InputErrors> {
    let (records, mut problems) = read_records(bytes, file)?;
    let Some((_, first)) = records.first() else {
        return Err(InputErrors::whole(
            file,
            "is empty: no participants to add or remove",
        ));
    };
    let header: Vec<String> = first.iter().map(str::to_owned).collect();
    let participant_col = find(&header, PARTICIPANT);
    let (start, participant_col, group_col, action_col) = match participant_col {
        Some(p) => (1, p, find(&header, GROUP), find(&header, ACTION)),
        // No header: a plain list, if its first line is a participant ID.
        None if header.len() == 1 && ParticipantId::parse(&header[0]).is_ok() => (0, 0, None, None),
        None => {
            return Err(InputErrors::whole(
                file,
                format!(
                    "has no participant column (line 1 is {:?}); give a header with participant_id and group (and action), or a plain list of participant IDs with --group",
                    header.join(",")
                ),
            ));
        }
    };
    let given_group = opts
        .group
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty());
    if group_col.is_none() && given_group.is_none() {
        return Err(InputErrors::whole(
            file,
            "names no group: add a group column (a group's name or ID), or give --group NAME (or --block-list NAME)",
        ));
    }
    let col_name = |i: usize| -> String {
        header
            .get(i)
            .map(|h| norm(h))
            .filter(|_| start == 1)
            .unwrap_or_else(|| (i + 1).to_string())
    };
    let mut rows: Vec<GroupRow> = Vec::with_capacity(records.len());
    for (line, rec) in records.iter().skip(start) {
        let line = *line;
        if start == 0 && rec.len() != 1 {
            problems.push(InputProblem {
                line,
                column: None,
                message: format!(
                    "has {} values; a plain list has one participant ID a line",
                    rec.len()
                ),
            });
            continue;
        }
        let cell = |i: Option<usize>| i.and_then(|i| rec.get(i)).map(str::trim).unwrap_or("");
        let text = cell(Some(participant_col));
        let participant = match ParticipantId::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(InputProblem {
                    line,
                    column: Some(col_name(participant_col)),
                    message: id_problem("participant ID", text, &e),
                });
                None
            }
        };
        let group = match cell(group_col) {
            "" => match given_group {
                Some(g) => Some(g.to_owned()),
                None => {
                    problems.push(InputProblem {
                        line,
                        column: group_col.map(col_name),
                        message: "names no group; fill the group column or give --group NAME"
                            .into(),
                    });
                    None
                }
            },
            g => Some(g.to_owned()),
        };
        let action = match cell(action_col) {
            "" => Some(opts.action.unwrap_or(MemberAction::Add)),
            a => match MemberAction::parse(a) {
                Some(a) => Some(a),
                None => {
                    problems.push(InputProblem {
                        line,
                        column: action_col.map(col_name),
                        message: format!("the action {a:?} is not add or remove"),
                    });
                    None
                }
            },
        };
        let (Some(participant), Some(group), Some(action)) = (participant, group, action) else {
            continue;
        };
        rows.push(GroupRow {
            line,
            participant,
            group,
            action,
        });
    }
    if !problems.is_empty() {
        return Err(errors(file, problems));
    }
    if rows.is_empty() {
        return Err(InputErrors::whole(
            file,
            "has a header and no participants to add or remove",
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "60ffe5c8371090c7041d43f8";
    const P2: &str = "60ffe5c8371090c7041d43f9";

    fn parse(text: &str, opts: &GroupOptions) -> Result<Vec<GroupRow>, InputErrors> {
        parse_groups(text.as_bytes(), "g.csv", opts)
    }

    #[test]
    fn a_header_names_participant_group_and_action_with_add_the_default() {
        let f = parse(
            &format!(
                "\u{feff}Participant ID,Group,Action\r\n{P1},Completed study 1,\r\n{P2},Block list,remove\r\n\r\n{P1},Completed study 1,add\r\n"
            ),
            &GroupOptions::default(),
        )
        .unwrap();
        // Every row, repeats too: what a repeat is (the same change in the same group, named
        // by its name or its ID) is decided once the groups are resolved (batch::groups).
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].group, "Completed study 1");
        assert_eq!(f[0].action, MemberAction::Add);
        assert_eq!((f[1].line, f[1].action), (3, MemberAction::Remove));
        assert_eq!((f[2].line, f[2].action), (5, MemberAction::Add));
    }

    #[test]
    fn a_plain_list_or_an_export_takes_its_group_and_action_from_the_command_line() {
        let opts = GroupOptions {
            group: Some("Failed attention".into()),
            action: Some(MemberAction::Remove),
        };
        let f = parse(&format!("{P1}\n{P2}\n"), &opts).unwrap();
        assert_eq!(f.len(), 2);
        assert!(
            f.iter()
                .all(|r| r.group == "Failed attention" && r.action == MemberAction::Remove)
        );
        // Prolific's submissions export: its participant column, the rest ignored.
        let export = format!(
            "Submission id,Participant id,Status,Started at\n6100aaaa371090c7041d43f8,{P1},APPROVED,2026-11-01\n"
        );
        let f = parse(&export, &opts).unwrap();
        assert_eq!(f[0].participant.as_str(), P1);
        // Without --group neither names a group.
        let e = parse(&export, &GroupOptions::default()).unwrap_err();
        assert!(e.to_string().contains("--group"), "{e}");
    }

    #[test]
    fn every_bad_value_is_named_with_its_line_and_column() {
        let e = parse(
            &format!(
                "participant_id,group,action\n{P1},G,add\nA143XRCI,G,add\n{P2},,add\n{P2},G,maybe\n"
            ),
            &GroupOptions::default(),
        )
        .unwrap_err();
        let text = e.to_string();
        for want in [
            "line 3",
            "participantid",
            "line 4",
            "names no group",
            "line 5",
            "\"maybe\"",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        let e = parse("name,score\nx,1\n", &GroupOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no participant column"), "{e}");
        let e = parse(&format!("{P1},extra\n"), &GroupOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no participant column"), "{e}");
    }

    #[test]
    fn a_group_file_is_told_by_its_header() {
        assert!(first_line_is_group_file("participant_id,group_name,action"));
        assert!(first_line_is_group_file(
            "\u{feff}PROLIFIC_PID,Participant group"
        ));
        assert!(!first_line_is_group_file("participant_id,amount"));
        assert!(
            !first_line_is_group_file("participant_id,group,bonus"),
            "a bonus sheet's condition column"
        );
        assert!(!first_line_is_group_file(P1));
    }
}
