"""The offline CSAT proxy: each signal moves the score the right way; calibration on USS."""

from __future__ import annotations

import random

import pytest
from _recorded_helpers import USS_DIR, needs_uss

from evalkit.core.transcript import AgentTurn, Handoff, Outcome, StopReason, ToolCall, Transcript, UserTurn
from evalkit.judges.csat import SATISFIED_MIN, csat_proxy, csat_signals, sentiment
from evalkit.quality.calibration import length_baseline, rankdata, spearman, spearman_ci, thanks_baseline


def conv(*pairs: tuple[str, str], **kw: object) -> Transcript:
    turns: list[UserTurn | AgentTurn] = []
    for user, agent in pairs:
        turns.append(UserTurn(content=user))
        if agent:
            turns.append(AgentTurn(content=agent, latency_ms=kw.pop("latency_ms", None)))  # type: ignore[arg-type]
    return Transcript(scenario_id="s", turns=turns, **kw)  # type: ignore[arg-type]


NEUTRAL = [("Where is order 10001?", "It ships tomorrow."), ("And the tracking number?", "It is TRK123.")]


# -- sentiment ---------------------------------------------------------------------------------


def test_sentiment_lexicon_negation_emphasis() -> None:
    assert sentiment("Great, thank you so much!") > 0.5
    assert sentiment("This is terrible") < -0.4
    assert sentiment("not good") < 0 < sentiment("good")
    assert sentiment("not bad") > 0  # negated negative is mildly positive
    assert sentiment("It is good") < sentiment("It is very good") < sentiment("It is very good!!!")
    assert sentiment("I am not happy") > sentiment("I am NOT HAPPY!!!")
    assert sentiment("order 10001, tomorrow") == 0.0
    assert sentiment("") == 0.0
    assert -1 < sentiment("awful awful awful terrible horrible useless worst") < -0.9
    assert sentiment("谢谢，很好") > 0 > sentiment("我很不满意，要投诉")
    assert sentiment("thanks :)") > sentiment("thanks") > 0 > sentiment("ok 😡")


# -- each signal moves the proxy the right way ------------------------------------------------


def test_empty_conversation_has_no_proxy() -> None:
    assert csat_proxy(Transcript(scenario_id="s")) is None
    assert csat_signals(Transcript(scenario_id="s"))["reason"] == "empty conversation"


def test_gratitude_and_complaints() -> None:
    base = csat_proxy(conv(*NEUTRAL))
    happy = csat_proxy(conv(*NEUTRAL, ("Perfect, thanks a lot, that was really helpful!", "You're welcome.")))
    angry = csat_proxy(conv(*NEUTRAL, ("This is useless, I already told you twice. Ridiculous!", "Sorry.")))
    assert base is not None and happy is not None and angry is not None
    assert angry < base < happy
    assert happy >= SATISFIED_MIN and angry < 3.0


def test_late_complaint_weighs_more_than_a_recovered_early_one() -> None:
    early = conv(("This is useless!", "Let me fix that."), ("ok", "Done, refunded."), ("ok thanks", "Bye."))
    late = conv(("hi", "Let me fix that."), ("ok", "Done."), ("This is useless!", "Bye."))
    assert csat_signals(early)["complaint_pts"] > csat_signals(late)["complaint_pts"]


def test_outcomes_handoff_and_errors() -> None:
    def score(**kw: object) -> float:
        value = csat_proxy(conv(*NEUTRAL, **kw))
        assert value is not None
        return value

    resolved = score(outcome=Outcome.resolved)
    assert score(outcome=Outcome.escalated) < resolved
    assert score(outcome=Outcome.abandoned) < score(outcome=Outcome.escalated)
    assert score(outcome=Outcome.error, error="agent crashed") < score(outcome=Outcome.max_turns) < resolved
    # a recorded conversation's default outcome was never observed: no bonus for it
    assert score(stop_reason=StopReason.recorded) < resolved
    t = conv(*NEUTRAL)
    t.turns[1] = AgentTurn(content="Connecting you.", handoff=Handoff(reason="asked"))
    handed = csat_proxy(t)
    assert handed is not None and handed < resolved


