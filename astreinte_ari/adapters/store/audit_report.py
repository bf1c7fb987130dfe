"""What `audit verify` found: counts and problems (shared by the chain, domain and
checkpoint checks)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PROBLEMS = 50  # enough to see the pattern; the count says how many in all


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "audit_log seq 57", "calls 8e42...", ...
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    calls: int = 0
    hops: int = 0
    transitions: int = 0
    pre_chain_calls: int = 0
    open_calls: int = 0  # calls never ended (older than the threshold)
    checkpoints: int = 0  # signed checkpoints checked
    witnessed: int = 0  # checkpoints of the witness compared with the database
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_broken(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def add(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, what))
