"""Ordinary inbound calls, vectorised for 300k a day: IVR, queue, answer, survey."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from kesu.transforms.columns import YES_NO, column

from . import people
from .profiles import HOTLINE_INTAKE, checked, value, volume, weighted
from .world import World, datetimes, pick

IVR, HUMAN = column("hotline", "service_mode").values
OUTCOMES = column("hotline", "outcome").values
ANSWERED, DEFUSED, TO_TICKET, REFERRED, UNRESOLVED = OUTCOMES
CALM, UPSET = column("hotline", "customer_mood").values
YES, NO = YES_NO
KINDS = column("hotline", "call_type").values
COMPLAINT_CALL = value("hotline", "call_type", "投诉")
INQUIRIES = column("hotline", "inquiry_category").values
SURVEY = column("hotline", "survey_satisfaction").values  # 满意 一般 不满意, then 未评价
# fmt: off
CATEGORIES = checked("hotline", "inquiry_category", {
    "个人业务": 85.5, "电子银行": 8.5, "银行卡": 2.4, "信用卡": 2.0, "贷款": 0.8, "对公业务": 0.5,
    "其他": 0.3,
})
CARD_INQUIRY = INQUIRIES.index(value("hotline", "inquiry_category", "信用卡"))
# 业务小类 by 业务大类, the common ones first.
TOPICS = {
    name: topics.split()
    for name, topics in {
        "个人业务": "账户余额明细查询 非柜面交易限制 非柜面交易限额 转账汇款 密码重置 存款利率 "
        "网点信息查询 账户挂失",
        "电子银行": "手机银行 网上银行 短信通知 微信银行",
        "银行卡": "借记卡激活 卡片挂失 换卡补卡",
        "信用卡": "账单查询 还款 额度调整 分期",
        "贷款": "房贷还款 提前还款 贷款利率",
        "对公业务": "对公账户 企业网银",
        "其他": "其他",
    }.items()
}
SELF_SERVICE_TYPES = checked("hotline", "call_type", {"查询": 70, "咨询": 18, "挂失": 12})
AGENT_TYPES = checked("hotline", "call_type", {
    "咨询": 52, "查询": 26, "办理": 14, "挂失": 5, "建议": 1.8, "表扬": 1.2,
})
# fmt: on
IVR_SHARE, ANSWER_RATE = 0.30, 0.93
# Calls about a complaint: 已化解 55, 转投诉 35, 未解决/转办 10. 转投诉 calls are the calls behind
# hotline tickets, so the other complaint calls are sized from the expected ticket count.
OTHER_COMPLAINT_CALLS = 65 / 35


def draw(
    rng: np.random.Generator, weights: dict[str, float], n: int, values: tuple[str, ...]
) -> np.ndarray:
    """n indices into `values`, drawn with `weights`."""
    keys, p = weighted(weights)
    return np.array([values.index(k) for k in keys])[rng.choice(len(keys), n, p=p)]


def flag(mask: np.ndarray, yes: str, no: str) -> pl.Series:
    return pick([no, yes], mask.astype(np.int64))


def _topic_table() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All topics in category order, where each category starts, and per-category CDFs."""
    flat = [t for name in INQUIRIES for t in TOPICS[name]]
    start = np.cumsum([0] + [len(TOPICS[name]) for name in INQUIRIES[:-1]])
    cdf = np.ones((len(INQUIRIES), max(map(len, TOPICS.values()))))
    for i, name in enumerate(INQUIRIES):
        p = 1 / np.arange(1, len(TOPICS[name]) + 1) ** 0.7
        cdf[i, : len(p)] = np.cumsum(p / p.sum())
        cdf[i, len(p) - 1] = 1.0  # never step past a category's last topic
    return flat, start, cdf


_TOPIC_LIST, _TOPIC_START, _TOPIC_CDF = _topic_table()


def topics(rng: np.random.Generator, category: np.ndarray) -> pl.Series:
    """业务小类 given 业务大类 (indices into INQUIRIES), the first topics of each more likely."""
    u = rng.random(len(category))
    return pick(_TOPIC_LIST, _TOPIC_START[category] + (u[:, None] > _TOPIC_CDF[category]).sum(1))