def test_agent_failures_errors_and_loops() -> None:
    ok = csat_proxy(conv(("Find me a hotel", "The Acorn has rooms."), ("Book it", "Booked, ref R1.")))
    failing = csat_proxy(
        conv(("Find me a hotel", "Sorry, I couldn't find any hotels."), ("Book one anyway", "Unfortunately I am unable to."))
    )
    assert failing is not None and ok is not None and failing < ok
    t = conv(("Find me a hotel", ""), ("Book it", "Booked."))
    t.turns.insert(1, AgentTurn(content="", tool_calls=[ToolCall(name="search", error="timeout")]))
    assert csat_signals(t)["n_agent_errors"] == 1 and csat_signals(t)["agent_failure_pts"] < 0
    loop_reply = "Please tell me your order number and your email address so I can look into it"
    looping = conv(("where is my order", loop_reply), ("it is 10001", loop_reply), ("I gave it already", loop_reply))
    assert csat_signals(looping)["n_agent_loops"] == 2


def test_friction_repeats_corrections_alternatives() -> None:
    repeat = "I want to change the delivery address for order 10001 please"
    rep = csat_signals(conv((repeat, "Which order?"), (repeat, "OK.")))
    assert rep["n_user_repeats"] == 1 and rep["friction_pts"] < 0
    # saying "that works" twice is not a repeat
    fine = csat_signals(conv(("Yes, that works for me.", "Great."), ("Yes, that works for me.", "Done.")))
    assert fine["n_user_repeats"] == 0
    corr = csat_signals(conv(("Book for 2", "Booked for 3."), ("No, I said 2 people.", "Fixed.")))
    assert corr["n_corrections"] == 1
    closing = csat_signals(conv(("Book for 2", "Booked."), ("No, thank you, that's all.", "Bye.")))
    assert closing["n_corrections"] == 0
    alt = csat_signals(conv(("Find a flight", "AA 100 at 9am."), ("Do you have anything else?", "UA 200.")))
    assert alt["n_alternatives"] == 1


def test_slow_replies_and_effort() -> None:
    fast = csat_proxy(conv(*NEUTRAL, latency_ms=800.0))
    slow = csat_proxy(conv(*NEUTRAL, latency_ms=9000.0))
    assert slow is not None and fast is not None and slow < fast
    short = csat_signals(conv(*(NEUTRAL * 2)))
    long = csat_signals(conv(*(NEUTRAL * 20)))
    assert short["effort_pts"] == 0 and long["effort_pts"] < 0


def test_unanswered_ending() -> None:
    t = conv(*NEUTRAL, ("Can you also book a taxi?", ""))
    assert csat_signals(t)["ended_unanswered"] == 1
    assert csat_signals(conv(*NEUTRAL, ("thanks, bye", "")))["ended_unanswered"] == 0


def test_signals_explain_the_score_and_are_deterministic() -> None:
    rng = random.Random(7)
    words = ["great", "no", "thanks", "useless", "order", "please", "again", "perfect", "wrong", "ok"]
    for _ in range(50):
        pairs = [(" ".join(rng.choices(words, k=5)), " ".join(rng.choices(words, k=6))) for _ in range(rng.randint(1, 8))]
        t = conv(*pairs)
        s = csat_signals(t)
        total = 3.0 + sum(v for k, v in s.items() if k.endswith("_pts"))  # type: ignore[misc]
        assert s["csat_proxy"] == pytest.approx(min(5.0, max(1.0, total)), abs=0.01)
        assert 1.0 <= s["csat_proxy"] <= 5.0  # type: ignore[operator]
        assert csat_signals(t) == s


# -- calibration helpers ------------------------------------------------------------------------


