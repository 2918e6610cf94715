"""Roster files without a hub: every bad input is refused whole with its line numbers, files
from spreadsheet programs (BOM, GBK/GB18030, UTF-16, `;` and tab, CRLF) are read, and the
plan says exactly what an import would change (hub_ext.accounts.roster)."""

import time

import pytest

from hub_ext.accounts.roster import (MAX_BYTES, MAX_ROWS, Recorded, RosterError, make_plan, parse_roster,
                                     plan_dict)

GOOD = "username,display name,email,role\nalice,Alice Liu,alice@example.org,student\nbob,Bob,,Instructor\n"


def problems_of(data: bytes) -> list[str]:
    with pytest.raises(RosterError) as e:
        parse_roster(data)
    print("\n".join(e.value.problems))
    return e.value.problems


def people(data: bytes) -> list[tuple]:
    return [(p.line, p.username, p.role, p.display_name, p.email) for p in parse_roster(data).people]


# --- files as spreadsheet programs write them ---------------------------------------------------

@pytest.mark.parametrize("encoding, name", [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 with BOM"),
                                            ("gbk", "GB18030"), ("gb18030", "GB18030"), ("utf-16", "UTF-16")])
def test_chinese_names_read_in_every_encoding_spreadsheets_write(encoding, name):
    text = "username;Display Name;E-mail;Role\r\nli.lei;李雷;lilei@example.cn;student\r\nhan@mei;韩梅梅;;TA\r\n"
    roster = parse_roster(text.encode(encoding))
    assert roster.encoding == name and roster.separator == "semicolon"
    assert people(text.encode(encoding)) == [(2, "li.lei", "student", "李雷", "lilei@example.cn"),
                                             (3, "han@mei", "ta", "韩梅梅", "")]


