"""The LIKE MAGIC Open API client against a local identity provider and API: one token
per worker, renewed before expiry and once on a 401, never two token requests at once,
under the rate limit by itself, and the failure policy for what comes anyway."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.likemagic import LikeMagicActivities
from tests.fakes import FakeLikeMagic, Reply
from tests.helpers import make_settings

ANA = {
    "firstName": "Ana",
    "lastName": "Silva",
    "email": "ana.silva@example.com",
    "phone": "+41791112233",
    "preferredLanguage": "pt",
}


def activities(fake: FakeLikeMagic, tmp_path, **more) -> LikeMagicActivities:
    return LikeMagicActivities(make_settings(tmp_path, **fake.settings(**more)))


async def lookup(acts: LikeMagicActivities, profile_id: str):
    return await ActivityEnvironment().run(acts.likemagic_profile, profile_id)


async def test_one_token_serves_many_concurrent_lookups(tmp_path):
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        acts = activities(api, tmp_path, LIKEMAGIC_RATE_PER_SECOND="1000", LIKEMAGIC_BURST="100")
        found = await asyncio.gather(*(lookup(acts, "902211") for _ in range(40)))
    assert len(api.tokens) == 1
    assert [r.status for r in api.requests] == [200] * 40
    guest = found[0].guest
    assert (guest.name, guest.email, guest.phone, guest.language, guest.profile_id) == (
        "Ana Silva",
        "ana.silva@example.com",
        "+41791112233",
        "pt",
        "902211",
    )


async def test_a_token_about_to_expire_is_renewed_one_request_at_a_time(tmp_path):
    # Tokens that live 1 s are inside the 30 s renewal margin: each lookup needs a new one.
    with FakeLikeMagic(expires_in=1) as api:
        api.profiles["902211"] = ANA
        api.delay = 0.02
        acts = activities(api, tmp_path, LIKEMAGIC_RATE_PER_SECOND="1000", LIKEMAGIC_BURST="100")
        for _ in range(3):
            assert (await lookup(acts, "902211")).guest is not None
        assert len(api.tokens) == 3
        await asyncio.gather(*(lookup(acts, "902211") for _ in range(8)))
    assert api.most_token_requests_at_once == 1
    assert all(r.status == 200 for r in api.requests)


async def test_a_401_renews_the_token_once_for_all_callers(tmp_path):
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        acts = activities(api, tmp_path, LIKEMAGIC_RATE_PER_SECOND="1000", LIKEMAGIC_BURST="100")
        await lookup(acts, "902211")
        api.revoked.add(api.tokens[0])  # the platform no longer takes it
        found = await asyncio.gather(*(lookup(acts, "902211") for _ in range(10)))
    assert all(f.guest is not None for f in found)
    assert len(api.tokens) == 2
    assert [r.status for r in api.requests].count(401) == 10
    assert [r.status for r in api.requests].count(200) == 11


async def test_a_second_401_is_final_and_names_no_secret(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        acts = activities(api, tmp_path)
        api.fail_next(Reply(401, {"message": "no"}), Reply(401, {"message": "still no"}))
        with pytest.raises(ApplicationError) as raised:
            await lookup(acts, "902211")
    assert raised.value.non_retryable
    assert "LIKE MAGIC API rejected the profile read: 401 still no" == raised.value.message
    assert len(api.tokens) == 2
    logged = " ".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for secret in [FakeLikeMagic.CLIENT_SECRET, *api.tokens]:
        assert secret not in logged and secret not in raised.value.message


async def test_wrong_client_credentials_fail_without_retry_or_secret(tmp_path):
    with FakeLikeMagic() as api:
        acts = activities(api, tmp_path, LIKEMAGIC_CLIENT_SECRET="not-the-secret-value")
        with pytest.raises(ApplicationError) as raised:
            await lookup(acts, "902211")
    assert raised.value.non_retryable
    assert "rejected the client credentials: invalid_client" in raised.value.message
    assert "not-the-secret-value" not in raised.value.message
    assert api.requests == []


@pytest.mark.parametrize("method", ["body", "basic"])
async def test_client_credentials_in_the_body_or_as_basic(tmp_path, method):
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        acts = activities(api, tmp_path, LIKEMAGIC_CLIENT_AUTH=method, LIKEMAGIC_SCOPE="profile")
        assert (await lookup(acts, "902211")).guest is not None
    [token] = api.token_requests
    form = token.body.decode()
    assert "grant_type=client_credentials" in form and "scope=profile" in form
    if method == "basic":
        assert token.header("Authorization").startswith("Basic ")
        assert "client_secret" not in form
    else:
        assert token.header("Authorization") is None
        assert "client_secret=" in form


# The fake platform refills 40 requests a second with bursts of 40 (the real one: 7 a
# second, bursts of 4,500) and answers 429 beyond. Both tests below send 100 lookups at
# once; only the limiter tells them apart.
FAKE_RATE, FAKE_BURST, LOOKUPS = 40.0, 40.0, 100
# The limiter's guarantee is on when requests leave the client; a loaded machine can hold
# a request between the limiter and the fake (a stall) for up to this long, and the
# tests below still hold.
STALL = 1.75


async def test_a_burst_stays_under_the_rate_limit(tmp_path):
    # The client is set to half the fake's rate with bursts of 5: requests that a busy,
    # shared machine delivers bunched (held up to STALL) still fit the fake's burst
    # (5 + 20 * STALL <= 40).
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        api.rate, api.burst = FAKE_RATE, FAKE_BURST
        acts = activities(api, tmp_path, LIKEMAGIC_RATE_PER_SECOND="20", LIKEMAGIC_BURST="5")
        found = await asyncio.gather(*(lookup(acts, "902211") for _ in range(LOOKUPS)))
    assert all(f.guest is not None for f in found)
    assert [r.status for r in api.requests].count(429) == 0
    assert len(api.requests) == LOOKUPS
    assert len(api.tokens) == 1
    # The limiter spread them: 95 requests beyond the burst of 5 at 20 a second leave
    # over at least 4.75 s; they reach the fake over at least that less a stall (a lower
    # bound: a slow machine only makes it longer; without the limiter, a fraction of a
    # second).
    arrivals = [r.at for r in api.requests]
    assert max(arrivals) - min(arrivals) >= (LOOKUPS - 5) / 20 - STALL


async def test_without_the_limiter_the_same_burst_draws_429(tmp_path):
    # The control for the test above: the fake's limit is real, and a 429 reaches the
    # failure policy as retryable. The fake refills one request a second here: to draw
    # no 429, the 100 lookups at once would have to be spread over 60 s, which no
    # machine's slowness does. (At the 40 a second above, the 2 s they would need was
    # within reach of a slow CI machine: the control then drew no 429.)
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        api.rate, api.burst = 1.0, FAKE_BURST
        acts = activities(
            api, tmp_path, LIKEMAGIC_RATE_PER_SECOND="100000", LIKEMAGIC_BURST="100000"
        )
        results = await asyncio.gather(
            *(lookup(acts, "902211") for _ in range(LOOKUPS)), return_exceptions=True
        )
    assert [r.status for r in api.requests].count(429) > 0
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert refused and all(not r.non_retryable for r in refused)


async def test_429_asks_the_failure_policy_to_wait_its_retry_after(tmp_path):
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        acts = activities(api, tmp_path)
        api.fail_next(Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
        with pytest.raises(ApplicationError) as raised:
            await lookup(acts, "902211")
        again = await lookup(acts, "902211")
    assert not raised.value.non_retryable
    assert raised.value.next_retry_delay == timedelta(seconds=1)
    assert "LIKE MAGIC API 429 (rate limited)" in raised.value.message
    assert again.guest is not None


async def test_500_and_a_slow_answer_are_retryable(tmp_path):
    # A timeout that a loaded machine's stall (1-2 s) on the fast requests cannot reach,
    # and an answer far slower than it: only the slow answer can time out, however fast
    # or slow the machine (the test waits out the timeout once).
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA
        acts = activities(api, tmp_path, HTTP_TIMEOUT_SECONDS="3")
        api.fail_next(Reply(500, {"message": "boom"}))
        with pytest.raises(ApplicationError) as broken:
            await lookup(acts, "902211")
        await lookup(acts, "902211")  # the token is in hand before the API slows down
        api.delay = 30.0
        with pytest.raises(ApplicationError) as slow:
            await lookup(acts, "902211")
    assert not broken.value.non_retryable and "LIKE MAGIC API error 500" in broken.value.message
    assert not slow.value.non_retryable and "LIKE MAGIC API unreachable" in slow.value.message


async def test_a_missing_profile_and_a_missing_configuration_are_reasons(tmp_path):
    with FakeLikeMagic() as api:
        missing = await lookup(activities(api, tmp_path), "404404")
    unconfigured = await lookup(LikeMagicActivities(make_settings(tmp_path)), "902211")
    assert (missing.guest, missing.detail) == (None, "LIKE MAGIC has no profile 404404")
    assert unconfigured.guest is None
    assert unconfigured.detail == (
        "the LIKE MAGIC Open API is not configured (set LIKEMAGIC_API_URL, "
        "LIKEMAGIC_TOKEN_URL, LIKEMAGIC_CLIENT_ID, LIKEMAGIC_CLIENT_SECRET)"
    )
