"""issue 17, second round: the opposing expert's attacks on a case folder, each reproduced
through the real CLI. A break must now give exit 4 naming the file (or be healed by a rerun),
and nothing the tool wrote may be lost. See docs/adr/0007-tamper-evident-case.md."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fake_engine import make_photo
from fake_engine import run_cli as run

from forensic_app.cli import EXIT_INTEGRITY, EXIT_OK


@pytest.fixture
def case(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_photo(Path("ev/a.jpg"), color=(200, 10, 10))
    make_photo(Path("ev/b.png"), color=(10, 10, 200))
    rc, _, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK, err
    return tmp_path / "case"


def verify(case_dir: Path):
    return run(["case", "verify", "--case", str(case_dir), "--no-log"])


def integrity_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "INTEGRITY" in line]


@pytest.mark.parametrize("folder", ["annotated", "results", "results/history"])
def test_file_hidden_in_an_added_subfolder_is_named(case, folder):
    hidden = case / folder / "extra"
    hidden.mkdir()
    (hidden / "planted.jpg").write_bytes(b"not from the tool")
    rc, out, err = verify(case)
    assert rc == EXIT_INTEGRITY, out + err
    assert any(f"{folder}/extra/" in line for line in integrity_lines(out)), out
    rc, out, err = run(["report", "--case", str(case), "--no-log", "--out", "r.html"])
    assert rc == EXIT_INTEGRITY and f"{folder}/extra/" in err
    assert (hidden / "planted.jpg").read_bytes() == b"not from the tool"  # reported, not touched


def test_record_left_without_its_entry_is_redone_by_a_plain_rerun(case, monkeypatch):
    """A writer killed (or refused by a full disk) between writing a record and appending its
    entry left a record no entry vouches for; a rerun used to reuse it as "unchanged", so the
    case failed ``case verify`` after every rerun. Now the rerun analyses it again."""
    from forensic_app.core import audit

    make_photo(Path("ev/d.png"), color=(90, 90, 90))
    real_append = audit.AuditLog.append

    def refuse_analysed(self, action, *a, **k):
        if action == audit.ANALYSED:
            raise audit.AuditWriteError(28, "No space left on device")
        return real_append(self, action, *a, **k)

    monkeypatch.setattr(audit.AuditLog, "append", refuse_analysed)
    run(["batch", "ev", "--case", "case"])
    monkeypatch.setattr(audit.AuditLog, "append", real_append)
    rc, out, _ = verify(case)
    assert rc == EXIT_INTEGRITY and any(
        "not written by any entry" in x for x in integrity_lines(out)
    )
    left = {p.name: p.read_bytes() for p in (case / "results").glob("*.json")}

    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK, out + err
    assert "1 analysed" in out and "2 unchanged" in out
    rc, out, err = verify(case)
    assert rc == EXIT_OK, out + err
    assert "no entry vouched for" in out  # healed, but the trace stays visible
    kept = [p.read_bytes() for p in (case / "results" / "history").glob("*.unaccounted.json")]
    assert len(kept) == 1 and kept[0] in left.values()  # the unvouched bytes are kept, not lost


def test_record_edited_by_hand_is_not_reused_as_unchanged(case):
    rec_path = next(p for p in (case / "results").glob("*.json") if "a.jpg" in p.read_text())
    rec = json.loads(rec_path.read_text())
    rec["result"]["faces"] = []  # the faces found are removed from the evidence
    rec_path.write_text(json.dumps(rec))
    rc, out, _ = verify(case)
    assert rc == EXIT_INTEGRITY and any(rec_path.name in x for x in integrity_lines(out))
    rc, out, err = run(["batch", "ev", "--case", "case"])
    assert rc == EXIT_OK and "1 analysed" in out, out + err
    assert json.loads(rec_path.read_text())["result"]["faces"]  # re-analysed, not adopted
    from forensic_app.core.audit import read_audit

    # Two workers log their photos in either order: find the re-analysis, not a position.
    redone = [e for e in read_audit(case / "audit.jsonl").entries if e["action"] == "re-analysed"]
    assert len(redone) == 1 and "unaccounted" in redone[0]["detail"]["archived"]


def seal_of(out: str) -> str:
    line = next(x for x in out.splitlines() if "chain head (seal):" in x)
    return line.split("chain head (seal):")[1].split()[0]


def forge_log(case_dir: Path, keep: int, edit=None) -> None:
    """What an attacker with this tool's code can do: keep the first ``keep`` lines, let
    ``edit`` change entries, and recompute every link and self-hash (a consistent chain)."""
    from forensic_app.core.audit import GENESIS, _encode, read_audit, sha256_hex

    entries = read_audit(case_dir / "audit.jsonl").entries[:keep]
    prev, lines = GENESIS, []
    for entry in entries:
        entry = {k: v for k, v in entry.items() if k != "entry_sha256"}
        if edit:
            edit(entry)
        entry["prev"] = prev
        line, _ = _encode(entry)
        lines.append(line)
        prev = sha256_hex(line)
    (case_dir / "audit.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))


def test_log_cut_at_an_entry_boundary_is_exposed_by_the_noted_seal(case):
    rc, out, _ = verify(case)
    seal, n = seal_of(out), len((case / "audit.jsonl").read_bytes().splitlines())
    assert rc == EXIT_OK and f"(line {n})" in out  # the seal names the line count too
    lines = (case / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (case / "audit.jsonl").write_bytes(b"".join(lines[:-1]))  # batch-finished cut off
    rc, out, _ = verify(case)
    # Honest limit: an entry that vouched for no file leaves no trace inside the case ...
    assert rc == EXIT_OK and seal_of(out) != seal and f"(line {n - 1})" in out
    # ... but the seal noted outside it exposes the cut, naming the log.
    rc, out, _ = run(["case", "verify", "--case", str(case), "--no-log", "--seal", seal])
    assert rc == EXIT_INTEGRITY
    assert any("audit.jsonl" in x and seal in x for x in integrity_lines(out)), out
    assert "hash chain intact" in out and "noted seal: NOT in the log" in out
    rc, out, _ = run(["report", "--case", str(case), "--no-log", "--out", "r.html"])
    html = Path("r.html").read_text()
    assert f"(line {n - 1})" in html and "--seal" in html and "rewrite" in html


def test_consistently_rewritten_log_is_exposed_only_by_the_seal(case):
    """An attacker edits a record, rewrites its entry's file hash and recomputes the chain:
    inside the case everything is consistent; only the seal noted outside exposes it."""
    rc, out, _ = verify(case)
    seal = seal_of(out)
    rec_path = next(p for p in (case / "results").glob("*.json") if "a.jpg" in p.read_text())
    rec = json.loads(rec_path.read_text())
    rec["result"]["faces"] = []
    data = json.dumps(rec).encode("ascii")
    rec_path.write_bytes(data)
    rel = f"results/{rec_path.name}"

    def edit(entry):
        if rel in (entry.get("files") or {}):
            entry["files"][rel] = hashlib.sha256(data).hexdigest()
            entry["detail"]["faces"] = 0

    forge_log(case, keep=10**6, edit=edit)
    rc, out, _ = verify(case)
    assert rc == EXIT_OK and seal_of(out) != seal  # the forgery is consistent
    rc, out, _ = run(["case", "verify", "--case", str(case), "--no-log", "--seal", seal])
    assert rc == EXIT_INTEGRITY and "noted seal: NOT in the log" in out


def test_seal_found_lists_what_was_logged_after_it(case):
    rc, out, _ = verify(case)
    seal = seal_of(out)
    make_photo(Path("ev/e.png"), color=(1, 2, 3))
    assert run(["batch", "ev", "--case", "case"])[0] == EXIT_OK
    rc, out, _ = run(["case", "verify", "--case", str(case), "--no-log", "--seal", seal])
    assert rc == EXIT_OK and "noted seal: found in the log" in out
    note = next(x for x in out.splitlines() if "the noted seal is line" in x)
    assert "1 analysed" in note and "2 skipped-unchanged" in note
    rc, _, err = run(["case", "verify", "--case", str(case), "--seal", "not-a-hash"])
    assert rc == 2 and "not a SHA-256" in err
