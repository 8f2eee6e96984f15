"""Guest journey: one long-running workflow per reservation, from booking to after checkout."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from core.events import LikeMagicEvent, Topic
from core.guest import Guest, guest_fields, guest_in_context
from workflows.common import (
    INTEGRATION_CALL,
    Instant,
    in_zone,
    instant,
    result_of,
    wall_clock,
)
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.likemagic import LikeMagicActivities
    from activities.pms import PmsActivities
    from activities.policy import ALERT_SCHEDULE_TO_CLOSE, INTEGRATION_REJECTED
    from activities.slack import SlackActivities, SlackMessage, mrkdwn
    from activities.temporal import (
        JOURNEY_GUEST_MEMO,
        JOURNEY_SHAPE_MEMO,
        JourneyInput,
        JourneyPolicy,
        TemporalActivities,
    )
    from core.temporal import PROFILE_ID

Stage = Literal["new", "booked", "checked_in", "checked_out", "cancelled", "no_show"]
Kind = Literal["pre_arrival", "mid_stay", "review_request", "cancellation"]
KINDS: tuple[Kind, ...] = ("pre_arrival", "mid_stay", "review_request", "cancellation")
# Messages that confirm what the guest or the hotel just did: they go out at once, at any
# hour. Quiet hours hold only what the hotel sends on its own initiative.
CONFIRMATIONS: frozenset[Kind] = frozenset({"cancellation"})
# workflow.patched id: before it, a confirmation due in the quiet hours waited for their end.
CONFIRMATIONS_PATCH = "confirmations-ignore-quiet-hours"
# Stages only move forward; cancelled and no-show end the journey from any earlier stage.
ORDER: dict[str, int] = {"new": 0, "booked": 1, "checked_in": 2, "checked_out": 3}
TERMINAL = frozenset({"cancelled", "no_show"})
# Journeys that start after this patch read a guest's LIKE MAGIC profile when no
# event gave an email address (an extra activity before the send).
PATCH_PROFILE_LOOKUP = "journey-guest-from-profile"
# A journey nobody tells about a checkout or a no-show ends this long after departure.
EXPIRY_AFTER_DEPARTURE = timedelta(days=14)
# workflow.patched id: before it, a send that failed for good (the integration policy's
# 30 minutes) was marked failed at once, without an alert, and signals waited for it.
SEND_RETRY_PATCH = "journey-send-retried-until-deadline"
# After a failed send (the activity retried for 30 minutes), the journey tries again
# this much later, as long as the message's deadline allows.
RETRY_SEND_AFTER = timedelta(hours=1)
REVIEW_REQUEST_DEADLINE = timedelta(days=7)  # after checkout
CANCELLATION_DEADLINE = timedelta(hours=24)  # after the cancellation
# workflow.patched id: before it, a journey carried the policy it started with across
# continue-as-new; after it, each new run takes the policy of the current settings.
POLICY_REFRESH_PATCH = "journey-policy-refreshed-at-continue-as-new"
# The shape of JourneyState carried across continue-as-new. 1: before versions were
# kept (no field); 2: messages count their tries (attempts, retry_at).
SCHEMA_VERSION = 2
# workflow.patched id: before it, a journey that knew no departure waited forever; now
# it ends the policy's idle_days after its last event.
IDLE_BOUND_PATCH = "journey-idle-bound"
# workflow.patched id: before it, a journey did not carry its guest's profile id as the
# ProfileId search attribute (an upsert command), so profile changes could not find it.
PROFILE_ATTRIBUTE_PATCH = "journey-profile-search-attribute"
# The patches a journey of shape 2 or more (its memo, set by deliver_reservation_event)
# takes without asking: every one above. A patch added later is asked of every journey.
SHAPE_2_PATCHES = frozenset(
    {
        CONFIRMATIONS_PATCH,
        PATCH_PROFILE_LOOKUP,
        SEND_RETRY_PATCH,
        POLICY_REFRESH_PATCH,
        IDLE_BOUND_PATCH,
        PROFILE_ATTRIBUTE_PATCH,
    }
)


def journey_shape() -> int:
    """This journey's shape, from its memo (1: started without one)."""
    return int(workflow.memo_value(JOURNEY_SHAPE_MEMO, 1, type_hint=int))


