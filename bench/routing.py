"""Candidate selection speed: the dispatcher's routing beside the naive geodesic-over-everyone selection.

Rosters of 100, 10,000 and 100,000 on-call responders spread over a metro area (~80 x 80 km) around
Denver, a third of them carrying naloxone; each incident asks for the best two naloxone carriers.
Prints p50/p99 per incident for both and their ratio. Target: p99 under 5 ms at 10,000.
Run: .venv/bin/python -m bench.routing
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime
from functools import partial
from uuid import uuid4

from services.dispatcher.adapters.geodesic_distance import geodesic_km
from services.dispatcher.domain.roster import ResponderView
from services.dispatcher.domain.routing import Request, RoutingRules, SpatialIndex, select_candidates, select_naively

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CENTRE = (39.7392, -104.9903)
RULES = RoutingRules()


def roster(size: int, rng: random.Random) -> dict:
    people = {}
    for n in range(size):
        skills = ("naloxone_carrier",) if n % 3 == 0 else ("licensed_clinician",)
        home = (CENTRE[0] + rng.uniform(-0.36, 0.36), CENTRE[1] + rng.uniform(-0.47, 0.47))
        person = ResponderView(
            uuid4(),
            "Generated",
            "clinician",
            f"+1555{n:07d}",
            home,
            frozenset(skills),
            load=1 if rng.random() < 0.1 else 0,
        )
        people[person.responder_id] = person
    return people


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(select, scenes: list[tuple[float, float]]) -> list[float]:
    timings = []
    for scene in scenes:
        started = time.perf_counter()
        select(request=Request(scene, NOW, 2, ("naloxone_carrier",)))
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main(sizes: list[int]) -> None:
    rng = random.Random(2026)
    print(f"{'on call':>8} {'routing p50':>12} {'p99':>8} {'naive p50':>11} {'p99':>9} {'p99 ratio':>10}")
    for size in sizes:
        people = roster(size, rng)
        on_call = frozenset(people)
        index = SpatialIndex()
        for person in people.values():
            index.place(person)
        scenes = [(CENTRE[0] + rng.uniform(-0.3, 0.3), CENTRE[1] + rng.uniform(-0.4, 0.4)) for _ in range(300)]
        fast = measure(
            partial(select_candidates, people, on_call, rules=RULES, distance_km=geodesic_km, index=index), scenes
        )
        naive_scenes = scenes[: max(3, min(100, 300_000 // size))]
        naive = measure(partial(select_naively, people, on_call, rules=RULES, distance_km=geodesic_km), naive_scenes)
        for scene in naive_scenes[:3]:  # same answer, different cost
            request = Request(scene, NOW, 2, ("naloxone_carrier",))
            a = select_candidates(people, on_call, request, RULES, geodesic_km, index).candidates
            b = select_naively(people, on_call, request, RULES, geodesic_km)
            assert [c.responder.responder_id for c in a] == [c.responder.responder_id for c in b]
        print(
            f"{size:>8} {statistics.median(fast):>9.3f} ms {percentile(fast, 0.99):>5.3f} ms"
            f" {statistics.median(naive):>8.2f} ms {percentile(naive, 0.99):>6.2f} ms"
            f" {percentile(naive, 0.99) / percentile(fast, 0.99):>9.0f}x"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 10_000, 100_000])
