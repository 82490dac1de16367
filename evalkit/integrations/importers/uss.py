"""The USS text format (User Satisfaction Simulation corpus, Sun et al., SIGIR 2021).

One utterance per line, tab-separated: ``ROLE<TAB>text<TAB>action<TAB>ratings`` where role
is USER or SYSTEM, action a dialogue-act annotation (may be empty) and ratings the
annotators' 1-5 satisfaction scores, comma-separated, on USER lines. Dialogues are
separated by blank lines. A USER line whose text is ``OVERALL`` carries the
dialogue-level ratings; their mean becomes the ``human_csat`` metric.

The action annotation is kept as the user turn's ``act``; per-turn ratings are not
imported (the dialogue-level score is what a post-chat survey measures).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.transcript import AgentTurn, StopReason, Transcript, Turn, UserTurn
from evalkit.integrations.importers._common import Imported, ImportFormatError, Recording, replay_scenario

__all__ = ["FORMAT", "parse_ratings", "read"]

FORMAT = "uss"


def parse_ratings(raw: str, *, file: str, line: int) -> list[int]:
    """``"3,4,3"`` -> ``[3, 4, 3]``; every rating must be an integer 1..5."""
    out: list[int] = []
    for part in raw.replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = int(float(part))
        except ValueError:
            raise ImportFormatError(
                f"rating '{part}' is not a number", file=file, line=line, field="ratings"
            ) from None
        if not 1 <= value <= 5:
            raise ImportFormatError(f"rating {value} is outside 1-5", file=file, line=line, field="ratings")
        out.append(value)
    return out


def read(path: str | Path) -> Imported:
    """Parse a USS file into recordings (one per dialogue) and replay scenarios."""
    path = Path(path)
    name = str(path)
    stem = path.stem
    dialogues: list[tuple[int, list[Turn], list[int] | None]] = []
    turns: list[Turn] = []
    overall: list[int] | None = None
    start = 0

    def flush() -> None:
        nonlocal turns, overall
        if turns or overall is not None:
            dialogues.append((start, turns, overall))
        turns, overall = [], None

    with path.open(encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                flush()
                continue
            if not turns and overall is None:
                start = lineno
            cols = line.split("\t")
            role = cols[0].strip().upper()
            text = cols[1].strip() if len(cols) > 1 else ""
            act = cols[2].strip() if len(cols) > 2 else ""
            ratings = cols[3] if len(cols) > 3 else ""
            if role not in ("USER", "SYSTEM"):
                raise ImportFormatError(
                    f"role must be USER or SYSTEM, got '{cols[0][:30]}'", file=name, line=lineno, field="role"
                )
            if len(cols) < 2:
                raise ImportFormatError(
                    "expected tab-separated role and text", file=name, line=lineno, field="text"
                )
            if role == "USER" and text == "OVERALL":
                if overall is not None:
                    raise ImportFormatError(
                        "second OVERALL line in one dialogue", file=name, line=lineno, field="text"
                    )
                overall = parse_ratings(ratings, file=name, line=lineno)
                continue
            if overall is not None:
                # Some files put the OVERALL line last but not before the blank line; a turn
                # after it starts a new dialogue.
                flush()
                start = lineno
            if role == "USER":
                parse_ratings(ratings, file=name, line=lineno)  # validated, not imported
                turns.append(UserTurn(content=text, act=act or None))
            else:
                turns.append(AgentTurn(content=text, metadata={"act": act} if act else {}))
    flush()
    if not dialogues:
        raise ImportFormatError("no dialogues found", file=name, field="file")

    scenarios = []
    recordings = []
    width = max(4, len(str(len(dialogues))))
    for i, (lineno, dlg_turns, overall_ratings) in enumerate(dialogues, start=1):
        sid = f"uss-{stem}-{i:0{width}d}"
        users = [t.content for t in dlg_turns if isinstance(t, UserTurn)]
        scenarios.append(
            replay_scenario(sid, users, title=f"{stem} dialogue {i} (line {lineno})", tags=["uss", stem])
        )
        transcript = Transcript(scenario_id=sid, turns=dlg_turns, stop_reason=StopReason.recorded)
        human = sum(overall_ratings) / len(overall_ratings) if overall_ratings else None
        recordings.append(
            Recording(
                transcript=transcript,
                metrics={"human_csat": human, "source_line": lineno},
                title=f"{stem} dialogue {i}",
                tags=["uss", stem],
            )
        )
    return Imported(
        format=FORMAT,
        source=name,
        scenarios=scenarios,
        recordings=recordings,
        info={"dialogues": len(dialogues), "rated": sum(1 for _, _, r in dialogues if r)},
    )