def patched(patch_id: str) -> bool:
    """``workflow.patched``, except that a journey of shape 2 takes the patches it was
    started with without a marker (and without the TemporalChangeVersion upsert the SDK
    adds to each): its memo, in its first history event, is what tells it from the
    journeys recorded before them. Deterministic: the memo never changes in a run."""
    if patch_id in SHAPE_2_PATCHES and journey_shape() >= 2:
        return True
    return workflow.patched(patch_id)


# From shape 3 on, a journey keeps its guest in its memo (JOURNEY_GUEST_MEMO): journeys
# of earlier shapes never upsert it, so their histories replay unchanged.
GUEST_MEMO_SHAPE = 3


class Message(BaseModel):
    kind: Kind
    status: Literal["pending", "scheduled", "sent", "skipped", "dropped", "failed"] = "pending"
    due: Instant | None = None
    sent_at: Instant | None = None
    detail: str = ""
    # Sends tried, and when the next try is due after a failed one.
    attempts: int = 0
    retry_at: Instant | None = None


class JourneyState(BaseModel):
    """What the `state` query returns, carried across continue-as-new."""

    reservation_id: str
    # The state's shape (SCHEMA_VERSION); a state carried from an older run is upgraded.
    schema_version: int = 1
    stage: Stage = "new"
    stage_as_of: Instant | None = None
    property_id: str | None = None
    guest_email: str | None = None
    guest_name: str | None = None
    guest_phone: str | None = None
    guest_language: str | None = None
    # The guest's LIKE MAGIC profile (userProfileId), as the events name it.
    profile_id: str | None = None
    # The timestamp of the newest PROFILE_* event applied: an older event's guest
    # (a late RESERVATION_CREATED) only fills what the journey does not know.
    guest_as_of: Instant | None = None
    # What the last profile change did: the fields its event carried, and whether
    # the LIKE MAGIC profile could be re-read (else why not).
    guest_refreshed: str = ""
    arrival: Instant | None = None
    departure: Instant | None = None
    dates_as_of: Instant | None = None
    checked_in_at: Instant | None = None
    checked_out_at: Instant | None = None
    ended_at: Instant | None = None
    # When the journey last heard of its reservation, and (knowing no departure) when
    # it ends unless it hears again.
    last_news_at: Instant | None = None
    idle_until: Instant | None = None
    events_applied: list[str] = []
    messages: dict[str, Message] = {k: Message(kind=k) for k in KINDS}
    runs: int = 1
    completed: bool = False


# ----- pure scheduling: due times from the state, the policy and the property's zone