def test_spearman_matches_a_reference_with_ties() -> None:
    pd = pytest.importorskip("pandas")
    rng = random.Random(3)
    x = [rng.randint(1, 5) for _ in range(200)]
    y = [v + rng.gauss(0, 2) for v in x]
    assert spearman(x, y) == pytest.approx(pd.Series(x).rank().corr(pd.Series(y).rank()))
    assert list(rankdata([3, 1, 3, 2])) == [3.5, 1.0, 3.5, 2.0]
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    c = spearman_ci(x, y, n_resamples=300)
    assert c.low is not None and c.high is not None and c.low < c.rho < c.high  # type: ignore[operator]


# -- against human ratings (shared data) -------------------------------------------------------


@needs_uss
@pytest.mark.parametrize("name", ["SGD", "MWOZ"])
def test_proxy_beats_trivial_baselines_on_uss(name: str) -> None:
    from evalkit.integrations.importers.uss import read

    recs = read(USS_DIR / f"{name}.txt").recordings
    human = [float(r.metrics["human_csat"]) for r in recs]  # type: ignore[arg-type]
    proxy = [csat_proxy(r.transcript) or 3.0 for r in recs]
    rho = spearman(proxy, human)
    length = spearman([length_baseline(r.transcript) for r in recs], human)
    thanks = spearman([thanks_baseline(r.transcript) for r in recs], human)
    assert rho is not None and length is not None and thanks is not None
    # Clearly better: by a margin larger than the noise between the two files.
    assert rho > abs(length) + 0.1 and rho > abs(thanks) + 0.1


def test_agent_confirmations_count_as_resolution_evidence() -> None:
    done = csat_signals(conv(("Book a table for two", "Your table has been booked. Reference number R1."), ("ok", "")))
    vague = csat_signals(conv(("Book a table for two", "Which restaurant?"), ("ok", "")))
    assert done["n_agent_confirmations"] == 1 and done["resolution_pts"] > vague["resolution_pts"] == 0