@pytest.mark.parametrize("sep, name", [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_the_separator_is_sniffed_from_the_header(sep, name):
    text = sep.join(["Role", "Email", "Username", "Name"]) + "\r\n" + sep.join(
        ["ta", "c@example.org", "carol", "Carol, \"Caz\" Smith" if sep != "," else "Carol Smith"]) + "\r\n"
    roster = parse_roster(text.encode())
    assert roster.separator == name
    assert roster.people[0].username == "carol" and roster.people[0].role == "ta"
    assert roster.columns == ("role", "email", "username", "display_name")


def test_only_usernames_make_a_class_of_students_and_blank_lines_are_skipped():
    assert people(b"\n\nUser_Name\n\nalice\n,\nbob\n") == [(5, "alice", "student", "", ""),
                                                             (7, "bob", "student", "", "")]


def test_quoted_line_breaks_keep_line_numbers_right():
    text = 'username,name,role\nalice,"Alice\nLiu",student\nbob,Bob,boss\n'
    assert any(p.startswith("line 4: role 'boss'") for p in problems_of(text.encode()))


def test_trailing_empty_columns_from_spreadsheets_are_ignored_but_a_value_there_is_not():
    assert people(b"username,role,,\nalice,student,,\n") == [(2, "alice", "student", "", "")]
    assert problems_of(b"username,role,\nalice,student,oops\n") == [
        "line 2: a value in column 3, which has no name in line 1; name the column or remove the value"]


# --- every bad input, all reported, nothing accepted ----------------------------------------------

def test_every_bad_line_is_reported_with_its_number_and_reason():
    text = ("username,display name,email,role\n"
            "Alice,Alice,alice@example.org,student\n"      # 2: capitals
            "bad name,X,,student\n"                        # 3: space
            "-dash,X,,student\n"                           # 4: must start with a letter/digit
            f"{'a' * 65},X,,student\n"                     # 5: too long
            "carol,Carol,not-an-email,student\n"           # 6: email
            "dave,Dave,,professor\n"                       # 7: role
            "erin,Erin,,student\n"                         # 8: duplicate of 10
            ",Nobody,,student\n"                           # 9: empty username
            "erin,Erin again,,ta\n"                        # 10: duplicate of 8
            "frank,Fr\x1b[31mank,,student\n"               # 11: terminal escape in a name
            "gina,\u202eanig,,student\n")                  # 12: text-direction override
    problems = problems_of(text.encode())
    assert problems[0] == ("line 2: username 'Alice' has capital letters; JupyterHub lower-cases names at login, "
                           "so write it as 'alice'")
    for line, words in [(3, "'bad name' is not allowed; a username is 1 to 64 characters: lower-case letters"),
                        (4, "'-dash' is not allowed"), (5, "is not allowed"),
                        (6, "email 'not-an-email' is not an email address"),
                        (7, "role 'professor' is not one of student, ta, instructor"),
                        (8, "username erin is also on line 10"), (9, "username is empty"),
                        (10, "username erin is also on line 8"), (11, "control or text-direction characters"),
                        (12, "control or text-direction characters")]:
        assert any(p.startswith(f"line {line}: ") and words in p for p in problems), (line, words)
    assert [int(p.split(":")[0][5:]) for p in problems] == sorted(int(p.split(":")[0][5:]) for p in problems)


@pytest.mark.parametrize("data, words", [
    (b"", "The file is empty"),
    (b"  \r\n\r\n", "The file is empty"),
    (b"username,role\n", "lists nobody"),
    (b"name,email,role\nAlice,a@example.org,student\n", "line 1: no username column"),
    (b"username,emial\nalice,a@example.org\n", "line 1: unknown column 'emial'; the columns are username"),
    (b"username,email,E-Mail\nalice,a@x.org,b@x.org\n", "is a second email column"),
    (b"username,name\nalice,\"Al\"ice\n", "line 2: not valid CSV"),
    (b"username\n\xff\xfe\xfd\x00alice\n", "not text in UTF-8, UTF-16 or GB18030"),
    (b"username\nalice\n\x00\n", "not text in UTF-8, UTF-16 or GB18030"),
])
def test_bad_files_are_refused_with_a_sentence(data, words):
    assert any(words in p for p in problems_of(data))


def test_size_and_row_limits_are_refused_with_the_limit():
    big = b"username\n" + b"a" * (MAX_BYTES + 1)
    assert problems_of(big) == [f"The file is larger than 2 MiB, the most a roster may be ({MAX_ROWS} people): "
                                "split it into several files"]
    many = "username\n" + "".join(f"s{i}\n" for i in range(MAX_ROWS + 1))
    assert problems_of(many.encode()) == [f"The file has more than {MAX_ROWS} people; a roster may have at most "
                                          f"{MAX_ROWS}: split it into several files"]
    exactly = "username\n" + "".join(f"s{i}\n" for i in range(MAX_ROWS))
    assert len(parse_roster(exactly.encode()).people) == MAX_ROWS


def test_a_name_differing_from_an_existing_user_only_by_case_is_refused():
    roster = parse_roster(b"username\nalice\nbob\n")
    with pytest.raises(RosterError) as e:
        make_plan("lab", roster, {"Alice", "carol"}, set(), set(), {})
    assert e.value.problems == ["line 2: username alice differs only by case from the existing hub user 'Alice'; "
                                "use that exact name, or rename one of them"]


# --- the plan ----------------------------------------------------------------------------------

def test_the_plan_names_every_change_and_applying_it_twice_changes_nothing():
    roster = parse_roster((
        "username,name,email,role\n"
        "alice,Alice,alice@example.org,student\n"   # already enrolled, same: unchanged
        "bob,Bob,,instructor\n"                     # student now: role change
        "carol,Carol Chen,,student\n"               # enrolled, new name: detail change
        "dave,Dave,,student\n"                      # not enrolled, account exists
        "erin,Erin,,ta\n").encode())                # no account yet
    rows = {"alice": Recorded("student", "Alice", "alice@example.org"), "bob": Recorded("student", "Bob"),
            "carol": Recorded("student", "Carol"), "zed": Recorded("student", "Zed"),
            "teacher": Recorded("instructor")}
    students, staff = {"alice", "bob", "carol", "zed"}, {"teacher"}
    users = {"alice", "bob", "carol", "dave", "zed", "teacher"}
    plan = make_plan("lab", roster, users, students, staff, rows)
    result = plan_dict(plan, roster, dry_run=True, sync=False, applied=False)
    print(result["summary"])
    assert [p["username"] for p in result["enrol"]] == ["dave", "erin"]
    assert [(p["username"], p["from"], p["role"]) for p in result["role_changes"]] == [("bob", "student", "instructor")]
    assert [p["username"] for p in result["detail_changes"]] == ["carol"]
    assert result["unchanged"] == 1 and result["unenrol"] == [] and result["accounts_to_create"] == ["erin"]
    assert result["summary"] == ("Dry run for lab: 2 to enrol, 1 role change, 1 detail change, 0 to unenrol, "
                                 "1 new account; 1 unchanged. Nothing was changed.")

    synced = make_plan("lab", roster, users, students, staff, rows, sync=True, actor="teacher")
    assert synced.unenrol == [("zed", "student")] and synced.kept == ["teacher"]

    # The state after applying: the same file again is a plan with nothing to do.
    students2 = {"alice", "carol", "dave"}
    staff2 = {"bob", "erin", "teacher"}
    rows2 = {p.username: Recorded(p.role, p.display_name, p.email) for p in roster.people}
    again = make_plan("lab", roster, users | {"erin"}, students2, staff2, rows2)
    assert again.changes == 0 and len(again.unchanged) == 5
    assert plan_dict(again, roster, False, False, False)["summary"] == (
        "Nothing to change in lab: all 5 people of the file are enrolled as it says.")


def test_someone_in_both_groups_is_a_role_change():
    roster = parse_roster(b"username,role\nbob,ta\n")
    plan = make_plan("lab", roster, {"bob"}, {"bob"}, {"bob"}, {"bob": Recorded("ta")})
    assert [(p.username, before) for p, before in plan.role_changes] == [("bob", "both groups")]


def test_a_class_of_500_is_parsed_and_planned_quickly():
    text = "username,display name,email,role\n" + "".join(
        f"s{i:04d},学生 {i},s{i}@example.edu,student\n" for i in range(500)).replace("s0000,", "t0000,", 1)
    data = text.encode("gb18030")
    started = time.perf_counter()
    roster = parse_roster(data)
    plan = make_plan("big", roster, {f"s{i:04d}" for i in range(250)}, set(), set(), {})
    elapsed = time.perf_counter() - started
    print(f"500-student roster parsed and planned in {elapsed * 1000:.1f} ms")
    assert len(plan.enrol) == 500 and len(plan.accounts_to_create) == 251