def parse_quiet(quiet: str) -> tuple[time, time] | None:
    if not quiet:
        return None
    start, end = quiet.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def in_quiet_hours(local: datetime, quiet: tuple[time, time] | None) -> bool:
    if quiet is None:
        return False
    start, end = quiet
    now = local.time()
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def after_quiet_hours(due: datetime, zone: str, quiet: tuple[time, time] | None) -> datetime:
    """``due``, or the end of the quiet hours it falls in (property's local time)."""
    local = in_zone(due, zone)
    if not in_quiet_hours(local, quiet):
        return due
    assert quiet is not None
    end = local.replace(hour=quiet[1].hour, minute=quiet[1].minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


def local_at(day: date, hour: int, zone: str) -> datetime:
    """The instant of ``hour``:00 on ``day`` in ``zone``."""
    return wall_clock(day, time(hour), zone)


def nights(state: JourneyState, zone: str) -> int | None:
    if state.arrival is None or state.departure is None:
        return None
    return (in_zone(state.departure, zone).date() - in_zone(state.arrival, zone).date()).days


def restore(carried: dict[str, object]) -> JourneyState:
    """The state a previous run carried, upgraded to SCHEMA_VERSION. Versions 1 to 2
    only add fields with defaults; a later change that renames or reshapes a field
    converts it here, by the version the state says it has."""
    state = JourneyState.model_validate(carried)
    if state.schema_version > SCHEMA_VERSION:
        # Not an ApplicationError: the workflow task fails and is retried (by a worker
        # with newer code), the journey itself does not fail.
        raise RuntimeError(
            f"journey state version {state.schema_version} is newer than this worker's "
            f"{SCHEMA_VERSION}: deploy the newer code"
        )
    state.schema_version = SCHEMA_VERSION
    return state


def send_deadline(kind: Kind, state: JourneyState, now: datetime) -> datetime:
    """Until when a failing message is worth trying again: a pre-arrival email until
    arrival, a mid-stay email until departure, a review request for 7 days after
    checkout, a cancellation confirmation for 24 hours."""
    if kind == "pre_arrival":
        return state.arrival or now
    if kind == "mid_stay":
        return state.departure or now
    if kind == "review_request":
        return (state.checked_out_at or state.departure or now) + REVIEW_REQUEST_DEADLINE
    return (state.ended_at or now) + CANCELLATION_DEADLINE


def failure_text(err: ActivityError) -> str:
    """The innermost reason of an activity failure (a timeout's last error, say)."""
    cause: BaseException | None = err.cause
    text = str(err)
    while cause is not None:
        if isinstance(cause, ApplicationError):
            text = cause.message
        cause = cause.__cause__
    return text


def desired_due(
    kind: Kind, state: JourneyState, policy: JourneyPolicy, now: datetime
) -> datetime | None | Literal["drop"]:
    """When a message should go, None if not (yet) known, "drop" if it never will."""
    zone = policy.timezone_of(state.property_id)
    if kind == "pre_arrival":
        if ORDER.get(state.stage, 99) > ORDER["booked"] or state.stage in TERMINAL:
            return "drop"
        if state.arrival is None:
            return None
        if now >= state.arrival:
            return "drop"  # too late to be a pre-arrival message
        arrival_day = in_zone(state.arrival, zone).date()
        due = local_at(
            arrival_day - timedelta(days=policy.pre_arrival_days), policy.pre_arrival_hour, zone
        )
        return max(due, now)
    if kind == "mid_stay":
        if state.stage in TERMINAL or state.stage == "checked_out":
            return "drop"
        if state.stage != "checked_in":
            return None
        count = nights(state, zone)
        if count is None:
            return None
        if count < 2:
            return "drop"
        first_night = in_zone(state.checked_in_at or state.arrival or now, zone).date()
        return max(local_at(first_night + timedelta(days=1), policy.mid_stay_hour, zone), now)
    if kind == "review_request":
        if state.stage in TERMINAL:
            return "drop"
        if state.stage != "checked_out":
            return None
        left = state.checked_out_at or now
        return max(left + timedelta(hours=policy.review_delay_hours), now)
    # cancellation
    if state.stage == "cancelled":
        return state.ended_at or now
    if state.stage == "no_show" or state.stage == "checked_out":
        return "drop"
    return None


@workflow.defn
class GuestJourney:
    """One reservation's journey (ID ``journey-<reservation id>``), from the first event
    of the reservation to after checkout.

    Every RESERVATION_* event arrives as the ``reservation_event`` signal (delivered
    by signal-with-start, so whichever comes first starts the journey), applied once
    by event id; an event older than the state it would change does not move the
    journey backwards. Messages, in the property's local time (PROPERTY_TIMEZONES):
    a pre-arrival email some days before arrival at a set hour; a mid-stay email the
    morning after the first night (stays of two nights or more); a review request
    some hours after checkout; a cancellation email on cancellation. The messages the
    hotel sends on its own initiative are held in the quiet hours until they end; a
    confirmation (the cancellation email) goes out at once, at any hour, and the
    cancelled journey ends as soon as it is sent. Date changes move pending
    messages (an update without dates makes it ask the PMS, when PMS_API_URL is
    set); a sent message is never sent again. Sends follow the integration
    failure policy; a send that still fails is tried again an hour later until the
    message's deadline (``send_deadline``), the stage re-checked before each try and
    events applied while a send runs (a message no longer wanted stops its send); a
    message that finally fails (or is rejected) is marked failed, operations are
    alerted, and the journey goes on.
    The journey continues as new when the server suggests it or its history passes
    the policy's bound, carrying its state (with its schema version) and taking the
    policy of the current settings; signals are never lost in the switch. A journey
    that knows no departure ends the policy's ``idle_days`` (JOURNEY_IDLE_DAYS) after
    its last event, once nothing is scheduled.
    The guest's profile id (``userProfileId``) is carried as the ProfileId search
    attribute; a PROFILE_UPDATED or PROFILE_LANGUAGE_UPDATED of that profile arrives
    as the ``profile_event`` signal (from the profile-refresh reaction): the journey
    re-reads the LIKE MAGIC profile and takes the event's own fields over it, so its
    later messages use the new email, name and language.
    """

    def __init__(self) -> None:
        self._state: JourneyState | None = None
        self._pending: list[LikeMagicEvent] = []
        # PROFILE_* events of the guest, to refresh what the journey knows of them.
        self._profile_news: list[LikeMagicEvent] = []
        # Timestamps of updates that carried no dates, to be asked of the PMS.
        self._refresh: list[datetime] = []
        self._policy = JourneyPolicy()
        # The guest in the memo (shape 3): what the last upsert, or the run's start, put.
        self._guest_in_memo: Guest | None = None

    @workflow.signal
    def reservation_event(self, event: LikeMagicEvent) -> None:
        # Applied by the main loop, which may not have restored the carried state yet.
        self._pending.append(event)

    @workflow.signal
    def profile_event(self, event: LikeMagicEvent) -> None:
        """A PROFILE_UPDATED or PROFILE_LANGUAGE_UPDATED of the journey's guest (sent by
        the profile-refresh reaction): applied by the main loop, like reservation events."""
        self._profile_news.append(event)

    @workflow.query
    def state(self) -> JourneyState:
        if self._state is None:
            return JourneyState(reservation_id="")
        return self._state

    @workflow.query
    def guest(self) -> Guest:
        """The reservation's guest as the journey knows it (the one source of truth
        reactions ask when their own event does not name the guest)."""
        state = self._state
        if state is None:
            return Guest()
        return Guest(
            name=state.guest_name,
            email=state.guest_email,
            phone=state.guest_phone,
            language=state.guest_language,
            profile_id=state.profile_id,
        )

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyState:
        if input.state is not None:
            self._state = restore(input.state)
            self._state.runs += 1
        else:
            self._state = JourneyState(
                reservation_id=input.reservation_id, schema_version=SCHEMA_VERSION
            )
        state, policy = self._state, input.policy
        self._policy = policy
        state.last_news_at = state.last_news_at or workflow.now()
        if journey_shape() >= GUEST_MEMO_SHAPE:
            self._guest_in_memo = workflow.memo_value(JOURNEY_GUEST_MEMO, None, type_hint=Guest)
        while True:
            while self._pending:
                self._apply(self._pending.pop(0), policy)
            if self._profile_news:
                await self._refresh_guest(self._profile_news.pop(0))
                continue
            self._mark_profile()
            self._memo_guest()
            if self._refresh:
                await self._refresh_dates(policy)
                continue
            now = workflow.now()
            self._reconcile(policy, now)
            if self._finished(now):
                state.completed = True
                return state
            due = self._next_due()
            if due is not None and due[1] <= now:
                await self._send(due[0], policy)
                continue
            if self._should_continue_as_new(policy):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._news():
                    if patched(POLICY_REFRESH_PATCH):
                        policy = await self._current_policy(policy)
                        if self._news():
                            continue  # arrived meanwhile: apply them first
                    workflow.continue_as_new(
                        JourneyInput(
                            reservation_id=input.reservation_id,
                            policy=policy,
                            state=state.model_dump(mode="json"),
                        ),
                        # The shape, and its guest, go on (journeys started without
                        # one: as before).
                        memo=self._carried_memo(),
                    )
                continue
            timeout = (due[1] - now) if due is not None else self._expiry_wait(now)
            try:
                await workflow.wait_condition(
                    self._news,
                    timeout=timeout,
                    timeout_summary=f"next: {due[0]}" if due else "expiry",
                )
            except TimeoutError:
                pass

    # ----- events

    def _news(self) -> bool:
        """Signals not applied yet."""
        return bool(self._pending or self._profile_news)

    def _apply(self, event: LikeMagicEvent, policy: JourneyPolicy) -> None:
        state = self._state
        assert state is not None
        if event.id in state.events_applied:
            return
        state.events_applied.append(event.id)
        state.last_news_at = workflow.now()
        at = instant(event.timestamp) or workflow.now()
        state.property_id = state.property_id or event.pms_property_id
        ctx = event.context
        known = guest_in_context(ctx)
        if state.guest_as_of is not None and at < state.guest_as_of:
            known = self.guest().merged(known)  # a profile change since: it stays
        self._learn(known)

        # A date alone is the property's local date.
        zone = policy.timezone_of(state.property_id)
        arrival, departure = instant(ctx.get("arrival"), zone), instant(ctx.get("departure"), zone)
        if (arrival or departure) and (state.dates_as_of is None or at >= state.dates_as_of):
            state.arrival = arrival or state.arrival
            state.departure = departure or state.departure
            state.dates_as_of = at

        topic = event.topic
        if (
            topic == Topic.RESERVATION_UPDATED
            and not (arrival or departure)
            and policy.pms_configured
        ):
            self._refresh.append(at)
        if topic == Topic.RESERVATION_CREATED:
            self._advance("booked", at)
        elif topic == Topic.RESERVATION_CHECKED_IN:
            if self._advance("checked_in", at):
                state.checked_in_at = at
        elif topic == Topic.RESERVATION_CHECKED_OUT:
            if self._advance("checked_out", at):
                state.checked_out_at = at
        elif topic == Topic.RESERVATION_CANCELLED:
            self._end("cancelled", at)
        elif topic == Topic.RESERVATION_NO_SHOW:
            self._end("no_show", at)

    def _learn(self, guest: Guest) -> None:
        """What an event or a profile says of the guest, over what the journey knew."""
        state = self._state
        assert state is not None
        state.guest_email = guest.email or state.guest_email
        state.guest_name = guest.name or state.guest_name
        state.guest_phone = guest.phone or state.guest_phone
        state.guest_language = guest.language or state.guest_language
        state.profile_id = guest.profile_id or state.profile_id

    async def _guest_from_profile(self) -> str:
        """Read the guest's LIKE MAGIC profile; what it could not give, as a note."""
        state = self._state
        assert state is not None and state.profile_id is not None
        try:
            lookup = await workflow.execute_activity_method(
                LikeMagicActivities.likemagic_profile, state.profile_id, **INTEGRATION_CALL
            )
        except ActivityError as err:
            cause = err.cause
            return cause.message if isinstance(cause, ApplicationError) else str(err)
        if lookup.guest is not None:
            self._learn(lookup.guest)
        return str(lookup.detail)

    async def _refresh_guest(self, event: LikeMagicEvent) -> None:
        """Apply a change of the guest's profile (once per event): re-read the LIKE MAGIC
        profile, then take what the event itself carries over it (the event is the
        newest word on the fields it names; an older one than the last applied only
        fills gaps). Without the Open API, what the event carries is all there is, and
        ``guest_refreshed`` says why the profile was not re-read."""
        state = self._state
        assert state is not None
        if event.id in state.events_applied:
            return
        at = instant(event.timestamp) or workflow.now()
        carried = guest_fields(event.context)
        named = list(carried.model_dump(exclude_none=True))
        reread = await self._guest_from_profile() if state.profile_id else "no profile id"
        if state.guest_as_of is None or at >= state.guest_as_of:
            self._learn(carried)
            state.guest_as_of = at
        else:
            self._learn(self.guest().merged(carried))
        fields = f"the event's {', '.join(named)}" if named else "the event names no field"
        profile = f"profile not re-read: {reread}" if reread else "profile re-read"
        state.guest_refreshed = f"{event.topic} {event.id}: {fields}; {profile}"
        # Last: a query that sees the event applied sees the whole refresh.
        state.events_applied.append(event.id)

    def _mark_profile(self) -> None:
        """Carry the guest's profile id as the ProfileId search attribute, so that the
        profile's changes find the journey (an id only, never guest data)."""
        state = self._state
        assert state is not None
        if state.profile_id is None:
            return
        if workflow.info().typed_search_attributes.get(PROFILE_ID) == state.profile_id:
            return
        if patched(PROFILE_ATTRIBUTE_PATCH):
            workflow.upsert_search_attributes([PROFILE_ID.value_set(state.profile_id)])

    def _memo_guest(self) -> None:
        """Keep the guest the journey knows in its memo (shape 3; encrypted by the codec
        like every payload), for the reactions that look the guest up: one upsert when
        the journey learns its guest, one more for each change."""
        if journey_shape() < GUEST_MEMO_SHAPE:
            return
        guest = self.guest()
        if guest == (self._guest_in_memo or Guest()):
            return
        workflow.upsert_memo({JOURNEY_GUEST_MEMO: guest})
        self._guest_in_memo = guest

    def _carried_memo(self) -> dict[str, Any] | None:
        """The memo of the next run: the shape, and from shape 3 the guest."""
        shape = journey_shape()
        if shape < 2:
            return None
        memo: dict[str, Any] = {JOURNEY_SHAPE_MEMO: shape}
        if shape >= GUEST_MEMO_SHAPE and self._guest_in_memo is not None:
            memo[JOURNEY_GUEST_MEMO] = self._guest_in_memo
        return memo

    def _advance(self, stage: Stage, at: datetime) -> bool:
        state = self._state
        assert state is not None
        if state.stage in TERMINAL or ORDER[stage] <= ORDER[state.stage]:
            return False  # stale or repeated: never backwards
        state.stage, state.stage_as_of = stage, at
        return True

    def _end(self, stage: Stage, at: datetime) -> None:
        state = self._state
        assert state is not None
        if state.stage in TERMINAL or state.stage == "checked_out":
            return  # a stay that ended cannot be cancelled afterwards
        state.stage, state.stage_as_of, state.ended_at = stage, at, workflow.now()

    async def _refresh_dates(self, policy: JourneyPolicy) -> None:
        """Ask the PMS for the dates an update did not carry (once for a burst)."""
        state = self._state
        assert state is not None
        at = max(self._refresh)
        self._refresh.clear()
        try:
            dates = await workflow.execute_activity_method(
                PmsActivities.pms_reservation_dates, state.reservation_id, **INTEGRATION_CALL
            )
        except ActivityError:
            return  # the dates stay as the events gave them; the next update tries again
        if dates is None or (dates.arrival is None and dates.departure is None):
            return
        if state.dates_as_of is None or at >= state.dates_as_of:
            zone = policy.timezone_of(state.property_id)
            state.arrival = instant(dates.arrival, zone) or state.arrival
            state.departure = instant(dates.departure, zone) or state.departure
            state.dates_as_of = at

    # ----- messages

    def _reconcile(self, policy: JourneyPolicy, now: datetime) -> None:
        state = self._state
        assert state is not None
        zone = policy.timezone_of(state.property_id)
        quiet = parse_quiet(policy.quiet_hours)
        for kind in KINDS:
            message = state.messages[kind]
            if message.status not in ("pending", "scheduled"):
                continue  # sent, skipped, dropped or failed: final
            wanted = desired_due(kind, state, policy, now)
            if wanted == "drop":
                message.status = "dropped" if message.status == "scheduled" else "pending"
                if message.status == "dropped":
                    message.due = None
                continue
            if wanted is None:
                message.status, message.due = "pending", None
                continue
            if message.retry_at is not None:
                wanted = max(wanted, message.retry_at)  # a failed send waits for its retry
            if kind in CONFIRMATIONS and patched(CONFIRMATIONS_PATCH):
                message.status, message.due = "scheduled", wanted
            else:
                message.status, message.due = "scheduled", after_quiet_hours(wanted, zone, quiet)

    def _next_due(self) -> tuple[Kind, datetime] | None:
        state = self._state
        assert state is not None
        scheduled = [
            (m.due, m.kind) for m in state.messages.values() if m.status == "scheduled" and m.due
        ]
        if not scheduled:
            return None
        due, kind = min(scheduled)
        return kind, due

    async def _send(self, kind: Kind, policy: JourneyPolicy) -> None:
        state = self._state
        assert state is not None
        message = state.messages[kind]
        message.sent_at = workflow.now()
        tried = ""
        if not state.guest_email and state.profile_id and patched(PATCH_PROFILE_LOOKUP):
            tried = await self._guest_from_profile()
        if not state.guest_email:
            message.status, message.detail = "skipped", "no guest email address in any event"
            if tried:
                message.detail += f"; the LIKE MAGIC profile: {tried}"
            return
        request = EmailRequest(
            key=f"{workflow.info().workflow_id}/{kind}",
            kind=f"journey_{kind}",
            to=state.guest_email,
            language=state.guest_language,
            data={
                "guest_name": state.guest_name,
                "reservation_id": state.reservation_id,
                "property_id": state.property_id,
                "arrival": state.arrival.isoformat() if state.arrival else None,
                "departure": state.departure.isoformat() if state.departure else None,
            },
        )
        if patched(SEND_RETRY_PATCH):
            await self._deliver(kind, request, policy)
            return
        try:
            delivery = await workflow.execute_activity_method(
                EmailActivities.send_email, request, **INTEGRATION_CALL
            )
        except ActivityError as err:
            cause = err.cause
            message.status = "failed"
            message.detail = cause.message if isinstance(cause, ApplicationError) else str(err)
            return
        message.status = "sent" if delivery.status == "sent" else "skipped"
        message.detail = delivery.detail

    async def _deliver(self, kind: Kind, request: EmailRequest, policy: JourneyPolicy) -> None:
        """One try of a message. Signals are applied while it runs, and the send is
        cancelled when they make the message unwanted (a cancellation arrives while a
        pre-arrival email is being retried). A failed try is tried again later (the
        main loop re-checks the stage first) until the message's deadline; then, or
        when the provider rejects it, the message fails and operations are alerted."""
        state = self._state
        assert state is not None
        message = state.messages[kind]
        message.attempts += 1
        sending = asyncio.ensure_future(
            workflow.execute_activity_method(
                EmailActivities.send_email, request, **INTEGRATION_CALL
            )
        )
        while not sending.done():
            await workflow.wait_condition(lambda: bool(self._pending) or sending.done())
            while self._pending:
                self._apply(self._pending.pop(0), policy)
            unwanted = desired_due(kind, state, policy, workflow.now()) == "drop"
            if unwanted and not sending.done():
                sending.cancel()
                try:
                    await sending
                except (ActivityError, asyncio.CancelledError):
                    pass
                message.status, message.due, message.retry_at = "dropped", None, None
                message.detail = f"no longer wanted ({state.stage}) while it was being sent"
                return
        try:
            delivery = sending.result()
        except ActivityError as err:
            await self._failed_try(kind, failure_text(err), policy, err)
            return
        message.status = "sent" if delivery.status == "sent" else "skipped"
        message.detail, message.retry_at = delivery.detail, None

    async def _failed_try(
        self, kind: Kind, detail: str, policy: JourneyPolicy, err: ActivityError
    ) -> None:
        state = self._state
        assert state is not None
        message = state.messages[kind]
        now = workflow.now()
        retry = now + RETRY_SEND_AFTER
        if kind not in CONFIRMATIONS:
            zone = policy.timezone_of(state.property_id)
            retry = after_quiet_hours(retry, zone, parse_quiet(policy.quiet_hours))
        cause = err.cause
        rejected = isinstance(cause, ApplicationError) and cause.type == INTEGRATION_REJECTED
        if not rejected and retry < send_deadline(kind, state, now):
            message.status, message.due, message.retry_at = "scheduled", retry, retry
            message.detail = f"try {message.attempts} failed: {detail}"
            return
        message.status, message.retry_at = "failed", None
        message.detail = (
            detail if rejected else f"{detail} (gave up after {message.attempts} tries)"
        )
        try:
            await workflow.execute_activity_method(
                SlackActivities.post_slack,
                SlackMessage(
                    channel="operations",
                    text=f":rotating_light: {mrkdwn(workflow.info().workflow_id)}: the {kind} "
                    f"email failed for good: {mrkdwn(message.detail)}",
                ),
                start_to_close_timeout=INTEGRATION_CALL["start_to_close_timeout"],
                schedule_to_close_timeout=ALERT_SCHEDULE_TO_CLOSE,
                retry_policy=INTEGRATION_CALL["retry_policy"],
            )
        except ActivityError as alert_err:
            message.detail += f"; the alert failed too: {failure_text(alert_err)}"

    # ----- the journey's end and length

    def _finished(self, now: datetime) -> bool:
        state = self._state
        assert state is not None
        open_messages = [m for m in state.messages.values() if m.status == "scheduled"]
        if state.stage in TERMINAL or state.stage == "checked_out":
            return not open_messages
        if state.departure is not None and now >= state.departure + EXPIRY_AFTER_DEPARTURE:
            return True
        idle_until = self._idle_until()
        return idle_until is not None and now >= idle_until and not open_messages

    def _idle_until(self) -> datetime | None:
        """When a journey that knows no departure ends unless an event comes; None when
        it knows its departure (or started before the bound existed)."""
        state = self._state
        assert state is not None
        if state.departure is not None or state.last_news_at is None:
            return None
        if not patched(IDLE_BOUND_PATCH):
            return None
        state.idle_until = state.last_news_at + timedelta(days=self._policy.idle_days)
        return state.idle_until

    def _expiry_wait(self, now: datetime) -> timedelta | None:
        state = self._state
        assert state is not None
        if state.departure is None:
            idle_until = self._idle_until()
            return None if idle_until is None else max(idle_until - now, timedelta(seconds=1))
        return max(state.departure + EXPIRY_AFTER_DEPARTURE - now, timedelta(seconds=1))

    async def _current_policy(self, policy: JourneyPolicy) -> JourneyPolicy:
        """The policy of the current settings (a recorded local activity, so replay
        sees the same); the one in force when the settings cannot be read."""
        try:
            current: JourneyPolicy = await workflow.execute_local_activity_method(
                TemporalActivities.journey_policy,
                start_to_close_timeout=timedelta(seconds=10),
            )
        except ActivityError:
            return policy
        return current

    def _should_continue_as_new(self, policy: JourneyPolicy) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= policy.max_history_events
        )


@workflow.defn
class JourneyDelivery:
    """Routes a RESERVATION_* event to its reservation's ``GuestJourney`` by
    signal-with-start (through an activity: a workflow cannot signal-with-start)."""

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        delivery = await workflow.execute_activity_method(
            TemporalActivities.deliver_reservation_event, event, **INTEGRATION_CALL
        )
        return result_of(delivery)