def test_benchmark_runs_the_llm_csat_judge_when_a_model_is_configured(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util
    from pathlib import Path

    from _recorded_helpers import USS_TEXT, write

    from evalkit.testing.fake_openai import FakeOpenAIServer

    spec = importlib.util.spec_from_file_location(
        "csat_uss", Path(__file__).resolve().parents[1] / "benchmarks" / "csat_uss.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    f = write(tmp_path / "Mini.txt", USS_TEXT * 3)  # 6 dialogues, 3 unhappy and 3 happy
    # offline: the LLM judge says it was skipped
    for key in ("EVALKIT_MODEL", "EVALKIT_JUDGE_MODEL", "EVALKIT_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    assert bench.main([str(f), "--resamples", "50"]) == 0
    assert "llm_csat skipped: no model configured" in capsys.readouterr().out
    with FakeOpenAIServer() as srv:
        # A judge model that reads the transcript: happy when the user thanked.
        srv.add_rule(
            lambda req: {"reason": "r", "score": 5 if "thank you" in req.last_user.lower() else 2},
            match=lambda r: r.schema is not None,
        )
        monkeypatch.setenv("EVALKIT_JUDGE_MODEL", "fake-model")
        monkeypatch.setenv("EVALKIT_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("EVALKIT_CACHE", "off")
        monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
        assert bench.main([str(f), "--resamples", "50", "--llm-sample", "6"]) == 0
        out = capsys.readouterr().out
        assert len(srv.chat_requests) == 6
    assert "Mini: llm_csat +1.000" in out and "offline proxy on the same sample" in out


def test_chinese_customer_service_cues() -> None:
    ask = "我的订单什么时候发货"
    bad = csat_signals(conv((ask, "抱歉，查不到您的订单"), (ask + "啊", "不好意思，无法查询"), ("算了，我要投诉", "")))
    good = csat_signals(conv((ask, "已经为您处理，明天发货"), ("好的，谢谢", "")))
    assert bad["n_user_repeats"] == 1 and bad["n_agent_failures"] == 2 and bad["n_complaints"] == 1
    assert good["n_agent_confirmations"] == 1 and good["n_thanks"] == 1
    assert bad["csat_proxy"] < 2.5 < 3.5 < good["csat_proxy"]  # type: ignore[operator]


# -- the agent's manner --------------------------------------------------------------------------

ASK = "How do I reset my password?"


@pytest.mark.parametrize(
    "rude",
    [
        "Figure it out yourself.",  # the reproduction in issue #11
        "You'll have to work that out on your own.",
        "Not my problem.",
        "That's your own fault, you should have read the instructions.",
        "As I already told you, it's on the login page.",
        "Whatever.",
        "Just google it.",
        "Calm down and stop complaining.",
    ],
)
def test_a_rude_dismissive_or_blaming_agent_scores_below_a_polite_one(rude: str) -> None:
    polite = csat_signals(conv((ASK, "You can reset it on the login page: click 'Forgot password'.")))
    bad = csat_signals(conv((ASK, rude)))
    assert bad["n_agent_rude"] == 1 and polite["n_agent_rude"] == 0
    assert bad["csat_proxy"] <= polite["csat_proxy"] - 0.9  # type: ignore[operator]
    assert bad["csat_proxy"] < SATISFIED_MIN <= polite["csat_proxy"]  # type: ignore[operator]


def test_a_refusal_with_no_way_forward_costs_more_than_one_with_an_alternative() -> None:
    dead = csat_signals(conv((ASK, "I can't help you with that.")))
    onward = csat_signals(conv((ASK, "I can't help with that, but I can connect you with a colleague.")))
    asks = csat_signals(conv((ASK, "We cannot do that here. Would you like the reset link by email?")))
    assert dead["n_agent_dead_ends"] == 1 and onward["n_agent_dead_ends"] == asks["n_agent_dead_ends"] == 0
    assert dead["csat_proxy"] < onward["csat_proxy"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "helpful",
    [
        "Let me figure it out for you.",
        "No problem, I will check that for you.",
        "Sorry, pets are not allowed in the apartment.",  # a fact, not a refusal to help
        "I'll look it up myself, one moment.",
        "You can do it yourself from the settings page, or I can do it for you.",
    ],
)
def test_helpful_replies_are_not_rude_or_dead_ends(helpful: str) -> None:
    s = csat_signals(conv((ASK, helpful)))
    assert s["n_agent_rude"] == 0 and s["n_agent_dead_ends"] == 0 and s["agent_manner_pts"] == 0


@needs_uss
@pytest.mark.parametrize(("name", "before"), [("SGD", 0.394), ("MWOZ", 0.359)])
def test_agent_manner_signals_do_not_lower_the_correlation_on_uss(name: str, before: float) -> None:
    """Spearman with the human ratings before the agent-manner signals (issue #11): 0.3945 on
    SGD, 0.3594 on MWOZ. USS agents are almost never rude, so the signals must stay silent
    there (a handful of replies) and cost nothing."""
    from evalkit.integrations.importers.uss import read

    recs = read(USS_DIR / f"{name}.txt").recordings
    signals = [csat_signals(r.transcript) for r in recs]
    rho = spearman([float(s["csat_proxy"]) for s in signals], [float(r.metrics["human_csat"]) for r in recs])  # type: ignore[arg-type]
    assert rho is not None and rho >= before
    assert sum(int(s["n_agent_rude"]) + int(s["n_agent_dead_ends"]) for s in signals) <= 10  # type: ignore[call-overload]
def test_spearman_ci_drops_undefined_resamples_quietly() -> None:
    """With 4 pairs many resamples repeat one pair (rho undefined): they are left out of the
    interval, not turned into a NaN interval or a warning."""
    c = spearman_ci([1, 2, 3, 4], [1, 3, 2, 4], n_resamples=300)
    assert c.rho == pytest.approx(0.8)
    assert c.low is not None and c.high is not None and -1 <= c.low <= c.high <= 1
