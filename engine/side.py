"""The side agents' logic, keyed by their own ids: reward stock, promo-code pools and
collective goals. Each takes its JSON state (None at first), one request document and the
program, and returns the new state and effects (replies to members' keys).

Every request carries an id (an order, a pool request, a donation), and its answer is kept in
``answers``, a mapping the caller passes in beside the state: a request replayed after a crash
gets the same answer again — stock, codes and goal totals never move twice. The agent backs
``answers`` with one stored key per answer over a window of recent ones
(tables/recent_answers.py), so a request costs a few small reads and writes however many are
remembered; a plain dict serves tests and tools.
"""

from __future__ import annotations

from typing import Any, MutableMapping

from engine.effects import Rejection, SendEvent
from engine.program import Program

#: Answers remembered per key (a reward, a pool, a goal) for exactly-once answers: the window
#: in which a request can be replayed after a crash.
REMEMBERED_REQUESTS = 10_000

Answers = MutableMapping[str, Any]


def _reply(request: dict, type_: str, member: str, data: dict, suffix: str) -> SendEvent:
    return SendEvent(topic="events", key=member, event={
        "id": f"{request['id']}:{suffix}", "type": type_, "member": member,
        "time": request.get("time"), "brand": request.get("brand") or "default", "data": data})


def _invalid(request: Any, needed: tuple[str, ...]) -> Rejection | None:
    data = request.get("data") if isinstance(request, dict) else None
    missing = [k for k in needed if not isinstance((data or {}).get(k), (str, int))]
    if not isinstance(request, dict) or not isinstance(request.get("id"), str) or missing:
        return Rejection("invalid_request", [{"field": f"data.{k}", "problem": "is required"}
                                             for k in missing] or
                         [{"field": "id", "problem": "is required"}])
    return None


def apply_reward(state: dict | None, request: dict, program: Program,
                 answers: Answers) -> tuple[dict | None, list]:
    """Stock of one reward: ``reward.reserve`` takes one item for an order (or refuses it when
    none is left); ``reward.release`` gives it back when the member could not pay.

    ``stock`` in the reward's configuration is the number of items available in total; the
    agent counts reservations against it (``null`` = unlimited)."""
    problem = _invalid(request, ("order", "reward", "member"))
    if problem:
        return state, [problem]
    state = state or {"reserved": 0}
    data = request["data"]
    order, member = data["order"], data["member"]
    reward = program.rewards.get(data["reward"])
    if request["type"] == "reward.release":
        if answers.get(order) == "reserved":
            answers[order] = "released"
            state["reserved"] -= 1
        return state, []
    if order in answers:
        reserved = answers[order] in ("reserved", "released")
    else:
        stock = None if reward is None else reward.get("stock")
        reserved = reward is not None and (stock is None or state["reserved"] < stock)
        if reserved:
            state["reserved"] += 1
        answers[order] = "reserved" if reserved else "refused"
    if reserved:
        return state, [_reply(request, "reward.reserved", member,
                              {"order": order, "reward": data["reward"],
                               "points": int(data.get("points") or 0)}, "reserved")]
    return state, [_reply(request, "reward.refused", member,
                          {"order": order, "reward": data["reward"],
                           "reason": "out_of_stock" if reward else "unknown_reward"},
                          "refused")]


def apply_pool(state: dict | None, request: dict, program: Program,
               answers: Answers) -> tuple[dict | None, list]:
    """A promo-code pool: ``pool.issue`` hands a member a code (single-use codes at most once
    each; a multi-use pool's one code to everyone), ``pool.codes_added`` tops a running pool
    up. A dry pool answers ``promo.refused`` with reason ``pool_dry`` and is flagged ``dry``.
    ``answers`` holds ``request:<id>`` -> the code it got and ``code:<code>`` -> the request,
    so codes added again after they were issued are not issued twice."""
    if not isinstance(request, dict) or request.get("type") not in ("pool.issue",
                                                                     "pool.codes_added"):
        return state, [Rejection("invalid_request", [{"field": "type",
                                                      "problem": "pool.issue or "
                                                                 "pool.codes_added"}])]
    pool_id = request.get("data", {}).get("pool") or request.get("member")
    config = program.pools.get(pool_id) or {}
    if state is None:
        initial = list(dict.fromkeys(config.get("codes") or ()))
        state = {"available": initial, "known": len(initial), "dry": False, "batches": []}
    if request["type"] == "pool.codes_added":
        if request["id"] in state["batches"]:
            return state, []
        available = set(state["available"])
        fresh = [c for c in dict.fromkeys(request["data"].get("codes") or ())
                 if f"code:{c}" not in answers and c not in available]
        state["available"] = state["available"] + fresh
        state["known"] += len(fresh)
        state["batches"] = (state["batches"] + [request["id"]])[-100:]
        state["dry"] = not state["available"] and config.get("kind") == "single_use"
        return state, []
    problem = _invalid(request, ("request", "member"))
    if problem:
        return state, [problem]
    data = request["data"]
    key, member = data["request"], data["member"]
    code = answers.get(f"request:{key}")
    if code is None:
        if config.get("kind") == "multi_use":
            code = config["code"]
        elif state["available"]:
            code = state["available"][0]
            state["available"] = state["available"][1:]
        if code is not None:
            answers[f"request:{key}"] = code
            if config.get("kind") != "multi_use":
                answers[f"code:{code}"] = key
    if code is None:
        state["dry"] = True
        return state, [_reply(request, "promo.refused", member,
                              {"request": key, "pool": pool_id, "reason": "pool_dry",
                               **({"scenario": data["scenario"]} if data.get("scenario")
                                  else {})}, "refused")]
    return state, [_reply(request, "promo.issued", member,
                          {"request": key, "pool": pool_id, "code": code,
                           **({"scenario": data["scenario"]} if data.get("scenario") else {})},
                          "issued")]


def apply_goal(state: dict | None, request: dict, program: Program,
               answers: Answers) -> tuple[dict | None, list]:
    """A collective goal: donations add up; when the total reaches the goal's points,
    ``goal.reached`` goes to every donor, once."""
    problem = _invalid(request, ("goal", "member", "points", "donation"))
    if problem:
        return state, [problem]
    data = request["data"]
    state = state or {"total": 0, "donors": [], "reached": False}
    if data["donation"] in answers:
        return state, []
    answers[data["donation"]] = int(data["points"])
    state["total"] += int(data["points"])
    if data["member"] not in state["donors"]:
        state["donors"] = state["donors"] + [data["member"]]
    goal = program.goals.get(data["goal"])
    if state["reached"] or goal is None or state["total"] < goal["points"]:
        return state, []
    state["reached"] = True
    return state, [SendEvent(topic="events", key=donor, event={
        "id": f"goal:{data['goal']}:reached:{donor}", "type": "goal.reached", "member": donor,
        "time": request.get("time"), "brand": request.get("brand") or "default",
        "data": {"goal": data["goal"]}}) for donor in state["donors"]]