def timings(
    rng: np.random.Generator,
    start: np.ndarray,
    ivr: np.ndarray,
    answered: np.ndarray,
    talk_median: float,
) -> dict[str, pl.Series]:
    n = len(start)
    queued = start + np.clip(rng.lognormal(np.log(40), 0.5, n), 8, 300).astype(np.int64)
    picked_up = queued + np.clip(rng.lognormal(np.log(7), 0.9, n), 1, 900).astype(np.int64)
    gave_up = queued + np.clip(rng.lognormal(np.log(28), 0.8, n), 3, 900).astype(np.int64)
    talk = np.clip(rng.lognormal(np.log(talk_median), 0.75, n), 15, 5400).astype(np.int64)
    self_service = start + np.clip(rng.lognormal(np.log(75), 0.6, n), 10, 900).astype(np.int64)
    hung_up = np.where(ivr, self_service, np.where(answered, picked_up + talk, gave_up))
    return {
        "call_start_at": datetimes(start),
        "queued_at": datetimes(queued, ~ivr),
        "answered_at": datetimes(picked_up, answered),
        "hung_up_at": datetimes(hung_up),
    }


def agents(world: World, rng: np.random.Generator, answered: np.ndarray) -> pl.Series:
    roster = [f"KF{10001 + i}" for i in range(world.profile.agents)]
    agents = pick(roster, rng.integers(0, len(roster), len(answered)))
    return agents.scatter(np.flatnonzero(~answered), None)


def callers(rng: np.random.Generator, n: int) -> pl.Series:
    numbers = pl.Series(people.mobiles(rng, n)).cast(pl.String)
    fixed = np.flatnonzero(rng.random(n) < 0.06)
    return numbers.scatter(fixed, people.landlines(rng, len(fixed)))


def _index(values: tuple[str, ...], *wanted: str) -> list[int]:
    return [values.index(w) for w in wanted]


def ordinary(
    world: World, rng: np.random.Generator, day: dt.date, start: np.ndarray
) -> pl.DataFrame:
    """Calls about anything; a few complaints are defused or referred without a ticket."""
    n, b = len(start), world.branches
    ivr = rng.random(n) < IVR_SHARE
    answered = ~ivr & (rng.random(n) < ANSWER_RATE)
    expected = volume(world.profile, "tickets", day, world.scale) * OTHER_COMPLAINT_CALLS
    intake = world.profile.intake
    expected *= intake[HOTLINE_INTAKE] / sum(intake.values())
    candidates = np.flatnonzero(answered)
    intent = np.zeros(n, bool)
    intent[
        rng.choice(candidates, min(int(rng.poisson(expected)), len(candidates)), replace=False)
    ] = True
    outcome = np.where(ivr, OUTCOMES.index(ANSWERED), OUTCOMES.index(UNRESOLVED))
    routine = rng.choice(
        _index(OUTCOMES, ANSWERED, REFERRED, UNRESOLVED), n, p=[0.965, 0.025, 0.01]
    )
    handled = rng.choice(
        _index(OUTCOMES, DEFUSED, REFERRED, UNRESOLVED), n, p=[55 / 65, 5 / 65, 5 / 65]
    )
    outcome = np.where(answered, np.where(intent, handled, routine), outcome)
    upset = np.where(intent, rng.random(n) < 0.6, answered & (rng.random(n) < 0.038))
    category = draw(rng, CATEGORIES, n, INQUIRIES)
    kind = np.where(ivr, draw(rng, SELF_SERVICE_TYPES, n, KINDS), draw(rng, AGENT_TYPES, n, KINDS))
    kind[intent] = KINDS.index(COMPLAINT_CALL)
    # the caller's account branch; credit-card accounts belong to the card centre
    home = rng.choice(len(b.outlets), n, p=b.outlet_weights)
    home = np.where(category == CARD_INQUIRY, len(b.outlets), home)
    home = np.where(rng.random(n) < 0.15, len(b.outlets) + 1, home)
    return pl.DataFrame(
        {
            **timings(rng, start, ivr, answered, talk_median=170),
            "caller_number": callers(rng, n),
            "service_mode": flag(ivr, IVR, HUMAN),
            "agent_id": agents(world, rng, answered),
            "call_type": pick(KINDS, kind),
            "inquiry_category": pick(INQUIRIES, category),
            "inquiry_topic": topics(rng, category),
            "customer_mood": flag(upset, UPSET, CALM),
            "complaint_intent": flag(intent, YES, NO),
            "outcome": pick(OUTCOMES, outcome),
            "complaint_id": pl.Series([None] * n, dtype=pl.String),
            "survey_satisfaction": survey(rng, answered, upset),
            "branch_code": pick([*b.outlets.tolist(), b.card_centre, None], home),
        }
    )


def survey(rng: np.random.Generator, answered: np.ndarray, upset: np.ndarray) -> pl.Series:
    """Post-call survey: about 60% of calls unrated, ~95% of answers 满意."""
    n = len(answered)
    calm = rng.choice(3, n, p=[0.96, 0.028, 0.012])
    cross = rng.choice(3, n, p=[0.55, 0.25, 0.20])
    rated = answered & (rng.random(n) < 0.62)
    return pick(SURVEY, np.where(rated, np.where(upset, cross, calm), 3))
